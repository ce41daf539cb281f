#!/usr/bin/env python3
"""Sends raw DNS bytes over UDP (or TCP with --tcp) and reports the reply.

Used by tests/e2e/test_dns_proxy.sh for malformed queries that dig cannot
make. Prints "rcode=N id=N tc=N size=N" for a reply or "noreply" after the
timeout; exit status 0 either way (the test decides what it expects).

  dns_raw.py --server 127.0.0.2 --port 5301 --hex 1234010000010000...
"""
import argparse
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--hex", required=True, help="message bytes in hex")
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--timeout", type=float, default=1.0)
    a = ap.parse_args()
    msg = bytes.fromhex(a.hex)
    try:
        if a.tcp:
            s = socket.create_connection((a.server, a.port), timeout=a.timeout)
            s.sendall(struct.pack("!H", len(msg)) + msg)
            hdr = b""
            while len(hdr) < 2:
                chunk = s.recv(2 - len(hdr))
                if not chunk:
                    print("noreply")
                    return 0
                hdr += chunk
            (n,) = struct.unpack("!H", hdr)
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    break
                data += chunk
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(a.timeout)
            s.sendto(msg, (a.server, a.port))
            data, _ = s.recvfrom(65535)
    except (socket.timeout, ConnectionError):
        print("noreply")
        return 0
    if len(data) < 12:
        print("short size=%d" % len(data))
        return 0
    rid, flags = struct.unpack("!HH", data[:4])
    print("rcode=%d id=%d tc=%d size=%d" % (flags & 0xF, rid, (flags >> 9) & 1, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
