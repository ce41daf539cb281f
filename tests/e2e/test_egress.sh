#!/usr/bin/env bash
# Egress policy (--deny, --allow): a kernel guest (slipway run) with real
# clients against servers on the test host's loopback (through the gateway
# 10.0.2.2) and on a peer namespace (192.0.2.2):
#   - curl to a denied 127.0.0.1:PORT fails at once (< 1 s) with "No route
#     to host" (ICMP administratively prohibited), while another port of
#     the same host, and the same port without the rule, answer;
#   - --deny 127.0.0.0/8 --allow 127.0.0.1:PORT: only that port answers;
#   - a connected UDP socket to a denied port gets EHOSTUNREACH on recv()
#     at once, an allowed one its echo;
#   - ping to a denied host prints "Packet filtered" (ICMP type 3 code 13)
#     and the peer counts no echo request; the same ping without the rule
#     is answered;
#   - cloud metadata: an http server at 169.254.169.254 (on the peer
#     namespace) is denied by default and answers with --allow
#     169.254.169.254;
#   - a bad rule is refused with a clear message, in a config file too.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl nsenter python3
PING=$(ping_cmd)

mkdir "$E2E_TMP/www"; echo "host-ok" >"$E2E_TMP/www/x"
start_http_server "$E2E_TMP/www"
P=$HTTP_PORT
bg http2 python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind 127.0.0.1 --port-file "$E2E_TMP/http2.port"
wait_file "$E2E_TMP/http2.port" 10 "$BG_PID" || fail "second http server did not start"
P2=$(cat "$E2E_TMP/http2.port")

# fetch URL SLIPWAY-ARGS...: prints "curl_exit=N ms=M" and curl's output.
fetch() {
  local url=$1; shift
  slipway_run "$@" -- sh -c '
    t0=$(date +%s%N)
    out=$(curl -sS -v --max-time 5 "$1" 2>&1); rc=$?
    printf "%s\n" "$out" | grep -v "^[<>{}]"
    t1=$(date +%s%N)
    echo "curl_exit=$rc ms=$(( (t1 - t0) / 1000000 ))"' fetch "$url" 2>&1 || true
}
expect_ok() {  # WHAT URL ARGS...
  local what=$1 out; shift
  out=$(fetch "$@")
  echo "$out" | grep -q '^host-ok$' || fail "$what: curl did not get the page: $out"
  ok "$what: answered"
}
expect_denied() {  # WHAT URL ARGS...
  local what=$1 out ms; shift
  out=$(fetch "$@")
  echo "$out" | grep -q 'curl_exit=7' || fail "$what: want curl exit 7, got: $out"
  echo "$out" | grep -qi 'No route to host' || fail "$what: curl did not report 'No route to host': $out"
  ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')
  [ -n "$ms" ] && [ "$ms" -lt 1000 ] || fail "$what: the denial took ${ms:-?} ms (>= 1000)"
  ok "$what: denied in $ms ms ($(echo "$out" | grep -i 'No route' | head -n1))"
}

log "TCP"
expect_ok "no rule, 127.0.0.1:$P" "http://$GATEWAY_IP:$P/x"
expect_denied "--deny 127.0.0.1:$P" "http://$GATEWAY_IP:$P/x" --deny "127.0.0.1:$P"
expect_ok "--deny 127.0.0.1:$P, port $P2" "http://$GATEWAY_IP:$P2/x" --deny "127.0.0.1:$P"
expect_denied "--deny 127.0.0.1:$P (a range)" "http://$GATEWAY_IP:$P/x" --deny "127.0.0.1:1-$P"
expect_denied "--deny 10.0.2.2 (the guest's address for it)" "http://$GATEWAY_IP:$P/x" --deny "$GATEWAY_IP"
expect_ok "--deny 127.0.0.0/8 --allow 127.0.0.1:$P" "http://$GATEWAY_IP:$P/x" --deny 127.0.0.0/8 --allow "127.0.0.1:$P"
expect_denied "--deny 127.0.0.0/8 --allow 127.0.0.1:$P, port $P2" "http://$GATEWAY_IP:$P2/x" --deny 127.0.0.0/8 \
  --allow "127.0.0.1:$P"
