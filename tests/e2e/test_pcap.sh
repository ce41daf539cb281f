#!/usr/bin/env bash
# --pcap FILE records the guest's eth0 traffic: after a curl from the guest to
# the test host's http server (via 10.0.2.2), `tshark -r FILE` reads the file
# and shows the TCP handshake (SYN, SYN-ACK, ACK) and the HTTP GET.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl tshark

mkdir "$E2E_TMP/www"; echo "pcap-test-body" >"$E2E_TMP/www/pcap-probe.txt"
start_http_server "$E2E_TMP/www"
pcap=$E2E_TMP/capture.pcap
url="http://$GATEWAY_IP:$HTTP_PORT/pcap-probe.txt"

log "check: slipway run --pcap FILE -- curl $url"
out=$(slipway_run --pcap "$pcap" -- curl -sS --max-time 10 "$url" 2>"$E2E_TMP/curl.err") ||
  { show_log "$E2E_TMP/curl.err"; fail "curl under --pcap failed"; }
[ "$out" = pcap-test-body ] || fail "curl under --pcap returned '$out'"
[ -s "$pcap" ] || fail "--pcap file $pcap is missing or empty"
ok "curl worked; capture is $(stat -c %s "$pcap") bytes"

# tshark complains when run as root; its stderr goes to a log.
ts() { timeout 60 tshark -n -r "$pcap" -o tcp.relative_sequence_numbers:TRUE "$@" 2>>"$E2E_TMP/tshark.err"; }

log "check: tshark reads the file"
ts -T fields -e frame.number >"$E2E_TMP/frames.txt" || { show_log "$E2E_TMP/tshark.err"; fail "tshark cannot read $pcap"; }
ok "$(wc -l <"$E2E_TMP/frames.txt") frames"
ts >"$E2E_TMP/summary.txt" || true
sed "s/^/[$E2E_NAME]     /" "$E2E_TMP/summary.txt" | head -n 40

conv="ip.addr==$GUEST_IP && ip.addr==$GATEWAY_IP && tcp.port==$HTTP_PORT"
count() { ts -Y "$1" -T fields -e frame.number | wc -l; }

log "check: TCP handshake $GUEST_IP -> $GATEWAY_IP:$HTTP_PORT"
syn=$(count "$conv && ip.src==$GUEST_IP && tcp.dstport==$HTTP_PORT && tcp.flags.syn==1 && tcp.flags.ack==0")
synack=$(count "$conv && ip.src==$GATEWAY_IP && tcp.srcport==$HTTP_PORT && tcp.flags.syn==1 && tcp.flags.ack==1")
ack=$(count "$conv && ip.src==$GUEST_IP && tcp.flags.syn==0 && tcp.flags.ack==1 && tcp.seq==1 && tcp.ack==1")
[ "$syn" -ge 1 ] || fail "no SYN from $GUEST_IP to $GATEWAY_IP:$HTTP_PORT in the capture"
[ "$synack" -ge 1 ] || fail "no SYN-ACK from $GATEWAY_IP:$HTTP_PORT in the capture"
[ "$ack" -ge 1 ] || fail "no handshake-completing ACK from $GUEST_IP in the capture"
ok "SYN x$syn, SYN-ACK x$synack, ACK x$ack"

log "check: HTTP GET /pcap-probe.txt and its response"
get=$(ts -Y "$conv && http.request.method==\"GET\"" -T fields -e http.request.uri)
[ "$get" = /pcap-probe.txt ] || fail "HTTP GET not found in the capture (got '${get}')"
resp=$(count "$conv && http.response.code==200")
[ "$resp" -ge 1 ] || fail "HTTP 200 response not found in the capture"
ok "GET $get, HTTP 200 x$resp"
pass
