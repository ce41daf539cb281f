#!/usr/bin/env bash
# The VM transports side by side, vhost-user, stream and dgram, with the
# namespace TAP for reference, each through one slipway at MTU 1500. Two
# synthetic guests, one table each:
#
#  echo  bench/transport_frontend plays the guest on each transport --
#        vhost-user (memfd shared memory, eventfd kicks), stream, dgram, and
#        TAP (AF_PACKET on the TAP interface of `slipway run`) -- and blasts
#        ICMP echo requests at the gateway (10.0.2.2, answered by slipway
#        itself), DURATION seconds each, up to WINDOW requests in flight.
#        Printed: echo replies received per second and the Gbit/s they carry
#        (one direction, frame bytes).
#  tcp   a kernel is the guest: bench/transport_relay relays a TAP in a
#        namespace of its own onto the transport (tests/e2e/relay/
#        relay_guest.sh), as a VMM would, and iperf3 runs one TCP stream
#        there for DURATION seconds each way to a server on the test host's
#        127.0.0.1, reached at 10.0.2.2. Rows: vhost-user with offloads
#        (the frontend acks slipway's checksum and TSO offloads, the TAP has
#        IFF_VNET_HDR and TUNSETOFFLOAD) and without, stream and dgram (plain
#        frames only: those transports carry no virtio-net header, so their
#        offloads column is n/a), and `slipway run --mtu 1500` with offloads
#        and with --no-offload (the namespace TAP, no relay). Printed: Gbit/s
#        received each way, and the frames slipway dropped on their way to
#        the guest during each run (its control API's link.tx_dropped).
#
# Usage: bench/transports.sh [TRANSPORT...]   vhost-user stream dgram tap (default: all)
# Env:   MODE=all|echo|tcp (default all: both tables), DURATION=5 (seconds
#        per figure), echo: SIZE=1514 (frame bytes, 64..1514), WINDOW=64;
#        tcp: RELAY_RING=256 (vhost-user ring entries, QEMU's default),
#        GUEST_RMEM (the guest's tcp_rmem maximum in bytes; default the
#        kernel's), SLIPWAY, FRONTEND and RELAY (default: next to SLIPWAY,
#        ../bench/transport_frontend and ../bench/transport_relay),
#        RESULTS=FILE (also write the tables there)
# Runs in a private network namespace (tests/e2e/lib.sh); nothing leaves it.
. "$(dirname "$0")/../tests/e2e/lib.sh"
MODE=${MODE:-all}
DURATION=${DURATION:-5}
SIZE=${SIZE:-1514}
WINDOW=${WINDOW:-64}
case $MODE in all | echo | tcp) ;; *) echo "MODE must be all, echo or tcp" >&2; exit 2 ;; esac
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((DURATION * 4 * 3 + 120 + 6 * (DURATION * 2 * 2 + 40)))}
E2E_NAME=bench
e2e_init "$@"
require_slipway
: "${FRONTEND:=$(dirname "$(dirname "$SLIPWAY")")/bench/transport_frontend}"
. "$E2E_DIR/relay/relay_guest.sh"

transports=("$@")
[ ${#transports[@]} -gt 0 ] || transports=(vhost-user stream dgram tap)
for t in "${transports[@]}"; do
  case $t in vhost-user | stream | dgram | tap) ;; *) fail "unknown transport '$t' (vhost-user, stream, dgram, tap)" ;; esac
done
limit=$((DURATION + 20))
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
TABLES=$E2E_TMP/tables.txt
: >"$TABLES"

