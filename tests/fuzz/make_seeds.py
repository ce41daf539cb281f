#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/TARGET/seed-*).

Each seed is a well-formed input the target's parser takes, built here by
hand from the formats (RFCs, the vhost-user spec, QEMU's stream framing), so
that the fuzzer starts deep inside each parser. The seeds are committed;
running this again rewrites them identically. Crash inputs found later are
committed beside them as regress-* files and never rewritten by this script.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

GW_MAC = bytes.fromhex("52550a000202")
GUEST_MAC = bytes.fromhex("525400123456")
BCAST = b"\xff" * 6
GUEST = bytes([10, 0, 2, 15])
GW = bytes([10, 0, 2, 2])
DNS4 = bytes([10, 0, 2, 3])
GUEST6_LL = bytes.fromhex("fe80000000000000505400fffe123456")
GUEST6 = bytes.fromhex("fd00000000000000505400fffe123456")
GW6 = bytes.fromhex("fd000000000000000000000000000002")
DNS6 = bytes.fromhex("fd000000000000000000000000000003")
ALL_ROUTERS6 = bytes.fromhex("ff020000000000000000000000000002")
DHCP6_SERVERS = bytes.fromhex("ff020000000000000000000000010002")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, ethertype, payload, src=GUEST_MAC):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ident=1, frag=0x4000, ttl=64, total=None):
    total = total if total is not None else 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, frag, ttl, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4_v4(src, dst, proto, seg):
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def l4_v6(src, dst, proto, seg):
    pseudo = src + dst + struct.pack("!IxxxB", len(seg), proto)
    return csum(pseudo + seg)


