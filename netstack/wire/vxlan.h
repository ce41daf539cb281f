// VXLAN (RFC 7348): Ethernet frames in UDP datagrams.
//
// A VXLAN datagram's payload is an 8-byte header, then the whole inner
// Ethernet frame (no FCS):
//   byte 0     flags: 0x08 (I, "the VNI is valid"); the other bits reserved
//   bytes 1-3  reserved
//   bytes 4-6  the VNI (VXLAN network identifier, 24 bits)
//   byte 7     reserved
// The RFC says reserved bits are sent as zero and ignored on receipt; Linux's
// vxlan device refuses a header with any bit it does not understand (GBP,
// GPE and the other extensions reuse them, and then the payload may not be
// Ethernet), and so does parse_vxlan(): flags must be exactly I and every
// reserved bit zero. The default UDP port is 4789 (IANA).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

inline constexpr size_t kVxlanHeaderLen = 8;
inline constexpr uint16_t kVxlanUdpPort = 4789;
inline constexpr uint32_t kVxlanMaxVni = 0xffffff;

enum class VxlanError : uint8_t {
  kNone,
  kTruncated,  // shorter than the header
  kBadFlags,   // the I flag missing, or a reserved bit set
};
const char* to_string(VxlanError e);

struct VxlanHeader {
  uint32_t vni = 0;  // 24 bits
};

// The header at the start of `datagram` (a UDP payload); nullopt and *error
// when it is not a plain VXLAN header.
std::optional<VxlanHeader> parse_vxlan(Bytes datagram, VxlanError* error = nullptr);
// Writes the 8-byte header (I flag, `vni` & kVxlanMaxVni) at the start of
// `out` (out.size() >= kVxlanHeaderLen).
void emit_vxlan(MutBytes out, uint32_t vni);

}  // namespace slipway::wire
