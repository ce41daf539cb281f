#!/usr/bin/env bash
# Mirrored mode (`slipway run --mode mirrored --ipv6`): the guest gets the
# test host's own interface configuration and reaches the network with it.
# The test host has 192.0.2.1/24 and 2001:db8::1/64 on a veth to a peer
# namespace (192.0.2.2 and .3, 2001:db8::2, a router at fe80::1 and
# 198.51.100.1 behind it); its default routes go through the peer; its
# resolv.conf names a dnsmasq on 127.0.0.1.
# Checks: the guest shows the host's addresses, prefixes, default routes and
# MTU; outbound TCP works to a routed address (the peer sees the host's
# address as the client), to on-link IPv4 and IPv6 neighbours (proxy
# ARP/NDP); the gateway address is the documented way to the host's own
# loopback services; DNS works through the proxy (the host's resolver is a
# loopback one); with --mirrored-addresses all a server in the guest is
# reachable from the peer at the host's address, and with the default
# (loopback) only on the host's 127.0.0.1.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl dig dnsmasq sha256sum ip python3

[ -e /proc/sys/net/ipv6 ] || skip "the kernel has no IPv6"
make_peer_ns
sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.vpeer0.disable_ipv6=0
in_peer sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.vpeer1.disable_ipv6=0
ip -6 addr add 2001:db8::1/64 dev vpeer0 nodad
in_peer ip addr add 192.0.2.3/24 dev vpeer1
in_peer ip addr add 198.51.100.1/32 dev lo
in_peer ip -6 addr add 2001:db8::2/64 dev vpeer1 nodad
in_peer ip -6 addr add fe80::1/64 dev vpeer1 nodad
ip route add default via "$PEER_IP"
ip -6 route add default via fe80::1 dev vpeer0
host_mtu=$(ip -o link show dev vpeer0 | sed -n "s/.* mtu \([0-9]*\) .*/\1/p")

# The peer's web server (dual-stack) and the test host's own, on loopback.
mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/file" $((1024 * 1024 + 5))
want=$(sha256_of "$E2E_TMP/www/file")
bg peerhttp nsenter --net="$PEER_NS" python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind :: \
  --port-file "$E2E_TMP/peer.port"
wait_file "$E2E_TMP/peer.port" 10 "$BG_PID" || { show_log "$E2E_TMP/peerhttp.log"; fail "peer http server did not start"; }
pport=$(cat "$E2E_TMP/peer.port")
start_http_server "$E2E_TMP/www"

# The host's resolver is a loopback one, as with systemd-resolved.
bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port=53 --host-record=h.test,192.0.2.11
wait_listen 53 udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }
printf 'nameserver 127.0.0.1\n' >"$E2E_TMP/resolv.conf"
mount --bind "$E2E_TMP/resolv.conf" /etc/resolv.conf || skip "cannot bind-mount a test resolv.conf"

cat >"$E2E_TMP/guest.sh" <<EOS
set -u
check() { if eval "\$2"; then echo "ok: \$1"; else echo "FAIL: \$1"; fi; }
a4=\$(ip -o -4 addr show dev eth0); a6=\$(ip -o -6 addr show dev eth0 scope global)
check "host IPv4 address 192.0.2.1/24 (\$a4)" '[[ "\$a4" == *"inet 192.0.2.1/24"* ]]'
check "host IPv6 address 2001:db8::1/64 (\$a6)" '[[ "\$a6" == *"inet6 2001:db8::1/64"* ]]'
r4=\$(ip route show default); r6=\$(ip -6 route show default)
check "IPv4 default via $PEER_IP (\$r4)" '[[ "\$r4" == "default via $PEER_IP dev eth0"* ]]'
check "IPv6 default via fe80::1 (\$r6)" '[[ "\$r6" == "default via fe80::1 dev eth0"* ]]'
check "MTU $host_mtu" '[ "\$(cat /sys/class/net/eth0/mtu)" = $host_mtu ]'
check "resolv.conf names the gateway (the host's resolver is loopback)" 'grep -q "^nameserver $PEER_IP" /etc/resolv.conf'
get() { curl -sS --fail --max-time 10 -g -o /tmp/got "\$1" && [ "\$(sha256sum </tmp/got | cut -d" " -f1)" = $want ]; }
check "routed: http://198.51.100.1:$pport/file" 'get http://198.51.100.1:$pport/file'
check "on-link IPv4 (proxy ARP): http://192.0.2.3:$pport/file" 'get http://192.0.2.3:$pport/file'
check "on-link IPv6 (proxy NDP): http://[2001:db8::2]:$pport/file" 'get "http://[2001:db8::2]:$pport/file"'
check "the host's loopback via the gateway address: http://$PEER_IP:$HTTP_PORT/file" 'get http://$PEER_IP:$HTTP_PORT/file'
check "DNS through the proxy: h.test" '[ "\$(dig +short +time=3 +tries=1 h.test)" = 192.0.2.11 ]'
EOS
log "check: the guest's view of the network and outbound traffic"
slipway_run --mode mirrored --ipv6 -- bash "$E2E_TMP/guest.sh" >"$E2E_TMP/guest.log" 2>&1 ||
  { show_log "$E2E_TMP/guest.log"; fail "the guest script did not run"; }
