#!/usr/bin/env bash
# The benchmark suite: slipway beside slirp4netns, pasta, a veth pair
# (kernel routing, the limit) and plain loopback (no virtualization), every
# figure for every system in one run, printed as one table (bench/README.md
# describes each figure, how each system is set up and the targets).
#
# Usage: bench/run.sh
# Env:   QUICK=1          a short pass (about 3.7 minutes instead of 8.5 here)
#        SYSTEMS="..."    a subset of: loopback veth slirp4netns pasta slipway slipway_slirp
#                         slipway_slirp (slipway --engine slirp)
#        FIGURES="..."    a subset of: bulk rr udp conn inbound scale
#                         (bulk also gives the CPU-per-GB figures)
#        RESULTS_DIR=DIR  where results.json, chart.png and table.txt go
#                         (default bench/results/<timestamp>)
#        SLIPWAY=path     the slipway binary (default build/netstack/slipway)
#        UDP_PPS=path     bench/udp_pps (default: next to SLIPWAY's build)
#        DURATION=N       seconds per iperf3 run (default 4, QUICK 2)
# Installs the Debian packages it needs when they are missing (as root).
# Everything runs in a private network namespace (tests/e2e/lib.sh): no
# packet leaves it.
# The whole script is one { ... } block: bash reads it completely before it
# runs, so editing this file during a run cannot derail that run.
{
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_PY=/usr/bin/python3
[ -x "$BENCH_PY" ] || BENCH_PY=$(command -v python3)
export BENCH_PY

# ------------------------------------------------------------ settings
if [ "${QUICK:-0}" = 1 ]; then
  : "${DURATION:=2}" "${RR_SECONDS:=1}" "${UDP_SECONDS:=1}" "${WINDOWS:=2}" "${IN_WINDOWS:=2}"
  : "${SCALE_STEPS:=10000}" "${SCALE_STEP_SECONDS:=5}"
else
  : "${DURATION:=4}" "${RR_SECONDS:=2}" "${UDP_SECONDS:=2}" "${WINDOWS:=10}" "${IN_WINDOWS:=5}"
  : "${SCALE_STEPS:=10000,100000}" "${SCALE_STEP_SECONDS:=20,40}"
fi
: "${SYSTEMS:=loopback veth slirp4netns pasta slipway slipway_slirp}"
: "${FIGURES:=bulk rr udp conn inbound scale}"
export DURATION RR_SECONDS UDP_SECONDS WINDOWS IN_WINDOWS SCALE_STEPS SCALE_STEP_SECONDS SYSTEMS FIGURES QUICK
# The whole run's hard limit (every process is bounded by it too).
export BENCH_LIMIT=${BENCH_LIMIT:-1500}
export E2E_TIMEOUT=$((BENCH_LIMIT + 60))

# ------------------------------------------------------------ packages
# Outside the private namespace (it has no network): install what is missing.
install_missing() {
  local need=() c
  declare -A pkg=([sockperf]=sockperf [nginx]=nginx [wrk]=wrk [iperf3]=iperf3 [slirp4netns]=slirp4netns
    [pasta]=passt [nsenter]=util-linux [ss]=iproute2)
  for c in "${!pkg[@]}"; do
    command -v "$c" >/dev/null 2>&1 || need+=("${pkg[$c]}")
  done
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
  [ ${#need[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "[bench] missing (install them: apt-get install ${need[*]}); the figures that need them are skipped" >&2
    return 0
  fi
  echo "[bench] installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
    { timeout 300 apt-get update -q >&2 && timeout 600 apt-get install -y -q --no-install-recommends "${need[@]}" >&2; } ||
    echo "[bench] could not install ${need[*]}; the figures that need them are skipped" >&2
}
if [ "${E2E_INNER:-}" != 1 ]; then
  install_missing
  : "${RESULTS_DIR:=$HERE/results/$(date +%Y%m%d-%H%M%S)}"
  mkdir -p "$RESULTS_DIR"
  RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
  BENCH_STARTED=$(date +%s)
  # The run's temporary files live in a directory of its own, so a cleanup
  # of stale /tmp/slipway-e2e.* directories by a test run elsewhere on the
  # machine cannot pull them away mid-run.
  BENCH_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench.XXXXXX")
  chmod 755 "$BENCH_TMPDIR"
  export RESULTS_DIR BENCH_STARTED BENCH_TMPDIR TMPDIR=$BENCH_TMPDIR
fi

. "$HERE/../tests/e2e/lib.sh"
E2E_NAME=bench
e2e_init "$@"
# e2e_cleanup (stop every process, remove E2E_TMP) ends with exit, so it
# runs in a subshell and the run's own directory goes after it.
bench_cleanup() {
  local rc=$?
  set +e
  (e2e_cleanup)
  rm -rf "$BENCH_TMPDIR"
  exit "$rc"
}
trap bench_cleanup EXIT
. "$HERE/lib_bench.sh"
: "${UDP_PPS:=$(dirname "$(dirname "$SLIPWAY")")/bench/udp_pps}"
RAW=$RESULTS_DIR/results.jsonl
: >"$RAW"
# Many sockets: wrk -c256, nginx, and 100,000 idle connections (the tools
# inherit this).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
read -ra systems <<<"$SYSTEMS"
read -ra figures <<<"$FIGURES"
for s in "${systems[@]}"; do
  [[ " ${ALL_SYSTEMS[*]} " == *" $s "* ]] || fail "unknown system '$s' (${ALL_SYSTEMS[*]})"
done
for f in "${figures[@]}"; do
  case $f in bulk | rr | udp | conn | inbound | scale) ;; *) fail "unknown figure '$f' (bulk rr udp conn inbound scale)" ;; esac
done
has_figure() { [[ " ${figures[*]} " == *" $1 "* ]]; }
# phase TEXT: a log line with the seconds since the start.
phase() { log "+$(($(date +%s) - BENCH_STARTED))s $*"; }

# ------------------------------------------------------------ measuring
# measure FIGURE SYSTEM FUNC ARGS...: runs FUNC in a subshell with set -e,
# so a failing step fails this one figure (recorded, with its exit code)
# and not the suite; processes it left in the background are stopped.
measure() {
  local fig=$1 sys=$2 rc=0
  shift 2
  set +e
  (
    set -e
    [ "${BENCH_TRACE:-}" = 1 ] && set -x
    MEAS_PID=$BASHPID
    n0=${#E2E_PGIDS[@]}
    trap 'rc=$?; for g in "${E2E_PGIDS[@]:$n0}"; do kill -KILL -- "-$g" 2>/dev/null || true; done; exit $rc' EXIT
    "$@"
  )
  rc=$?
  set -e
  [ $rc = 0 ] || record_status "$fig" "$sys" fail "the measurement stopped (exit $rc; log in $E2E_TMP)"
}

# for_systems VARIANT FIGURE FUNC ARGS...: FUNC FIGURE SYSTEM ARGS... for
# every selected system whose VARIANT guest is up; the others are recorded
# as skipped or failed with the reason.
for_systems() {
  local variant=$1 fig=$2 func=$3 s
  shift 3
  for s in "${systems[@]}"; do
    if ! guest_up "$s" "$variant"; then
      record_status "$fig" "$s" "${G_STATE[$s@$variant]}" "${G_NOTE[$s@$variant]}"
      continue
    fi
    use "$s" "$variant"
    measure "$fig" "$s" "$func" "$fig" "$s" "$@"
  done
}

# Bulk: iperf3, one stream, DURATION s, guest -> host (up) or host -> guest
# (-R), and the CPU the machine, the benchmark's processes and the tool used.
bulk() {
  local fig=$1 sys=$2 dir=$3 port j rev=()
  [ "$dir" = down ] && rev=(-R)
  port=$(free_port); j=$E2E_TMP/$fig-$sys.json
  bg "iperf3-s-$fig-$sys" timeout -k 5 $((DURATION + 30)) iperf3 -s -1 -p "$port"
  local spid=$BG_PID
  wait_listen "$port" tcp 10
  local m0 c0 t0 m1 c1 t1
  m0=$(machine_busy); c0=$(children_cpu "$MEAS_PID"); t0=$(proc_cpu "$TOOL_PID")
  gx timeout -k 5 $((DURATION + 20)) iperf3 -c "$GW4" -p "$port" -t "$DURATION" -J "${rev[@]}" >"$j" 2>"$j.err" || true
  stop_bg "$spid"
  m1=$(machine_busy); c1=$(children_cpu "$MEAS_PID"); t1=$(proc_cpu "$TOOL_PID")
  local tool=null bench
  [ -n "$t0" ] && [ -n "$t1" ] && tool=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  bench=$(awk -v a="$c0" -v b="$c1" -v t="$tool" 'BEGIN { printf "%.2f", b - a + (t == "null" ? 0 : t) }')
  rep add-iperf "$RAW" "$fig" "$sys" "iperf3 -c $GW4 -t $DURATION ${rev[*]} (server: iperf3 -s -1 on the test host)" "$j" \
    "{\"machine_cpu_s\": $(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.2f", b - a }'), \"bench_cpu_s\": $bench, \"tool_cpu_s\": $tool}"
}

# Request/response: sockperf ping-pong against the test host's server, the
# median round trip (--full-rtt) over RR_SECONDS. Every process on the path
# (client, server, tool) runs on CPU $RR_CPU: on this VM a wake-up on an
# idle vCPU costs ~50 us and flips the median between ~5 and ~60 us at
# random; on one CPU the figure is the path's own cost.
rr() {
  local fig=$1 sys=$2 proto=$3 opt=() port=$SOCKPERF_UDP_PORT o=$E2E_TMP/$1-$2.out
  [ "$proto" = tcp ] && { opt=(--tcp); port=$SOCKPERF_TCP_PORT; }
  pin_tool
  gx timeout -k 5 $((RR_SECONDS + 20)) taskset -c "$RR_CPU" sockperf ping-pong "${opt[@]}" -i "$GW4" -p "$port" \
    -t "$RR_SECONDS" --full-rtt >"$o" 2>&1 || true
  unpin_tool
  rep add-sockperf "$RAW" "$fig" "$sys" "taskset -c $RR_CPU sockperf ping-pong ${opt[*]} -i $GW4 -t $RR_SECONDS --full-rtt (server and tool on CPU $RR_CPU too)" "$o"
}
# pin_tool / unpin_tool: the tool's threads onto CPU $RR_CPU and back.
RR_CPU=0
pin_tool() {
  [ -n "$TOOL_PID" ] || return 0
  TOOL_MASK=$(taskset -p "$TOOL_PID" | awk '{print $NF}')
  taskset -a -p -c "$RR_CPU" "$TOOL_PID" >/dev/null
}
unpin_tool() {
  [ -n "$TOOL_PID" ] || return 0
  taskset -a -p "$TOOL_MASK" "$TOOL_PID" >/dev/null 2>&1 || true
}

# UDP small packets: udp_pps, 64-byte datagrams for UDP_SECONDS, the
# receiver's datagrams per second; up: the guest sends, down: the host does.
udp() {
  local fig=$1 sys=$2 dir=$3 port o=$E2E_TMP/$1-$2.out
  [ -x "$UDP_PPS" ] || { record_status "$fig" "$sys" skip "udp_pps not built ($UDP_PPS)"; return 0; }
  port=$(free_port udp)
  local srole=recv crole=send
  [ "$dir" = down ] && { srole=send; crole=recv; }
  bg "udp-s-$fig-$sys" timeout -k 5 $((UDP_SECONDS + 30)) "$UDP_PPS" server --port "$port" --role "$srole" --seconds "$UDP_SECONDS"
  local spid=$BG_PID
  wait_listen "$port" udp 10
  gx timeout -k 5 $((UDP_SECONDS + 30)) "$UDP_PPS" client --to "$GW4:$port" --role "$crole" --seconds "$UDP_SECONDS" \
    >"$o.client" 2>&1 || true
  wait "$spid" 2>/dev/null || true
  if [ "$dir" = up ]; then cp "$E2E_TMP/udp-s-$fig-$sys.log" "$o"; else cp "$o.client" "$o"; fi
  rep add-udp "$RAW" "$fig" "$sys" "udp_pps client --to $GW4:PORT --role $crole --seconds $UDP_SECONDS (64 B; server on the test host)" "$o"
}

# Connection rate: wrk -t1 -cN with "Connection: close" (a connection per
# request) against nginx on the test host, WINDOWS whole seconds counted
# one by one (bench/wrk_windows.lua). Each figure dials its own server port:
# the TIME-WAIT sockets one figure leaves in a guest (60 s) belong to other
# 4-tuples and do not slow the next figure down.
conn() {
  local fig=$1 sys=$2 family=$3 conns=$4 host o=$E2E_TMP/$1-$2.out
  if [ "$family" = 6 ]; then
    if [ -z "$GW6" ]; then
      local f
      for f in rate stability errors; do
        record_status "${fig}_$f" "$sys" skip "no IPv6 here (pasta runs IPv4-only, -4, as in bench/throughput.sh)"
      done
      return 0
    fi
    host="[$GW6]"
  else
    host=$GW4
  fi
  gx timeout -k 5 $((WINDOWS + 30)) wrk -t1 -c"$conns" -d"$((WINDOWS + 1))s" -H 'Connection: close' \
    -s "$HERE/wrk_windows.lua" "http://$host:${HTTP_PORT[$fig]}/index.html" >"$o" 2>&1 || true
  rep add-wrk "$RAW" "$fig" "$sys" "wrk -t1 -c$conns -d$((WINDOWS + 1))s -H 'Connection: close' http://$host:PORT/index.html (nginx on the test host)" "$o" "$WINDOWS"
}

# Inbound: the server runs in the guest, the client on the test host dials
# the port the tool publishes (the guest itself for veth).
in_bulk() {
  local fig=$1 sys=$2 dir=$3 rev=() j=$E2E_TMP/$1-$2.json
  [ "$dir" = down ] && rev=(-R)
  bg "iperf3-in-$sys-$dir" "${GX[@]}" timeout -k 5 $((DURATION + 30)) iperf3 -s -1 -p "${SRV_PORT[iperf]}"
  local spid=$BG_PID
  wait_listen_guest "${SRV_PORT[iperf]}" 10
  timeout -k 5 $((DURATION + 20)) iperf3 -c "$IN_ADDR" -p "${IN_PORT[iperf]}" -t "$DURATION" -J "${rev[@]}" >"$j" 2>"$j.err" || true
  stop_bg "$spid"
  rep add-iperf "$RAW" "$fig" "$sys" "iperf3 -c $IN_ADDR -p ${IN_PORT[iperf]} -t $DURATION ${rev[*]} (server: iperf3 -s -1 -p ${SRV_PORT[iperf]} in the guest)" "$j"
}
in_conn() {
  local fig=$1 sys=$2 o=$E2E_TMP/$1-$2.out conf=$E2E_TMP/nginx-in-$2.conf
  nginx_conf "$conf" "$E2E_TMP/www" "${SRV_PORT[http]}"
  bg "nginx-in-$sys" "${GX[@]}" timeout -k 5 $((IN_WINDOWS + 60)) nginx -c "$conf" -g 'daemon off;'
  local spid=$BG_PID
  wait_listen_guest "${SRV_PORT[http]}" 10
  timeout -k 5 $((IN_WINDOWS + 30)) wrk -t1 -c16 -d"$((IN_WINDOWS + 1))s" -H 'Connection: close' \
    -s "$HERE/wrk_windows.lua" "http://$IN_ADDR:${IN_PORT[http]}/index.html" >"$o" 2>&1 || true
  stop_bg "$spid"
  rep add-wrk "$RAW" "$fig" "$sys" "wrk -t1 -c16 -d$((IN_WINDOWS + 1))s -H 'Connection: close' http://$IN_ADDR:${IN_PORT[http]}/index.html (nginx in the guest)" "$o" "$IN_WINDOWS"
}
in_rr() {
  local fig=$1 sys=$2 o=$E2E_TMP/$1-$2.out
  bg "sockperf-in-$sys" "${GX[@]}" timeout -k 5 $((RR_SECONDS + 30)) taskset -c "$RR_CPU" sockperf server --tcp -p "${SRV_PORT[sockperf]}"
  local spid=$BG_PID
  wait_listen_guest "${SRV_PORT[sockperf]}" 10
  pin_tool
  timeout -k 5 $((RR_SECONDS + 20)) taskset -c "$RR_CPU" sockperf ping-pong --tcp -i "$IN_ADDR" -p "${IN_PORT[sockperf]}" \
    -t "$RR_SECONDS" --full-rtt >"$o" 2>&1 || true
  unpin_tool
  stop_bg "$spid"
  rep add-sockperf "$RAW" "$fig" "$sys" "taskset -c $RR_CPU sockperf ping-pong --tcp -i $IN_ADDR -p ${IN_PORT[sockperf]} -t $RR_SECONDS --full-rtt (server in the guest; server and tool on CPU $RR_CPU too)" "$o"
}

# Scale: idle TCP connections from the guest to 8 ports on the test host
# (bench/idle_conns.py), in steps (SCALE_STEPS), each bounded by
# SCALE_STEP_SECONDS; the tool's RSS growth per open connection, from a
# fresh tool (the "scale" guest).
scale() {
  local fig=$1 sys=$2 d=$E2E_TMP/scale-$2
  mkdir -p "$d"
  bg "idle-serve-$sys" timeout -k 5 600 "$BENCH_PY" "$HERE/idle_conns.py" serve --ports-file "$d/ports" --count 8 --seconds 590
  local spid=$BG_PID
  wait_file "$d/ports" 20 "$spid"
  sleep 1
  local rss0 steps n k=0 status open rss fds
  rss0=$(rss_kib "$TOOL_PID")
  IFS=, read -ra steps <<<"$SCALE_STEPS"
  local limit=0 s; for s in ${SCALE_STEP_SECONDS//,/ }; do limit=$((limit + s + 30)); done
  bg "idle-open-$sys" "${GX[@]}" timeout -k 5 "$limit" "$BENCH_PY" "$HERE/idle_conns.py" open --host "$GW4" \
    --ports "$(cat "$d/ports")" --steps "$SCALE_STEPS" --step-seconds "$SCALE_STEP_SECONDS" \
    --status-file "$d/status" --go-file "$d/go" --seconds "$((limit - 5))" --processes "${SCALE_PROCESSES:-1}"
  local cpid=$BG_PID
  for n in "${steps[@]}"; do
    k=$((k + 1))
    local name=$((n / 1000))k
    local i
    for ((i = 0; i < limit * 10; i++)); do
      grep -q "^step=$k " "$d/status" 2>/dev/null && break
      kill -0 "$cpid" 2>/dev/null || break
      sleep 0.1
    done
    if ! grep -q "^step=$k " "$d/status" 2>/dev/null; then
      record_status "scale_open_$name" "$sys" fail "the client stopped: $(tail -n1 "$E2E_TMP/idle-open-$sys.log")"
      break
    fi
    sleep 1  # let the tool settle
    rss=$(rss_kib "$TOOL_PID")
    fds=$(find "/proc/$TOOL_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    status=$(cat "$d/status")
    open=${status#* open=}; open=${open%% *}
    local cmd="idle_conns.py open --host $GW4 (8 server ports) --steps $SCALE_STEPS --step-seconds $SCALE_STEP_SECONDS"
    record "scale_open_$name" "$sys" "$open" conns "$cmd" "{\"client\": \"$status\", \"rss_before_kib\": $rss0, \"rss_kib\": ${rss:-null}, \"tool_fds\": $fds}"
    if [ -n "$rss" ] && [ "$open" -gt 0 ]; then
      record "scale_rss_$name" "$sys" "$(awk -v a="$rss0" -v b="$rss" -v n="$open" 'BEGIN { printf "%.4f", (b - a) / n }')" KiB \
        "VmRSS of the tool (pid $TOOL_PID) before and after: $cmd" "{\"rss_before_kib\": $rss0, \"rss_kib\": $rss, \"open\": $open}"
    else
      record_status "scale_rss_$name" "$sys" fail "no connection open or the tool is gone ($status)"
    fi
    echo "$k" >"$d/go"
  done
  echo close >"$d/go"
  for ((i = 0; i < 300; i++)); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  stop_bg "$cpid"
  stop_bg "$spid"
}

# ------------------------------------------------------------ servers
# On the test host, listening on every address so every system reaches
# them: nginx (conn), sockperf TCP and UDP (rr). iperf3 and udp_pps start
# per run.
make_www
if has_figure conn; then
  declare -A HTTP_PORT
  for c in conn4 conn6 conn256; do HTTP_PORT[$c]=$(free_port); done
  nginx_conf "$E2E_TMP/nginx-host.conf" "$E2E_TMP/www" "${HTTP_PORT[@]}"
  bg nginx-host timeout -k 5 "$BENCH_LIMIT" nginx -c "$E2E_TMP/nginx-host.conf" -g 'daemon off;'
  wait_listen "${HTTP_PORT[conn256]}" tcp 10 || { show_log "$E2E_TMP/nginx-host.log"; fail "nginx did not start"; }
fi
if has_figure rr; then
  SOCKPERF_TCP_PORT=$(free_port); SOCKPERF_UDP_PORT=$(free_port udp)
  bg sockperf-tcp timeout -k 5 "$BENCH_LIMIT" taskset -c "$RR_CPU" sockperf server --tcp -p "$SOCKPERF_TCP_PORT"
  bg sockperf-udp timeout -k 5 "$BENCH_LIMIT" taskset -c "$RR_CPU" sockperf server -p "$SOCKPERF_UDP_PORT"
  wait_listen "$SOCKPERF_TCP_PORT" tcp 10 || fail "sockperf server did not start"
fi

version() {
  case $1 in
    slipway) "$SLIPWAY" --version 2>/dev/null | head -n1 ;;
    slipway_slirp) echo "$("$SLIPWAY" --version 2>/dev/null | head -n1), libslirp $(dpkg-query -W -f='${Version}' libslirp0 2>/dev/null)" ;;
    slirp4netns) slirp4netns --version 2>/dev/null | head -n1 ;;
    pasta) dpkg-query -W -f='passt ${Version}' passt 2>/dev/null ;;
  esac
}

