#!/usr/bin/env python3
"""Pipelines several DNS queries on one TCP connection and checks that each
answer comes back (in any order) with its own ID and NOERROR.

  dns_pipeline.py --server 127.0.0.2 --port 5301 a.test b.test ...
Exit 0 when every query got its answer, 1 otherwise.
"""
import argparse
import socket
import struct
import sys


def query(qid, name, qtype=1):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", qtype, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    s = socket.create_connection((a.server, a.port), timeout=3)
    want = {}
    buf = b""
    for i, name in enumerate(a.names):
        qid = 0x1000 + i
        want[qid] = name
        q = query(qid, name)
        buf += struct.pack("!H", len(q)) + q
    s.sendall(buf)  # all at once: pipelined
    data = b""
    got = {}
    while len(got) < len(want):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 2:
            (n,) = struct.unpack("!H", data[:2])
            if len(data) < 2 + n:
                break
            msg, data = data[2:2 + n], data[2 + n:]
            rid, flags, _, an = struct.unpack("!HHHH", msg[:8])
            got[rid] = (flags & 0xF, an)
    ok = True
    for qid, name in want.items():
        if qid not in got or got[qid][0] != 0 or got[qid][1] < 1:
            print("missing or bad answer for %s (id %d): %s" % (name, qid, got.get(qid)))
            ok = False
    print("pipelined %d queries, %d answers" % (len(want), len(got)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
