#!/usr/bin/env bash
# The configuration file (--config) and `slipway config check`:
# - the example files check clean and print the effective configuration;
# - each kind of error prints FILE:LINE:COLUMN: KEY: what is wrong (and what
#   is allowed) and exits 1; a missing file stops `run` with its name;
# - `run --config` applies the file's MTU and published port (curl through
#   it), and a flag overrides the file's MTU;
# - SIGHUP after editing the file's forwards and DNS names adds the new
#   forward, answers the new name, and removes
#   the old one while a connection through a third forward keeps working; a
#   broken file on SIGHUP is reported and the running forwards kept.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3 curl ss

EX=$SLIPWAY_SOURCE_DIR/examples
CFG=$E2E_TMP/slipway.toml

# ------------------------------------------------------------ config check
log "check: the example files are valid and print every setting"
for f in nat mirrored; do
  "$SLIPWAY" config check "$EX/$f.toml" >"$E2E_TMP/$f.out" 2>&1 || { cat "$E2E_TMP/$f.out"; fail "config check $f.toml failed"; }
  grep -qx "mode = \"$f\"" "$E2E_TMP/$f.out" || { cat "$E2E_TMP/$f.out"; fail "$f.toml: no mode = \"$f\""; }
  for want in '[network]' 'mtu = 65520' 'address = "10.0.2.15/24"' '[ipv6]' 'prefix = "fd00::/64"' '[dns]' \
    '[dns.names]' '[forwarding]' 'agent_port = 7777' '[limits]' 'max_tcp_flows = 16384' '[log]' 'level = "warn"' \
    '[control]' '[serve]' '[mirrored]' 'addresses = "loopback"'; do
    grep -qxF "$want" "$E2E_TMP/$f.out" || { cat "$E2E_TMP/$f.out"; fail "$f.toml: effective config lacks '$want'"; }
  done
  ok "config check $f.toml: exit 0, $(grep -c ' = ' "$E2E_TMP/$f.out") settings printed"
done

# check_error NAME 'FILE CONTENT' 'EXPECTED MESSAGE (after FILE:)'
check_error() {
  local f=$E2E_TMP/$1.toml rc=0
  printf '%s\n' "$2" >"$f"
  "$SLIPWAY" config check "$f" >"$E2E_TMP/$1.out" 2>&1 || rc=$?
  [ $rc = 1 ] || { cat "$E2E_TMP/$1.out"; fail "$1: config check exited $rc, want 1"; }
  grep -qxF "$f:$3" "$E2E_TMP/$1.out" || { cat "$E2E_TMP/$1.out"; fail "$1: want '$f:$3'"; }
  ok "$1: $(cat "$E2E_TMP/$1.out")"
}
log "check: each error names the file, line, column and key, and what is allowed"
check_error unknown-key $'[network]\nadress = "10.0.2.15/24"' \
  '2:1: network.adress: unknown key; allowed: address, gateway, dns, mac, mtu, interface, host_loopback, restrict, configure, offload, search'
check_error wrong-type $'[network]\nmtu = "big"' '2:7: network.mtu: expected an integer from 576 to 65520, got "big"'
check_error bad-upstream $'[dns]\nupstreams = ["192.0.2.1", "1.2.3"]' '2:27: dns.upstreams[1]: "1.2.3" is not ADDR[:PORT]'
check_error bad-mode 'mode = "bridge"' '1:8: mode: "bridge" is not allowed; allowed: nat, mirrored'
check_error bad-rule $'[forwarding]\nforwards = [{ host_port = 8080, guest_port = 80, protocol = "sctp" }]' \
  '2:61: forwarding.forwards[0].protocol: "sctp" is not allowed; allowed: tcp, udp'
check_error gateway-subnet $'[network]\ngateway = "10.9.0.2"' \
  '2:11: network.gateway: "10.9.0.2" is not in 10.0.2.15/24; allowed: an address in network.address'
printf '[network]\nmtu = = 3\n' >"$E2E_TMP/syntax.toml"
rc=0; "$SLIPWAY" config check "$E2E_TMP/syntax.toml" >"$E2E_TMP/syntax.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "^$E2E_TMP/syntax.toml:2:7: TOML syntax error: " "$E2E_TMP/syntax.out" ||
  { cat "$E2E_TMP/syntax.out"; fail "syntax error: exit $rc"; }
