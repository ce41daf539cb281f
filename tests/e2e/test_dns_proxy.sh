#!/usr/bin/env bash
# dns-proxy, standalone: dnsmasq is the real upstream on 127.0.0.1:PORT with a
# test zone; dns-proxy serves on 127.0.0.2:PORT2 with --upstream
# 127.0.0.1:PORT; dig asks over UDP and TCP. Checks: A, AAAA, MX, TXT with
# several strings, SRV, a CNAME chain, NXDOMAIN, a >512-byte answer that makes
# the proxy retry upstream over TCP (seen in dnsmasq's log) and that dig gets
# whole over UDP (+bufsize=4096) and TCP, TC=1 for a 512-byte client, a cache
# hit the upstream never sees, pipelined TCP queries, a split-DNS route,
# resolv.conf re-read, SERVFAIL in under 2 s when the upstream is down or
# silent, every malformed case (FORMERR or no reply, and the proxy keeps
# working), and host.internal from --static and a hosts file.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
need_cmd dnsmasq dig python3

: "${DNS_PROXY:=$(dirname "$SLIPWAY")/../dns-proxy/dns-proxy}"
[ -x "$DNS_PROXY" ] || fail "dns-proxy binary not found: $DNS_PROXY (build it, or set DNS_PROXY)"
DNS_PROXY=$(cd "$(dirname "$DNS_PROXY")" && pwd)/$(basename "$DNS_PROXY")

# ------------------------------------------------------------ the upstream
up_port=$(free_port udp)
px_port=$(free_port udp)
dlog=$E2E_TMP/dnsmasq-queries.log
big=()
for i in $(seq 1 40); do big+=("--txt-record=big.test,chunk-$i-of-a-long-answer-that-needs-tcp-xxxxxxxxxxxx"); done
bg dnsmasq dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file="$E2E_TMP/dnsmasq.pid" \
  --listen-address=127.0.0.1 --bind-interfaces --port="$up_port" --local-ttl=300 \
  --log-queries=extra --log-facility="$dlog" \
  --address=/a.test/192.0.2.10 --host-record=h.test,192.0.2.11,2001:db8::11 \
  --mx-host=mx.test,mail.test,10 --txt-record=txt.test,"first string","second string" \
  --srv-host=_sip._udp.test,sip.test,5060,1,2 --cname=c1.test,c2.test --cname=c2.test,h.test \
  --host-record=cached.test,192.0.2.12 --address=/nx.test/ "${big[@]}"
DNSMASQ_PID=$BG_PID
wait_listen "$up_port" udp || { show_log "$E2E_TMP/dnsmasq.log"; fail "dnsmasq did not start"; }
wait_file "$E2E_TMP/dnsmasq.pid" 5 || fail "dnsmasq wrote no pid file"
dnsmasq_main=$(cat "$E2E_TMP/dnsmasq.pid")
log "dnsmasq upstream on 127.0.0.1:$up_port (pid $dnsmasq_main)"

# A second zone for the split-DNS route and the resolv.conf test, on port 53.
bg corp dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file="$E2E_TMP/corp.pid" \
  --listen-address=127.0.0.4 --bind-interfaces --port=53 --local-ttl=300 --address=/corp.test/192.0.2.99
wait_listen 53 udp || { show_log "$E2E_TMP/corp.log"; fail "second dnsmasq did not start"; }

# ------------------------------------------------------------- the proxy
printf '10.0.2.2 host.internal\n192.0.2.77 printer.lan # from the hosts file\n' >"$E2E_TMP/hosts"
bg proxy "$DNS_PROXY" --listen "127.0.0.2:$px_port" --upstream "127.0.0.1:$up_port" \
  --route "corp.test=127.0.0.4" --static host.internal=10.0.2.2 --hosts "$E2E_TMP/hosts" --log-level debug
PROXY_PID=$BG_PID
wait_listen "$px_port" udp || { show_log "$E2E_TMP/proxy.log"; fail "dns-proxy did not start"; }
wait_listen "$px_port" tcp || fail "dns-proxy not listening on TCP"
log "dns-proxy on 127.0.0.2:$px_port"

