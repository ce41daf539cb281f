#!/usr/bin/env bash
# --no-host-loopback: connections to the gateway 10.0.2.2 must not reach the
# host's loopback: curl to 10.0.2.2:PORT is refused even though a server
# listens on 127.0.0.1:PORT (and works without the option).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl

mkdir "$E2E_TMP/www"; echo "secret-from-host-loopback" >"$E2E_TMP/www/index.txt"
start_http_server "$E2E_TMP/www"
url="http://$GATEWAY_IP:$HTTP_PORT/index.txt"

log "check: without the option, $url is served (sanity)"
out=$(slipway_run -- curl -sS --max-time 10 "$url" 2>&1) || true
[ "$out" = secret-from-host-loopback ] || fail "without --no-host-loopback, curl gave: $out"
ok "served without the option"

log "check: with --no-host-loopback, $url is refused"
slipway_run --no-host-loopback -- sh -c '
  t0=$(date +%s%N); curl -sS -v --max-time 5 -o /dev/null "$1"; rc=$?; t1=$(date +%s%N)
  echo "curl_exit=$rc ms=$(( (t1 - t0) / 1000000 ))"' probe "$url" >"$E2E_TMP/nhl.log" 2>&1 || true
rc=$(sed -n 's/.*curl_exit=\([0-9]*\).*/\1/p' "$E2E_TMP/nhl.log")
ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' "$E2E_TMP/nhl.log")
[ "$rc" != 0 ] || fail "--no-host-loopback: the guest reached the host loopback server"
[ "$rc" = 7 ] || { show_log "$E2E_TMP/nhl.log"; fail "curl exit ${rc:-?}, want 7 (connection refused)"; }
[ "${ms:-9999}" -lt 1000 ] || { show_log "$E2E_TMP/nhl.log"; fail "refusal took ${ms:-?} ms"; }
grep -q 'Connection refused' "$E2E_TMP/nhl.log" || { show_log "$E2E_TMP/nhl.log"; fail "curl did not report 'Connection refused'"; }
[ "$(grep -c 'GET /index.txt' "$E2E_TMP/http.log")" = 1 ] ||
  fail "the host server saw a request made under --no-host-loopback"
ok "refused: $(grep 'Connection refused' "$E2E_TMP/nhl.log" | head -n1 | sed 's/^\* //') [${ms} ms]; server saw no request"
pass