ok "syntax: $(cat "$E2E_TMP/syntax.out")"
rc=0; slipway_run --config "$E2E_TMP/none.toml" -- true >"$E2E_TMP/none.out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -qF "$E2E_TMP/none.toml: cannot read the configuration file: No such file or directory" "$E2E_TMP/none.out" ||
  { cat "$E2E_TMP/none.out"; fail "run with a missing --config file: exit $rc"; }
ok "run --config MISSING: exit $rc, $(cat "$E2E_TMP/none.out")"
rc=0; slipway_run --config "$E2E_TMP/bad-mode.toml" -- true >"$E2E_TMP/badrun.out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -qF "bad-mode.toml:1:8: mode:" "$E2E_TMP/badrun.out" || { cat "$E2E_TMP/badrun.out"; fail "run with a bad file: exit $rc"; }
ok "run --config BAD: exit $rc"

# ------------------------------------------------------------ run --config
mkdir -p "$E2E_TMP/www"
echo "hello from the guest" >"$E2E_TMP/www/index.html"
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do curl -sf -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
  return 1
}

log "check: run --config applies the file's MTU and published port"
hp=$(free_port)
cat >"$CFG" <<EOF
[network]
mtu = 9000
[forwarding]
forwards = ["$hp:8000"]
auto = false
EOF
bg guest timeout -k 5 60 "$SLIPWAY" run --config "$CFG" -- sh -c "
  cat /sys/class/net/eth0/mtu > '$E2E_TMP/mtu.txt'; cd '$E2E_TMP/www' && exec python3 -m http.server 8000"
GUEST=$BG_PID
wait_http "http://127.0.0.1:$hp/" || { show_log "$E2E_TMP/guest.log"; fail "forward $hp -> 8000 from the file never answered"; }
[ "$(curl -sS --max-time 5 "http://127.0.0.1:$hp/")" = "hello from the guest" ] || fail "wrong page through the forward"
[ "$(cat "$E2E_TMP/mtu.txt")" = 9000 ] || fail "guest MTU $(cat "$E2E_TMP/mtu.txt"), want the file's 9000"
ok "guest MTU 9000 and curl 127.0.0.1:$hp -> guest:8000, both from the file"
stop_bg "$GUEST"
mtu=$(slipway_run --config "$CFG" --mtu 1500 -- cat /sys/class/net/eth0/mtu)
[ "$mtu" = 1500 ] || fail "with --mtu 1500 over the file's 9000 the guest MTU is $mtu"
ok "--mtu 1500 overrides the file's mtu = 9000"

# ------------------------------------------------------------ SIGHUP
log "check: SIGHUP applies edited forwards without dropping a connection"
pa=$(free_port); pb=$(free_port); pc=$(free_port)
while [ "$pb" = "$pa" ]; do pb=$(free_port); done
while [ "$pc" = "$pa" ] || [ "$pc" = "$pb" ]; do pc=$(free_port); done
write_cfg() {
  cat >"$CFG" <<EOF
[forwarding]
forwards = [$1]
auto = false
[dns.names]
"reload.test" = "$2"
[log]
level = "info"
EOF
}
write_cfg "\"$pa:8001\", \"$pb:8000\"" 192.0.2.50
cat >"$E2E_TMP/echo.py" <<'EOF'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8001)); s.listen(8)
def serve(c):
    f = c.makefile("rwb")
    for line in f:
        f.write(b"echo " + line); f.flush()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# The long connection: one line, wait for $E2E_TMP/go, another line.
cat >"$E2E_TMP/client.py" <<'EOF'
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = c.makefile("rwb")
f.write(b"one\n"); f.flush()
assert f.readline() == b"echo one\n"
print("first", flush=True)
while not os.path.exists(sys.argv[2]): time.sleep(0.05)
f.write(b"two\n"); f.flush()
line = f.readline()
print("second", line.decode().strip(), flush=True)
sys.exit(0 if line == b"echo two\n" else 1)
EOF
mkdir -p "$E2E_TMP/www2"; echo "second server" >"$E2E_TMP/www2/index.html"
# slipway itself in the group (no timeout wrapper) so that SIGHUP reaches it.
bg hup "$SLIPWAY" run --config "$CFG" -- sh -c "
  python3 '$E2E_TMP/echo.py' &
  (cd '$E2E_TMP/www' && exec python3 -m http.server 8000 >/dev/null 2>&1) &
  (cd '$E2E_TMP/www2' && exec python3 -m http.server 8002 >/dev/null 2>&1) &
  while :; do dig +short +time=1 +tries=1 reload.test >'$E2E_TMP/dig.tmp' 2>&1; mv '$E2E_TMP/dig.tmp' '$E2E_TMP/dig.out'; sleep 0.1; done &
  sleep 120"
