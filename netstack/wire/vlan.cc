// See vlan.h.
#include "netstack/wire/vlan.h"

#include <cassert>

#include "netstack/wire/ethernet.h"

namespace slipway::wire {

namespace {
constexpr size_t kMacs = 12;
}

std::optional<VlanTag> vlan_tag(Bytes frame) {
  if (frame.size() < kEthernetHeaderLen + kVlanTagLen || load16(frame, kMacs) != ethertype::kVlan) return std::nullopt;
  uint16_t tci = load16(frame, kMacs + 2);
  return VlanTag{static_cast<uint16_t>(tci & 0x0fff), static_cast<uint8_t>(tci >> 13), (tci & 0x1000) != 0};
}

void push_vlan(Bytes frame, const VlanTag& tag, std::vector<std::byte>& out) {
  assert(frame.size() >= kMacs);
  out.resize(frame.size() + kVlanTagLen);
  MutBytes o(out);
  std::copy(frame.begin(), frame.begin() + kMacs, o.begin());
  store16(o, kMacs, ethertype::kVlan);
  store16(o, kMacs + 2,
          static_cast<uint16_t>((uint16_t{tag.pcp} << 13) | (tag.dei ? 0x1000u : 0u) | (tag.vid & 0x0fffu)));
  std::copy(frame.begin() + kMacs, frame.end(), o.begin() + kMacs + kVlanTagLen);
}

void pop_vlan(Bytes frame, std::vector<std::byte>& out) {
  assert(frame.size() >= kEthernetHeaderLen + kVlanTagLen);
  out.resize(frame.size() - kVlanTagLen);
  MutBytes o(out);
  std::copy(frame.begin(), frame.begin() + kMacs, o.begin());
  std::copy(frame.begin() + kMacs + kVlanTagLen, frame.end(), o.begin() + kMacs);
}

}  // namespace slipway::wire