# ------------------------------------------------------------- ICMP echo
echo_table() {
  local t out sock pid
  declare -A line note
  for t in "${transports[@]}"; do
    out=$E2E_TMP/$t.out
    case "$t" in
      vhost-user | stream | dgram)
        sock=$E2E_TMP/$t.sock
        bg "sw-$t" timeout -k 5 "$limit" "$SLIPWAY" serve "--$t" "$sock" --mtu 1500 --log-level warn
        pid=$BG_PID
        for ((i = 0; i < 250; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
        if timeout -k 5 "$limit" "$FRONTEND" "--$t" "$sock" --seconds "$DURATION" --size "$SIZE" \
            --window "$WINDOW" >"$out" 2>&1; then line[$t]=$(cat "$out"); else note[$t]="fail: $(tail -n1 "$out")"; fi
        stop_bg "$pid" ;;
      tap)
        if timeout -k 5 "$limit" "$SLIPWAY" run --mtu 1500 -- "$FRONTEND" --packet eth0 --seconds "$DURATION" \
            --size "$SIZE" --window "$WINDOW" >"$out" 2>&1; then line[$t]=$(grep '^packet ' "$out"); else note[$t]="fail: $(tail -n1 "$out")"; fi ;;
    esac
  done
  {
    printf 'Transports, ICMP echo to the gateway, %s-byte frames, window %s, %ss each, %s CPUs, %s\n' \
      "$SIZE" "$WINDOW" "$DURATION" "$(nproc)" "$(uname -r)"
    printf '%-12s %14s %10s %12s  %s\n' transport "replies/s" "Gbit/s" "sent/recv" notes
    for t in "${transports[@]}"; do
      if [ -n "${line[$t]:-}" ]; then
        printf '%-12s %14s %10s %12s  %s\n' "$t" "$(field fps "${line[$t]}")" "$(field gbps "${line[$t]}")" \
          "$(field sent "${line[$t]}")/$(field received "${line[$t]}")" ""
      else
        printf '%-12s %14s %10s %12s  %s\n' "$t" - - - "${note[$t]:-}"
      fi
    done
  } >>"$TABLES"
}

# ------------------------------------------------------------------- TCP
# tap_guest_up NAME [--no-offload]: `slipway run --mtu 1500` holding a
# sleep, as relay_guest_up leaves its guest (RG_NS, RG_CTL, RG_PIDS).
tap_guest_up() {
  local name=$1 pidfile="$E2E_TMP/$1.pid"; shift
  RG_NAME=$name RG_CTL="$E2E_TMP/$name.ctl" RG_ERR='' RG_NS='' RG_RELAY='' RG_PIDS=()
  P=$pidfile bg "$name-slipway" timeout -k 5 "$RELAY_LIMIT" "$SLIPWAY" run --mtu 1500 --control "$RG_CTL" "$@" -- \
    sh -c 'echo $$ >"$P.tmp" && mv "$P.tmp" "$P" && exec sleep '"$RELAY_LIMIT"
  RG_PIDS+=("$BG_PID")
  wait_file "$pidfile" 20 "$BG_PID" || { RG_ERR="slipway run did not start: $(tail -n1 "$E2E_TMP/$name-slipway.log")"; return 1; }
  RG_NS=$(cat "$pidfile")
  local i ping; ping=$(ping_cmd)
  for ((i = 0; i < 10; i++)); do
    # shellcheck disable=SC2086 # "busybox ping" is two words
    in_ns "$RG_NS" $ping -c 1 -W 1 "$GATEWAY_IP" >/dev/null 2>&1 && return 0
  done
  RG_ERR="the guest cannot ping the gateway $GATEWAY_IP"
  return 1
}

# measure up|down: prints "GBIT/S DROPPED" for the guest that is up.
measure() {
  local dir=$1 port rev=() j="$E2E_TMP/$RG_NAME-$1.json" before after gbps
  [ "$dir" = down ] && rev=(-R)
  port=$(free_port)
  bg "iperf3-$RG_NAME-$dir" timeout -k 5 "$limit" iperf3 -s -1 -B 127.0.0.1 -p "$port"
  local spid=$BG_PID
  wait_listen "$port" tcp 10 || { echo "fail -"; return; }
  before=$(link_dropped "$RG_CTL" 2>/dev/null || echo '')
  in_ns "$RG_NS" timeout -k 5 "$limit" iperf3 -c "$GATEWAY_IP" -p "$port" -t "$DURATION" -J "${rev[@]}" \
    >"$j" 2>"$j.err" || true
  after=$(link_dropped "$RG_CTL" 2>/dev/null || echo '')
  stop_bg "$spid"
  gbps=$(python3 - "$j" <<'PY' || echo fail
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(f"{d['end']['sum_received']['bits_per_second'] / 1e9:.2f}")
except Exception:
    sys.exit(1)
PY
)
  if [ -n "$before" ] && [ -n "$after" ]; then echo "$gbps $((after - before))"; else echo "$gbps -"; fi
}