sed "s/^/[$E2E_NAME]   guest: /" "$E2E_TMP/guest.log"
grep -q '^FAIL' "$E2E_TMP/guest.log" && fail "see the guest's lines"
[ "$(grep -c '^ok:' "$E2E_TMP/guest.log")" = 11 ] || fail "expected 11 ok lines from the guest"
grep -q '^192.0.2.1 .*"GET /file' "$E2E_TMP/peerhttp.log" || grep -q '^::ffff:192.0.2.1 .*"GET /file' "$E2E_TMP/peerhttp.log" ||
  { show_log "$E2E_TMP/peerhttp.log"; fail "the peer did not see the host's address as the client"; }
grep -q '^2001:db8::1 .*"GET /file' "$E2E_TMP/peerhttp.log" ||
  { show_log "$E2E_TMP/peerhttp.log"; fail "the peer did not see the host's IPv6 address as the client"; }
ok "the peer saw the host's own addresses (192.0.2.1, 2001:db8::1) as the clients"

# A server in the guest, published by automatic forwarding: with
# --mirrored-addresses all the peer reaches it at the host's address; with
# the default only the host's loopback has it.
gport=$(free_port tcp)
cat >"$E2E_TMP/server.sh" <<EOS
python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind 0.0.0.0 --port $gport &
echo up >"\$1.up"
for i in \$(seq 200); do [ -e "\$1.done" ] && break; sleep 0.05; done
kill %1
EOS
for addresses in all loopback; do
  log "check: --mirrored-addresses $addresses publishes the guest's server"
  bg "sw-$addresses" timeout -k 5 60 "$SLIPWAY" run --mode mirrored --mirrored-addresses "$addresses" -- \
    bash "$E2E_TMP/server.sh" "$E2E_TMP/$addresses"
  wait_file "$E2E_TMP/$addresses.up" 10 "$BG_PID" || { show_log "$E2E_TMP/sw-$addresses.log"; fail "guest server did not start"; }
  wait_listen "$gport" tcp 5 || { show_log "$E2E_TMP/sw-$addresses.log"; fail "the guest's server was not published"; }
  sleep 0.3  # both families' listeners
  listening=$(ss -Hltn "sport = :$gport" | awk '{print $4}' | sort | paste -sd' ')
  if [ "$addresses" = all ]; then
    [ "$listening" = "0.0.0.0:$gport" ] || fail "host listeners: '$listening', want 0.0.0.0:$gport"
    in_peer curl -sS --fail --max-time 10 -o "$E2E_TMP/from-peer" "http://192.0.2.1:$gport/file" ||
      { show_log "$E2E_TMP/sw-$addresses.log"; fail "the peer could not reach the guest's server at 192.0.2.1:$gport"; }
    [ "$(sha256_of "$E2E_TMP/from-peer")" = "$want" ] || fail "sha256 mismatch from the peer"
    ok "the peer fetched the guest's file at the host's address 192.0.2.1:$gport"
  else
    [ "$listening" = "127.0.0.1:$gport" ] || fail "host listeners: '$listening', want 127.0.0.1:$gport"
    curl -sS --fail --max-time 10 -o "$E2E_TMP/from-host" "http://127.0.0.1:$gport/file" ||
      fail "the host could not reach the guest's server at 127.0.0.1:$gport"
    in_peer curl -sS --max-time 3 -o /dev/null "http://192.0.2.1:$gport/file" 2>/dev/null &&
      fail "the peer reached a guest server published on loopback only"
    ok "published on the host's 127.0.0.1:$gport only; the peer cannot reach it"
  fi
  touch "$E2E_TMP/$addresses.done"
  wait "$BG_PID" || true
done
pass
