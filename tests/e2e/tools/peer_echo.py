#!/usr/bin/env python3
"""A TCP server that answers each connection with the client's address as it
sees it ("peer=ADDR:PORT\\n"), then closes. Usage: peer_echo.py --port P
[--bind ADDR] [--count N]"""
import argparse
import socket

ap = argparse.ArgumentParser()
ap.add_argument("--bind", default="0.0.0.0")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--count", type=int, default=100)
a = ap.parse_args()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((a.bind, a.port))
s.listen(16)
for _ in range(a.count):
    c, addr = s.accept()
    c.sendall(f"peer={addr[0]}:{addr[1]}\n".encode())
    c.close()
