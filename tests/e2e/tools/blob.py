#!/usr/bin/env python3
"""Stream or sink bulk TCP data and report its SHA-256.

  blob.py send (--listen HOST:PORT [--port-file F] | --connect HOST:PORT) --bytes N [--seed S]
  blob.py recv (--listen HOST:PORT [--port-file F] | --connect HOST:PORT)
  (either also with --listen-unix PATH: one connection on a unix socket)
  blob.py gen --bytes N [--seed S]          (expected digest, no network)

`send --rate-mbps R` paces the data at about R MB/s (a transfer that lasts
while something else happens).

`send` writes N bytes of deterministic pseudo-random data (a function of
--seed), then closes; `recv` reads until EOF. Both print one line:
  sha256=<hex> bytes=<n> seconds=<s> MBps=<rate>
With --listen, one connection is served and the program exits. An IPv6
address is written without brackets (::1:0, fd00::2:8080). A listening
port of 0 picks a free port, which is written to --port-file once listening.
"""
import argparse
import hashlib
import random
import socket
import sys
import time

POOL = (8 << 20) + 4099  # odd size, so chunk offsets never line up
CHUNK = 256 << 10


def chunks(nbytes, seed):
    rng = random.Random(seed)
    pool = memoryview(rng.randbytes(POOL))
    left = nbytes
    while left > 0:
        n = min(CHUNK, left)
        off = rng.randrange(POOL - n)
        yield pool[off:off + n]
        left -= n


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def open_conn(args):
    if args.connect:
        deadline = time.monotonic() + args.connect_timeout
        while True:
            try:
                return socket.create_connection(hostport(args.connect), timeout=args.connect_timeout)
            except OSError as e:
                if time.monotonic() > deadline or args.no_retry:
                    sys.exit(f"blob.py: connect {args.connect}: {e}")
                time.sleep(0.1)
    if args.listen_unix:
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(args.listen_unix + ".tmp")  # renamed once listening: its name means ready
        ls.listen(1)
        import os
        os.rename(args.listen_unix + ".tmp", args.listen_unix)
        c, _ = ls.accept()
        ls.close()
        return c
    host, port = hostport(args.listen)
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{ls.getsockname()[1]}\n")
        import os
        os.rename(args.port_file + ".tmp", args.port_file)
    c, _ = ls.accept()
    ls.close()
    return c


def report(h, n, t0):
    dt = max(time.monotonic() - t0, 1e-9)
    print(f"sha256={h.hexdigest()} bytes={n} seconds={dt:.3f} MBps={n / dt / 1e6:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["send", "recv", "gen"])
    ap.add_argument("--listen")
    ap.add_argument("--connect")
    ap.add_argument("--listen-unix")
    ap.add_argument("--port-file")
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connect-timeout", type=float, default=10)
    ap.add_argument("--no-retry", action="store_true")
    ap.add_argument("--io-timeout", type=float, default=60,
                    help="fail if no progress for this many seconds")
    ap.add_argument("--rate-mbps", type=float, default=0,
                    help="send: pace at about this many MB/s (0: as fast as possible)")
    args = ap.parse_args()
    h = hashlib.sha256()
    if args.mode == "gen":
        t0 = time.monotonic()
        for c in chunks(args.bytes, args.seed):
            h.update(c)
        report(h, args.bytes, t0)
        return
    if bool(args.listen) + bool(args.connect) + bool(args.listen_unix) != 1:
        ap.error("exactly one of --listen/--listen-unix/--connect")
    conn = open_conn(args)
    conn.settimeout(args.io_timeout)
    t0 = time.monotonic()
    n = 0
    if args.mode == "send":
        for c in chunks(args.bytes, args.seed):
            conn.sendall(c)
            h.update(c)
            n += len(c)
            if args.rate_mbps > 0:
                ahead = n / (args.rate_mbps * 1e6) - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        conn.shutdown(socket.SHUT_WR)
        # Wait for the peer to close, so that it has read everything.
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
    else:
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        while True:
            k = conn.recv_into(buf)
            if not k:
                break
            h.update(mv[:k])
            n += k
    conn.close()
    report(h, n, t0)


if __name__ == "__main__":
    main()