tcp_table() {
  local -a rows=()
  local t row
  for t in "${transports[@]}"; do
    case $t in
      vhost-user) rows+=(vhost-offload vhost-plain) ;;
      stream | dgram) rows+=("$t") ;;
      tap) rows+=(tap-offload tap-plain) ;;
    esac
  done
  declare -A UP DOWN DROP NOTE
  local any_drop=0
  for row in "${rows[@]}"; do
    log "tcp: $row"
    local ok=0
    case $row in
      vhost-offload) relay_guest_up "tcp-$row" vhost-user --offload && ok=1 ;;
      vhost-plain) relay_guest_up "tcp-$row" vhost-user && ok=1 ;;
      stream | dgram) relay_guest_up "tcp-$row" "$row" && ok=1 ;;
      tap-offload) tap_guest_up "tcp-$row" && ok=1 ;;
      tap-plain) tap_guest_up "tcp-$row" --no-offload && ok=1 ;;
    esac
    if [ $ok = 1 ]; then
      local u d
      u=$(measure up); d=$(measure down)
      UP[$row]=${u% *}; DOWN[$row]=${d% *}; DROP[$row]="${u#* }/${d#* }"
      case $row in
        stream | dgram) NOTE[$row]="plain frames only (no virtio-net header)" ;;
        tap-offload) NOTE[$row]="slipway run --mtu 1500 (namespace TAP, no relay)" ;;
        tap-plain) NOTE[$row]="slipway run --mtu 1500 --no-offload" ;;
        vhost-*) NOTE[$row]="ring $RELAY_RING" ;;
      esac
      if [ "${d#* }" != - ] && [ "${d#* }" -gt 0 ]; then
        NOTE[$row]+="; slipway dropped frames for the guest (*)"
        any_drop=1
      fi
      for f in "$E2E_TMP/$RG_NAME"-{up,down}.json.err; do
        [ -s "$f" ] && { log "$row: iperf3: $(tail -n1 "$f")"; }
      done
    else
      UP[$row]=-; DOWN[$row]=-; DROP[$row]=-; NOTE[$row]="fail: $RG_ERR"
    fi
    relay_guest_down
    if [ $ok = 1 ] && [ -n "$RG_RELAY" ] && { [ "$(relay_field down_tap_errors)" != 0 ] ||
        [ "$(relay_field down_bad_header)" != 0 ] || [ "$(relay_field ring_bad_used)" != 0 ]; }; then
      NOTE[$row]+="; relay refused frames from slipway: $RG_RELAY"
    fi
  done
  {
    printf '\nTransports, TCP (iperf3, one stream, %ss each way), MTU 1500, a kernel as the guest%s, %s CPUs, %s\n' \
      "$DURATION" "${GUEST_RMEM:+ (tcp_rmem max $GUEST_RMEM)}" "$(nproc)" "$(uname -r)"
    printf '%-12s %-9s %12s %12s %12s  %s\n' transport offloads "up Gbit/s" "down Gbit/s" "drops up/dn" notes
    for row in "${rows[@]}"; do
      local name=${row%-*} off
      case $row in
        *-offload) off=on ;;
        *-plain) off=off ;;
        *) off=n/a; name=$row ;;
      esac
      printf '%-12s %-9s %12s %12s %12s  %s\n' "${name/vhost/vhost-user}" "$off" "${UP[$row]}" "${DOWN[$row]}" \
        "${DROP[$row]}" "${NOTE[$row]}"
    done
    echo "up: guest -> host, down: host -> guest (-R); Gbit/s received; drops: frames slipway dropped on their way to the guest"
    if [ $any_drop = 1 ]; then
      echo "(*) slipway dropped frames for the guest: its transport's queue (frames the guest's ring or socket"
      echo "    cannot take yet, 4 MiB on vhost-user and dgram) was full; lwIP then recovers from the loss slowly (its"
      echo "    retransmission timer). See bench/README.md"
    fi
  } >>"$TABLES"
}

case $MODE in
  all) echo_table; tcp_table ;;
  echo) echo_table ;;
  tcp) tcp_table ;;
esac
tee "${RESULTS:-/dev/null}" <"$TABLES"
