#!/usr/bin/env bash
# Connections to closed ports are refused at once: curl from the guest to
# 10.0.2.2:<closed port> (test-host loopback) fails with "Connection refused"
# (curl exit 7) in under 1 s; and TCP to a closed port of a remote host
# (192.0.2.2, a peer namespace behind a veth pair) is refused quickly too.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl nsenter

make_peer_ns
closed=$(free_port)
log "closed port $closed"

# The guest measures its own time so that slipway's start-up is not counted.
probe() {
  local url=$1 logf=$2
  slipway_run -- sh -c '
    t0=$(date +%s%N)
    curl -sS -v --max-time 5 -o /dev/null "$1"; rc=$?
    t1=$(date +%s%N)
    echo "curl_exit=$rc ms=$(( (t1 - t0) / 1000000 ))"' probe "$url" >"$logf" 2>&1 || true
}

check_refused() {
  local what=$1 url=$2 logf="$E2E_TMP/$3.log"
  log "check: curl $url ($what) is refused in < 1 s"
  probe "$url" "$logf"
  local rc ms
  rc=$(sed -n 's/.*curl_exit=\([0-9]*\).*/\1/p' "$logf")
  ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' "$logf")
  [ "$rc" = 7 ] || { show_log "$logf"; fail "$what: curl exit ${rc:-?}, want 7 (connection refused)"; }
  grep -q 'Connection refused' "$logf" || { show_log "$logf"; fail "$what: curl did not report 'Connection refused'"; }
  [ -n "$ms" ] && [ "$ms" -lt 1000 ] || { show_log "$logf"; fail "$what: refusal took ${ms:-?} ms (>= 1000)"; }
  ok "$what: $(grep 'Connection refused' "$logf" | head -n1 | sed 's/^\* //') [${ms} ms]"
}

check_refused "gateway = host loopback" "http://$GATEWAY_IP:$closed/" gw
check_refused "remote host $PEER_IP" "http://$PEER_IP:$closed/" peer

log "check: an open port on the remote host works (sanity of the peer setup)"
mkdir "$E2E_TMP/www"; echo "peer-ok" >"$E2E_TMP/www/x"
pf=$E2E_TMP/peer.port
bg peer-http nsenter --net="$PEER_NS" python3 "$E2E_TOOLS/http_server.py" --dir "$E2E_TMP/www" --bind "$PEER_IP" --port-file "$pf"
wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/peer-http.log"; fail "peer http server did not start"; }
out=$(slipway_run -- curl -sS --max-time 10 "http://$PEER_IP:$(cat "$pf")/x" 2>&1) || true
[ "$out" = peer-ok ] || fail "curl to the peer's open port gave: $out"
ok "peer http server reachable through the relay"
pass
