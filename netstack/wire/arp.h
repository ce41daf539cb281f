// ARP (RFC 826) for Ethernet and IPv4 only, as a plain value.
//
// parse() accepts only htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4; any
// other combination is not ours to answer and yields nullopt. Bytes after the
// 28-byte body (Ethernet minimum-frame padding) are ignored. The operation is
// not checked: callers decide what to do with ops other than request/reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

struct ArpPacket {
  static constexpr size_t kLen = 28;
  static constexpr uint16_t kRequest = 1, kReply = 2;

  uint16_t op = kRequest;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  static std::optional<ArpPacket> parse(Bytes packet);
  // Writes kLen bytes at the start of `out` (out.size() >= kLen).
  void emit(MutBytes out) const;

  friend bool operator==(const ArpPacket&, const ArpPacket&) = default;
};

}  // namespace slipway::wire
