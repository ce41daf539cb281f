// ARP parse/emit; see arp.h. Layout: htype(0) ptype(2) hlen(4) plen(5) op(6)
// sha(8) spa(14) tha(18) tpa(24).
#include "netstack/wire/arp.h"

#include <cassert>

namespace slipway::wire {

namespace {
constexpr uint16_t kHtypeEthernet = 1;
constexpr uint16_t kPtypeIpv4 = 0x0800;
}  // namespace

std::optional<ArpPacket> ArpPacket::parse(Bytes packet) {
  if (packet.size() < kLen) return std::nullopt;
  if (load16(packet, 0) != kHtypeEthernet || load16(packet, 2) != kPtypeIpv4 || load8(packet, 4) != 6 ||
      load8(packet, 5) != 4)
    return std::nullopt;
  ArpPacket arp;
  arp.op = load16(packet, 6);
  arp.sender_mac = MacAddr::load(packet, 8);
  arp.sender_ip = Ipv4Addr::load(packet, 14);
  arp.target_mac = MacAddr::load(packet, 18);
  arp.target_ip = Ipv4Addr::load(packet, 24);
  return arp;
}

void ArpPacket::emit(MutBytes out) const {
  assert(out.size() >= kLen);
  store16(out, 0, kHtypeEthernet);
  store16(out, 2, kPtypeIpv4);
  store8(out, 4, 6);
  store8(out, 5, 4);
  store16(out, 6, op);
  sender_mac.store(out, 8);
  sender_ip.store(out, 14);
  target_mac.store(out, 18);
  target_ip.store(out, 24);
}

}  // namespace slipway::wire