def udp4(src, sport, dst, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_v4(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def udp6(src, sport, dst, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_v6(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp(src, sport, dst, dport, seq, ack, flags, payload=b"", v6=False, opts=b""):
    off = (20 + len(opts)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts + payload
    c = (l4_v6 if v6 else l4_v4)(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp4(typ, code, rest, payload):
    m = struct.pack("!BBHI", typ, code, 0, rest) + payload
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, typ, code, body):
    m = struct.pack("!BBH", typ, code, 0) + body
    c = l4_v6(src, dst, 58, m)
    return m[:2] + struct.pack("!H", c) + m[4:]


def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, hop) + src + dst + payload


def records(*items):
    return b"".join(struct.pack("!H", len(i)) + i for i in items)


def dns_name(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_query(name, qtype=1, ident=0x1234, edns=True, flags=0x0100):
    q = struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1 if edns else 0)
    q += dns_name(name) + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return q


def dhcp4(msgtype, xid=0x11223344, mac=GUEST_MAC, extra=b"", ciaddr=b"\0" * 4):
    m = struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000)
    m += ciaddr + b"\0" * 12 + mac + b"\0" * 10 + b"\0" * 192
    m += b"\x63\x82\x53\x63" + bytes([53, 1, msgtype]) + extra
    m += bytes([55, 5, 1, 3, 6, 15, 119, 12, 5]) + b"guest" + bytes([255])
    return m


def dhcp6(msgtype, xid=0xABCDEF, ia=True):
    m = bytes([msgtype]) + xid.to_bytes(3, "big")
    duid = struct.pack("!HH", 3, 1) + GUEST_MAC
    m += struct.pack("!HH", 1, len(duid)) + duid
    if ia:
        m += struct.pack("!HHIII", 3, 12, 1, 0, 0)
    m += struct.pack("!HHHH", 6, 4, 23, 24)
    m += struct.pack("!HHH", 8, 2, 0)
    return m


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def frame_seeds():
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + GUEST_MAC + GUEST + b"\0" * 6 + GW
    write("frame", "arp", records(eth(BCAST, 0x0806, arp)))
    disc = udp4(b"\0" * 4, 68, b"\xff" * 4, 67, dhcp4(1))
    req = udp4(b"\0" * 4, 68, b"\xff" * 4, 67,
               dhcp4(3, extra=bytes([50, 4]) + GUEST + bytes([54, 4]) + GW))
    write("frame", "dhcp", records(eth(BCAST, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, disc)),
                                   eth(BCAST, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, req))))
    rrq = udp4(GUEST, 2000, GW, 69, tftp_rrq(b"boot.ipxe", opts=((b"blksize", b"1400"), (b"tsize", b"0"))))
    write("frame", "tftp", records(eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 17, rrq))))
    ping = icmp4(8, 0, 0x00010001, b"slipway-fuzz-ping")
    write("frame", "icmp", records(eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 1, ping)),
                                   eth(GW_MAC, 0x0800, ipv4(GUEST, bytes([192, 0, 2, 1]), 1, ping))))
    q = dns_query("fuzz.test")
    write("frame", "dns-udp", records(eth(GW_MAC, 0x0800, ipv4(GUEST, DNS4, 17, udp4(GUEST, 40000, DNS4, 53, q)))))
    # DNS over TCP: SYN, then (whatever the ISN) an ACK and the framed query.
    mss = bytes([2, 4, 0x05, 0xB4])
    tq = struct.pack("!H", len(q)) + q
    write("frame", "dns-tcp", records(
        eth(GW_MAC, 0x0800, ipv4(GUEST, DNS4, 6, tcp(GUEST, 40001, DNS4, 53, 1000, 0, 0x02, opts=mss))),
        b"\xac" + eth(GW_MAC, 0x0800, ipv4(GUEST, DNS4, 6, tcp(GUEST, 40001, DNS4, 53, 1001, 1, 0x10))),
        b"\xac" + eth(GW_MAC, 0x0800, ipv4(GUEST, DNS4, 6, tcp(GUEST, 40001, DNS4, 53, 1001, 1, 0x18, tq)))))
    # The 0xAC prefix: the target fills in the acknowledgment number.
    AC = b"\xac"
    write("frame", "tcp-loopback", records(
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5000, 0, 0x02, opts=mss))),
        AC + eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5001, 0, 0x10))),
        AC + eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5001, 0, 0x18, b"hello, echo\n"))),
        AC + eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5013, 0, 0x10))),
        AC + eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5013, 0, 0x11))),
        AC + eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40002, GW, 8080, 5014, 0, 0x10)))))
    write("frame", "tcp-reset", records(
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40003, GW, 8080, 7000, 0, 0x02, opts=mss))),
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 6, tcp(GUEST, 40003, GW, 8080, 7001, 1, 0x04)))))
    write("frame", "udp-echo", records(
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 17, udp4(GUEST, 40010, GW, 8080, b"ping over udp")))))
    # A UDP datagram in two IPv4 fragments, to the host's loopback.
    dg = udp4(GUEST, 40003, GW, 9999, b"F" * 64)
    write("frame", "ipv4-fragments", records(
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 17, dg[:40], ident=7, frag=0x2000)),
        eth(GW_MAC, 0x0800, ipv4(GUEST, GW, 17, dg[40:], ident=7, frag=40 // 8, total=20 + len(dg) - 40))))
    # IPv6: neighbour and router solicitation, echo, DHCPv6, a UDP datagram
    # behind hop-by-hop and fragment headers, TCP.
    ns = icmp6(GUEST6_LL, bytes.fromhex("ff0200000000000000000001ff000002"), 135, 0,
               b"\0" * 4 + GW6 + bytes([1, 1]) + GUEST_MAC)
    rs = icmp6(GUEST6_LL, ALL_ROUTERS6, 133, 0, b"\0" * 4 + bytes([1, 1]) + GUEST_MAC)
    echo6 = icmp6(GUEST6, GW6, 128, 0, struct.pack("!HH", 1, 1) + b"ping6")
    write("frame", "ndp", records(
        eth(bytes.fromhex("3333ff000002"), 0x86DD, ipv6(GUEST6_LL, bytes.fromhex("ff0200000000000000000001ff000002"), 58, ns, hop=255)),
        eth(bytes.fromhex("333300000002"), 0x86DD, ipv6(GUEST6_LL, ALL_ROUTERS6, 58, rs, hop=255)),
        eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 58, echo6))))
    sol = udp6(GUEST6_LL, 546, DHCP6_SERVERS, 547, dhcp6(1))
    write("frame", "dhcpv6", records(eth(bytes.fromhex("333300010002"), 0x86DD, ipv6(GUEST6_LL, DHCP6_SERVERS, 17, sol))))
    u = udp6(GUEST6, 40004, GW6, 9999, b"X" * 48)
    hbh = bytes([44, 0]) + bytes([1, 4, 0, 0, 0, 0])           # hop-by-hop: PadN, then a fragment header
    f1 = hbh + bytes([17, 0]) + struct.pack("!HI", 0x0001, 99) + u[:24]
    f2 = hbh + bytes([17, 0]) + struct.pack("!HI", 24, 99) + u[24:]
    write("frame", "ipv6-ext-fragments", records(eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 0, f1)),
                                                 eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 0, f2))))
    write("frame", "tcp6", records(
        eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 6, tcp(GUEST6, 40005, GW6, 8080, 77, 0, 0x02, v6=True, opts=mss))),
        b"\xac" + eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 6, tcp(GUEST6, 40005, GW6, 8080, 78, 0, 0x10, v6=True))),
        b"\xac" + eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 6, tcp(GUEST6, 40005, GW6, 8080, 78, 0, 0x18, b"six", v6=True))),
        b"\xac" + eth(GW_MAC, 0x86DD, ipv6(GUEST6, GW6, 6, tcp(GUEST6, 40005, GW6, 8080, 81, 0, 0x10, v6=True)))))
    q6 = dns_query("fuzz.test", qtype=28)
    write("frame", "dns6", records(eth(GW_MAC, 0x86DD, ipv6(GUEST6, DNS6, 17, udp6(GUEST6, 40006, DNS6, 53, q6)))))


