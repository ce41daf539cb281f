#!/usr/bin/env bash
# TCP and UDP semantics through `slipway run`, with real kernels on both ends:
# half-close both ways (data after a FIN), RST both ways, end-to-end
# backpressure both ways (a reader that stops reading stalls the writer within
# a bounded number of bytes, slipway's memory stays bounded, and every byte
# arrives afterwards), UDP endpoint-independent mapping (one guest socket, two
# host servers, the same source port), and an unreachable network answered
# with ICMP (the guest gets "Network is unreachable" at once).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3

T=$E2E_TOOLS/tcp_semantics.py
bg host python3 "$T" host --port-file "$E2E_TMP/port"
wait_file "$E2E_TMP/port" 10 "$BG_PID" || { show_log "$E2E_TMP/host.log"; fail "host server did not start"; }
port=$(cat "$E2E_TMP/port")

# UDP servers that answer with the source port they saw.
UDP_SRV="import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1])); os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    d, a = s.recvfrom(100); s.sendto(str(a[1]).encode(), a)"
bg udp1 python3 -c "$UDP_SRV" "$E2E_TMP/u1"; bg udp2 python3 -c "$UDP_SRV" "$E2E_TMP/u2"
wait_file "$E2E_TMP/u1" 10 && wait_file "$E2E_TMP/u2" 10 || fail "UDP servers did not start"
u1=$(cat "$E2E_TMP/u1"); u2=$(cat "$E2E_TMP/u2")

cat >"$E2E_TMP/guest.sh" <<EOS
for s in upload-then-reply download-then-reply host-reset guest-reset; do
  timeout 30 python3 '$T' guest $GATEWAY_IP $port \$s || echo "FAIL: \$s exited \$?"
done
timeout 60 python3 '$T' guest $GATEWAY_IP $port slow-reader &
sleep 1.5; echo "rss_during_stall_kb=\$(awk '/VmRSS/ {print \$2}' /proc/\$SLIPWAY_PID/status 2>/dev/null)"
wait
timeout 30 python3 '$T' guest $GATEWAY_IP $port slow-writer-target
python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
ports = []
for p in ($u1, $u2):
    s.sendto(b'x', ('$GATEWAY_IP', p)); ports.append(s.recv(100).decode())
print('ok: UDP mapping is endpoint-independent: both servers saw port ' + ports[0] if ports[0] == ports[1] else 'FAIL: UDP source ports differ: ' + str(ports))
"
python3 -c "
import socket, time, errno
t0 = time.time()
try:
    socket.create_connection(('203.0.113.1', 80), timeout=5); print('FAIL: connected to an unreachable network')
except OSError as e:
    ms = int((time.time() - t0) * 1000)
    ok = e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) and ms < 1000
    print(('ok: ' if ok else 'FAIL: ') + f'unreachable network: {e.strerror} after {ms} ms')
"
EOS
# The guest reads slipway's memory use from /proc (the host's pid namespace is visible).
# shellcheck disable=SC2086
bg sw timeout -k 5 150 "$SLIPWAY" run ${SLIPWAY_RUN_ARGS:-} -- sh -c 'sleep 0.2; SLIPWAY_PID=$PPID bash '"$E2E_TMP/guest.sh"
wait "$BG_PID" || true
out=$(cat "$E2E_TMP/sw.log")
echo "$out" | sed "s/^/[$E2E_NAME]   guest: /"
sed "s/^/[$E2E_NAME]   host: /" "$E2E_TMP/host.log"
grep -q '^FAIL' <<<"$out" && fail "see the guest's lines"
grep -q '^FAIL' "$E2E_TMP/host.log" && fail "see the host's lines"
[ "$(grep -c "^ok:" <<<"$out")" = 9 ] || fail "expected 9 ok lines from the guest"
[ "$(grep -c '^ok:' "$E2E_TMP/host.log")" = 3 ] || fail "expected 3 ok lines from the host"
rss=$(sed -n 's/^rss_during_stall_kb=//p' <<<"$out")
if [ -n "$rss" ]; then
  [ "$rss" -lt 204800 ] || fail "slipway used $rss KiB while the host reader was stalled"
  ok "slipway RSS during the stall: $((rss / 1024)) MiB"
fi
pass