DIG=(dig @127.0.0.2 -p "$px_port" +time=3 +tries=1)
expect() {  # expect WHAT EXPECTED DIG-ARGS...
  local what=$1 want=$2; shift 2
  local got
  got=$("${DIG[@]}" +short "$@" 2>&1 | sort | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || { show_log "$E2E_TMP/proxy.log"; fail "$what: got '$got', want '$want'"; }
  ok "$what: $got"
}
for mode in +notcp +tcp; do
  expect "A ($mode)" "192.0.2.10" www.a.test A $mode
  expect "AAAA ($mode)" "2001:db8::11" h.test AAAA $mode
  expect "MX ($mode)" "10 mail.test." mx.test MX $mode
  expect "TXT with several strings ($mode)" '"first string" "second string"' txt.test TXT $mode
  expect "SRV ($mode)" "1 2 5060 sip.test." _sip._udp.test SRV $mode
  expect "CNAME chain ($mode)" "192.0.2.11 c2.test. h.test." c1.test A $mode
  status=$("${DIG[@]}" nope.nx.test A $mode | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
  [ "$status" = NXDOMAIN ] || fail "NXDOMAIN ($mode): got status '$status'"
  ok "NXDOMAIN ($mode)"
done

# --------------------------------------------------- big answer, TCP upstream
out=$("${DIG[@]}" big.test TXT +bufsize=4096 +notcp +ignore)
n=$(grep -c 'chunk-' <<<"$out" || true)
grep -q 'flags:[^;]* tc' <<<"$out" && fail "big answer over UDP with bufsize 4096 came back truncated"
[ "$n" = 40 ] || fail "big answer over UDP (bufsize 4096): $n of 40 TXT records"
ok "over-512-byte answer whole over UDP with +bufsize=4096 ($(sed -n 's/.*MSG SIZE  rcvd: //p' <<<"$out") bytes)"
tcp_lines=$(grep 'query\[TXT\] big.test' "$dlog" | grep -vc "dnsmasq\[$dnsmasq_main\]" || true)
[ "$tcp_lines" -ge 1 ] || { cat "$dlog" >&2; fail "dnsmasq saw no TCP query for big.test (the proxy did not retry over TCP)"; }
ok "the upstream's TC=1 made the proxy ask again over TCP (dnsmasq TCP child logged it)"
n=$("${DIG[@]}" big.test TXT +tcp | grep -c 'chunk-' || true)
[ "$n" = 40 ] || fail "big answer over TCP: $n of 40 TXT records"
ok "over-512-byte answer whole over TCP"
out=$("${DIG[@]}" big.test TXT +noedns +notcp +ignore)
grep -q 'flags:[^;]* tc' <<<"$out" || fail "a 512-byte UDP client did not get TC=1"
size=$(sed -n 's/.*MSG SIZE  rcvd: //p' <<<"$out")
[ "$size" -le 512 ] || fail "truncated answer is $size bytes"
ok "a client without EDNS gets TC=1 in $size bytes"
n=$("${DIG[@]}" big.test TXT +noedns | grep -c 'chunk-' || true)
[ "$n" = 40 ] || fail "dig's own TCP retry after TC=1 got $n of 40 records"
ok "dig retried over TCP and got all 40 records"

# ------------------------------------------------------------------ cache
expect "cache: first query" "192.0.2.12" cached.test A
expect "cache: second query" "192.0.2.12" cached.test A +tcp
expect "cache: third query (other case)" "192.0.2.12" CACHED.test A
seen=$(grep -c 'query\[A\] cached.test' "$dlog" || true)
[ "$seen" = 1 ] || fail "the upstream saw cached.test $seen times; want 1 (cache)"
ttl=$("${DIG[@]}" +noall +answer cached.test A | awk '{print $2}')
[ "$ttl" -le 300 ] && [ "$ttl" -gt 0 ] || fail "cached TTL $ttl"
ok "cache: the upstream saw cached.test once; TTL served $ttl"

# -------------------------------------------------------- pipelined TCP
python3 "$E2E_TOOLS/dns_pipeline.py" --server 127.0.0.2 --port "$px_port" \
  www.a.test h.test c1.test x1.a.test x2.a.test x3.a.test host.internal printer.lan >"$E2E_TMP/pipe.log" 2>&1 ||
  { cat "$E2E_TMP/pipe.log" >&2; fail "pipelined TCP queries"; }
ok "$(tail -n1 "$E2E_TMP/pipe.log")"

# ---------------------------------------------------- static names, route
expect "host.internal from --static" "10.0.2.2" host.internal A
"${DIG[@]}" host.internal A | grep -q 'flags: qr aa' || fail "host.internal answer is not authoritative"
ok "host.internal answer has AA"
out=$("${DIG[@]}" host.internal MX)
status="$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out") $(sed -n 's/.*ANSWER: \([0-9]*\).*/\1/p' <<<"$out")"
[ "$status" = "NOERROR 0" ] || fail "host.internal MX: '$status', want NOERROR with no answer"
ok "host.internal MX: NOERROR, no data"
expect "printer.lan from the hosts file" "192.0.2.77" printer.lan A
expect "split DNS: www.corp.test routed to 127.0.0.4" "192.0.2.99" www.corp.test A

# ---------------------------------------------------------- malformed
hdr=123401000001000000000000
q_a=0161047465737400000100 # a.test, type A ...
q_a=${q_a}01                # ... class IN
malformed=(
  "short-header:123401:noreply"
  "qr-set:123481000001000000000000${q_a}:noreply"
  "bad-label-length:${hdr}2861620000010001:1"
  "compression-loop:${hdr}c00c00010001:1"
  "pointer-out-of-range:${hdr}c0ff00010001:1"
  "trailing-garbage:${hdr}${q_a}deadbeef:1"
  "qdcount-0:123401000000000000000000${q_a}:1"
  "qdcount-2:123401000002000000000000${q_a}:1"
  "arcount-lies:123401000001000000000001${q_a}:1"
)
for tcp in "" --tcp; do
  for m in "${malformed[@]}"; do
    IFS=: read -r name hex want <<<"$m"
    got=$(python3 "$E2E_TOOLS/dns_raw.py" --server 127.0.0.2 --port "$px_port" --hex "$hex" --timeout 0.5 $tcp)
    if [ "$want" = noreply ]; then
      [ "$got" = noreply ] || fail "malformed $name ${tcp:-udp}: got '$got', want no reply"
    else
      case "$got" in "rcode=$want id=4660 "*) ;; *) fail "malformed $name ${tcp:-udp}: got '$got', want FORMERR (rcode=1) with id 4660";; esac
    fi
    expect "after $name ${tcp:-udp}, a normal query" "192.0.2.10" www.a.test A
  done
