#!/usr/bin/env bash
# The control API of a running `slipway run --control SOCK`, driven with
# `portfwd --control SOCK ...`: the socket is mode 0600; add a forward at run
# time and curl through it; list shows it (origin api); flows shows a live
# connection with its byte counters; a busy host port is refused with a clear
# error; remove makes the port unreachable; a bad rule is a usage error.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3 curl ss
PORTFWD=${PORTFWD:-$(dirname "$SLIPWAY")/../portfwd/portfwd}
[ -x "$PORTFWD" ] || fail "portfwd binary not found: $PORTFWD"

sock=$E2E_TMP/control.sock
mkdir -p "$E2E_TMP/www"
make_random_file "$E2E_TMP/www/f.bin" 200000
bg guest timeout -k 5 120 "$SLIPWAY" run --engine "$ENGINE" --control "$sock" --no-forward-auto -- sh -c "
  cd '$E2E_TMP/www' && python3 -m http.server 8000 >/dev/null 2>&1 &
  python3 -c 'import socket,time
s=socket.socket(); s.bind((\"0.0.0.0\",8001)); s.listen(1); c,_=s.accept(); c.sendall(b\"x\"*5000); c.recv(100); time.sleep(60)' &
  sleep 100"
GUEST=$BG_PID
for ((i = 0; i < 100; i++)); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { show_log "$E2E_TMP/guest.log"; fail "no control socket"; }
mode=$(stat -c %a "$sock")
[ "$mode" = 600 ] || fail "control socket mode $mode, want 600"
ok "control socket $sock, mode 0600"

hp=$(free_port)
out=$("$PORTFWD" --control "$sock" add "127.0.0.1:$hp:8000") || fail "add failed: $out"
ok "add: $out"
for ((i = 0; i < 50; i++)); do curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$hp/f.bin" && break; sleep 0.1; done
got=$(curl -sS --max-time 5 "http://127.0.0.1:$hp/f.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$(sha256_of "$E2E_TMP/www/f.bin")" ] || fail "file through the API forward differs"
ok "curl through the forward added at run time"
list=$("$PORTFWD" --control "$sock" list)
grep -q "127.0.0.1:$hp:8000/tcp.*api" <<<"$list" || fail "list does not show the forward: $list"
ok "list: $(grep "$hp" <<<"$list" | tr -s ' ')"

hp2=$(free_port)
"$PORTFWD" --control "$sock" add "127.0.0.1:$hp2:8001" >/dev/null || fail "second add failed"
bg client python3 -c "import socket,time
c=socket.create_connection(('127.0.0.1',$hp2)); n=0
while n<5000: n+=len(c.recv(65536))
c.sendall(b'hello'); time.sleep(30)"
flows=""
for ((i = 0; i < 50; i++)); do
  flows=$("$PORTFWD" --control "$sock" --json flows)
  python3 -c "import json,sys
f=[x for x in json.loads(sys.argv[1])['flows'] if x['guest'].endswith(':8001')]
bytes_ok = sys.argv[2] == 'slirp' or (f and f[0]['bytes_to_guest']>=5 and f[0]['bytes_to_host']>=5000)
sys.exit(0 if f and f[0]['direction']=='inbound' and f[0]['state']=='established' and bytes_ok else 1)" "$flows" "$ENGINE" && break
  sleep 0.1
done
python3 -c "import json,sys
f=[x for x in json.loads(sys.argv[1])['flows'] if x['guest'].endswith(':8001')]
print(f[0]) if f else sys.exit(1)" "$flows" >"$E2E_TMP/flow.txt" || fail "flows does not list the live inbound connection: $flows"
if [ "$ENGINE" = slirp ]; then
  # README "Engines": libslirp's connection list has no byte counters.
  grep -q "'bytes_to_host': 0" "$E2E_TMP/flow.txt" && grep -q "'state': 'established'" "$E2E_TMP/flow.txt" ||
    fail "slirp flow listing: $(cat "$E2E_TMP/flow.txt")"
else
grep -q "'bytes_to_host': 5000" "$E2E_TMP/flow.txt" || fail "byte counters wrong: $(cat "$E2E_TMP/flow.txt")"
fi
ok "flows: $(cat "$E2E_TMP/flow.txt")"
"$PORTFWD" --control "$sock" flows | grep -q "inbound" || fail "flows table lacks the inbound flow"

bp=$(free_port)
bg busy python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$bp)); s.listen(); time.sleep(60)"
wait_listen "$bp" || fail "busy-port holder did not start"
rc=0; err=$("$PORTFWD" --control "$sock" add "127.0.0.1:$bp:8000" 2>&1) || rc=$?
[ $rc = 1 ] && grep -q "in use" <<<"$err" || fail "busy port: exit $rc, '$err'"
ok "busy port refused: $err"

"$PORTFWD" --control "$sock" remove "127.0.0.1:$hp:8000" >/dev/null || fail "remove failed"
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$hp/f.bin" && fail "port $hp still answers after remove"
[ -z "$(ss -Hltn "sport = :$hp")" ] || fail "port $hp still listening after remove"
ok "removed: port $hp closed"
rc=0; err=$("$PORTFWD" --control "$sock" remove "127.0.0.1:$hp:8000" 2>&1) || rc=$?
[ $rc = 1 ] && grep -q "no such forward" <<<"$err" || fail "removing twice: exit $rc, '$err'"
ok "removing an unknown forward: $err"
rc=0; "$PORTFWD" --control "$sock" add "not-a-rule" >/dev/null 2>&1 || rc=$?
[ $rc != 0 ] || fail "a bad rule was accepted"
ok "a bad rule is refused (exit $rc)"
pass
