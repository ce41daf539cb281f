#!/usr/bin/env bash
# ICMP echo: the guest can ping the gateway 10.0.2.2, and a remote host
# (192.0.2.2, a peer namespace the test creates behind a veth pair) through
# slipway's ICMP relay; over IPv6 (on by default: the guest has a SLAAC
# address in fd00::/64) likewise the gateway fd00::2 and the peer's
# 2001:db8::2 (the test host has 2001:db8::1 on the veth). Run twice: with
# ping sockets allowed in the test host (net.ipv4.ping_group_range="0
# 2147483647", which governs IPv6 ping sockets too) and disallowed ("1 0":
# slipway, as root, must fall back to raw sockets). The peer's ICMP and
# ICMPv6 counters prove the echo requests really reached it; an IPv6 ping to
# a network the test host has no route to gets the relay's error.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd nsenter sysctl
PING=$(ping_cmd)

GW6=fd00::2
PEER_HOST_IP6=2001:db8::1
PEER_IP6=2001:db8::2
NO_ROUTE6=2001:db8:ffff::1

make_peer_ns
have6=0
if [ -e /proc/sys/net/ipv6 ]; then
  sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.vpeer0.disable_ipv6=0
  in_peer sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.vpeer1.disable_ipv6=0
  ip -6 addr add "$PEER_HOST_IP6/64" dev vpeer0 nodad
  in_peer ip -6 addr add "$PEER_IP6/64" dev vpeer1 nodad
  have6=1
  log "peer namespace: test host $PEER_HOST_IP, $PEER_HOST_IP6 <-> peer $PEER_IP, $PEER_IP6"
else
  log "peer namespace: test host $PEER_HOST_IP <-> peer $PEER_IP (the kernel has no IPv6: IPv6 checks skipped)"
fi

# Echo requests the peer has received so far (Icmp InEchos, or with -6
# Icmp6InEchos, in its netns).
peer_in_echos() {
  if [ "${1:-}" = -6 ]; then
    in_peer awk '$1 == "Icmp6InEchos" { print $2 }' /proc/net/snmp6
  else
    in_peer awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n["InEchos"] }' /proc/net/snmp
  fi
}

# guest_ping [-6] DST LOG
guest_ping() {
  local family=-4
  if [ "$1" = -6 ]; then family=-6; shift; fi
  local dst=$1 logf=$2
  # -W per-reply timeout; -w overall deadline (busybox: -W only).
  if [ "$PING" = ping ]; then
    slipway_run -- ping "$family" -n -c 3 -i 0.2 -W 2 -w 10 "$dst" >"$logf" 2>&1
  else
    slipway_run -- busybox ping "$family" -c 3 -W 2 "$dst" >"$logf" 2>&1
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

  [ "$have6" = 1 ] || return 0
  log "[$label] check: guest pings the gateway $GW6 over IPv6"
  guest_ping -6 "$GW6" "$E2E_TMP/gw6-$label.log" ||
    { show_log "$E2E_TMP/gw6-$label.log"; fail "[$label] ping -6 $GW6 failed"; }
  ok "[$label] $(grep -E 'packets transmitted' "$E2E_TMP/gw6-$label.log")"

  log "[$label] check: guest pings the remote host $PEER_IP6 over IPv6 through the relay"
  before=$(peer_in_echos -6)
  guest_ping -6 "$PEER_IP6" "$E2E_TMP/peer6-$label.log" ||
    { show_log "$E2E_TMP/peer6-$label.log"; fail "[$label] ping -6 $PEER_IP6 failed"; }
  after=$(peer_in_echos -6)
  [ $((after - before)) -ge 3 ] ||
    fail "[$label] the peer received $((after - before)) ICMPv6 echo requests, want >= 3"
  grep -q "from $PEER_IP6" "$E2E_TMP/peer6-$label.log" ||
    { show_log "$E2E_TMP/peer6-$label.log"; fail "[$label] the replies did not come from $PEER_IP6"; }
  ok "[$label] $(grep -E 'packets transmitted' "$E2E_TMP/peer6-$label.log"); peer saw $((after - before)) ICMPv6 echo requests"

  # A network the test host has no route to: the relay's error reaches the
  # guest's ping as ICMPv6 "no route" from the gateway (iputils says so;
  # busybox only reports the loss).
  [ "$PING" = ping ] || return 0
  log "[$label] check: guest pings $NO_ROUTE6 (no route on the host) and hears why"
  slipway_run -- ping -6 -n -c 1 -W 3 "$NO_ROUTE6" >"$E2E_TMP/noroute6-$label.log" 2>&1 || true
  grep -q "From $GW6 icmp_seq=1 Destination unreachable: No route" "$E2E_TMP/noroute6-$label.log" ||
    { show_log "$E2E_TMP/noroute6-$label.log"; fail "[$label] no ICMPv6 no-route error from $GW6"; }
  ok "[$label] $(grep -m1 'Destination unreachable' "$E2E_TMP/noroute6-$label.log")"
}

run_case ping-sockets "0 2147483647"
run_case raw-fallback "1 0"
pass
