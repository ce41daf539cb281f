// Whole-frame builders; see frame.h. Each computes the exact frame length,
// allocates once, then emits the headers from the outside in: the Ethernet
// header (ethernet_frame), the IP header (ipv4_frame, ipv6_frame), then the
// builder's own upper layer.
#include "netstack/wire/frame.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/udp.h"

namespace slipway::wire {

namespace {

// A frame with room for `payload_len` bytes after the Ethernet header, which
// is written.
std::vector<std::byte> ethernet_frame(MacAddr eth_dst, MacAddr eth_src, uint16_t type, size_t payload_len) {
  std::vector<std::byte> frame(kEthernetHeaderLen + payload_len);
  emit_ethernet_header(frame, eth_dst, eth_src, type);
  return frame;
}

constexpr size_t kIpv4L4Offset = kEthernetHeaderLen + Ipv4Header::kLen;
constexpr size_t kIpv6L4Offset = kEthernetHeaderLen + Ipv6Header::kLen;

// An Ethernet + IPv4 frame with room for `l4_len` bytes after the IP header,
// which is written; the L4 part, at kIpv4L4Offset, is the caller's.
std::vector<std::byte> ipv4_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst, uint8_t protocol,
                                  size_t l4_len, uint8_t ttl) {
  auto frame = ethernet_frame(eth_dst, eth_src, ethertype::kIpv4, Ipv4Header::kLen + l4_len);
  Ipv4Header ip{.src = src, .dst = dst, .protocol = protocol, .ttl = ttl, .payload_len = static_cast<uint16_t>(l4_len)};
  ip.emit(MutBytes{frame}.subspan(kEthernetHeaderLen));
  return frame;
}

// The same for IPv6; the L4 part is at kIpv6L4Offset.
std::vector<std::byte> ipv6_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src, const Ipv6Addr& dst,
                                  uint8_t next_header, size_t l4_len, uint8_t hop_limit) {
  assert(l4_len <= 0xffff);
  auto frame = ethernet_frame(eth_dst, eth_src, ethertype::kIpv6, Ipv6Header::kLen + l4_len);
  Ipv6Header ip{.src = src,
                .dst = dst,
                .next_header = next_header,
                .hop_limit = hop_limit,
                .payload_len = static_cast<uint16_t>(l4_len)};
  ip.emit(MutBytes{frame}.subspan(kEthernetHeaderLen));
  return frame;
}

// The start of the offending packet that an error may quote.
Bytes quote(Bytes offending, size_t max_len) { return offending.first(std::min(offending.size(), max_len)); }

}  // namespace

std::vector<std::byte> build_arp_frame(MacAddr eth_dst, MacAddr eth_src, const ArpPacket& arp) {
  auto frame = ethernet_frame(eth_dst, eth_src, ethertype::kArp, ArpPacket::kLen);
  arp.emit(MutBytes{frame}.subspan(kEthernetHeaderLen));
  return frame;
}

std::vector<std::byte> build_ipv4_udp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, uint16_t src_port,
                                            Ipv4Addr dst, uint16_t dst_port, Bytes payload, uint8_t ttl) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kUdp, UdpDatagram::kHeaderLen + payload.size(), ttl);
  emit_udp(MutBytes{frame}.subspan(kIpv4L4Offset), src, src_port, dst, dst_port, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_icmp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                             uint8_t type, uint8_t code, uint32_t rest, Bytes payload,
                                             uint8_t ttl) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kIcmp, IcmpMessage::kHeaderLen + payload.size(), ttl);
  emit_icmp(MutBytes{frame}.subspan(kIpv4L4Offset), type, code, rest, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_tcp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                            const TcpHeaderFields& fields, Bytes payload) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kTcp, TcpSegment::kMinHeaderLen + payload.size(), 64);
  emit_tcp(MutBytes{frame}.subspan(kIpv4L4Offset), src, dst, fields, payload);
  return frame;
}

std::vector<std::byte> build_ipv6_tcp_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                            const Ipv6Addr& dst, const TcpHeaderFields& fields, Bytes payload) {
  auto frame = ipv6_frame(eth_dst, eth_src, src, dst, ipproto::kTcp, TcpSegment::kMinHeaderLen + payload.size(), 64);
  emit_tcp(MutBytes{frame}.subspan(kIpv6L4Offset), src, dst, fields, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_icmp_error_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr from, uint8_t type,
                                                   uint8_t code, const Ipv4Packet& offending, uint32_t rest) {
  constexpr size_t kMaxQuote = kIcmpErrorMaxDatagram - Ipv4Header::kLen - IcmpMessage::kHeaderLen;
  return build_ipv4_icmp_frame(eth_dst, eth_src, from, offending.src(), type, code, rest,
                               quote(offending.bytes(), kMaxQuote));
}

std::vector<std::byte> build_ipv6_icmpv6_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                               const Ipv6Addr& dst, uint8_t hop_limit, Bytes icmp_message) {
  assert(icmp_message.size() >= 4);
  auto frame = ipv6_frame(eth_dst, eth_src, src, dst, ipproto::kIcmpv6, icmp_message.size(), hop_limit);
  std::copy(icmp_message.begin(), icmp_message.end(), frame.begin() + kIpv6L4Offset);
  set_icmpv6_checksum(MutBytes{frame}.subspan(kIpv6L4Offset), src, dst);
  return frame;
}

std::vector<std::byte> build_ipv6_icmpv6_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                               const Ipv6Addr& dst, uint8_t hop_limit, uint8_t type, uint8_t code,
                                               uint32_t rest, Bytes payload) {
  auto frame = ipv6_frame(eth_dst, eth_src, src, dst, ipproto::kIcmpv6, Icmpv6Message::kHeaderLen + payload.size(),
                          hop_limit);
  emit_icmpv6(MutBytes{frame}.subspan(kIpv6L4Offset), src, dst, type, code, rest, payload);
  return frame;
}

std::vector<std::byte> build_ipv6_udp_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& src,
                                            uint16_t src_port, const Ipv6Addr& dst, uint16_t dst_port,
                                            Bytes payload, uint8_t hop_limit) {
  auto frame = ipv6_frame(eth_dst, eth_src, src, dst, ipproto::kUdp, UdpDatagram::kHeaderLen + payload.size(),
                          hop_limit);
  emit_udp_v6(MutBytes{frame}.subspan(kIpv6L4Offset), src, src_port, dst, dst_port, payload);
  return frame;
}

std::vector<std::byte> build_ipv6_icmpv6_error_frame(MacAddr eth_dst, MacAddr eth_src, const Ipv6Addr& from,
                                                     uint8_t type, uint8_t code, const Ipv6Packet& offending,
                                                     uint32_t rest) {
  constexpr size_t kMaxQuote = kIpv6MinMtu - Ipv6Header::kLen - Icmpv6Message::kHeaderLen;
  return build_ipv6_icmpv6_frame(eth_dst, eth_src, from, offending.src(), 64, type, code, rest,
                                 quote(offending.bytes(), kMaxQuote));
}

}  // namespace slipway::wire
