#!/usr/bin/env bash
# --restrict (QEMU's restrict=on): the guest reaches only the gateway's own
# services and answers on published ports. With servers on the test host's
# 127.0.0.1 (TCP and UDP), from inside the guest: TCP to the gateway
# (the host's loopback) and to a host address is refused at once, a UDP
# datagram to the host's UDP echo server gets no answer (the server sees
# nothing), DNS at 10.0.2.3 is still answered; and a file served by the guest
# through a published port (-p) arrives intact on the host. Runs on both
# engines (ctest: test_restrict and test_restrict_slirp).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd curl dig sha256sum python3

mkdir "$E2E_TMP/www" "$E2E_TMP/guest-www"
echo "host-secret" >"$E2E_TMP/www/index.txt"
start_http_server "$E2E_TMP/www"
make_random_file "$E2E_TMP/guest-www/blob.bin" $((3 * 1024 * 1024 + 7))
want=$(sha256_of "$E2E_TMP/guest-www/blob.bin")
upf=$E2E_TMP/udp.port
bg udp python3 "$E2E_TOOLS/udp_echo.py" server --bind 127.0.0.1 --port-file "$upf"
wait_file "$upf" 10 "$BG_PID" || fail "UDP echo server did not start"
up=$(cat "$upf")
hp=$(free_port)

cat >"$E2E_TMP/guest.sh" <<EOS
set -u
out=\$(curl -sS --max-time 5 http://$GATEWAY_IP:$HTTP_PORT/index.txt 2>&1); rc=\$?
[ \$rc = 7 ] && echo "ok: TCP to the gateway (host loopback) refused: \$out" || echo "FAIL: TCP to the gateway: exit \$rc: \$out"
python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
try:
    s.sendto(b"restricted?", ("$GATEWAY_IP", $up))
    s.recvfrom(100)
    print("FAIL: UDP to the host answered")
except (socket.timeout, ConnectionRefusedError):
    print("ok: UDP to the host gets no answer")
EOF
a=\$(dig +short +time=3 +tries=1 @$DNS_IP host.internal A)
[ "\$a" = $GATEWAY_IP ] && echo "ok: DNS at $DNS_IP answered: host.internal is \$a" || echo "FAIL: DNS: '\$a'"
echo done >"$E2E_TMP/guest.done"
cd "$E2E_TMP/guest-www" && exec python3 -m http.server --bind 0.0.0.0 8000
EOS

log "check: slipway run --restrict -p 127.0.0.1:$hp:8000 (engine $ENGINE)"
bg guest timeout -k 5 60 "$SLIPWAY" run --engine "$ENGINE" --restrict --no-forward-auto -p "127.0.0.1:$hp:8000" \
  -- sh "$E2E_TMP/guest.sh"
GUEST=$BG_PID
wait_file "$E2E_TMP/guest.done" 30 "$GUEST" || { show_log "$E2E_TMP/guest.log"; fail "the guest's checks did not finish"; }
grep -E "^(ok|FAIL):" "$E2E_TMP/guest.log" | while read -r l; do log "  guest: $l"; done
grep -q "^FAIL" "$E2E_TMP/guest.log" && fail "see the guest's lines above"
[ "$(grep -c "^ok:" "$E2E_TMP/guest.log")" = 3 ] || { show_log "$E2E_TMP/guest.log"; fail "the guest's checks are missing"; }
grep -q 'GET /index.txt' "$E2E_TMP/http.log" && fail "the host's server saw the restricted guest's request"
grep -q '^echo ' "$E2E_TMP/udp.log" && fail "the host's UDP server saw the restricted guest's datagram"
ok "guest: outbound refused, DNS answered; the host's servers saw nothing"

got=""
for ((i = 0; i < 50; i++)); do
  got=$( (curl -sS --max-time 5 "http://127.0.0.1:$hp/blob.bin" 2>/dev/null || true) | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] && break
  sleep 0.2
done
[ "$got" = "$want" ] || { show_log "$E2E_TMP/guest.log"; fail "through the published port: sha256 $got, want $want"; }
ok "published port 127.0.0.1:$hp -> guest 8000: file intact ($want)"
stop_bg "$GUEST"
pass
