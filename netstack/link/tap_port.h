// TapPort: a Port over a TAP file descriptor (IFF_TAP | IFF_NO_PI), one
// Ethernet frame per read() and write().
//
// Reads are driven by a uv_poll_t; each wake-up reads at most kMaxReadsPerWake
// frames so that one busy guest cannot starve the loop. send() writes at once;
// if the kernel queue is full (EAGAIN) the frame is copied into a bounded
// queue (kMaxQueuedFrames / kMaxQueuedBytes) that drains when the fd becomes
// writable, and frames beyond the bound are dropped and counted.
//
// The poll handle and the fd live in a heap block owned by the loop until its
// close callback runs, so the TapPort may be destroyed at any time.
#pragma once

#include <uv.h>

#include <cstddef>
#include <deque>
#include <vector>

#include "netstack/link/port.h"

namespace slipway::link {

class TapPort : public Port {
 public:
  static constexpr int kMaxReadsPerWake = 64;
  static constexpr size_t kMaxQueuedFrames = 1024;
  static constexpr size_t kMaxQueuedBytes = 16u << 20;

  // Takes ownership of fd (must be non-blocking).
  TapPort(uv_loop_t* loop, int fd, size_t mtu);
  ~TapPort() override;

  bool transmit(Frame frame, const Offload& offload) override;

 private:
  struct Handle;
  void on_poll(int status, int events);
  void update_poll();
  void drain_queue();

  Handle* handle_;
  std::vector<std::byte> rx_buffer_;
  std::deque<std::vector<std::byte>> tx_queue_;
  size_t tx_queued_bytes_ = 0;
  bool want_write_ = false;
};

}  // namespace slipway::link
