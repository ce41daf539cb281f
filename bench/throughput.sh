#!/usr/bin/env bash
# TCP throughput of slipway vs slirp4netns vs pasta, measured with iperf3,
# guest -> host (upload) and host -> guest (download, iperf3 -R), at MTU
# 65520 by default. The "host" is a private network namespace (unshare --net,
# lo up) created for the run: the iperf3 server listens on its 127.0.0.1 and
# the guest reaches it through the gateway address (host-loopback mapping).
# No traffic leaves the private namespaces.
#
# Usage: bench/throughput.sh [TOOL...]      TOOL: slipway slirp4netns pasta
#   (default: all that are available)
# Env:   DURATION=10 (seconds per iperf3 run), MTU=65520, STREAMS=1 (iperf3 -P),
#        FAMILY=4|6 (6: the server on ::1, reached at fd00::2; slipway and
#        slirp4netns --enable-ipv6 only), SLIPWAY=path/to/slipway,
#        RESULTS=FILE (also write the table there)
. "$(dirname "$0")/../tests/e2e/lib.sh"
DURATION=${DURATION:-10}
MTU=${MTU:-65520}
STREAMS=${STREAMS:-1}
FAMILY=${FAMILY:-4}
case $FAMILY in 4) SERVER_ADDR=127.0.0.1 ;; 6) SERVER_ADDR=::1 ;; *) echo "FAMILY must be 4 or 6" >&2; exit 2 ;; esac
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((DURATION * 6 + 180))}
E2E_NAME=bench
e2e_init "$@"
need_cmd iperf3 python3

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(slipway slirp4netns pasta)

RUN_LIMIT=$((DURATION + 30))

# ------------------------------------------------------------ runners
# Each runner: run_<tool> CMD... runs CMD as the guest; the host loopback is
# reachable at $GW (set by prepare_<tool>).

prepare_slipway() {
  [ -x "$SLIPWAY" ] || { NOTE="not built ($SLIPWAY)"; return 1; }
  "$SLIPWAY" run --help 2>/dev/null | grep -- --mtu >/dev/null || { NOTE="'slipway run' not available"; return 1; }
  GW=$GATEWAY_IP
  [ "$FAMILY" = 6 ] && GW=fd00::2
  return 0
}
run_slipway() { timeout -k 5 "$RUN_LIMIT" "$SLIPWAY" run --mtu "$MTU" -- "$@"; }

prepare_slirp4netns() {
  command -v slirp4netns >/dev/null || { NOTE="not installed"; return 1; }
  GW=10.0.2.2
  SLIRP_OPTS=()
  if [ "$FAMILY" = 6 ]; then GW=fd00::2; SLIRP_OPTS=(--enable-ipv6); fi
  return 0
}
# unshare a user+net+mount namespace, attach slirp4netns to it, then run CMD.
run_slirp4netns() {
  local d; d=$(mktemp -d "$E2E_TMP/slirp.XXXXXX")
  D=$d FAMILY=$FAMILY timeout -k 5 "$RUN_LIMIT" unshare --user --map-root-user --net --mount sh -c '
    echo $$ >"$D/inns"
    i=0; while [ ! -s "$D/ready" ]; do i=$((i + 1)); [ $i -gt 1000 ] && exit 125; sleep 0.01; done
    # IPv6: wait (at most 10 s) for the SLAAC address to leave DAD.
    i=0; while [ "$FAMILY" = 6 ] && ! ip -6 addr show scope global | grep inet6 | grep -qv tentative; do
      i=$((i + 1)); [ $i -gt 1000 ] && exit 125; sleep 0.01; done
    exec "$@"' sh "$@" &
  local cpid=$! i rc=0
  # The namespace's PID (not timeout's) tells slirp4netns where to attach.
  for ((i = 0; i < 500; i++)); do [ -s "$d/inns" ] && break; sleep 0.01; done
  [ -s "$d/inns" ] || { echo "slirp4netns runner: namespace did not start" >&2; return 1; }
  timeout -k 5 "$RUN_LIMIT" slirp4netns --configure --mtu="$MTU" "${SLIRP_OPTS[@]}" --ready-fd=4 "$(cat "$d/inns")" tap0 \
    4>"$d/ready" >"$d/slirp.log" 2>&1 &
  local spid=$!
  wait "$cpid" || rc=$?
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  return $rc
}

