#!/usr/bin/env bash
# portfwd-agent (the guest agent for VMs) against a recorder standing in for
# slipway, all on the private test host's 127.0.0.1:
#   - the first line after connecting lists every listener, as valid JSON;
#   - a new TCP listener (0.0.0.0) and UDP socket ([::]) appear in a new line;
#   - closing the TCP listener sends a line without it;
#   - after the recorder restarts, the agent reconnects and sends the full
#     list again.
# PORTFWD_AGENT: the binary (default: next to $SLIPWAY's build dir).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
: "${PORTFWD_AGENT:=$(dirname "$SLIPWAY")/../portfwd/portfwd-agent}"
[ -x "$PORTFWD_AGENT" ] || fail "portfwd-agent not found: $PORTFWD_AGENT (build the 'portfwd-agent' target, or set PORTFWD_AGENT)"

cat >"$E2E_TMP/recorder.py" <<'EOF'
# Accepts connections on 127.0.0.1:PORT and appends every line received to
# FILE (flushed at once).
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(4)
while True:
    c, _ = s.accept()
    buf = b""
    with open(path, "ab") as out:
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                out.write(line + b"\n"); out.flush()
    c.close()
EOF
cat >"$E2E_TMP/check.py" <<'EOF'
# check.py FILE N WANT... : exit 0 if line N (1-based; 0 = last) of FILE is
# valid JSON of the agent's shape and contains every WANT ("tcp 4 0.0.0.0 80")
# and no "!tcp 4 0.0.0.0 80".
import json, sys
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2])
if not lines or n > len(lines): sys.exit(1)
doc = json.loads(lines[n - 1] if n else lines[-1])
have = {f'{l["proto"]} {l["family"]} {l["address"]} {l["port"]}' for l in doc["listeners"]}
assert all(set(l) == {"proto", "family", "address", "port"} for l in doc["listeners"])
for w in sys.argv[3:]:
    if w.startswith("!"):
        if w[1:] in have: sys.exit(1)
    elif w not in have: sys.exit(1)
EOF

# wait_line N WANT...: poll (10 s) until line N satisfies check.py.
wait_line() {
  local i
  for ((i = 0; i < 200; i++)); do
    python3 "$E2E_TMP/check.py" "$E2E_TMP/lines" "$@" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

port=$(free_port)
: >"$E2E_TMP/lines"
bg recorder python3 "$E2E_TMP/recorder.py" "$port" "$E2E_TMP/lines"
rec_pid=$BG_PID
wait_listen "$port" || fail "recorder did not listen"
bg agent "$PORTFWD_AGENT" --gateway 127.0.0.1 --port "$port" --verbose

wait_line 1 "tcp 4 127.0.0.1 $port" || { show_log "$E2E_TMP/agent.log"; cat "$E2E_TMP/lines"; fail "no first line listing the recorder"; }
ok "first line: $(head -1 "$E2E_TMP/lines")"

tport=$(free_port); uport=$(free_port udp)
bg listeners python3 -c "
import socket, time
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(('0.0.0.0', $tport)); t.listen()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::', $uport))
time.sleep(3600)"
lst_pid=$BG_PID
wait_line 0 "tcp 4 0.0.0.0 $tport" "udp 6 :: $uport" "tcp 4 127.0.0.1 $port" ||
  { show_log "$E2E_TMP/agent.log"; cat "$E2E_TMP/lines"; fail "new listeners not reported"; }
ok "new listeners reported: tcp 0.0.0.0:$tport, udp [::]:$uport"

stop_bg "$lst_pid"
wait_line 0 "!tcp 4 0.0.0.0 $tport" "!udp 6 :: $uport" "tcp 4 127.0.0.1 $port" ||
  { show_log "$E2E_TMP/agent.log"; cat "$E2E_TMP/lines"; fail "closed listeners still reported"; }
ok "closed listeners gone from the next line"

before=$(wc -l <"$E2E_TMP/lines")
stop_bg "$rec_pid" KILL
sleep 0.5
bg recorder2 python3 "$E2E_TMP/recorder.py" "$port" "$E2E_TMP/lines"
wait_listen "$port" || fail "recorder did not restart"
wait_line $((before + 1)) "tcp 4 127.0.0.1 $port" ||
  { show_log "$E2E_TMP/agent.log"; cat "$E2E_TMP/lines"; fail "agent did not reconnect and resend"; }
ok "reconnected after the recorder restarted and sent the full list again"
grep -q "connected to" "$E2E_TMP/agent.log" || fail "agent log has no connect"
pass