cat >"$E2E_TMP/egress.toml" <<TOML
[egress]
deny = ["127.0.0.1:$P"]
TOML
expect_denied "[egress] deny in --config" "http://$GATEWAY_IP:$P/x" --config "$E2E_TMP/egress.toml"

log "UDP"
bg udp python3 "$E2E_TOOLS/udp_echo.py" server --bind 127.0.0.1 --port-file "$E2E_TMP/udp.port"
wait_file "$E2E_TMP/udp.port" 10 "$BG_PID" || fail "udp echo server did not start"
U=$(cat "$E2E_TMP/udp.port")
udp_probe() {
  slipway_run "$@" -- python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
t0 = time.monotonic()
s.send(b"egress-probe")
try:
    d = s.recv(100)
    print("echo=%s ms=%d" % (d.decode(), (time.monotonic() - t0) * 1000))
except socket.timeout:
    print("errno=0 ms=%d" % ((time.monotonic() - t0) * 1000))
except OSError as e:
    print("errno=%d ms=%d" % (e.errno or 0, (time.monotonic() - t0) * 1000))
' "$GATEWAY_IP" "$U" 2>&1 || true
}
out=$(udp_probe)
echo "$out" | grep -q 'echo=egress-probe' || fail "UDP without a rule: $out"
ok "UDP, no rule: echoed ($out)"
out=$(udp_probe --deny "127.0.0.1:$U")
echo "$out" | grep -q 'errno=113' || fail "UDP to a denied port: want EHOSTUNREACH (113), got: $out"
ms=$(echo "$out" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')
[ "${ms:-9999}" -lt 1000 ] || fail "UDP denial took ${ms:-?} ms"
ok "UDP, --deny 127.0.0.1:$U: EHOSTUNREACH in $ms ms"

log "ICMP echo and metadata, against a peer namespace"
make_peer_ns
in_echos() {
  in_peer awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n["InEchos"] }' /proc/net/snmp
}
before=$(in_echos)
out=$(slipway_run --deny "$PEER_IP" -- $PING -c 1 -W 2 "$PEER_IP" 2>&1 || true)
echo "$out" | grep -qi 'filtered' || fail "ping to a denied host: no 'Packet filtered': $out"
[ "$(in_echos)" = "$before" ] || fail "ping to a denied host: the peer received an echo request"
ok "ping --deny $PEER_IP: $(echo "$out" | grep -i filtered | head -n1)"
out=$(slipway_run -- $PING -c 1 -W 3 "$PEER_IP" 2>&1) || fail "ping without a rule failed: $out"
ok "ping without a rule: answered"

META=169.254.169.254
in_peer ip addr add "$META/32" dev vpeer1
ip route add "$META/32" dev vpeer0
bg meta nsenter --net="$PEER_NS" python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind "$META" \
  --port-file "$E2E_TMP/meta.port"
wait_file "$E2E_TMP/meta.port" 10 "$BG_PID" || { show_log "$E2E_TMP/meta.log"; fail "metadata server did not start"; }
M=$(cat "$E2E_TMP/meta.port")
out=$(curl -sS --max-time 5 "http://$META:$M/x") && [ "$out" = host-ok ] || fail "the test host cannot reach $META:$M"
expect_denied "metadata $META, by default" "http://$META:$M/x"
expect_ok "metadata with --allow $META" "http://$META:$M/x" --allow "$META"

log "bad rules"
out=$("$SLIPWAY" run --deny 10.0.0.0/33 -- true 2>&1) && fail "--deny 10.0.0.0/33 was accepted"
echo "$out" | grep -q 'prefix length' || fail "--deny 10.0.0.0/33: unclear message: $out"
ok "--deny 10.0.0.0/33: $out"
printf '[egress]\nallow = ["10.0.0.1:http"]\n' >"$E2E_TMP/bad.toml"
out=$("$SLIPWAY" config check "$E2E_TMP/bad.toml" 2>&1) && fail "allow = 10.0.0.1:http was accepted"
echo "$out" | grep -q 'bad.toml:2:.*egress.allow' || fail "bad [egress] rule: unclear message: $out"
ok "bad [egress] rule: $out"
pass
