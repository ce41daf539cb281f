#!/usr/bin/env bash
# --guest-forward (QEMU's guestfwd): a guest connection to a virtual
# ADDR:PORT in its subnet reaches a host target. With --restrict (a guest
# forward is a gateway service), from inside `slipway run`:
#   - 10.0.2.100:8080=unix:SOCK: a host unix-socket server sends N hashed
#     bytes, the guest receives them intact;
#   - 10.0.2.100:8081=unix:SOCK: the guest sends N hashed bytes, the host
#     server receives them intact;
#   - 10.0.2.100:8082=unix:MISSING (no server): the guest's connect is
#     refused at once (lwip), or closed at once after it opened (slirp);
#   - 10.0.2.101:80=tcp:127.0.0.1:PORT: a host TCP server sends N hashed
#     bytes, the guest receives them intact; 10.0.2.101:81 the other way;
#   - 10.0.2.102:7=cmd:cat FILE and 10.0.2.102:8=cmd:sha256sum >SUM: a
#     command's stdout reaches the guest, the guest's bytes its stdin.
# And bad specs are refused with a clear error. Runs on both engines (ctest:
# test_guest_forward and test_guest_forward_slirp).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
require_slipway
need_cmd python3

N=$((8 * 1024 * 1024 + 13))
BLOB=$E2E_TOOLS/blob.py
want_in=$(python3 "$BLOB" gen --bytes "$N" --seed 3 | sed 's/ .*//; s/sha256=//')
want_out=$(python3 "$BLOB" gen --bytes "$N" --seed 4 | sed 's/ .*//; s/sha256=//')
want_tcp=$(python3 "$BLOB" gen --bytes "$N" --seed 5 | sed 's/ .*//; s/sha256=//')
want_tcp2=$(python3 "$BLOB" gen --bytes "$N" --seed 6 | sed 's/ .*//; s/sha256=//')
digest() { sed -n 's/^sha256=\([0-9a-f]*\) .*/\1/p' "$1"; }

# Bad specs: refused before anything starts, naming the option.
for spec in "10.0.2.100:8080" "10.0.2.100:0=unix:/x" "10.0.2.100:80=unix:rel" "10.0.2.100:80=udp:1.2.3.4:5" \
            "10.0.2.2:80=unix:/x" "10.9.9.9:80=unix:/x"; do
  out=$(slipway_run --guest-forward "$spec" -- true 2>&1) && fail "'$spec' was accepted"
  grep -q -- "--guest-forward" <<<"$out" || fail "'$spec': the error does not name --guest-forward: $out"
done
ok "bad specs refused naming --guest-forward ($(echo "$out" | head -1))"

bg srv_in python3 "$BLOB" send --listen-unix "$E2E_TMP/in.sock" --bytes "$N" --seed 3
bg srv_out python3 "$BLOB" recv --listen-unix "$E2E_TMP/out.sock"
for ((i = 0; i < 500; i++)); do [ -S "$E2E_TMP/in.sock" ] && [ -S "$E2E_TMP/out.sock" ] && break; sleep 0.02; done
[ -S "$E2E_TMP/in.sock" ] && [ -S "$E2E_TMP/out.sock" ] || fail "the unix servers did not start"
fwd=(--guest-forward "10.0.2.100:8080=unix:$E2E_TMP/in.sock" --guest-forward "10.0.2.100:8081=unix:$E2E_TMP/out.sock"
     --guest-forward "10.0.2.100:8082=unix:$E2E_TMP/missing.sock")
tpf=$E2E_TMP/tcp.port
bg srv_tcp python3 "$BLOB" send --listen 127.0.0.1:0 --port-file "$tpf" --bytes "$N" --seed 5
wait_file "$tpf" 10 "$BG_PID" || fail "TCP server did not start"
fwd+=(--guest-forward "10.0.2.101:80=tcp:127.0.0.1:$(cat "$tpf")")
tpf2=$E2E_TMP/tcp2.port
bg srv_tcp2 python3 "$BLOB" recv --listen 127.0.0.1:0 --port-file "$tpf2"
wait_file "$tpf2" 10 "$BG_PID" || fail "TCP server (2) did not start"
fwd+=(--guest-forward "10.0.2.101:81=tcp:127.0.0.1:$(cat "$tpf2")")
make_random_file "$E2E_TMP/cmd_in.bin" "$N"
fwd+=(--guest-forward "10.0.2.102:7=cmd:cat $E2E_TMP/cmd_in.bin" --guest-forward "10.0.2.102:8=cmd:sha256sum >$E2E_TMP/cmd_out.sum")

# lwip refuses the guest's SYN; libslirp accepts the connection, then closes
# it at once (README "Engines").
cat >"$E2E_TMP/missing.py" <<'EOP'
import socket, sys, time
t = time.monotonic()
try:
    s = socket.create_connection(("10.0.2.100", 8082), timeout=5)
    if sys.argv[1] == "lwip":
        print("FAIL: connected to a forward with no server")
        sys.exit()
    try:
        b = s.recv(10)
        print("ok: closed after %.2f s" % (time.monotonic() - t) if not b else "FAIL: got %r" % b)
    except ConnectionResetError:
        print("ok: reset after %.2f s" % (time.monotonic() - t))
