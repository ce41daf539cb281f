#!/usr/bin/env python3
"""Inject and capture exact Ethernet frames on a vswitch's dgram ports, and
check its 802.1Q VLAN handling (tests/e2e/test_vswitch_vlan.sh).

  vlan_frames.py --dir DIR --access10 PATH --access20 PATH --trunk PATH

The three PATHs are `dgram:` ports of one vswitch: an access port on VLAN 10,
one on VLAN 20, and a trunk port carrying VLANs 10 and 20 (trunk=10+20). For
each, this script binds its own unix datagram socket in DIR and sends the
vswitch one frame first, so that the port learns where to answer (a dgram
port answers the peer it last heard from). Then, for each case, it sends one
frame on one port and reads every port for a while, and checks exactly which
frames arrived where, byte for byte:

  - an untagged broadcast on the VLAN 10 access port reaches the trunk tagged
    with VID 10 (TPID 0x8100, the frame otherwise unchanged), and not the VLAN
    20 port; the same for VLAN 20;
  - a frame tagged 10 (or 20) on the trunk reaches that access port untagged,
    and not the other;
  - unicast to a MAC learnt in VLAN 20 sent from VLAN 10 stays in VLAN 10
    (flooded there as unknown, tagged 10 on the trunk), and unicast to a MAC
    learnt behind the trunk in VLAN 10 goes out of the trunk only;
  - dropped: a frame tagged 30 on the trunk (a VLAN it does not carry), a
    tagged frame on an access port, and an untagged frame on the trunk (VLAN
    0, which no access port is in) reaches no access port.

Prints one "ok: ..." line per check; exits 1 with a message on the first
failure.
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

BCAST = b"\xff" * 6
ETH_EXP = 0x88B5  # IEEE local experimental EtherType


def mac(last):
    return bytes([0x02, 0x00, 0x5E, 0x10, 0x00, last])


def frame(dst, src, payload, vid=None, ethertype=ETH_EXP):
    tag = b"" if vid is None else struct.pack("!HH", 0x8100, vid)
    body = struct.pack("!H", ethertype) + payload
    f = dst + src + tag + body
    return f


def tagged(untagged, vid):
    return untagged[:12] + struct.pack("!HH", 0x8100, vid) + untagged[12:]


class Port:
    def __init__(self, name, path, directory):
        self.name = name
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.local = os.path.join(directory, "vlan-frames-%s.sock" % name)
        if os.path.exists(self.local):
            os.unlink(self.local)
        self.sock.bind(self.local)
        self.sock.setblocking(False)

    def send(self, f):
        self.sock.sendto(f, self.path)


def collect(ports, seconds=0.4):
    """Every frame each port receives within `seconds`."""
    got = {p.name: [] for p in ports}
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        r, _, _ = select.select([p.sock for p in ports], [], [], left)
        for p in ports:
            if p.sock in r:
                while True:
                    try:
                        got[p.name].append(p.sock.recv(70000))
                    except BlockingIOError:
                        break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--access10", required=True)
    ap.add_argument("--access20", required=True)
    ap.add_argument("--trunk", required=True)
    a = ap.parse_args()
    a10 = Port("a10", a.access10, a.dir)
    a20 = Port("a20", a.access20, a.dir)
    tr = Port("trunk", a.trunk, a.dir)
    ports = [a10, a20, tr]
    failures = []

    def expect(case, sent_on, f, want):
        """Send f on sent_on; `want` maps a port name to the one frame it
        must get (every other port must get nothing)."""
        collect(ports, 0.05)  # nothing stale
        sent_on.send(f)
        got = collect(ports)
        for p in ports:
            w = want.get(p.name)
            g = got[p.name]
            if w is None and g:
                failures.append("%s: %s got %d frame(s), expected none: %s" % (case, p.name, len(g), g[0][:18].hex()))
            elif w is not None and g != [w]:
                failures.append("%s: %s got %s, expected exactly %s" % (
                    case, p.name, [x[:20].hex() + ".." for x in g] or "nothing", w[:20].hex() + ".."))
        if not failures:
            print("ok: " + case, flush=True)
        else:
            print("FAIL: " + "; ".join(failures), file=sys.stderr)
            sys.exit(1)

    # Introduce each socket to its port (and teach the switch the MACs:
    # mac(10) in VLAN 10, mac(20) in VLAN 20, mac(0x30) behind the trunk in
    # VLAN 10). Whatever they flood is drained.
    a10.send(frame(BCAST, mac(10), b"hello a10"))
    a20.send(frame(BCAST, mac(20), b"hello a20"))
    tr.send(frame(BCAST, mac(0x30), b"hello trunk", vid=10))
    collect(ports, 0.5)

    pay = bytes(range(256)) * 2  # 512 bytes, not all zero
    f = frame(BCAST, mac(10), b"from a10 " + pay)
    expect("untagged broadcast on access 10 reaches the trunk tagged 10, not access 20", a10, f,
           {"trunk": tagged(f, 10)})
    f = frame(BCAST, mac(20), b"from a20 " + pay)
    expect("untagged broadcast on access 20 reaches the trunk tagged 20, not access 10", a20, f,
           {"trunk": tagged(f, 20)})
    f = frame(BCAST, mac(0x30), b"trunk to 10 " + pay)
    expect("broadcast tagged 10 on the trunk reaches access 10 untagged, not access 20", tr, tagged(f, 10),
           {"a10": f})
    f = frame(BCAST, mac(0x31), b"trunk to 20 " + pay)
    expect("broadcast tagged 20 on the trunk reaches access 20 untagged, not access 10", tr, tagged(f, 20),
           {"a20": f})
    f = frame(mac(20), mac(10), b"unicast to a MAC of VLAN 20 " + pay)
    expect("unicast from access 10 to a MAC learnt in VLAN 20 stays in VLAN 10 (trunk, tagged 10)", a10, f,
           {"trunk": tagged(f, 10)})
    f = frame(mac(0x30), mac(10), b"unicast to the trunk's MAC " + pay)
    expect("unicast from access 10 to a MAC learnt behind the trunk in VLAN 10 goes to the trunk only", a10, f,
           {"trunk": tagged(f, 10)})
    f = frame(mac(10), mac(0x30), b"unicast back " + pay)
    expect("unicast tagged 10 on the trunk to access 10's MAC arrives untagged", tr, tagged(f, 10), {"a10": f})
    f = frame(BCAST, mac(0x32), b"trunk to 30 " + pay)
    expect("a frame tagged 30 on the trunk (not carried) is dropped", tr, tagged(f, 30), {})
    f = frame(BCAST, mac(10), b"tagged on access " + pay)
    expect("a tagged frame on an access port is dropped", a10, tagged(f, 20), {})
    f = frame(BCAST, mac(0x33), b"untagged on trunk " + pay)
    expect("an untagged frame on the trunk (VLAN 0) reaches no access port", tr, f, {})
    f = frame(BCAST, mac(0x34), b"priority tag " + pay)
    expect("a frame tagged 10 with priority 5 on the trunk reaches access 10 untagged", tr,
           f[:12] + struct.pack("!HH", 0x8100, (5 << 13) | 10) + f[12:], {"a10": f})
    for p in ports:
        os.unlink(p.local)


if __name__ == "__main__":
    main()