def dhcp_seeds():
    write("dhcp", "v4-discover-request", records(
        b"\x00" + dhcp4(1),
        b"\x00" + dhcp4(3, extra=bytes([50, 4]) + GUEST + bytes([54, 4]) + GW),
        b"\x00" + dhcp4(3, ciaddr=GUEST),
        b"\x00" + dhcp4(7, ciaddr=GUEST, extra=bytes([54, 4]) + GW)))
    write("dhcp", "v4-inform-decline", records(
        b"\x02" + dhcp4(8, ciaddr=bytes([10, 0, 2, 16])),
        b"\x02" + dhcp4(4, extra=bytes([50, 4]) + GUEST + bytes([54, 4]) + GW)))
    write("dhcp", "v4-static", records(b"\x0e" + dhcp4(1, mac=bytes.fromhex("525400000007"))))
    write("dhcp", "v6-solicit-request", records(b"\x01" + dhcp6(1), b"\x01" + dhcp6(3), b"\x01" + dhcp6(5)))
    write("dhcp", "v6-information-request", records(b"\x03" + dhcp6(11, ia=False)))


def dns_answer_tail(rrs):
    return b"".join(rrs)


def dns_seeds():
    def answer(flags, an, tail, ancount=None):
        ancount = len(an) if ancount is None else ancount
        # The header; the target inserts the proxy's question after it (flag 4).
        return struct.pack("!HHHHHH", 0, flags, 1, ancount, 0, 0) + b"".join(an) + tail

    a = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 10])
    aaaa = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 300, 16) + bytes.fromhex("20010db8000000000000000000000010")
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 6) + dns_name("a.b")[:-1] + b"\0"
    write("dns", "a", bytes([6]) + records(dns_query("example.com"), answer(0x8180, [a], b"")))
    write("dns", "aaaa-cached", bytes([6 | 8]) + records(dns_query("example.com", 28), answer(0x8180, [aaaa], b"")))
    write("dns", "cname", bytes([6]) + records(dns_query("www.example.com"), answer(0x8180, [cname, a], b"")))
    write("dns", "truncated-then-tcp", bytes([6]) + records(dns_query("big.example"), answer(0x8380, [a], b"")))
    write("dns", "guest-tcp", bytes([7]) + records(dns_query("example.org"), answer(0x8180, [a], b"")))
    write("dns", "nxdomain", bytes([6]) + records(dns_query("nope.example", edns=False), answer(0x8183, [], b"")))
    write("dns", "static", bytes([0]) + records(dns_query("static.test"), b""))
    write("dns", "pointer-loop", bytes([6]) + records(dns_query("loop.example"),
                                                       answer(0x8180, [b"\xc0\x0e\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) + b"\1\2\3\4"], b"")))


def vhost_msg(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload


def vhost_seeds():
    UADDR = 0x7F0000000000
    num = 8
    # Queue 0 (receive): ring at 0x000, buffer at 0x1000. Queue 1 (transmit):
    # ring at 0x400, the frame at 0x800.
    mem = bytearray(0x800)
    struct.pack_into("<QIHH", mem, 0x000, 0x1000, 2048, 2, 0)  # desc 0: writable
    struct.pack_into("<HHH", mem, 0x100, 0, 1, 0)              # avail: idx 1, ring[0] = 0
    arp = eth(BCAST, 0x0806, struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + GUEST_MAC + GUEST + b"\0" * 6 + GW)
    frame = b"\0" * 12 + arp
    struct.pack_into("<QIHH", mem, 0x400, 0x800, len(frame), 0, 0)
    struct.pack_into("<HHH", mem, 0x500, 0, 1, 0)
    image = bytes(mem) + frame

    def setup(features, mrg=False):
        msgs = [vhost_msg(1), vhost_msg(15), vhost_msg(2, struct.pack("<Q", features)), vhost_msg(3),
                vhost_msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UADDR, 0))]
        for q, base in ((0, 0x000), (1, 0x400)):
            msgs += [vhost_msg(8, struct.pack("<II", q, num)),
                     vhost_msg(9, struct.pack("<IIQQQQ", q, 0, UADDR + base, UADDR + base + 0x200,
                                              UADDR + base + 0x100, 0)),
                     vhost_msg(10, struct.pack("<II", q, 0)),
                     vhost_msg(13, struct.pack("<Q", q)),
                     vhost_msg(12, struct.pack("<Q", q))]
        return msgs

    v1 = 1 << 32
    write("vhost_user", "setup-tx-rx", records(image, *setup(v1)))
    write("vhost_user", "offloads-mrg", records(image, *setup(v1 | 1 | 2 | (1 << 11) | (1 << 15) | (1 << 29))))
    proto = setup(v1 | (1 << 30)) + [vhost_msg(16, struct.pack("<Q", 1 | 8)),
                                     vhost_msg(18, struct.pack("<II", 0, 1), flags=1 | 8),
                                     vhost_msg(18, struct.pack("<II", 1, 1)),
                                     vhost_msg(11, struct.pack("<II", 1, 0)),
                                     vhost_msg(4)]
    write("vhost_user", "protocol-features-stop", records(image, *proto))
    write("vhost_user", "no-fd-and-mtu", records(image, vhost_msg(12, struct.pack("<Q", 1 | 256)),
                                                 vhost_msg(20, struct.pack("<Q", 1500)), vhost_msg(17), vhost_msg(24)))


def stream_seeds():
    arp = eth(BCAST, 0x0806, struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + GUEST_MAC + GUEST + b"\0" * 6 + GW)
    framed = struct.pack("!I", len(arp)) + arp
    write("stream", "one-frame", records(framed))
    write("stream", "split-frames", records(framed[:3], framed[3:20], framed[20:] + framed, framed * 3))
    write("stream", "zero-length", records(framed + struct.pack("!I", 0)))
    write("stream", "too-long", records(struct.pack("!I", 0xFFFFFFFF) + b"x" * 16))


def control_seeds():
    def lines(*ls):
        return "".join(l + "\n" for l in ls).encode()
    write("control", "queries", records(lines('{"op":"stats"}', '{"op":"list-flows"}', '{"op":"list-leases"}',
                                              '{"op":"list-forwards"}', '{"op":"list-ports"}')))
    write("control", "forwards", records(lines('{"op":"add-forward","rule":"127.0.0.1:8080:80/tcp"}',
                                               '{"op":"add-forward","rule":"[::1]:5353-5354:53-54/udp"}',
                                               '{"op":"list-forwards"}',
                                               '{"op":"remove-forward","rule":"127.0.0.1:8080:80/tcp"}')))
    write("control", "bad", records(b'{"op":', b'"stats"}\n{"op":42}\n[1,2]\nnot json\n{"op":"nope"}\n',
                                     b'{"op":"add-forward","rule":"70000:80"}\n\n'))


def config_seeds():
    examples = os.path.join(HERE, "..", "..", "examples")
    for name in sorted(os.listdir(examples)):
        if name.endswith(".toml"):
            with open(os.path.join(examples, name), "rb") as f:
                write("config", name, f.read())
    write("config", "small.toml", b'[network]\nmtu = 1500\n\n[dns]\nupstreams = ["192.0.2.53"]\n'
                                  b'[dns.static]\n"a.test" = ["192.0.2.1", "2001:db8::1"]\n'
                                  b'[forwarding]\nforwards = ["127.0.0.1:8080:80/tcp", '
                                  b'{host_addr = "::1", host_port = 8443, guest_port = 443, proto = "tcp"}]\n'
                                  b'[[dhcp.static]]\nmac = "52:54:00:00:00:07"\naddress = "10.0.2.50"\nname = "seven"\n')


def nlmsg(typ, seq, payload, flags=2):
    return struct.pack("<IHHII", 16 + len(payload), typ, flags, seq, 0) + payload


def diag_msg(family, sport, addr):
    addr = addr.ljust(16, b"\0")
    ident = struct.pack("!HH", sport, 0) + addr + b"\0" * 16 + struct.pack("<III", 0, 0, 0)
    return struct.pack("BBBB", family, 10, 0, 0) + ident + struct.pack("<IIIII", 0, 0, 0, 1000, 12345)


def portfwd_seeds():
    seq = 7
    dump = nlmsg(20, seq, diag_msg(2, 8080, bytes(4))) + nlmsg(20, seq, diag_msg(10, 8443, bytes(16))) + \
        nlmsg(20, seq, diag_msg(2, 5432, bytes([127, 0, 0, 1]))) + nlmsg(3, seq, struct.pack("<i", 0))
    write("portfwd", "sock-diag-tcp", bytes([0, 0]) + struct.pack("!I", seq) + dump)
    write("portfwd", "sock-diag-udp-all", bytes([2, 1]) + struct.pack("!I", seq) + dump)
    write("portfwd", "sock-diag-error", bytes([0, 0]) + struct.pack("!I", seq) +
          nlmsg(2, seq, struct.pack("<i", -13) + nlmsg(20, seq, b"")))
    report = (b'{"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":8080},'
              b'{"proto":"udp","family":6,"address":"::","port":5353},'
              b'{"proto":"tcp","family":4,"address":"127.0.0.1","port":8022}]}\n'
              b'{"listeners":[]}\n{"listeners":[{"proto":"tcp","family":6,"address":"::1","port":70000}]}\n')
    write("portfwd", "agent", b"\x01" + report)
    write("portfwd", "agent-all", b"\x03" + report)


def tftp_rrq(name, mode=b"octet", opts=(), op=1):
    m = struct.pack("!H", op) + name + b"\0" + mode + b"\0"
    for k, v in opts:
        m += k + b"\0" + v + b"\0"
    return m


def tftp_seeds():
    ack = lambda n: struct.pack("!HH", 4, n)
    write("tftp", "rrq-acks", records(
        b"\x00" + tftp_rrq(b"sub/file"), b"\x01" + ack(1), b"\x01" + ack(1), b"\x01" + ack(2),
        b"\x01" + ack(3), b"\x01" + ack(4), b"\x01" + ack(5), b"\x01" + ack(6), b"\x01" + ack(7),
        b"\x01" + ack(8), b"\x01" + ack(9), b"\x01" + ack(10)))
    write("tftp", "oack-blksize-tsize", records(
        b"\x00" + tftp_rrq(b"/sub/file", opts=((b"blksize", b"1400"), (b"tsize", b"0"), (b"timeout", b"2"))),
        b"\x01" + ack(0), b"\x01" + ack(1), b"\x01" + ack(2), b"\x01" + ack(3), b"\x01" + ack(4)))
    write("tftp", "netascii", records(b"\x00" + tftp_rrq(b"lines", b"netascii"), b"\x01" + ack(1),
                                      b"\x01" + ack(2), b"\x01" + ack(3), b"\x01" + ack(4), b"\x01" + ack(5)))
    write("tftp", "refusals", records(
        b"\x00" + tftp_rrq(b"../etc/passwd"), b"\x00" + tftp_rrq(b"out"), b"\x00" + tftp_rrq(b"fifo"),
        b"\x00" + tftp_rrq(b"sub"), b"\x00" + tftp_rrq(b"x", op=2), b"\x00" + tftp_rrq(b"small", b"mail"),
        b"\x00" + b"\x00\x01abc", b"\x00" + ack(1)))
    write("tftp", "timeouts", records(
        b"\x00" + tftp_rrq(b"small"), b"\x04" + tftp_rrq(b"small"), b"\x08" + tftp_rrq(b"lines"),
        b"\x0c" + tftp_rrq(b"sub/file"), b"\x00" + tftp_rrq(b"small"), b"\x02\x0a", b"\x02\x0a", b"\x02\x0a",
        b"\x02\x0a", b"\x02\x0a", b"\x02\x0a", b"\x02\x1e", b"\x01" + struct.pack("!HH", 5, 0) + b"stop\0"))


def main():
    tftp_seeds()
    frame_seeds()
    dhcp_seeds()
    dns_seeds()
    vhost_seeds()
    stream_seeds()
    control_seeds()
    config_seeds()
    portfwd_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
