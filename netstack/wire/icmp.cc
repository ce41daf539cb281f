// ICMPv4 view and emitter, and the ICMP error rule; see icmp.h.
#include "netstack/wire/icmp.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"

namespace slipway::wire {

std::optional<AnyIcmpMessage> AnyIcmpMessage::parse(Bytes l4) {
  if (l4.size() < kHeaderLen) return std::nullopt;
  return AnyIcmpMessage{l4};
}

std::optional<IcmpMessage> IcmpMessage::parse(Bytes l4) {
  if (l4.size() < kHeaderLen) return std::nullopt;
  return IcmpMessage{l4};
}

bool IcmpMessage::checksum_ok() const { return checksum_fold(checksum_add(data_)) == 0; }

size_t emit_icmp_unchecksummed(MutBytes out, uint8_t type, uint8_t code, uint32_t rest, Bytes payload) {
  size_t len = AnyIcmpMessage::kHeaderLen + payload.size();
  assert(out.size() >= len);
  store8(out, 0, type);
  store8(out, 1, code);
  store16(out, 2, 0);
  store32(out, 4, rest);
  std::copy(payload.begin(), payload.end(), out.begin() + AnyIcmpMessage::kHeaderLen);
  return len;
}

size_t emit_icmp(MutBytes out, uint8_t type, uint8_t code, uint32_t rest, Bytes payload) {
  size_t len = emit_icmp_unchecksummed(out, type, code, rest, payload);
  store16(out, 2, checksum_fold(checksum_add(Bytes{out.first(len)})));
  return len;
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
