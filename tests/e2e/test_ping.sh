#!/usr/bin/env bash
# ICMP echo: the guest can ping the gateway 10.0.2.2, and a remote host
# (192.0.2.2, a peer namespace the test creates behind a veth pair) through
# slipway's ICMP relay. Run twice: with ping sockets allowed in the test host
# (net.ipv4.ping_group_range="0 2147483647") and disallowed ("1 0": slipway,
# as root, must fall back to a raw socket). The peer's ICMP counters prove
# the echo requests really reached it.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd nsenter sysctl
PING=$(ping_cmd)

make_peer_ns
log "peer namespace: test host $PEER_HOST_IP <-> peer $PEER_IP"

# Echo requests the peer has received so far (Icmp InEchos in its netns).
peer_in_echos() {
  in_peer awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n["InEchos"] }' /proc/net/snmp
}

guest_ping() {
  local dst=$1 logf=$2
  # -W per-reply timeout; -w overall deadline (busybox: -W only).
  if [ "$PING" = ping ]; then
    slipway_run -- ping -n -c 3 -i 0.2 -W 2 -w 10 "$dst" >"$logf" 2>&1
  else
    slipway_run -- busybox ping -c 3 -W 2 "$dst" >"$logf" 2>&1
  fi
}

run_case() {
  local label=$1 range=$2
  # In a user namespace only mapped gids are accepted: fall back to "0 0".
  sysctl -q -w net.ipv4.ping_group_range="$range" 2>/dev/null ||
    { [ "$range" != "1 0" ] && sysctl -q -w net.ipv4.ping_group_range="0 0"; } ||
    fail "cannot set net.ipv4.ping_group_range in the private test-host namespace"
  log "[$label] net.ipv4.ping_group_range = $(sysctl -n net.ipv4.ping_group_range | tr '\t' ' ')"

  log "[$label] check: guest pings the gateway $GATEWAY_IP"
  guest_ping "$GATEWAY_IP" "$E2E_TMP/gw-$label.log" ||
    { show_log "$E2E_TMP/gw-$label.log"; fail "[$label] ping $GATEWAY_IP failed"; }
  ok "[$label] $(grep -E 'packets transmitted' "$E2E_TMP/gw-$label.log")"

  log "[$label] check: guest pings the remote host $PEER_IP through the relay"
  local before after
  before=$(peer_in_echos)
  guest_ping "$PEER_IP" "$E2E_TMP/peer-$label.log" ||
    { show_log "$E2E_TMP/peer-$label.log"; fail "[$label] ping $PEER_IP failed"; }
  after=$(peer_in_echos)
  [ $((after - before)) -ge 3 ] ||
    fail "[$label] the peer received $((after - before)) echo requests, want >= 3"
  ok "[$label] $(grep -E 'packets transmitted' "$E2E_TMP/peer-$label.log"); peer saw $((after - before)) echo requests"
}

run_case ping-sockets "0 2147483647"
run_case raw-fallback "1 0"
pass