# ------------------------------------------------------------ run
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mode=full; [ "${QUICK:-0}" = 1 ] && mode=QUICK
log "systems: ${systems[*]}; figures: ${figures[*]}; $mode run; results in $RESULTS_DIR"
for f in "${figures[@]}"; do
  case $f in
    bulk)
      for variant in main mtu1500; do
        mtu=$(variant_mtu $variant)
        for dir in up down; do
          phase "TCP bulk $dir, MTU $mtu"
          for_systems $variant "bulk_${dir}_$mtu" bulk $dir
        done
      done
      for s in "${systems[@]}"; do guest_down "$s" mtu1500; done ;;
    rr)
      for proto in tcp udp; do phase "request/response, $proto"; for_systems main "rr_$proto" rr $proto; done ;;
    udp)
      for dir in up down; do phase "UDP 64-byte datagrams, $dir"; for_systems main "udp_$dir" udp $dir; done ;;
    conn)
      phase "connection rate, IPv4, 16 clients"; for_systems main conn4 conn 4 16
      phase "connection rate, IPv6, 16 clients"; for_systems main conn6 conn 6 16
      phase "connection rate, IPv4, 256 clients"; for_systems main conn256 conn 4 256 ;;
    inbound)
      phase "inbound bulk"; for_systems main in_bulk_up in_bulk up; for_systems main in_bulk_down in_bulk down
      phase "inbound connection rate"; for_systems main in_conn in_conn
      phase "inbound request/response"; for_systems main in_rr_tcp in_rr ;;
    scale)
      # The scale guests run one at a time: 100,000 connections each.
      for s in "${systems[@]}"; do
        case $s in
          loopback | veth)
            record_status scale_rss_10k "$s" n/a "no tool process (kernel only)" ;;
          *)
            phase "scale: $s"
            SAVED=("${systems[@]}"); systems=("$s")
            for_systems scale scale_open_10k scale
            systems=("${SAVED[@]}")
            guest_down "$s" scale ;;
        esac
      done ;;
  esac
