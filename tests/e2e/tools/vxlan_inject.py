#!/usr/bin/env python3
"""Send VXLAN datagrams (RFC 7348) that a vswitch must refuse or take.

  vxlan_inject.py --to ADDR:PORT --vni N [--count C] [--bind ADDR] [--target IP]

Each datagram is the 8-byte VXLAN header (I flag, VNI N) and an Ethernet
broadcast ARP request "who has TARGET" (default 10.20.0.1) from a made-up
MAC; sent C times (default 5) from a UDP socket bound to ADDR (default: any).
Used by tests/e2e/test_vswitch_vxlan.sh to check that another VNI is dropped
and counted.
"""
import argparse
import socket
import struct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--vni", type=int, required=True)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--bind", default="")
    ap.add_argument("--target", default="10.20.0.1")
    a = ap.parse_args()
    host, _, port = a.to.rpartition(":")
    src_mac = bytes([0x02, 0x00, 0x5E, 0x99, 0x00, 0x01])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + socket.inet_aton("10.20.0.99") + \
        b"\x00" * 6 + socket.inet_aton(a.target)
    frame = b"\xff" * 6 + src_mac + b"\x08\x06" + arp
    frame += b"\x00" * (60 - len(frame))
    header = struct.pack("!B3xI", 0x08, a.vni << 8)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.bind:
        s.bind((a.bind, 0))
    for _ in range(a.count):
        s.sendto(header + frame, (host, int(port)))
    print("sent %d VXLAN datagrams with VNI %d to %s" % (a.count, a.vni, a.to))


if __name__ == "__main__":
    main()
