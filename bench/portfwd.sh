#!/usr/bin/env bash
# The standalone `portfwd` relay side by side with socat and rinetd (Debian
# packages) and a direct loopback connection, in one run, inside a private
# network namespace (unshare --net, lo up; no traffic leaves it):
#   - throughput: iperf3 through each, DURATION s (default 5), 1 stream;
#   - connections per second: wrk with "Connection: close" (one connection
#     per request) against nginx (or python3 http.server if nginx is absent);
#   - request latency: wrk keep-alive, requests/s and p50/p99 latency.
# Relays: direct (no relay), portfwd (splice), portfwd-copy (--no-splice),
# socat (TCP-LISTEN,fork,reuseaddr), rinetd.
#
# Usage: bench/portfwd.sh [RELAY...]        (default: all that are available)
# Env:   DURATION=5, CONNECTIONS=50 (wrk -c), THREADS=2 (wrk -t),
#        PORTFWD=path/to/portfwd (default build/portfwd/portfwd),
#        RESULTS=FILE (also write the table there)
. "$(dirname "$0")/../tests/e2e/lib.sh"
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((DURATION * 5 * 4 + 120))}
E2E_NAME=bench-portfwd
e2e_init "$@"
need_cmd iperf3 python3 wrk
: "${PORTFWD:=$(dirname "$SLIPWAY")/../portfwd/portfwd}"
ulimit -n 65536 2>/dev/null || true

relays=("$@")
[ ${#relays[@]} -gt 0 ] || relays=(direct portfwd portfwd-copy socat rinetd)

# ------------------------------------------------------------ servers
iperf_port=$(free_port)
bg iperf3 iperf3 -s -B 127.0.0.1 -p "$iperf_port"
wait_listen "$iperf_port" || fail "iperf3 server did not start"

mkdir -p "$E2E_TMP/www"
head -c 1024 /dev/urandom | base64 >"$E2E_TMP/www/index.html"
if command -v nginx >/dev/null 2>&1; then
  http_port=$(free_port)
  cat >"$E2E_TMP/nginx.conf" <<EOF
worker_processes 1;
pid $E2E_TMP/nginx.pid;
error_log $E2E_TMP/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $E2E_TMP/nginx-body;
  proxy_temp_path $E2E_TMP/nginx-proxy;
  fastcgi_temp_path $E2E_TMP/nginx-fastcgi;
  uwsgi_temp_path $E2E_TMP/nginx-uwsgi;
  scgi_temp_path $E2E_TMP/nginx-scgi;
  server { listen 127.0.0.1:$http_port; root $E2E_TMP/www; }
}
EOF
  bg nginx nginx -c "$E2E_TMP/nginx.conf" -g 'daemon off;'
  wait_listen "$http_port" || { show_log "$E2E_TMP/nginx.log"; fail "nginx did not start"; }
  HTTP_SERVER="nginx $(nginx -v 2>&1 | sed 's/.*\///')"
else
  start_http_server "$E2E_TMP/www"
  http_port=$HTTP_PORT
  HTTP_SERVER="python3 http.server"
fi

# ------------------------------------------------------------ relays
# start_<relay> LISTEN_PORT TARGET_PORT: runs the relay in the background
# (bg) and returns 1 with NOTE set if it is not available.
start_portfwd() {
  [ -x "$PORTFWD" ] || { NOTE="not built ($PORTFWD)"; return 1; }
  bg "portfwd-$1" "$PORTFWD" --log-level warn "127.0.0.1:$1" "127.0.0.1:$2"
}
start_portfwd-copy() {
  [ -x "$PORTFWD" ] || { NOTE="not built ($PORTFWD)"; return 1; }
  bg "portfwd-copy-$1" "$PORTFWD" --no-splice --log-level warn "127.0.0.1:$1" "127.0.0.1:$2"
}
start_socat() {
  command -v socat >/dev/null || { NOTE="not installed"; return 1; }
  bg "socat-$1" socat "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr,backlog=4096" "TCP:127.0.0.1:$2"
}
start_rinetd() {
  command -v rinetd >/dev/null || { NOTE="not installed"; return 1; }
  printf '127.0.0.1 %s 127.0.0.1 %s\n' "$1" "$2" >"$E2E_TMP/rinetd-$1.conf"
  bg "rinetd-$1" rinetd -f -c "$E2E_TMP/rinetd-$1.conf"
}

# via RELAY TARGET_PORT: prints the port to use for TARGET_PORT through RELAY.
via() {
  local relay=$1 target=$2 port
  if [ "$relay" = direct ]; then echo "$target"; return 0; fi
  port=$(free_port)
  NOTE=
  "start_$relay" "$port" "$target" || return 1
  wait_listen "$port" tcp 10 || { NOTE="did not listen"; return 1; }
  echo "$port"
}

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "-" }'
}

