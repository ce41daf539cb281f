// PatchPort: two Ports joined back to back, like a patch cable.
//
// What one end sends is delivered by the other end to its sink at once,
// with its offload (synchronously: no queue, so nothing is held and nothing
// is dropped here). It joins two parts of one process that each want a
// Port, e.g. a Stack's gateway and a vswitch port. Each end carries every
// offload (capabilities csum and tso): the frame is finished, if at all, by
// whichever real port it finally leaves through.
//
// The ends may be destroyed in any order; an end whose peer is gone drops
// and counts what it is asked to send.
#pragma once

#include <memory>
#include <utility>

#include "netstack/link/port.h"

namespace slipway::link {

class PatchPort : public Port {
 public:
  static std::pair<std::unique_ptr<PatchPort>, std::unique_ptr<PatchPort>> make_pair() {
    auto a = std::unique_ptr<PatchPort>(new PatchPort);
    auto b = std::unique_ptr<PatchPort>(new PatchPort);
    a->peer_ = b.get();
    b->peer_ = a.get();
    return {std::move(a), std::move(b)};
  }
  ~PatchPort() override {
    if (peer_ != nullptr) peer_->peer_ = nullptr;
  }

 protected:
  bool transmit(Frame frame, const Offload& offload) override {
    if (peer_ == nullptr) {
      stats_.tx_dropped++;
      return false;
    }
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    peer_->deliver(frame, offload);
    return true;
  }

 private:
  PatchPort() { set_capabilities(Capabilities{.csum = true, .tso = true}); }
  PatchPort* peer_ = nullptr;
};

}  // namespace slipway::link