done

# ------------------------------------------------------------ report
notes=()
for s in "${systems[@]}"; do
  v=$(version "$s" || true)
  [ -n "$v" ] && notes+=("$s: $v")
done
notes+=("machine: $(nproc) CPUs; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes the numbers vary)")
notes+=("bulk: iperf3 one stream, ${DURATION}s per run; RR: sockperf ${RR_SECONDS}s, median round trip; conn/s: ${WINDOWS} one-second windows (inbound: ${IN_WINDOWS})")
notes+=("CPU/GB: machine = busy time of the whole machine (/proc/stat) over the bulk runs, both directions, per GB received; bench processes = iperf3 client, server and the tool; tool = the tool's own process")
hard=$(ulimit -Hn)
if has_figure scale && [ "$hard" -lt 110000 ]; then
  notes+=("scale: RLIMIT_NOFILE's hard limit is $hard here and cannot be raised (no CAP_SYS_RESOURCE): a tool holding a host socket per connection stops near that many (the client in the guest uses several processes)")
fi
[[ " ${systems[*]} " == *" loopback "* ]] && notes+=("loopback: no guest; lo's own MTU (65536) in both bulk rows")
[[ " ${systems[*]} " == *" pasta "* ]] && notes+=("pasta: IPv4 only (-4), the gateway $PEER_IP mapped to the host's loopback")
notes+=("request/response: client, server and tool pinned to CPU $RR_CPU (taskset), for every system")
"$BENCH_PY" - "$RESULTS_DIR/meta.json" "${notes[@]}" <<EOF
import json, sys, time
json.dump(dict(started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime($BENCH_STARTED)),
               seconds=round(time.time() - $BENCH_STARTED), quick="${QUICK:-0}" == "1", cpus=$(nproc),
               kernel="$(uname -r)", systems="$SYSTEMS".split(), figures="$FIGURES".split(),
               duration_s=$DURATION, rr_seconds=$RR_SECONDS, udp_seconds=$UDP_SECONDS, windows=$WINDOWS,
               inbound_windows=$IN_WINDOWS, scale_steps="$SCALE_STEPS", notes=sys.argv[2:]),
          open(sys.argv[1], "w"), indent=1)
EOF
echo
rep report "$RAW" "$RESULTS_DIR/meta.json" "$RESULTS_DIR"
log "done in $(($(date +%s) - BENCH_STARTED)) s"
exit
}