SW=$BG_PID
wait_http "http://127.0.0.1:$pb/" || { show_log "$E2E_TMP/hup.log"; fail "forward $pb -> 8000 never answered"; }
for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$pa" | grep -q . && break; sleep 0.1; done
sleep 0.5
python3 "$E2E_TMP/client.py" "$pa" "$E2E_TMP/go" >"$E2E_TMP/client.out" 2>&1 &
CLIENT=$!
for ((i = 0; i < 100; i++)); do grep -q first "$E2E_TMP/client.out" && break; sleep 0.1; done
grep -q first "$E2E_TMP/client.out" || { cat "$E2E_TMP/client.out"; fail "connection through forward $pa did not echo"; }
ok "connection open through $pa -> guest:8001"

for ((i = 0; i < 100; i++)); do grep -q 192.0.2.50 "$E2E_TMP/dig.out" 2>/dev/null && break; sleep 0.1; done
grep -q 192.0.2.50 "$E2E_TMP/dig.out" || { cat "$E2E_TMP/dig.out"; fail "the guest does not resolve reload.test to 192.0.2.50"; }
write_cfg "\"$pa:8001\", \"$pc:8002\"" 192.0.2.51
kill -HUP "$SW"
wait_http "http://127.0.0.1:$pc/" || { show_log "$E2E_TMP/hup.log"; fail "new forward $pc -> 8002 not added by SIGHUP"; }
[ "$(curl -sS --max-time 5 "http://127.0.0.1:$pc/")" = "second server" ] || fail "wrong page through the new forward"
ok "SIGHUP added forward $pc -> guest:8002"
for ((i = 0; i < 50; i++)); do [ -z "$(ss -Hltn "sport = :$pb")" ] && break; sleep 0.1; done
[ -z "$(ss -Hltn "sport = :$pb")" ] || fail "old forward $pb still listening after SIGHUP"
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$pb/" && fail "old forward $pb still answers"
ok "SIGHUP removed forward $pb"
touch "$E2E_TMP/go"
wait "$CLIENT" || { cat "$E2E_TMP/client.out"; fail "the connection through $pa broke across SIGHUP"; }
ok "connection through $pa still works after SIGHUP: $(tail -1 "$E2E_TMP/client.out")"
for ((i = 0; i < 50; i++)); do grep -q 192.0.2.51 "$E2E_TMP/dig.out" 2>/dev/null && break; sleep 0.1; done
grep -q 192.0.2.51 "$E2E_TMP/dig.out" || { cat "$E2E_TMP/dig.out"; fail "SIGHUP did not apply the new DNS name"; }
ok "SIGHUP applied the DNS names: reload.test 192.0.2.50 -> 192.0.2.51 in the guest"
grep -q "reload: added forward 127.0.0.1:$pc:8002/tcp" "$E2E_TMP/hup.log" &&
  grep -q "reload: removed forward 127.0.0.1:$pb:8000/tcp" "$E2E_TMP/hup.log" || { show_log "$E2E_TMP/hup.log"; fail "reload not logged"; }

log "check: a broken file on SIGHUP is reported and the running forwards kept"
printf '[forwarding]\nforwards = ["%s:8001"]\nauto = "no"\n' "$pa" >"$CFG"
kill -HUP "$SW"
for ((i = 0; i < 50; i++)); do grep -q "keeping the running configuration" "$E2E_TMP/hup.log" && break; sleep 0.1; done
grep -qF "SIGHUP: keeping the running configuration: $CFG:3:8: forwarding.auto: expected true or false, got \"no\"" \
  "$E2E_TMP/hup.log" || { show_log "$E2E_TMP/hup.log"; fail "broken file on SIGHUP not reported"; }
curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$pc/" || fail "forward $pc gone after a broken reload"
ok "broken file reported, forward $pc kept"
kill -0 "$SW" 2>/dev/null || fail "slipway exited"
stop_bg "$SW"
pass
