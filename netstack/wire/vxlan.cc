// See vxlan.h.
#include "netstack/wire/vxlan.h"

namespace slipway::wire {

namespace {
constexpr uint8_t kFlagI = 0x08;
}

const char* to_string(VxlanError e) {
  switch (e) {
    case VxlanError::kNone:
      return "none";
    case VxlanError::kTruncated:
      return "truncated";
    case VxlanError::kBadFlags:
      return "flags other than I, or a reserved bit set";
  }
  return "?";
}

std::optional<VxlanHeader> parse_vxlan(Bytes datagram, VxlanError* error) {
  auto fail = [&](VxlanError e) -> std::optional<VxlanHeader> {
    if (error != nullptr) *error = e;
    return std::nullopt;
  };
  if (datagram.size() < kVxlanHeaderLen) return fail(VxlanError::kTruncated);
  // The first word is the flags and 24 reserved bits; the second the VNI
  // and 8 reserved bits.
  if (load32(datagram, 0) != uint32_t{kFlagI} << 24 || load8(datagram, 7) != 0) return fail(VxlanError::kBadFlags);
  if (error != nullptr) *error = VxlanError::kNone;
  return VxlanHeader{load32(datagram, 4) >> 8};
}

void emit_vxlan(MutBytes out, uint32_t vni) {
  store32(out, 0, uint32_t{kFlagI} << 24);
  store32(out, 4, (vni & kVxlanMaxVni) << 8);
}

}  // namespace slipway::wire
