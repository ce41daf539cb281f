// Whole Ethernet frames for the replies the gateway builds itself (ARP
// replies, DHCP, ICMP errors and echo replies, TCP resets). Each builder
// allocates exactly the frame it returns and fills every header, checksums
// included. No minimum-frame padding is added: the transports below carry
// frames without FCS and short frames are legal there.
//
// IPv4 packets are built with DF set, id 0 and no options.
#pragma once

#include <cstdint>
#include <vector>

#include "netstack/wire/arp.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"

namespace slipway::wire {

std::vector<std::byte> build_arp_frame(MacAddr eth_dst, MacAddr eth_src, const ArpPacket& arp);

std::vector<std::byte> build_ipv4_udp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, uint16_t src_port,
                                            Ipv4Addr dst, uint16_t dst_port, Bytes payload, uint8_t ttl = 64);

std::vector<std::byte> build_ipv4_icmp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                             uint8_t type, uint8_t code, uint32_t rest, Bytes payload,
                                             uint8_t ttl = 64);

std::vector<std::byte> build_ipv4_tcp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                            const TcpHeaderFields& fields, Bytes payload);

// The largest IPv4 datagram an ICMP error may be (RFC 1812 §4.3.2.3).
constexpr size_t kIcmpErrorMaxDatagram = 576;

// An ICMP error from `from` to offending.src(), quoting the offending packet:
// its IP header and as much of its payload as keeps the error within 576
// bytes (RFC 792 requires the first 8 bytes; RFC 1812 allows more). `rest` is
// the 4-byte field after the checksum (e.g. next-hop MTU for kFragNeeded).
// Whether an error may be sent at all is the caller's decision; see
// icmp_error_allowed().
std::vector<std::byte> build_ipv4_icmp_error_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr from, uint8_t type,
                                                   uint8_t code, const Ipv4Packet& offending, uint32_t rest = 0);

// RFC 1122 §3.2.2: no ICMP error about an ICMP error (or an unparseable ICMP
// message), about a non-first fragment, about a packet sent to broadcast or
// multicast, or about a packet whose source is not a single host (0.0.0.0,
// broadcast, multicast, loopback). `link_broadcast` says whether the frame was
// sent to a link-layer broadcast or multicast address. Directed broadcasts of
// the local subnet are the caller's to check.
bool icmp_error_allowed(const Ipv4Packet& offending, bool link_broadcast);

}  // namespace slipway::wire