except ConnectionRefusedError:
    print("ok: refused after %.2f s" % (time.monotonic() - t))
except OSError as e:
    print("FAIL: %s" % e)
EOP
cat >"$E2E_TMP/guest.sh" <<EOS
set -u
python3 $BLOB recv --connect 10.0.2.100:8080 --no-retry --io-timeout 30 >$E2E_TMP/guest_in.out 2>&1
python3 $BLOB send --connect 10.0.2.100:8081 --no-retry --io-timeout 30 --bytes $N --seed 4 >$E2E_TMP/guest_out.out 2>&1
python3 $E2E_TMP/missing.py $ENGINE >$E2E_TMP/guest_missing.out 2>&1
python3 $BLOB recv --connect 10.0.2.101:80 --no-retry --io-timeout 30 >$E2E_TMP/guest_tcp.out 2>&1
python3 $BLOB send --connect 10.0.2.101:81 --no-retry --io-timeout 30 --bytes $N --seed 6 >$E2E_TMP/guest_tcp2.out 2>&1
python3 $BLOB recv --connect 10.0.2.102:7 --no-retry --io-timeout 30 >$E2E_TMP/guest_cmd.out 2>&1
python3 $BLOB send --connect 10.0.2.102:8 --no-retry --io-timeout 30 --bytes $N --seed 8 >$E2E_TMP/guest_cmd2.out 2>&1
echo done >$E2E_TMP/guest.done
EOS

log "check: slipway run --restrict ${fwd[*]} (engine $ENGINE)"
bg guest timeout -k 5 90 "$SLIPWAY" run --engine "$ENGINE" --restrict --no-forward-auto "${fwd[@]}" -- sh "$E2E_TMP/guest.sh"
GUEST=$BG_PID
wait_file "$E2E_TMP/guest.done" 80 "$GUEST" || { show_log "$E2E_TMP/guest.log"; fail "the guest's checks did not finish"; }

got=$(digest "$E2E_TMP/guest_in.out")
[ "$got" = "$want_in" ] || { cat "$E2E_TMP/guest_in.out"; fail "host unix server -> guest: sha256 '$got', want $want_in"; }
ok "unix:in.sock -> guest via 10.0.2.100:8080: $N bytes intact ($got)"
for ((i = 0; i < 250; i++)); do grep -q sha256= "$E2E_TMP/srv_out.log" && break; sleep 0.02; done
got=$(digest "$E2E_TMP/srv_out.log")
[ "$got" = "$want_out" ] || { cat "$E2E_TMP/guest_out.out" "$E2E_TMP/srv_out.log"; fail "guest -> host unix server: sha256 '$got', want $want_out"; }
ok "guest -> unix:out.sock via 10.0.2.100:8081: $N bytes intact ($got)"
grep -q "^ok:" "$E2E_TMP/guest_missing.out" || { cat "$E2E_TMP/guest_missing.out"; fail "a forward without a server"; }
ok "forward to a missing socket: $(cat "$E2E_TMP/guest_missing.out")"
got=$(digest "$E2E_TMP/guest_tcp.out")
[ "$got" = "$want_tcp" ] || { cat "$E2E_TMP/guest_tcp.out"; fail "host TCP server -> guest: sha256 '$got', want $want_tcp"; }
ok "tcp:127.0.0.1 -> guest via 10.0.2.101:80: $N bytes intact ($got)"
for ((i = 0; i < 250; i++)); do grep -q sha256= "$E2E_TMP/srv_tcp2.log" && break; sleep 0.02; done
got=$(digest "$E2E_TMP/srv_tcp2.log")
[ "$got" = "$want_tcp2" ] || { cat "$E2E_TMP/guest_tcp2.out" "$E2E_TMP/srv_tcp2.log"; fail "guest -> host TCP server: sha256 '$got', want $want_tcp2"; }
ok "guest -> tcp:127.0.0.1 via 10.0.2.101:81: $N bytes intact ($got)"
want_cmd=$(sha256_of "$E2E_TMP/cmd_in.bin")
got=$(digest "$E2E_TMP/guest_cmd.out")
[ "$got" = "$want_cmd" ] || { cat "$E2E_TMP/guest_cmd.out"; fail "cmd:cat -> guest: sha256 '$got', want $want_cmd"; }
ok "cmd:cat FILE -> guest via 10.0.2.102:7: $N bytes intact ($got)"
want_cmd2=$(python3 "$BLOB" gen --bytes "$N" --seed 8 | sed 's/ .*//; s/sha256=//')
got=$(cut -d' ' -f1 "$E2E_TMP/cmd_out.sum" 2>/dev/null)
[ "$got" = "$want_cmd2" ] || { cat "$E2E_TMP/guest_cmd2.out"; fail "guest -> cmd:sha256sum: '$got', want $want_cmd2"; }
ok "guest -> cmd:sha256sum via 10.0.2.102:8: $N bytes intact ($got)"
stop_bg "$GUEST"
pass
