#!/usr/bin/env python3
"""Floods a hostile guest can send, bounded in count and in time.

  flood.py syn   --dst IP --port P --count N [--seconds S]
      N spoofed SYNs (raw socket, random source ports): the guest's kernel
      answers each SYN-ACK with RST, as after a spoofed flood.
  flood.py udp   --dst IP --ports N [--seconds S]
      one datagram from each of N source ports to N destination ports (raw
      socket), counting the ICMP errors that come back.
  flood.py conns --dst IP --port P --count N [--hold S] [--seconds S]
      N TCP connections at once (non-blocking), held S seconds.
  flood.py hold  --listen IP:PORT --port-file F
      (host) accepts and holds every connection, with a large backlog.
  flood.py rss   --pid PID
      VmRSS of PID in KiB.

Each mode prints one line of key=value figures.
"""
import argparse
import errno
import os
import random
import select
import socket
import struct
import sys
import time


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def l4(src, dst, proto, seg):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return checksum(pseudo + seg)


def own_address(dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dst, 9))
    a = s.getsockname()[0]
    s.close()
    return a


def syn_flood(a):
    src = own_address(a.dst)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sent, t0 = 0, time.time()
    rng = random.Random(1)
    while sent < a.count and time.time() - t0 < a.seconds:
        sport = rng.randrange(10000, 65000)
        seq = rng.randrange(1 << 32)
        hdr = struct.pack("!HHIIBBHHH", sport, a.port, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
        c = l4(src, a.dst, socket.IPPROTO_TCP, hdr)
        hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
        try:
            raw.sendto(hdr, (a.dst, 0))
            sent += 1
            # --min-seconds: spread the flood over at least that long.
            if a.min_seconds > 0 and sent % 1000 == 0:
                ahead = sent * a.min_seconds / a.count - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            time.sleep(0.001)
    print(f"syn_sent={sent} seconds={time.time() - t0:.1f}", flush=True)


def udp_flood(a):
    src = own_address(a.dst)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    icmp.setblocking(False)
    icmp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    errors = {}

    def drain():
        while True:
            try:
                b = icmp.recv(2048)
            except BlockingIOError:
                return
            ihl = (b[0] & 15) * 4
            if len(b) >= ihl + 2:
                k = f"{b[ihl]}/{b[ihl + 1]}"
                errors[k] = errors.get(k, 0) + 1

    sent, t0 = 0, time.time()
    for i in range(a.ports):
        if time.time() - t0 > a.seconds:
            break
        sport, dport = 20000 + i, 20000 + i
        seg = struct.pack("!HHHH", sport, dport, 8 + 4, 0) + b"ping"
        c = l4(src, a.dst, socket.IPPROTO_UDP, seg) or 0xFFFF
        seg = seg[:6] + struct.pack("!H", c) + seg[8:]
        while True:
            try:
                raw.sendto(seg, (a.dst, 0))
                break
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                drain()
                time.sleep(0.001)
        sent += 1
        if i % 256 == 0:
            drain()
    end = time.time() + 1.0
    while time.time() < end:
        select.select([icmp], [], [], 0.1)
        drain()
    print(f"udp_sent={sent} guest_icmp_errors={sum(errors.values())} icmp_types={errors} seconds={time.time() - t0:.1f}",
          flush=True)


def conns(a):
    socks, established, refused, other = [], 0, 0, 0
    t0 = time.time()
    pending = {}
    poller = select.epoll()
    for i in range(a.count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            other += 1
            print(f"socket: {e}", file=sys.stderr)
            break
        s.setblocking(False)
        rc = s.connect_ex((a.dst, a.port))
        if rc not in (0, errno.EINPROGRESS):
            refused += 1
            s.close()
            continue
        pending[s.fileno()] = s
        poller.register(s.fileno(), select.EPOLLOUT)
        socks.append(s)
        # Keep the backlog of handshakes moving while opening more.
        for fd, _ in poller.poll(0):
            established, refused, other = finish(poller, pending, fd, established, refused, other)
    while pending and time.time() - t0 < a.seconds:
        for fd, _ in poller.poll(0.2):
            established, refused, other = finish(poller, pending, fd, established, refused, other)
    connect_s = time.time() - t0
    print(f"conns_tried={a.count} established={established} refused={refused} other={other} "
          f"unfinished={len(pending)} seconds={connect_s:.1f}", flush=True)
    time.sleep(a.hold)
    for s in socks:  # reset, not closed: a host that holds its side would keep a half-closed flow
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def finish(poller, pending, fd, established, refused, other):
    s = pending.pop(fd, None)
    if s is None:
        return established, refused, other
    poller.unregister(fd)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err == 0:
        established += 1
    elif err == errno.ECONNREFUSED or err == errno.ECONNRESET:
        refused += 1
    else:
        other += 1
    return established, refused, other


def hold(a):
    host, port = a.listen.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(65535)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    # Held until the peer closes or resets (an epoll on every connection),
    # so that a SYN flood's reset connections do not use up descriptors.
    s.setblocking(False)
    poller = select.epoll()
    poller.register(s.fileno(), select.EPOLLIN)
    held = {}
    while True:
        for fd, _ in poller.poll(1.0):
            if fd == s.fileno():
                while True:
                    try:
                        c, _ = s.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            time.sleep(0.01)
                            break
                        raise
                    c.setblocking(False)
                    held[c.fileno()] = c
                    poller.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                continue
            c = held.pop(fd, None)
            if c is None:
                continue
            poller.unregister(fd)
            c.close()


def rss(a):
    with open(f"/proc/{a.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print(line.split()[1])
                return
    print(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["syn", "udp", "conns", "hold", "rss"])
    p.add_argument("--dst")
    p.add_argument("--port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--ports", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--hold", type=float, default=1)
    p.add_argument("--min-seconds", type=float, default=0)
    p.add_argument("--listen")
    p.add_argument("--port-file")
    p.add_argument("--pid")
    a = p.parse_args()
    {"syn": syn_flood, "udp": udp_flood, "conns": conns, "hold": hold, "rss": rss}[a.mode](a)


if __name__ == "__main__":
    main()
