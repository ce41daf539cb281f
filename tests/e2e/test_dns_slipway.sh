#!/usr/bin/env bash
# DNS through `slipway run`: the guest's resolv.conf names 10.0.2.3 and the
# gateway relays to a real upstream (dnsmasq on the test host's loopback) in
# wire format. From inside the guest, dig over UDP and TCP: A, AAAA, MX, TXT
# with several strings, SRV, a CNAME chain, NXDOMAIN, an over-512-byte answer
# (whole with EDNS over UDP and over TCP), host.internal -> the gateway, a
# cache hit the upstream never sees, malformed queries (FORMERR or no reply,
# and DNS keeps working), and SERVFAIL in under 2 s with the upstream down.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd dnsmasq dig python3

up_port=$(free_port udp)
dlog=$E2E_TMP/dnsmasq.queries
big=()
for i in $(seq 1 40); do big+=("--txt-record=big.test,chunk-$i-of-a-long-answer-that-needs-tcp-xxxxxxxxxxxx"); done
bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port="$up_port" --local-ttl=300 \
  --log-queries --log-facility="$dlog" \
  --address=/a.test/192.0.2.10 --host-record=h.test,192.0.2.11,2001:db8::11 \
  --mx-host=mx.test,mail.test,10 --txt-record=txt.test,"first string","second string" \
  --srv-host=_sip._udp.test,sip.test,5060,1,2 --cname=c1.test,c2.test --cname=c2.test,h.test \
  --host-record=cached.test,192.0.2.12 --address=/nx.test/ "${big[@]}"
wait_listen "$up_port" udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }
dead_port=$(free_port udp)

cat >"$E2E_TMP/guest.sh" <<EOS
set -u
q() { dig +time=3 +tries=1 "\$@"; }
short() { q +short "\$@" | sort | tr '\n' ' ' | sed 's/ \$//'; }
check() { local what=\$1 want=\$2; shift 2; local got; got=\$(short "\$@");
  if [ "\$got" = "\$want" ]; then echo "ok: \$what: \$got"; else echo "FAIL: \$what: got '\$got', want '\$want'"; fi; }
grep -q '^nameserver 10.0.2.3' /etc/resolv.conf && echo "ok: resolv.conf names 10.0.2.3" || echo "FAIL: resolv.conf"
for mode in +notcp +tcp; do
  check "A (\$mode)" "192.0.2.10" www.a.test A \$mode
  check "AAAA (\$mode)" "2001:db8::11" h.test AAAA \$mode
  check "MX (\$mode)" "10 mail.test." mx.test MX \$mode
  check "TXT (\$mode)" '"first string" "second string"' txt.test TXT \$mode
  check "SRV (\$mode)" "1 2 5060 sip.test." _sip._udp.test SRV \$mode
  check "CNAME chain (\$mode)" "192.0.2.11 c2.test. h.test." c1.test A \$mode
  s=\$(q nope.nx.test A \$mode | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
  [ "\$s" = NXDOMAIN ] && echo "ok: NXDOMAIN (\$mode)" || echo "FAIL: NXDOMAIN (\$mode): '\$s'"
done
check "host.internal" "10.0.2.2" host.internal A
n=\$(q big.test TXT +bufsize=4096 +notcp +ignore | grep -c chunk-)
[ "\$n" = 40 ] && echo "ok: big answer over UDP with EDNS: 40 records" || echo "FAIL: big answer over UDP: \$n records"
n=\$(q big.test TXT +tcp | grep -c chunk-)
[ "\$n" = 40 ] && echo "ok: big answer over TCP: 40 records" || echo "FAIL: big answer over TCP: \$n records"
n=\$(q big.test TXT +noedns +notcp | grep -c chunk-)
[ "\$n" = 40 ] && echo "ok: big answer for a 512-byte client: TC then TCP retry, 40 records" || echo "FAIL: no-EDNS big answer: \$n"
check "first lookup" "192.0.2.12" cached.test A
check "second lookup (cache)" "192.0.2.12" cached.test A
python3 - <<'PY'
import socket, struct
def ask(pkt):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
    s.sendto(pkt, ("10.0.2.3", 53))
    try: return s.recv(4096)
    except socket.timeout: return None
hdr = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
cases = {"short header": b"\x12\x34\x01", "bad label length": hdr + b"\x3fab\x00\x00\x01\x00\x01",
         "compression loop": hdr + b"\xc0\x0c\x00\x01\x00\x01", "two questions": struct.pack(">HHHHHH", 0x1234, 0x0100, 2, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01",
         "trailing garbage": hdr + b"\x01a\x04test\x00\x00\x01\x00\x01" + b"junk"}
for name, pkt in cases.items():
    r = ask(pkt)
    if r is None: print(f"ok: malformed ({name}): dropped")
    elif len(r) >= 4 and (r[3] & 0xf) == 1: print(f"ok: malformed ({name}): FORMERR")
    else: print(f"FAIL: malformed ({name}): rcode {r[3] & 0xf if len(r) >= 4 else '?'}")
PY
check "after malformed queries" "192.0.2.10" again.a.test A
EOS
out=$(slipway_run --dns-upstream "127.0.0.1:$up_port" -- bash ${GUEST_TRACE:+-x} "$E2E_TMP/guest.sh" 2>&1) || true
echo "$out" | sed "s/^/[$E2E_NAME]   guest: /"
echo "$out" | grep -q '^FAIL' && fail "see the guest's lines above"
[ "$(echo "$out" | grep -c '^ok:')" -ge 27 ] || fail "the guest script did not run to the end"
nq=$(grep -c 'query\[A\] cached.test' "$dlog" || true)
[ "$nq" = 1 ] || fail "upstream saw cached.test $nq times, want 1 (the second answer must come from the cache)"
ok "upstream saw cached.test once: the second answer came from slipway's cache"

log "check: an upstream that is down gives SERVFAIL in under 2 s"
out=$(slipway_run --dns-upstream "127.0.0.1:$dead_port" -- sh -c \
  's=$(date +%s%N); dig +time=5 +tries=1 x.a.test A | grep -o "status: [A-Z]*"; e=$(date +%s%N); echo "ms=$(( (e - s) / 1000000 ))"' 2>&1)
grep -q "status: SERVFAIL" <<<"$out" || fail "no SERVFAIL with the upstream down: $out"
ms=$(sed -n 's/^ms=//p' <<<"$out")
[ "$ms" -lt 2000 ] || fail "SERVFAIL took $ms ms"
ok "SERVFAIL after $ms ms"
pass
