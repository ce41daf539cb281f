#!/usr/bin/env bash
# DNS forwarding: the standalone dns-proxy vs dnsmasq as a forwarder, both in
# front of the same upstream (a dnsmasq answering a zone of NAMES host
# records from memory), measured with dnsperf over UDP, cached (each
# forwarder answers from its cache after a warm-up pass) and uncached
# (dns-proxy --no-cache, dnsmasq --cache-size=0: every query goes upstream).
# Everything runs in a private network namespace on loopback.
#
# Usage: bench/dns.sh
# Env:   DURATION=5 (seconds per dnsperf run), NAMES=1000, CLIENTS=4
#        (dnsperf -c), OUTSTANDING=100 (dnsperf -q), DNS_PROXY=path,
#        RESULTS=FILE (also write the table there)
. "$(dirname "$0")/../tests/e2e/lib.sh"
DURATION=${DURATION:-5}
NAMES=${NAMES:-1000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((DURATION * 8 + 120))}
E2E_NAME=bench-dns
e2e_init "$@"
need_cmd dnsmasq dnsperf python3

: "${DNS_PROXY:=$(dirname "$SLIPWAY")/../dns-proxy/dns-proxy}"
[ -x "$DNS_PROXY" ] || fail "dns-proxy not built: $DNS_PROXY (set DNS_PROXY)"

up_port=$(free_port udp)
records=()
for ((i = 0; i < NAMES; i++)); do records+=("--host-record=n$i.bench.test,192.0.2.$((i % 250 + 1))"); done
bg upstream dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file="$E2E_TMP/up.pid" \
  --listen-address=127.0.0.1 --bind-interfaces --port="$up_port" --local-ttl=3600 "${records[@]}"
wait_listen "$up_port" udp || { show_log "$E2E_TMP/upstream.log"; fail "upstream dnsmasq did not start"; }

queries=$E2E_TMP/queries
for ((i = 0; i < NAMES; i++)); do echo "n$i.bench.test A"; done >"$queries"

start_forwarder() {  # start_forwarder KIND cached|uncached -> sets FWD_ADDR FWD_PORT FWD_PID
  local kind=$1 mode=$2
  FWD_PORT=$(free_port udp)
  if [ "$kind" = dns-proxy ]; then
    FWD_ADDR=127.0.0.2
    local extra=()
    [ "$mode" = uncached ] && extra=(--no-cache)
    bg "fwd-$kind-$mode" "$DNS_PROXY" --listen "$FWD_ADDR:$FWD_PORT" --upstream "127.0.0.1:$up_port" \
      --log-level warn "${extra[@]}"
  else
    FWD_ADDR=127.0.0.3
    local cache=10000
    [ "$mode" = uncached ] && cache=0
    bg "fwd-$kind-$mode" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
      --pid-file="$E2E_TMP/fwd-$mode.pid" --listen-address="$FWD_ADDR" --bind-interfaces --port="$FWD_PORT" \
      --server="127.0.0.1#$up_port" --cache-size="$cache" --dns-forward-max=1000
  fi
  FWD_PID=$BG_PID
  wait_listen "$FWD_PORT" udp || { show_log "$E2E_TMP/fwd-$kind-$mode.log"; fail "$kind did not start"; }
}

# run_dnsperf ADDR PORT SECONDS -> "QPS LATENCY_MS LOST_PCT"
run_dnsperf() {
  local out
  out=$(timeout -k 5 $(($3 + 20)) dnsperf -s "$1" -p "$2" -d "$queries" -l "$3" -c "$CLIENTS" -q "$OUTSTANDING" 2>&1) ||
    { echo "$out" >&2; echo "- - -"; return; }
  local qps lat lost
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  lat=$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$out")
  lost=$(sed -n 's/.*Queries lost: *[0-9]* (\([0-9.]*\)%).*/\1/p' <<<"$out")
  printf '%.0f %.3f %s\n' "${qps:-0}" "$(python3 -c "print(${lat:-0} * 1000)")" "${lost:-?}"
}

declare -A R
for kind in dns-proxy dnsmasq; do
  for mode in cached uncached; do
    start_forwarder "$kind" "$mode"
    if [ "$mode" = cached ]; then
      # Warm-up: one pass over every name fills the cache.
      timeout 30 dnsperf -s "$FWD_ADDR" -p "$FWD_PORT" -d "$queries" -n 1 -q 20 >/dev/null 2>&1 || true
    fi
    log "$kind $mode: dnsperf ${DURATION}s"
    R[$kind.$mode]=$(run_dnsperf "$FWD_ADDR" "$FWD_PORT" "$DURATION")
    stop_bg "$FWD_PID"
  done
done

table() {
  echo "DNS forwarding over UDP, dnsperf ${DURATION}s per run, $NAMES names, -c $CLIENTS -q $OUTSTANDING, $(nproc) CPUs, $(uname -r)"
  echo "upstream: dnsmasq $(dnsmasq --version | head -n1 | awk '{print $3}') answering from memory on 127.0.0.1"
  printf '%-12s %14s %12s %8s   %14s %12s %8s\n' forwarder "cached qps" "latency ms" "lost %" "uncached qps" "latency ms" "lost %"
  local kind c u
  for kind in dns-proxy dnsmasq; do
    read -r -a c <<<"${R[$kind.cached]}"
    read -r -a u <<<"${R[$kind.uncached]}"
    printf '%-12s %14s %12s %8s   %14s %12s %8s\n' "$kind" "${c[0]}" "${c[1]}" "${c[2]}" "${u[0]}" "${u[1]}" "${u[2]}"
  done
}
table
[ -n "${RESULTS:-}" ] && table >"$RESULTS"
exit 0