run_iperf() {
  timeout $((DURATION + 20)) iperf3 -c 127.0.0.1 -p "$1" -t "$DURATION" -J 2>/dev/null |
    python3 -c 'import json,sys; bps = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]; print(f"{bps / 1e9:.2f}")' 2>/dev/null || echo "-"
}

# run_wrk PORT [HEADER]: "REQ/S P50_MS P99_MS"
run_wrk() {
  local out
  out=$(timeout $((DURATION + 20)) wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency ${2:+-H "$2"} \
    "http://127.0.0.1:$1/index.html" 2>&1) || { echo "- - -"; return; }
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -c 'Socket errors\|Non-2xx' <<<"$out" || true)
  [ "$errors" = 0 ] || log "wrk reported errors through port $1: $(grep 'Socket errors\|Non-2xx' <<<"$out" | tr -s ' ')"
  echo "${rps:--} $(to_ms "${p50:-}") $(to_ms "${p99:-}")"
}

# ------------------------------------------------------------ run
log "iperf3 ${DURATION}s, wrk -t$THREADS -c$CONNECTIONS ${DURATION}s against $HTTP_SERVER; $(nproc) CPUs, $(uname -r)"
rows=()
for relay in "${relays[@]}"; do
  log "measuring $relay"
  NOTE=
  if ! tport=$(via "$relay" "$iperf_port"); then rows+=("$(printf '%-14s %s' "$relay" "skipped: $NOTE")"); continue; fi
  tput=$(run_iperf "$tport")
  if ! hport=$(via "$relay" "$http_port"); then rows+=("$(printf '%-14s %s' "$relay" "skipped: $NOTE")"); continue; fi
  read -r cps _ _ <<<"$(run_wrk "$hport" "Connection: close")"
  read -r rps p50 p99 <<<"$(run_wrk "$hport")"
  case $relay in
    socat) NOTE="socat $(socat -V 2>/dev/null | awk '/socat version/ {print $3}'), a process per connection" ;;
    rinetd) NOTE="rinetd $(rinetd -v 2>&1 | awk '{print $NF}')" ;;
    portfwd) NOTE="splice" ;;
    portfwd-copy) NOTE="--no-splice (read/write)" ;;
    direct) NOTE="no relay" ;;
  esac
  rows+=("$(printf '%-14s %10s %12s %12s %9s %9s   %s' "$relay" "$tput" "$cps" "$rps" "$p50" "$p99" "$NOTE")")
done

{
  echo "portfwd relays, iperf3 ${DURATION}s 1 stream, wrk -t$THREADS -c$CONNECTIONS ${DURATION}s vs $HTTP_SERVER, $(nproc) CPUs, $(uname -r)"
  printf '%-14s %10s %12s %12s %9s %9s   %s\n' relay "iperf Gb/s" "conn/s" "req/s (ka)" "p50 ms" "p99 ms" notes
  printf '%s\n' "${rows[@]}"
} | tee "${RESULTS:-/dev/null}"
