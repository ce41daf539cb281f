// VirtioNetDevice: the virtio-net device logic over two split virtqueues
// (0: receive, host -> guest; 1: transmit, guest -> host), independent of
// how the queues and memory were set up (vhost-user, or a test building
// rings in its own memory).
//
// Every frame on a queue is preceded by the 12-byte virtio_net_hdr (virtio
// 1.x, VIRTIO_F_VERSION_1), which carries the frame's offload (a partial
// checksum, GSO; wire/offload.h) both ways: transmit() hands each frame on
// with the Offload its header says (a header that does not parse drops the
// frame, counted in tx_bad_header), and receive() writes the Offload it is
// given (the transport gives only what the guest negotiated). With
// VIRTIO_NET_F_MRG_RXBUF a received frame may fill several chains
// (num_buffers says how many); without it, one chain.
//
// Limits: transmit() handles at most kMaxFramesPerKick chains per call (the
// caller re-runs it from the loop when it reports more); a transmitted frame
// longer than max_frame (kMaxGsoFrame, 64 KiB and an Ethernet header, once
// the guest may send TSO segments: set_large_tx) is dropped and counted (its
// chain is still returned to the guest). receive() that finds too few guest
// buffers takes none (partially taken chains are given back) and says why:
// kNoBuffers when the ring ran empty (the frame may fit once the guest adds
// buffers: the transport keeps it and retries on the receive queue's kick),
// kTooLarge when it cannot fit whatever the guest adds (one chain too small
// without MRG_RXBUF, or larger than the whole ring: the transport drops it). A ring error (see
// Virtqueue) sets broken(): the transport closes the connection and nothing
// is read or written through the queues until reset().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "netstack/link/guest_memory.h"
#include "netstack/link/port.h"
#include "netstack/link/virtqueue.h"

namespace slipway::link {

class VirtioNetDevice {
 public:
  static constexpr int kMaxFramesPerKick = 64;
  static constexpr size_t kHeaderSize = 12;
  static constexpr int kRxQueue = 0, kTxQueue = 1, kNumQueues = 2;
  static constexpr size_t kMaxGsoFrame = 65535 + 14;

  struct Stats {
    uint64_t tx_frames = 0, rx_frames = 0;
    uint64_t tx_oversize = 0;     // guest frames longer than max_frame (dropped)
    uint64_t tx_runt = 0;         // guest chains shorter than the header
    uint64_t tx_bad_header = 0;   // guest headers with an unknown GSO type
    uint64_t rx_no_buffers = 0;   // frames for the guest that found the ring empty (kNoBuffers)
    uint64_t rx_too_large = 0;    // frames for the guest larger than its buffers (kTooLarge)
    uint64_t ring_errors = 0;     // misbehaving frontends (connection closed)
  };
  enum class TxResult { kDone, kMore, kBroken };
  enum class RxResult { kDelivered, kNoBuffers, kTooLarge, kNotReady, kBroken };

  explicit VirtioNetDevice(size_t max_frame) : max_frame_(max_frame) { tx_buf_.reserve(max_frame + kHeaderSize); }

  GuestMemory& memory() { return memory_; }
  Virtqueue& queue(int i) { return queues_[i]; }
  void set_mergeable_rx(bool on) { mergeable_rx_ = on; }
  // The guest may transmit TCP segments of up to 64 KiB (HOST_TSO4/6).
  void set_large_tx(bool on) { large_tx_ = on; }

  // A queue runs when attached and enabled (vhost-user's SET_VRING_ENABLE).
  void set_enabled(int q, bool on) { enabled_[q] = on; }
  bool running(int q) const { return enabled_[q] && queues_[q].attached() && !broken_; }

  // Guest -> host: delivers each frame (without the header) and its offload.
  TxResult transmit(const std::function<void(Frame, const Offload&)>& deliver);
  // Host -> guest.
  RxResult receive(Frame frame, const Offload& offload = {});
  // After transmit()/receive(): should queue q's call fd be signalled now?
  bool should_notify(int q) { return queues_[q].should_notify(); }

  bool broken() const { return broken_; }
  const std::string& error() const { return error_; }
  const Stats& stats() const { return stats_; }
  // Forgets rings, memory and the error (a new frontend, or RESET_OWNER).
  void reset();

 private:
  void fail(std::string why);

  size_t max_frame_;
  GuestMemory memory_;
  Virtqueue queues_[kNumQueues];
  bool enabled_[kNumQueues] = {false, false};
  bool mergeable_rx_ = false;
  bool large_tx_ = false;
  bool broken_ = false;
  std::string error_;
  Stats stats_;
  Virtqueue::Chain tx_chain_, rx_chain_;
  std::vector<std::byte> tx_buf_;
  struct Used {
    uint16_t head;
    uint32_t len;
  };
  std::vector<Used> rx_used_;
  std::vector<Virtqueue::Segment> rx_first_;
};

}  // namespace slipway::link
