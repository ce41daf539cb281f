#!/usr/bin/env python3
"""UDP echo server and checking client.

  udp_echo.py server [--bind 127.0.0.1] [--port 0] --port-file FILE
  udp_echo.py client --connect HOST:PORT [--sizes 1,1400,8000,60000] [--timeout 2] [--tries 3]

The server sends every datagram back to its sender. The client sends one
datagram of each size (deterministic content, a distinct tag per datagram),
waits for the echo, and checks it is byte-identical. A lost datagram is
resent up to --tries times. Exit status 0 only if every size came back
intact.
"""
import argparse
import os
import random
import socket
import sys
import time


def server(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((args.bind, args.port))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{s.getsockname()[1]}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    while True:
        data, peer = s.recvfrom(65535)
        print(f"echo {len(data)} bytes to {peer[0]}:{peer[1]}", file=sys.stderr, flush=True)
        s.sendto(data, peer)


def payload(size, tag):
    rng = random.Random(size * 1000 + tag)
    return rng.randbytes(size)


def client(args):
    host, _, port = args.connect.rpartition(":")
    dst = (host, int(port))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect(dst)
    failures = 0
    for i, size in enumerate(int(x) for x in args.sizes.split(",")):
        got = None
        for attempt in range(args.tries):
            data = payload(size, i * 10 + attempt)
            t0 = time.monotonic()
            s.send(data)
            deadline = t0 + args.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    got = s.recv(65535)
                except socket.timeout:
                    got = None
                    break
                except ConnectionRefusedError:
                    print(f"  size {size}: ICMP port unreachable (connection refused)")
                    got = None
                    break
                if got == data:
                    break
                print(f"  size {size}: unexpected datagram of {len(got)} bytes (ignored)")
            if got == data:
                ms = (time.monotonic() - t0) * 1000
                print(f"  size {size}: echoed intact in {ms:.1f} ms (attempt {attempt + 1})")
                break
            print(f"  size {size}: no (correct) echo within {args.timeout}s, attempt {attempt + 1}")
        if got != data:
            failures += 1
            print(f"  size {size}: FAILED")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--connect")
    ap.add_argument("--sizes", default="1,1400,8000,60000")
    ap.add_argument("--timeout", type=float, default=2)
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args()
    if args.mode == "server":
        server(args)
    else:
        sys.exit(client(args))


if __name__ == "__main__":
    main()
