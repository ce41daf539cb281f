// IEEE 802.1Q VLAN tags on Ethernet frames.
//
// A tagged frame carries, after the two MAC addresses, the TPID 0x8100 and a
// 16-bit TCI (priority: 3 bits, DEI: 1 bit, VLAN id: 12 bits), then the
// inner ethertype. vlan_tag() reads it (nullopt for an untagged frame or one
// too short to hold a tag); push_vlan() and pop_vlan() build the frame with
// the tag inserted or removed into a caller's buffer (a frame is never
// edited in place: it may be read by other ports). VLAN ids 0 and 4095 are
// reserved (0: priority-tagged only), so valid access or trunk VLANs are
// 1..4094 (valid_vlan_id()).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

inline constexpr size_t kVlanTagLen = 4;

struct VlanTag {
  uint16_t vid = 0;  // 12 bits
  uint8_t pcp = 0;   // priority, 3 bits
  bool dei = false;
};

constexpr bool valid_vlan_id(unsigned vid) { return vid >= 1 && vid <= 4094; }

std::optional<VlanTag> vlan_tag(Bytes frame);
// `frame` with `tag` after its MAC addresses (frame.size() >= 12).
void push_vlan(Bytes frame, const VlanTag& tag, std::vector<std::byte>& out);
// `frame` without its tag (vlan_tag(frame) must hold).
void pop_vlan(Bytes frame, std::vector<std::byte>& out);

}  // namespace slipway::wire