done
ok "every malformed query got FORMERR or no reply, and the proxy kept answering"
kill -0 "$PROXY_PID" || fail "dns-proxy died"

# ------------------------------------------------------- upstream down
time_query() {  # time_query PORT NAME -> "STATUS MS"
  local t0 t1 st
  t0=$(date +%s%N)
  st=$(dig @127.0.0.2 -p "$1" +time=5 +tries=1 "$2" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
  t1=$(date +%s%N)
  echo "${st:-none} $(((t1 - t0) / 1000000))"
}
dead_port=$(free_port udp)
px2=$(free_port udp)
bg proxy-dead "$DNS_PROXY" --listen "127.0.0.2:$px2" --upstream "127.0.0.1:$dead_port"
wait_listen "$px2" udp || fail "second dns-proxy did not start"
read -r st ms <<<"$(time_query "$px2" down.test)"
[ "$st" = SERVFAIL ] && [ "$ms" -lt 2000 ] || fail "upstream down (refused): status $st after $ms ms"
ok "upstream down (port closed): SERVFAIL after $ms ms"

silent_port=$(free_port udp)
bg silent python3 -c "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $silent_port)); time.sleep(600)"
wait_listen "$silent_port" udp || fail "silent upstream did not bind"
px3=$(free_port udp)
bg proxy-silent "$DNS_PROXY" --listen "127.0.0.2:$px3" --upstream "127.0.0.1:$silent_port"
wait_listen "$px3" udp || fail "third dns-proxy did not start"
read -r st ms <<<"$(time_query "$px3" silent.test)"
[ "$st" = SERVFAIL ] && [ "$ms" -lt 2000 ] || fail "upstream silent: status $st after $ms ms"
ok "upstream silent: SERVFAIL after $ms ms"

# ------------------------------------------------- resolv.conf re-read
echo "nameserver 127.0.0.5" >"$E2E_TMP/resolv.conf"
px4=$(free_port udp)
bg proxy-resolv "$DNS_PROXY" --listen "127.0.0.2:$px4" --resolv-conf "$E2E_TMP/resolv.conf"
wait_listen "$px4" udp || fail "fourth dns-proxy did not start"
read -r st ms <<<"$(time_query "$px4" www.corp.test)"
[ "$st" = SERVFAIL ] || fail "resolv.conf pointing nowhere: status $st"
printf '# changed\nnameserver 127.0.0.4\n' >"$E2E_TMP/resolv.conf.new"
mv "$E2E_TMP/resolv.conf.new" "$E2E_TMP/resolv.conf"
sleep 1.2
got=$(dig @127.0.0.2 -p "$px4" +short +time=3 +tries=2 www.corp.test A)
[ "$got" = 192.0.2.99 ] || { show_log "$E2E_TMP/proxy-resolv.log"; fail "after the resolv.conf change: got '$got'"; }
ok "resolv.conf change picked up (SERVFAIL before, 192.0.2.99 after)"

stop_bg "$PROXY_PID" INT
grep -q 'stats:' "$E2E_TMP/proxy.log" && sed -n 's/.*\(stats: .*\)/\1/p' "$E2E_TMP/proxy.log" | sed "s/^/[$E2E_NAME]   /"
pass
