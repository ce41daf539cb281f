// Whole-frame builders; see frame.h. Each computes the exact frame length,
// allocates once, then emits the headers from the outside in.
#include "netstack/wire/frame.h"

#include <algorithm>

#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/udp.h"

namespace slipway::wire {

namespace {

// An Ethernet + IPv4 frame with room for `l4_len` bytes after the IP header;
// the IP header is written, the L4 part is left for the caller.
std::vector<std::byte> ipv4_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst, uint8_t protocol,
                                  size_t l4_len, uint8_t ttl) {
  std::vector<std::byte> frame(kEthernetHeaderLen + Ipv4Header::kLen + l4_len);
  MutBytes out{frame};
  emit_ethernet_header(out, eth_dst, eth_src, ethertype::kIpv4);
  Ipv4Header ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = protocol;
  ip.ttl = ttl;
  ip.payload_len = static_cast<uint16_t>(l4_len);
  ip.emit(out.subspan(kEthernetHeaderLen));
  return frame;
}

constexpr size_t kL4Offset = kEthernetHeaderLen + Ipv4Header::kLen;

}  // namespace

std::vector<std::byte> build_arp_frame(MacAddr eth_dst, MacAddr eth_src, const ArpPacket& arp) {
  std::vector<std::byte> frame(kEthernetHeaderLen + ArpPacket::kLen);
  MutBytes out{frame};
  emit_ethernet_header(out, eth_dst, eth_src, ethertype::kArp);
  arp.emit(out.subspan(kEthernetHeaderLen));
  return frame;
}

std::vector<std::byte> build_ipv4_udp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, uint16_t src_port,
                                            Ipv4Addr dst, uint16_t dst_port, Bytes payload, uint8_t ttl) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kUdp, 8 + payload.size(), ttl);
  emit_udp(MutBytes{frame}.subspan(kL4Offset), src, src_port, dst, dst_port, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_icmp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                             uint8_t type, uint8_t code, uint32_t rest, Bytes payload,
                                             uint8_t ttl) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kIcmp, 8 + payload.size(), ttl);
  emit_icmp(MutBytes{frame}.subspan(kL4Offset), type, code, rest, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_tcp_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr src, Ipv4Addr dst,
                                            const TcpHeaderFields& fields, Bytes payload) {
  auto frame = ipv4_frame(eth_dst, eth_src, src, dst, ipproto::kTcp, 20 + payload.size(), 64);
  emit_tcp(MutBytes{frame}.subspan(kL4Offset), src, dst, fields, payload);
  return frame;
}

std::vector<std::byte> build_ipv4_icmp_error_frame(MacAddr eth_dst, MacAddr eth_src, Ipv4Addr from, uint8_t type,
                                                   uint8_t code, const Ipv4Packet& offending, uint32_t rest) {
  constexpr size_t kMaxQuote = kIcmpErrorMaxDatagram - Ipv4Header::kLen - 8;
  Bytes quote = offending.bytes();
  quote = quote.first(std::min(quote.size(), kMaxQuote));
  return build_ipv4_icmp_frame(eth_dst, eth_src, from, offending.src(), type, code, rest, quote);
}

bool icmp_error_allowed(const Ipv4Packet& offending, bool link_broadcast) {
  if (link_broadcast) return false;
  if (offending.fragment_offset() != 0) return false;
  Ipv4Addr dst = offending.dst();
  Ipv4Addr src = offending.src();
  if (dst.is_broadcast() || dst.is_multicast()) return false;
  if (src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback()) return false;
  if (offending.protocol() == ipproto::kIcmp) {
    auto icmp = IcmpMessage::parse(offending.payload());
    if (!icmp) return false;
    // Only queries (echo, timestamp, info, address mask) may trigger errors.
    switch (icmp->type()) {
      case icmptype::kEchoRequest:
      case icmptype::kEchoReply:
      case 13: case 14: case 15: case 16: case 17: case 18:
        return true;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace slipway::wire
