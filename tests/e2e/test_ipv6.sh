#!/usr/bin/env bash
# IPv6 in NAT mode (`slipway run --ipv6`), with the guest's own kernel doing
# the work: it forms a SLAAC address in fd00::/64 from the gateway's router
# advertisement (and takes its default route from it); curl over IPv6 to
# http://[fd00::2]:PORT reaches a server on the test host's [::1] and the
# file arrives intact; dig AAAA over IPv6 at fd00::3 is answered (dnsmasq
# upstream); a destination the host cannot reach gets ICMPv6 unreachable at
# once rather than a hang; a port nobody listens on is refused at once;
# IPv6 is on by default; with --no-ipv6 the guest has no IPv6 address at all.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl dig dnsmasq sha256sum ip

GW6=fd00::2
DNS6=fd00::3
# The guest MAC is 52:54:00:12:34:56, so its EUI-64 SLAAC address is:
SLAAC6=fd00::5054:ff:fe12:3456

[ -e /proc/sys/net/ipv6 ] || skip "the kernel has no IPv6"
sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 2>/dev/null || true
ip -6 addr show dev lo | grep -q '::1/128' || skip "no ::1 on the test host's loopback"

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/file" $((2 * 1024 * 1024 + 33))
want=$(sha256_of "$E2E_TMP/www/file")
pf=$E2E_TMP/http6.port
bg http6 python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind ::1 --port-file "$pf"
wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/http6.log"; fail "http server on [::1] did not start"; }
port=$(cat "$pf")

up_port=$(free_port udp)
bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port="$up_port" \
  --host-record=h.test,192.0.2.11,2001:db8::11
wait_listen "$up_port" udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }

log "check: SLAAC address, default route, resolv.conf"
slipway_run --ipv6 -- sh -c 'ip -6 -o addr show dev eth0; ip -6 route show default; cat /etc/resolv.conf' \
  >"$E2E_TMP/cfg.log" 2>&1 || { show_log "$E2E_TMP/cfg.log"; fail "could not inspect the guest"; }
grep -q "inet6 $SLAAC6/64 scope global dynamic" "$E2E_TMP/cfg.log" ||
  { show_log "$E2E_TMP/cfg.log"; fail "no SLAAC address $SLAAC6/64 (kernel-configured, dynamic) on eth0"; }
grep -q "default via fe80::.* dev eth0 proto ra" "$E2E_TMP/cfg.log" ||
  { show_log "$E2E_TMP/cfg.log"; fail "no default route from the router advertisement"; }
grep -q "^nameserver $DNS6" "$E2E_TMP/cfg.log" || { show_log "$E2E_TMP/cfg.log"; fail "resolv.conf does not name $DNS6"; }
ok "eth0 has $SLAAC6/64 from the RA, default route via the gateway's link-local, nameserver $DNS6"

log "check: curl -6 http://[$GW6]:$port/file reaches the host's [::1]"
slipway_run --ipv6 -- curl -sS --fail --max-time 20 -g -o "$E2E_TMP/got" "http://[$GW6]:$port/file" \
  >"$E2E_TMP/curl.log" 2>&1 || { show_log "$E2E_TMP/curl.log"; show_log "$E2E_TMP/http6.log"; fail "curl over IPv6 failed"; }
got=$(sha256_of "$E2E_TMP/got")
[ "$got" = "$want" ] || fail "sha256 mismatch over IPv6: got $got, want $want"
grep -q '"GET /file' "$E2E_TMP/http6.log" || fail "the [::1] server logged no request"
ok "file received intact over IPv6 ($got)"

log "check: dig AAAA @$DNS6 over UDP and TCP; ping6 to the gateway; unreachable and refused are immediate"
cat >"$E2E_TMP/guest.sh" <<EOS
set -u
for mode in +notcp +tcp; do
  a=\$(dig +short +time=3 +tries=1 @$DNS6 h.test AAAA \$mode)
  if [ $ENGINE = slirp ] && [ \$mode = +tcp ]; then
    # README "Engines": slirp refuses DNS over TCP at the IPv6 DNS address.
    case "\$a" in *"connection refused"*) echo "ok: DNS over TCP at $DNS6 refused (slirp engine)" ;;
      *) echo "FAIL: DNS over TCP at $DNS6 on slirp: want refused, got '\$a'" ;; esac
    continue
  fi
  [ "\$a" = 2001:db8::11 ] && echo "ok: AAAA over IPv6 (\$mode): \$a" || echo "FAIL: AAAA over IPv6 (\$mode): '\$a'"
done
a=\$(dig +short +time=3 +tries=1 @$DNS6 host.internal AAAA)
[ "\$a" = $GW6 ] && echo "ok: host.internal AAAA is $GW6" || echo "FAIL: host.internal AAAA: '\$a'"
ping -6 -c 1 -W 3 $GW6 >/dev/null 2>&1 && echo "ok: ping -6 $GW6" || echo "FAIL: ping -6 $GW6"
python3 -c "
import errno, socket, sys, time
for what, addr, want in (('unreachable IPv6 network', '2001:db8:ffff::1', (errno.ENETUNREACH, errno.EHOSTUNREACH)),
                         ('closed port on the host [::1]', '$GW6', (errno.ECONNREFUSED,))):
    t0 = time.time()
    try:
        socket.create_connection((addr, int(sys.argv[1])), timeout=5); print('FAIL: ' + what + ': connected')
    except OSError as e:
        ms = int((time.time() - t0) * 1000)
        good = e.errno in want and ms < 1000
        print(('ok: ' if good else 'FAIL: ') + what + ': ' + str(e.strerror) + ' after ' + str(ms) + ' ms')
" \$1
EOS
closed=$(free_port tcp)
slipway_run --ipv6 --dns-upstream "127.0.0.1:$up_port" -- bash "$E2E_TMP/guest.sh" "$closed" >"$E2E_TMP/guest.log" 2>&1 ||
  { show_log "$E2E_TMP/guest.log"; fail "the guest script did not run"; }
cat "$E2E_TMP/guest.log"
grep -q FAIL "$E2E_TMP/guest.log" && fail "IPv6 checks in the guest failed"
[ "$(grep -c '^ok:' "$E2E_TMP/guest.log")" = 6 ] || fail "expected 6 ok lines from the guest"

log "check: IPv6 is on by default; --no-ipv6 leaves the guest without any IPv6 address"
slipway_run -- sh -c 'ip -6 -o addr show dev eth0 scope global' >"$E2E_TMP/default6.log" 2>&1 || true
grep -q "inet6 $SLAAC6/64" "$E2E_TMP/default6.log" || { show_log "$E2E_TMP/default6.log"; fail "no IPv6 by default"; }
slipway_run --no-ipv6 -- sh -c 'ip -6 -o addr show dev eth0' >"$E2E_TMP/no6.log" 2>&1 || true
[ ! -s "$E2E_TMP/no6.log" ] || { show_log "$E2E_TMP/no6.log"; fail "eth0 has IPv6 addresses with --no-ipv6"; }
ok "IPv6 by default; none on eth0 with --no-ipv6"
pass