# pasta (passt package) copies the host's addresses and needs a host
# interface with a default route: give the private test host a veth to a
# peer namespace with TEST-NET-1 addresses (192.0.2.1/24, default via
# 192.0.2.2). pasta maps the gateway address 192.0.2.2 to the host loopback,
# so no packet ever goes over that veth.
PASTA_READY=0
prepare_pasta() {
  command -v pasta >/dev/null || { NOTE="not installed (Debian package passt)"; return 1; }
  [ "$FAMILY" = 4 ] || { NOTE="IPv6 not set up for pasta here"; return 1; }
  if [ $PASTA_READY = 0 ]; then
    make_peer_ns
    ip route add default via "$PEER_IP" dev vpeer0
    PASTA_READY=1
  fi
  PASTA_OPTS=(--config-net -f -4 -q -m "$MTU")
  [ "$(id -u)" = 0 ] && PASTA_OPTS+=(--runas 0)
  GW=$PEER_IP
  # Probe that the gateway reaches host loopback (older versions may not).
  local pf="$E2E_TMP/probe.port"
  bg pasta-probe python3 "$E2E_TOOLS/blob.py" send --listen 127.0.0.1:0 --port-file "$pf" --bytes 1000
  local probe=$BG_PID
  wait_file "$pf" 10 "$probe" || { NOTE="probe server failed"; return 1; }
  if ! run_pasta python3 "$E2E_TOOLS/blob.py" recv --connect "$GW:$(cat "$pf")" --no-retry \
      --connect-timeout 5 --io-timeout 5 >"$E2E_TMP/pasta-probe.out" 2>&1 ||
     ! grep -q 'bytes=1000 ' "$E2E_TMP/pasta-probe.out"; then
    stop_bg "$probe"
    NOTE="cannot reach host loopback through the gateway ($(tail -n1 "$E2E_TMP/pasta-probe.out"))"
    return 1
  fi
  stop_bg "$probe"
}
run_pasta() { timeout -k 5 "$RUN_LIMIT" pasta "${PASTA_OPTS[@]}" -- "$@" 2> >(grep -v -e 'Failed to send' -e uid_map -e 'user mappings' -e ping_group_range -e 'ICMP requests' >&2); }

# ------------------------------------------------------------ measuring
# measure TOOL up|down -> prints Gbit/s (or "fail")
measure() {
  local tool=$1 dir=$2 port rev=() j="$E2E_TMP/$1-$2.json"
  [ "$dir" = down ] && rev=(-R)
  port=$(free_port)
  bg "iperf3-$tool-$dir" timeout -k 5 $((RUN_LIMIT + 10)) iperf3 -s -1 -B "$SERVER_ADDR" -p "$port"
  local spid=$BG_PID
  wait_listen "$port" tcp 10 || { echo fail; return; }
  "run_$tool" iperf3 -c "$GW" -p "$port" -t "$DURATION" -P "$STREAMS" -J "${rev[@]}" >"$j" 2>"$j.err" || true
  stop_bg "$spid"
  python3 - "$j" <<'EOF' || echo fail
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(f"{d['end']['sum_received']['bits_per_second'] / 1e9:.2f}")
except Exception:
    sys.exit(1)
EOF
}

declare -A UP DOWN NOTES
for t in "${tools[@]}"; do
  case $t in slipway | slirp4netns | pasta) ;; *) fail "unknown tool '$t' (slipway, slirp4netns, pasta)" ;; esac
  NOTE=
  if ! "prepare_$t"; then
    log "$t: skipped: $NOTE"
    UP[$t]=-; DOWN[$t]=-; NOTES[$t]="skipped: $NOTE"
    continue
  fi
  log "$t: guest -> host (${DURATION}s, mtu $MTU, $STREAMS stream(s))"
  UP[$t]=$(measure "$t" up)
  log "$t: host -> guest (${DURATION}s, -R)"
  DOWN[$t]=$(measure "$t" down)
  NOTES[$t]=$($t --version 2>/dev/null | grep -v '^Failed' | head -n1 || true)
  [ "$t" = slipway ] && NOTES[$t]=$("$SLIPWAY" --version 2>/dev/null | head -n1 || true)
  for f in "$E2E_TMP/$t-up.json.err" "$E2E_TMP/$t-down.json.err"; do
    [ -s "$f" ] && { log "$t stderr:"; tail -n 5 "$f" >&2; }
  done
done

{
  echo
  echo "TCP throughput over IPv$FAMILY, iperf3, ${DURATION}s per run, MTU $MTU, $STREAMS stream(s), $(nproc) CPUs, $(uname -r)"
  printf '%-12s %18s %18s   %s\n' tool "guest->host Gb/s" "host->guest Gb/s" notes
  for t in "${tools[@]}"; do
    printf '%-12s %18s %18s   %s\n' "$t" "${UP[$t]}" "${DOWN[$t]}" "${NOTES[$t]}"
  done
} | tee ${RESULTS:+"$RESULTS"}
