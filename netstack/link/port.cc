// See port.h.
#include "netstack/link/port.h"

#include <spdlog/spdlog.h>

namespace slipway::link {

bool Port::send(Frame frame, const Offload& offload) {
  if (offload.plain()) return transmit(frame, offload);
  Capabilities c = capabilities();
  bool carried = offload.is_gso() ? c.tso : c.csum;
  if (carried) return transmit(frame, offload);
  return finish_in_software(frame, offload);
}

bool Port::finish_in_software(Frame frame, const Offload& offload) {
  stats_.tx_finished++;
  wire::OffloadError err = wire::OffloadError::kNone;
  bool sent = true;
  if (offload.is_gso()) {
    // A single segment buffer: each is transmitted before the next is built
    // (transmit() copies what it cannot send at once).
    std::vector<std::byte> segment;
    segment.swap(scratch_);
    err = wire::segment_tcp(frame, offload, segment, [&](wire::Bytes seg) { sent = transmit(seg, {}) && sent; });
    segment.swap(scratch_);
  } else {
    scratch_.assign(frame.begin(), frame.end());
    err = wire::complete_checksum(scratch_, offload);
    if (err == wire::OffloadError::kNone) sent = transmit(scratch_, {});
  }
  if (err != wire::OffloadError::kNone) {
    stats_.tx_bad_offload++;
    stats_.tx_dropped++;
    spdlog::trace("port: dropping a frame whose offload cannot be finished: {}", wire::to_string(err));
    return false;
  }
  return sent;
}

void Port::set_capabilities(Capabilities c) {
  if (c == capabilities_) return;
  capabilities_ = c;
  capabilities_changed();
}

}  // namespace slipway::link
