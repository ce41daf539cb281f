#!/usr/bin/env bash
# Each VM transport with a real kernel as the guest: bench/transport_relay
# relays a TAP in a namespace of its own onto slipway serve's socket (see
# relay/relay_guest.sh), and BYTES (64 MiB) cross each way over TCP to and
# from the test host's loopback through the gateway 10.0.2.2 with equal
# SHA-256 at both ends (tools/blob.py). Variants:
#   vhost-user --offload  the frontend acks slipway's offloads and the TAP
#                         has IFF_VNET_HDR + TUNSETOFFLOAD: partial checksums
#                         and TSO segments of up to 64 KiB cross both ways
#                         (the relay's counters must show both, so this
#                         guards the vhost-user offload path with a kernel
#                         stack at each end); then BYTES6 (16 MiB) each way
#                         over IPv6 (the guest's SLAAC address, fd00::2 to
#                         the test host's ::1): TCPv6 segments
#   vhost-user            no offloads: plain frames of at most 1514 bytes,
#                         every header from slipway all zero
#   stream, dgram         plain frames (these transports carry no header)
# Every variant: no header from slipway refused, no frame refused by the
# TAP, no ring error, no frame truncated.
#
# The guest keeps its kernel's default TCP receive buffer (a window of up to
# 6 MiB; GUEST_RMEM=BYTES caps it), so slipway sends it bursts of up to
# lwIP's whole send buffer (2 MiB), far more than a ring of 256 buffers or
# a datagram socket takes at once: the frames wait in the transport's
# queue (4 MiB) until the guest takes them, and none may be dropped
# (link.tx_dropped stays 0 during the transfers). Before that queue
# existed, vhost-user and dgram dropped them and lwIP stalled until its
# retransmission timeout (a few MB/s; bench/README.md).
. "$(dirname "$0")/lib.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-180}
e2e_init "$@"
require_slipway
need_cmd python3 nsenter
. "$E2E_DIR/relay/relay_guest.sh"
[ -x "$RELAY" ] || fail "relay not built: $RELAY"

BYTES=${RELAY_BYTES:-$((64 * 1024 * 1024))}
BYTES6=${RELAY_BYTES6:-$((16 * 1024 * 1024))}
LIMIT=${RELAY_XFER_LIMIT:-60}
BLOB=$E2E_TOOLS/blob.py
expected_of() { python3 "$BLOB" gen --bytes "$1" --seed 11 | sed -n 's/^sha256=\([0-9a-f]*\).*/\1/p'; }
declare -A EXPECTED=([$BYTES]=$(expected_of "$BYTES") [$BYTES6]=$(expected_of "$BYTES6"))
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }

# transfer NAME DIR [4|6] (up: the guest sends; down: the host sends; over
# IPv4 to 127.0.0.1 through 10.0.2.2, or IPv6 to ::1 through fd00::2)
transfer() {
  local name=$1-$2 hmode=recv gmode=send host=127.0.0.1 gw=$GATEWAY_IP
  [ "${3:-4}" = 6 ] && { host=::1; gw=fd00::2; name=$1-$2-ipv6; }
  local pf="$E2E_TMP/$name.port"
  [ "$2" = down ] && { hmode=send; gmode=recv; }
  local -a hargs=() gargs=()
  [ "$hmode" = send ] && hargs=(--bytes "$BYTES" --seed 11)
  [ "$gmode" = send ] && gargs=(--bytes "$BYTES" --seed 11)
  bg "$name-host" timeout -k 5 $((LIMIT + 10)) python3 "$BLOB" "$hmode" --listen "$host:0" \
    --port-file "$pf" --io-timeout 20 "${hargs[@]}"
  local hpid=$BG_PID
  wait_file "$pf" 10 "$hpid" || { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side did not start"; }
  local t0 rc=0
  t0=$(date +%s.%N)
  in_ns "$RG_NS" timeout -k 5 "$LIMIT" python3 "$BLOB" "$gmode" --connect "$gw:$(cat "$pf")" \
    --io-timeout 20 "${gargs[@]}" >"$E2E_TMP/$name-guest.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then
    show_log "$E2E_TMP/$name-guest.log"; show_log "$E2E_TMP/$name-host.log"
    show_log "$E2E_TMP/$1-relay.log"; show_log "$E2E_TMP/$1-slipway.log"
    fail "$name: guest side failed (exit $rc$([ $rc = 124 ] && echo ', timed out'))"
  fi
  local i
  for ((i = 0; i < 500; i++)); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.02; done
  wait "$hpid" 2>/dev/null || { show_log "$E2E_TMP/$name-host.log"; fail "$name: host side failed"; }
  local hs gs
  hs=$(field sha256 "$E2E_TMP/$name-host.log"); gs=$(field sha256 "$E2E_TMP/$name-guest.log")
  [ "$(field bytes "$E2E_TMP/$name-host.log")" = "$BYTES" ] && [ "$(field bytes "$E2E_TMP/$name-guest.log")" = "$BYTES" ] ||
    fail "$name: byte counts differ: host $(field bytes "$E2E_TMP/$name-host.log"), guest $(field bytes "$E2E_TMP/$name-guest.log"), want $BYTES"
  [ "$hs" = "$gs" ] || fail "$name: sha256 differs: host $hs, guest $gs"
  [ "$hs" = "${EXPECTED[$BYTES]}" ] || fail "$name: sha256 $hs is not the expected ${EXPECTED[$BYTES]}"
  ok "$name: $BYTES bytes intact in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s ($(field MBps "$E2E_TMP/$name-host.log") MB/s at the host)"
}

# variant NAME TRANSPORT [--offload]
variant() {
  local name=$1 transport=$2 offload=${3:-} before after
  log "check: $transport ${offload:-(no offloads)}: a kernel behind the relay"
  relay_guest_up "$name" "$transport" ${offload:+"$offload"} || { show_log "$E2E_TMP/$name-slipway.log"; fail "$name: $RG_ERR"; }
  before=$(link_dropped "$RG_CTL")
  transfer "$name" up
  transfer "$name" down
  if [ -n "$offload" ]; then
    # TCPv6 segments both ways too (TSO6, GUEST_TSO6).
    relay_guest_ipv6 >/dev/null || fail "$name: the guest got no SLAAC address"
    BYTES=$BYTES6 transfer "$name" up 6
    BYTES=$BYTES6 transfer "$name" down 6
  fi
  after=$(link_dropped "$RG_CTL")
  relay_guest_down
  [ -n "$RG_RELAY" ] || { show_log "$E2E_TMP/$name-relay.log"; fail "$name: the relay printed no counters"; }
  log "  $RG_RELAY"
  local k
  for k in up_truncated down_bad_header down_tap_errors ring_bad_used ring_partial; do
    [ "$(relay_field $k)" = 0 ] || { show_log "$E2E_TMP/$name-relay.log"; fail "$name: relay counter $k=$(relay_field $k), want 0"; }
  done
  if [ -n "$offload" ]; then
    for k in up_gso up_gso6 up_csum down_gso down_gso6 down_csum; do
      [ "$(relay_field $k)" -gt 0 ] || fail "$name: no offloaded frame crossed ($k=0): the offload path was not exercised"
    done
    ok "$name: offloads both ways: guest -> slipway $(relay_field up_gso) TSO frames ($(relay_field up_gso6) IPv6, largest $(relay_field up_max) bytes), slipway -> guest $(relay_field down_gso) ($(relay_field down_gso6) IPv6, largest $(relay_field down_max))"
  else
    for k in up_gso up_csum down_gso down_csum; do
      [ "$(relay_field $k)" = 0 ] || fail "$name: $k=$(relay_field $k) without offloads"
    done
    [ "$(relay_field up_max)" -le 1514 ] && [ "$(relay_field down_max)" -le 1514 ] ||
      fail "$name: frames above 1514 bytes without offloads (up $(relay_field up_max), down $(relay_field down_max))"
    ok "$name: plain frames only (largest $(relay_field up_max) up, $(relay_field down_max) down)"
  fi
  [ $((after - before)) = 0 ] || fail "$name: slipway dropped $((after - before)) frames on their way to the guest"
  ok "$name: no frame dropped on the way to the guest"
}

variant vhost-offload vhost-user --offload
variant vhost-plain vhost-user
variant stream stream
variant dgram dgram
pass "every transport, both ways, frames intact"
