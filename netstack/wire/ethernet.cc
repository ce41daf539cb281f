// Ethernet II header view and emitter; see ethernet.h.
#include "netstack/wire/ethernet.h"

#include <cassert>

namespace slipway::wire {

std::optional<EthernetFrame> EthernetFrame::parse(Bytes frame) {
  if (frame.size() < kEthernetHeaderLen) return std::nullopt;
  return EthernetFrame{frame};
}

void emit_ethernet_header(MutBytes out, MacAddr dst, MacAddr src, uint16_t ethertype) {
  assert(out.size() >= kEthernetHeaderLen);
  dst.store(out, 0);
  src.store(out, 6);
  store16(out, 12, ethertype);
}

}  // namespace slipway::wire
