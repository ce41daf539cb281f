// TapPort: a Port over a TAP file descriptor (IFF_TAP | IFF_NO_PI), one
// Ethernet frame per read() and write().
//
// With a virtio-net header (the TAP was made with IFF_VNET_HDR and
// TUNSETOFFLOAD, see ns::GuestInterface::offload), every frame is preceded
// by a kVnetHeaderLen-byte wire::Offload both ways: the guest's kernel sends
// partial checksums and TCP segments of up to 64 KiB, and takes the same
// (capabilities: csum and tso). Without it, frames are plain.
//
// Reads are driven by a uv_poll_t; each wake-up reads at most kMaxReadsPerWake
// frames so that one busy guest cannot starve the loop. A frame whose header
// does not parse is dropped and counted (rx_dropped). send() writes at once;
// if the kernel queue is full (EAGAIN) the frame is copied into a bounded
// queue (kMaxQueuedFrames / kMaxQueuedBytes) that drains when the fd becomes
// writable, and frames beyond the bound are dropped and counted. Over
// Port::kTxHighWater queued bytes the port is not ready (port.h).
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

  static constexpr size_t kVnetHeaderLen = wire::kVirtioNetHdrLen;
  // The largest frame with TSO: an IP packet of 64 KiB and its Ethernet header.
  static constexpr size_t kMaxGsoFrame = 65535 + 14;

  // Takes ownership of fd (must be non-blocking). `max_frame`: the largest
  // plain frame (MTU + Ethernet header). `vnet_header`: the fd carries the
  // virtio-net header (IFF_VNET_HDR, header size kVnetHeaderLen).
  TapPort(uv_loop_t* loop, int fd, size_t max_frame, bool vnet_header = false);
  ~TapPort() override;

  bool transmit(Frame frame, const Offload& offload) override;

 private:
  struct Handle;
  void on_poll(int status, int events);
  void update_poll();
  void drain_queue();
  ssize_t write_frame(Frame frame, const Offload& offload);

  Handle* handle_;
  bool vnet_header_;
  // Each frame is read into this block, offered to the sink for keeping
  // (sys/rx_blocks.h): when the sink keeps it, the next read gets a new one.
  size_t rx_size_;
  std::byte* rx_block_;
  std::deque<std::vector<std::byte>> tx_queue_;
  size_t tx_queued_bytes_ = 0;
  bool want_write_ = false;
};

}  // namespace slipway::link
