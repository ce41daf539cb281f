// CallbackPort: the guest link of an embedded stack, as a Port whose far end
// is the embedder's code.
//
// Theory of operation
//   send() (frames the gateway sends towards the guest) calls the embedder's
//   C output callback with the frame; input() (frames the embedder pushes
//   with slipway_input) delivers to the sink, i.e. into the gateway. Both run
//   on the stack's loop thread. The port remembers whether it is inside the
//   callback, so that the C API can refuse calls that would re-enter the
//   gateway from there (slipway_input, slipway_free on the caller's loop).
//
//   disable() turns output off for good: from then on send() drops and
//   counts. The stack disables the port before tearing the gateway down, so
//   frames the teardown produces (resets of open flows) never reach an
//   embedder that is freeing the stack.
//
// Limits: the callback is a C function and must not throw (C++ embedders:
// catch inside it). The output counter is atomic so other threads may read
// it (slipway_get_stats).
#pragma once

#include <atomic>
#include <cstdint>

#include "slipway.h"
#include "netstack/link/port.h"

namespace slipway::capi {

class CallbackPort : public link::Port {
 public:
  // output_frames: counts the frames handed to the callback (read by other
  // threads; owned by the caller and outliving the port).
  CallbackPort(slipway_output_fn output, void* opaque, std::atomic<uint64_t>& output_frames)
      : output_(output), opaque_(opaque), output_frames_(output_frames) {}

  // A frame for the guest.
  bool transmit(link::Frame frame, const link::Offload&) override {
    if (!enabled_) {
      stats_.tx_dropped++;
      return false;
    }
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    output_frames_.fetch_add(1, std::memory_order_relaxed);
    // A callback that sends again re-enters here: keep the outer flag.
    bool outer = in_callback_;
    in_callback_ = true;
    output_(opaque_, frame.data(), frame.size());
    in_callback_ = outer;
    return true;
  }

  // A frame from the guest, into the gateway.
  void input(link::Frame frame) { deliver(frame); }

  void disable() { enabled_ = false; }
  bool in_callback() const { return in_callback_; }

 private:
  slipway_output_fn output_;
  void* opaque_;
  bool enabled_ = true;
  bool in_callback_ = false;
  std::atomic<uint64_t>& output_frames_;
};

}  // namespace slipway::capi
