// Whole Ethernet frames for the packets slipway builds itself: ARP replies,
// DHCP and DHCPv6, NDP, ICMP and ICMPv6 errors and echo replies, TCP resets.
// Each builder allocates exactly the frame it returns and fills every
// header, checksums included. No minimum-frame padding is added: the
// transports below carry frames without FCS and short frames are legal
// there.
//
// IPv4 packets are built with DF set, id 0 and no options; IPv6 packets
// with traffic class 0, flow label 0 and no extension headers.
//
// An ICMP error quotes as much of the offending packet as keeps the error
// within 576 bytes (kIcmpErrorMaxDatagram, RFC 1812 §4.3.2.3; RFC 792 asks
// for the IP header and 8 bytes); an ICMPv6 error, within the IPv6 minimum
// MTU of 1280 bytes (kIpv6MinMtu, RFC 4443 §2.4(c)). Whether an error may be
// sent at all is the caller's decision: see icmp_error_allowed() (icmp.h)
// and icmpv6_error_allowed() (icmpv6.h).
#pragma once

#include <cstdint>
#include <vector>

#include "netstack/wire/arp.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/tcp.h"

namespace slipway::wire {

std::vector<std::byte> build_arp_frame(MacAddr eth_dst, MacAddr eth_src, const ArpPacket& arp);

// IPv4

std::vector<std::byte> build_ipv4_udp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, uint16_t src_port,
                                            Ipv4Addr dst, uint16_t dst_port, Bytes payload, uint8_t ttl = 64);

std::vector<std::byte> build_ipv4_icmp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                             uint8_t type, uint8_t code, uint32_t rest, Bytes payload,
                                             uint8_t ttl = 64);

std::vector<std::byte> build_ipv4_tcp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                            const TcpHeaderFields& fields, Bytes payload);
std::vector<std::byte> build_ipv6_tcp_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                            const Ipv6Addr& dst, const TcpHeaderFields& fields, Bytes payload);

// The largest IPv4 datagram an ICMP error may be (RFC 1812 §4.3.2.3).
constexpr size_t kIcmpErrorMaxDatagram = 576;

// An ICMP error from `from` to offending.src(), quoting the offending packet
// (its IP header and as much of its payload as fits). `rest` is the 4-byte
// field after the checksum (e.g. next-hop MTU for kFragNeeded).
std::vector<std::byte> build_ipv4_icmp_error_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr from, uint8_t type,
                                                   uint8_t code, const Ipv4Packet& offending, uint32_t rest = 0);

// IPv6

// An Ethernet + IPv6 frame carrying a copy of `icmp_message` with its
// checksum filled in for src/dst.
std::vector<std::byte> build_ipv6_icmpv6_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                               const Ipv6Addr& dst, uint8_t hop_limit, Bytes icmp_message);
// The same for a message made of a header and `payload` (echo, errors).
std::vector<std::byte> build_ipv6_icmpv6_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                               const Ipv6Addr& dst, uint8_t hop_limit, uint8_t type, uint8_t code,
                                               uint32_t rest, Bytes payload);

std::vector<std::byte> build_ipv6_udp_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                            uint16_t src_port, const Ipv6Addr& dst, uint16_t dst_port,
                                            Bytes payload, uint8_t hop_limit = 64);

// An ICMPv6 error (Destination Unreachable, Packet Too Big with rest = MTU,
// Time Exceeded, Parameter Problem with rest = pointer) from `from` to
// offending.src(), quoting as much of the offending packet as fits.
std::vector<std::byte> build_ipv6_icmpv6_error_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& from,
                                                     uint8_t type, uint8_t code, const Ipv6Packet& offending,
                                                     uint32_t rest = 0);

}  // namespace slipway::wire
