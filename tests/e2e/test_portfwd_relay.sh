#!/usr/bin/env bash
# The standalone `portfwd` relay between two addresses of the private test
# host (no guest involved), in splice mode and in read/write mode:
#   - 1,000 concurrent TCP connections, each sending a distinct payload and
#     half-closing; the server answers only after the EOF, so every reply
#     proves the half-close went through and the other direction stayed open;
#   - 1 GiB through one connection, SHA-256 equal on both ends (splice mode);
#   - a reset from the server reaches the client as a reset;
#   - UDP datagrams of 1, 1400, 8000 and 60000 bytes round trip (--udp).
# PORTFWD: the binary (default: next to $SLIPWAY's build dir).
. "$(dirname "$0")/lib.sh"
E2E_TIMEOUT=${E2E_TIMEOUT:-400}
e2e_init "$@"
: "${PORTFWD:=$(dirname "$SLIPWAY")/../portfwd/portfwd}"
[ -x "$PORTFWD" ] || fail "portfwd binary not found: $PORTFWD (build the 'portfwd' target, or set PORTFWD)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- helpers
cat >"$E2E_TMP/peer.py" <<'EOF'
"""TCP test peers for the relay.

  peer.py server --port-file F   first byte of each connection picks the mode:
      E: read until EOF, then send back b"ok:" + the payload and close
      S: read until EOF hashing, then send back the SHA-256 hex digest
      R: read 1 byte, then reset the connection (SO_LINGER 0)
  peer.py many  --connect H:P --count N   N concurrent E connections
  peer.py bulk  --connect H:P --bytes N   one S connection of N bytes
  peer.py reset --connect H:P             one R connection; expects a reset
"""
import argparse, asyncio, hashlib, os, random, socket, struct, sys, time

async def handle(reader, writer):
    try:
        mode = await reader.readexactly(1)
        if mode == b"E":
            data = await reader.read(-1)
            writer.write(b"ok:" + data)
        elif mode == b"S":
            h, n = hashlib.sha256(), 0
            while True:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk); n += len(chunk)
            writer.write(f"{n} {h.hexdigest()}".encode())
        elif mode == b"R":
            await reader.readexactly(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError) as e:
        print(f"server: {e!r}", file=sys.stderr)
    writer.close()

async def server(args):
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port = srv.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    await srv.serve_forever()

def target(args):
    host, _, port = args.connect.rpartition(":")
    return host, int(port)

async def one(i, host, port):
    rng = random.Random(i)
    payload = f"connection {i}:".encode() + rng.randbytes(rng.randrange(1, 20000))
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"E" + payload)
    await writer.drain()
    writer.write_eof()                      # half-close
    reply = await reader.read(-1)
    writer.close()
    return reply == b"ok:" + payload

async def many(args):
    host, port = target(args)
    t0 = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(one(i, host, port) for i in range(args.count)), return_exceptions=True), 120)
    bad = [r for r in results if r is not True]
    print(f"{args.count - len(bad)}/{args.count} connections echoed their own payload after half-close "
          f"in {time.monotonic() - t0:.2f} s")
    for r in bad[:5]:
        print(f"  failure: {r!r}")
    return 0 if not bad else 1

def bulk(args):
    host, port = target(args)
    block = random.Random(1).randbytes(1 << 20)
    h = hashlib.sha256()
    s = socket.create_connection((host, port), timeout=60)
    t0 = time.monotonic()
    s.sendall(b"S")
    left = args.bytes
    while left > 0:
        chunk = block[: min(left, len(block))]
        s.sendall(chunk); h.update(chunk); left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        reply += d
    dt = time.monotonic() - t0
    want = f"{args.bytes} {h.hexdigest()}"
    print(f"sent {args.bytes} bytes in {dt:.2f} s ({args.bytes * 8 / dt / 1e9:.2f} Gbit/s); "
          f"sha256 {'equal' if reply.decode() == want else 'DIFFERENT: ' + reply.decode()}")
    return 0 if reply.decode() == want else 1

def reset(args):
    host, port = target(args)
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"Rx")
    try:
        d = s.recv(10)
        print(f"expected a reset, got {d!r}")
        return 1
    except ConnectionResetError:
        print("client saw the reset")
        return 0

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--port-file"); p.add_argument("--connect")
p.add_argument("--count", type=int, default=1000); p.add_argument("--bytes", type=int, default=1 << 30)
a = p.parse_args()
if a.mode == "server":
    asyncio.run(server(a))
elif a.mode == "many":
    sys.exit(asyncio.run(many(a)))
