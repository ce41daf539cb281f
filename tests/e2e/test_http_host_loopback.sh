#!/usr/bin/env bash
# A python http.server on the test host's 127.0.0.1:PORT is reachable from the
# guest as http://10.0.2.2:PORT (gateway = host loopback); the file arrives
# intact (sha256 compared).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl sha256sum

mkdir "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/file" $((3 * 1024 * 1024 + 17))
want=$(sha256_of "$E2E_TMP/www/file")
start_http_server "$E2E_TMP/www"
log "http server on 127.0.0.1:$HTTP_PORT; file sha256 $want"

log "check: guest curl http://$GATEWAY_IP:$HTTP_PORT/file"
if ! slipway_run -- curl -sS --fail --max-time 20 -o "$E2E_TMP/got" \
    "http://$GATEWAY_IP:$HTTP_PORT/file" >"$E2E_TMP/run.log" 2>&1; then
  show_log "$E2E_TMP/run.log"; show_log "$E2E_TMP/http.log"
  fail "curl from the guest to http://$GATEWAY_IP:$HTTP_PORT/file failed"
fi
got=$(sha256_of "$E2E_TMP/got")
[ "$got" = "$want" ] || fail "sha256 mismatch: got $got, want $want ($(stat -c %s "$E2E_TMP/got") bytes)"
ok "file received intact ($got)"

log "check: the guest is configured (eth0 $GUEST_IP/24, default via $GATEWAY_IP, mtu $DEFAULT_MTU, resolv.conf)"
slipway_run -- sh -c 'ip -o -4 addr show dev eth0; ip -o link show dev eth0; ip route show default; cat /etc/resolv.conf' \
  >"$E2E_TMP/cfg.log" 2>&1 || { show_log "$E2E_TMP/cfg.log"; fail "could not inspect the guest configuration"; }
grep -q "inet $GUEST_IP/24" "$E2E_TMP/cfg.log" || { show_log "$E2E_TMP/cfg.log"; fail "eth0 is not $GUEST_IP/24"; }
grep -q "mtu $DEFAULT_MTU" "$E2E_TMP/cfg.log" || { show_log "$E2E_TMP/cfg.log"; fail "eth0 mtu is not $DEFAULT_MTU"; }
grep -q "default via $GATEWAY_IP dev eth0" "$E2E_TMP/cfg.log" || { show_log "$E2E_TMP/cfg.log"; fail "no default route via $GATEWAY_IP"; }
grep -q "^nameserver $DNS_IP" "$E2E_TMP/cfg.log" || { show_log "$E2E_TMP/cfg.log"; fail "/etc/resolv.conf does not name $DNS_IP"; }
ok "guest eth0 $GUEST_IP/24 mtu $DEFAULT_MTU, default via $GATEWAY_IP, nameserver $DNS_IP"

log "check: --mtu 1500 sets the guest MTU"
slipway_run --mtu 1500 -- ip -o link show dev eth0 >"$E2E_TMP/mtu.log" 2>&1 || true
grep -q "mtu 1500 " "$E2E_TMP/mtu.log" || { show_log "$E2E_TMP/mtu.log"; fail "--mtu 1500 not applied"; }
slipway_run --mtu 1500 -- curl -sS --fail --max-time 20 -o "$E2E_TMP/got1500" \
  "http://$GATEWAY_IP:$HTTP_PORT/file" >"$E2E_TMP/run1500.log" 2>&1 ||
  { show_log "$E2E_TMP/run1500.log"; fail "curl with --mtu 1500 failed"; }
[ "$(sha256_of "$E2E_TMP/got1500")" = "$want" ] || fail "sha256 mismatch with --mtu 1500"
ok "--mtu 1500: mtu applied, file received intact"
pass
