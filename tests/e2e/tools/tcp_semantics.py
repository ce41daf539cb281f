#!/usr/bin/env python3
"""Host and guest halves of test_tcp_semantics.sh.

  tcp_semantics.py host --port-file F    serves one scenario per connection,
                                         chosen by the first line the client sends
  tcp_semantics.py guest HOST PORT SCENARIO   runs one scenario against it

Each prints one line "ok: ..." or "FAIL: ..." (the host side to its log).
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time

MB = 1 << 20

# Backpressure bounds. Bytes a stalled reader lets the writer push sit in
# fixed places: the writer's send buffer and the reader's receive buffer
# (set here, no autotuning; the kernel doubles what is asked), slipway's
# host socket (autotuned up to tcp_wmem's or tcp_rmem's maximum), lwIP's
# window or send buffer (TCP_WND = TCP_SND_BUF = 2 MiB, lwipopts.h) and at
# most one host read (256 KiB). The limit is their sum plus 1 MiB, not a
# number that happened to pass (without these settings, buffers autotuned to
# a host's large tcp_[rw]mem let 104 MB through in one container).
SNDBUF = RCVBUF = 1 * MB
LWIP_BUF = 2 * MB


def sysctl_max(name):
    with open(f"/proc/sys/net/ipv4/{name}") as f:
        return int(f.read().split()[2])


def stall_bound(slipway_socket_sysctl):
    return 2 * SNDBUF + 2 * RCVBUF + sysctl_max(slipway_socket_sysctl) + LWIP_BUF + 256 * 1024 + MB


def recv_all(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            return n, h.hexdigest()
        h.update(b)
        n += len(b)


def data(n):
    block = bytes(range(256)) * 4096  # 1 MiB
    h = hashlib.sha256()
    out = []
    left = n
    while left:
        k = min(left, len(block))
        out.append(block[:k])
        h.update(block[:k])
        left -= k
    return out, h.hexdigest()


def readline(c):
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(1)
        if not b:
            break
        line += b
    return line.decode().strip()


# ----------------------------------------------------------------- host side
def host_conn(c):
    what = readline(c)
    try:
        if what == "upload-then-reply":           # guest sends, half-closes, reads our reply
            n, h = recv_all(c)
            c.sendall(f"{n} {h}\n".encode())
            c.close()
        elif what == "download-then-reply":       # we send and half-close; guest replies after EOF
            chunks, h = data(8 * MB)
            for ch in chunks:
                c.sendall(ch)
            c.shutdown(socket.SHUT_WR)
            reply = readline(c)
            print("ok: host got reply after its FIN" if reply == f"{8 * MB} {h}" else f"FAIL: host got '{reply}'",
                  flush=True)
            c.close()
        elif what == "host-reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        elif what == "guest-reset":
            c.settimeout(10)
            try:
                b = c.recv(100)
                print("FAIL: host saw EOF, not a reset" if b == b"" else "FAIL: host got data", flush=True)
            except ConnectionResetError:
                print("ok: host saw the guest's reset", flush=True)
        elif what == "slow-reader":               # read nothing for 4 s, then everything
            time.sleep(4)
            n, h = recv_all(c)
            c.sendall(f"{n} {h}\n".encode())
            c.close()
        elif what == "slow-writer-target":        # we send 256 MiB to a guest that pauses reading
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            c.setblocking(False)
            chunks, h = data(256 * MB)
            sent, t0 = 0, time.time()
            buf = b"".join(chunks[:4])
            while time.time() - t0 < 3:
                try:
                    sent += c.send(buf)
                except BlockingIOError:
                    time.sleep(0.01)
            print(f"info: host could send {sent // MB} MiB while the guest did not read", flush=True)
            bound = stall_bound("tcp_rmem")
            print(f"ok: host->guest stalled within {bound // 1024} KiB" if sent < bound else
                  f"FAIL: host sent {sent} bytes to a stalled guest (bound {bound})", flush=True)
            c.setblocking(True)
            c.close()
        else:
            print(f"FAIL: unknown scenario '{what}'", flush=True)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: host {what}: {e!r}", flush=True)


def host(port_file):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # inherited by every connection
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    while True:
        c, _ = s.accept()
        threading.Thread(target=host_conn, args=(c,), daemon=True).start()


# ---------------------------------------------------------------- guest side
def guest(hostaddr, port, what):
    c = socket.socket()
    c.settimeout(20)
    if what == "slow-reader":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    if what == "slow-writer-target":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    c.connect((hostaddr, port))
    c.sendall(what.encode() + b"\n")
    if what == "upload-then-reply":
        chunks, h = data(8 * MB)
        for ch in chunks:
            c.sendall(ch)
        c.shutdown(socket.SHUT_WR)
        reply = readline(c)
        print("ok: half-close guest->host, reply after FIN" if reply == f"{8 * MB} {h}" else f"FAIL: reply '{reply}'")
    elif what == "download-then-reply":
        n, h = recv_all(c)
        c.sendall(f"{n} {h}\n".encode())
        c.close()
        print(f"ok: half-close host->guest, {n} bytes then EOF, reply sent")
    elif what == "host-reset":
        try:
            b = c.recv(100)
            print("FAIL: guest saw EOF, not a reset" if b == b"" else "FAIL: guest got data")
        except ConnectionResetError:
            print("ok: guest saw the host's reset")
    elif what == "guest-reset":
        time.sleep(0.3)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        print("ok: guest reset sent")
    elif what == "slow-reader":
        chunks, h = data(256 * MB)
        stream = memoryview(b"".join(chunks))
        c.setblocking(False)
        sent, t0 = 0, time.time()
        while time.time() - t0 < 3:
            try:
                sent += c.send(stream[sent:sent + 4 * MB])
            except BlockingIOError:
                time.sleep(0.01)
        print(f"info: guest could send {sent // MB} MiB while the host did not read")
        bound = stall_bound("tcp_wmem")
        print(f"ok: guest->host stalled within {bound // 1024} KiB" if sent < bound else
              f"FAIL: guest sent {sent} bytes to a stalled host (bound {bound})")
        c.setblocking(True)
        c.sendall(stream[sent:])  # the rest of the same byte stream
        c.shutdown(socket.SHUT_WR)
        reply = readline(c)
        print("ok: all 256 MiB arrived intact after the stall" if reply == f"{256 * MB} {h}" else f"FAIL: '{reply}'")
    elif what == "slow-writer-target":
        time.sleep(3.5)
        n, _ = recv_all(c)
        print(f"ok: guest read {n // MB} MiB after its pause")


if __name__ == "__main__":
    if sys.argv[1] == "host":
        host(sys.argv[3])
    else:
        guest(sys.argv[2], int(sys.argv[3]), sys.argv[4])
