// FrameQueue: frames for a link that cannot take them now (the guest's
// receive ring has no free buffer, its socket is full), oldest first, each
// with its Offload, waiting until the link drains.
//
// Bounded in bytes (frame bytes) and in frames: push() refuses a frame that
// would pass either bound, and the port drops and counts it. The bounds are
// the port's (VhostUserPort, DgramPort: kMaxQueuedBytes 4 MiB, enough for a
// TCP connection's whole send buffer in lwIP, TCP_SND_BUF 2 MiB, and
// kMaxQueuedFrames 4096). Frames are copied in (the caller's buffer is gone
// after send()); buffers of frames taken out are kept for reuse, at most
// kSpareBytes (1 MiB of capacity) of them, so that a steady backlog does
// not allocate per frame.
#pragma once

#include <cstddef>
#include <deque>
#include <vector>

#include "netstack/link/port.h"

namespace slipway::link {

class FrameQueue {
 public:
  static constexpr size_t kSpareBytes = 1u << 20;

  struct Entry {
    std::vector<std::byte> bytes;
    Offload offload;
  };

  FrameQueue(size_t max_bytes, size_t max_frames) : max_bytes_(max_bytes), max_frames_(max_frames) {}

  // Appends a copy of frame; false (nothing queued) if it would pass a bound.
  bool push(Frame frame, const Offload& offload) {
    if (frames_.size() >= max_frames_ || bytes_ + frame.size() > max_bytes_) return false;
    Entry& e = frames_.emplace_back();
    if (!spare_.empty()) {
      e.bytes = std::move(spare_.back());
      spare_.pop_back();
      spare_bytes_ -= e.bytes.capacity();
    }
    e.bytes.assign(frame.begin(), frame.end());
    e.offload = offload;
    bytes_ += frame.size();
    return true;
  }
  const Entry& front() const { return frames_.front(); }
  void pop() {
    Entry& e = frames_.front();
    bytes_ -= e.bytes.size();
    if (spare_bytes_ + e.bytes.capacity() <= kSpareBytes) {
      spare_bytes_ += e.bytes.capacity();
      spare_.push_back(std::move(e.bytes));
    }
    frames_.pop_front();
  }
  // Forgets every frame; returns how many there were.
  size_t clear() {
    size_t n = frames_.size();
    frames_.clear();
    bytes_ = 0;
    return n;
  }

  bool empty() const { return frames_.empty(); }
  size_t size() const { return frames_.size(); }
  size_t bytes() const { return bytes_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  size_t max_bytes_, max_frames_;
  size_t bytes_ = 0;
  size_t spare_bytes_ = 0;  // capacity held in spare_
  std::deque<Entry> frames_;
  std::vector<std::vector<std::byte>> spare_;
};

}  // namespace slipway::link
