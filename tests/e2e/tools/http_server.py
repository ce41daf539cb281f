#!/usr/bin/env python3
"""Threaded static HTTP server for the e2e tests.

  http_server.py --dir DIR [--bind 127.0.0.1|::1] [--port 0] --port-file FILE

Serves DIR with http.server.ThreadingHTTPServer (HTTP/1.0, one thread per
connection, large listen backlog). Writes the bound port to FILE once
listening. Logs one line per request to stderr.
"""
import argparse
import functools
import http.server
import os
import socket


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.dir)
    if ":" in args.bind:  # an IPv6 address
        Server.address_family = socket.AF_INET6
    srv = Server((args.bind, args.port), handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{srv.server_address[1]}\n")
        os.rename(args.port_file + ".tmp", args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