else:
    sys.exit({"bulk": bulk, "reset": reset}[a.mode](a))
EOF

pf=$E2E_TMP/server.port
bg server python3 "$E2E_TMP/peer.py" server --port-file "$pf"
wait_file "$pf" 10 "$BG_PID" || { show_log "$E2E_TMP/server.log"; fail "TCP test server did not start"; }
server_port=$(cat "$pf")

# start_relay NAME ARGS...: starts portfwd, waits for its listener; sets RELAY_PORT.
start_relay() {
  local name=$1; shift
  RELAY_PORT=$(free_port "${RELAY_PROTO:-tcp}")
  bg "$name" "$PORTFWD" --log-level info "$@" "127.0.0.1:$RELAY_PORT" "${RELAY_TARGET}"
  RELAY_PID=$BG_PID
  wait_listen "$RELAY_PORT" "${RELAY_PROTO:-tcp}" || { show_log "$E2E_TMP/$name.log"; fail "portfwd ($name) did not listen"; }
}

RELAY_TARGET=127.0.0.1:$server_port
for mode in splice copy; do
  args=()
  [ "$mode" = copy ] && args=(--no-splice)
  start_relay "relay-$mode" "${args[@]}"
  log "[$mode] 1000 concurrent connections with half-close through 127.0.0.1:$RELAY_PORT"
  out=$(timeout 150 python3 "$E2E_TMP/peer.py" many --connect "127.0.0.1:$RELAY_PORT" --count 1000 2>&1) || {
    echo "$out"; show_log "$E2E_TMP/relay-$mode.log"; fail "[$mode] concurrent connections failed"; }
  ok "[$mode] $out"

  if [ "$mode" = splice ]; then
    log "[$mode] 1 GiB through one connection"
    out=$(timeout 150 python3 "$E2E_TMP/peer.py" bulk --connect "127.0.0.1:$RELAY_PORT" --bytes $((1 << 30)) 2>&1) || {
      echo "$out"; show_log "$E2E_TMP/relay-$mode.log"; fail "[$mode] 1 GiB transfer failed"; }
    ok "[$mode] $out"
  else
    log "[$mode] 64 MiB through one connection"
    out=$(timeout 60 python3 "$E2E_TMP/peer.py" bulk --connect "127.0.0.1:$RELAY_PORT" --bytes $((64 << 20)) 2>&1) || {
      echo "$out"; show_log "$E2E_TMP/relay-$mode.log"; fail "[$mode] 64 MiB transfer failed"; }
    ok "[$mode] $out"
  fi

  log "[$mode] a reset from the server reaches the client"
  out=$(timeout 20 python3 "$E2E_TMP/peer.py" reset --connect "127.0.0.1:$RELAY_PORT" 2>&1) || {
    echo "$out"; show_log "$E2E_TMP/relay-$mode.log"; fail "[$mode] reset not propagated"; }
  ok "[$mode] $out"

  # Clean exit on SIGTERM.
  kill -TERM "$RELAY_PID"
  rc=0; wait "$RELAY_PID" || rc=$?
  [ "$rc" = 0 ] || { show_log "$E2E_TMP/relay-$mode.log"; fail "[$mode] portfwd exited with $rc on SIGTERM"; }
  grep -q "connections" "$E2E_TMP/relay-$mode.log" || fail "[$mode] no summary at exit"
  ok "[$mode] exits 0 on SIGTERM: $(grep -o '[0-9]* connections.*' "$E2E_TMP/relay-$mode.log" | tail -1)"
done

# ---------------------------------------------------------------- UDP
upf=$E2E_TMP/udp.port
bg udp python3 "$E2E_TOOLS/udp_echo.py" server --bind 127.0.0.1 --port-file "$upf"
wait_file "$upf" 10 "$BG_PID" || { show_log "$E2E_TMP/udp.log"; fail "UDP echo server did not start"; }
RELAY_TARGET=127.0.0.1:$(cat "$upf") RELAY_PROTO=udp start_relay relay-udp --udp --udp-timeout 5
log "UDP round trip through 127.0.0.1:$RELAY_PORT"
timeout 30 python3 "$E2E_TOOLS/udp_echo.py" client --connect "127.0.0.1:$RELAY_PORT" \
  --sizes 1,1400,8000,60000 --timeout 2 --tries 3 >"$E2E_TMP/udp-client.log" 2>&1 || {
  show_log "$E2E_TMP/udp-client.log"; show_log "$E2E_TMP/relay-udp.log"; fail "UDP round trip through portfwd failed"; }
ok "UDP datagrams of 1, 1400, 8000 and 60000 bytes came back intact"
pass
