// ICMPv4 view and emitter; see icmp.h.
#include "netstack/wire/icmp.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"

namespace slipway::wire {

std::optional<IcmpMessage> IcmpMessage::parse(Bytes l4) {
  if (l4.size() < kHeaderLen) return std::nullopt;
  return IcmpMessage{l4};
}

bool IcmpMessage::checksum_ok() const { return checksum_fold(checksum_add(data_)) == 0; }

size_t emit_icmp(MutBytes out, uint8_t type, uint8_t code, uint32_t rest, Bytes payload) {
  size_t len = IcmpMessage::kHeaderLen + payload.size();
  assert(out.size() >= len);
  store8(out, 0, type);
  store8(out, 1, code);
  store16(out, 2, 0);
  store32(out, 4, rest);
  std::copy(payload.begin(), payload.end(), out.begin() + IcmpMessage::kHeaderLen);
  store16(out, 2, checksum_fold(checksum_add(Bytes{out.first(len)})));
  return len;
}

}  // namespace slipway::wire
