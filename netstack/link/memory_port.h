// MemoryPort: an in-memory pair of Ports for tests.
//
// What one end sends is queued for the other end; poll() delivers queued
// frames to that end's sink, so the test decides when frames move (no
// re-entrancy, no hidden loop). The queue is bounded like a NIC's.
#pragma once

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "netstack/link/port.h"

namespace slipway::link {

class MemoryPort : public Port {
 public:
  static constexpr size_t kMaxQueued = 4096;

  // Two connected ends.
  static std::pair<std::unique_ptr<MemoryPort>, std::unique_ptr<MemoryPort>> make_pair() {
    auto a = std::unique_ptr<MemoryPort>(new MemoryPort);
    auto b = std::unique_ptr<MemoryPort>(new MemoryPort);
    a->peer_ = b.get();
    b->peer_ = a.get();
    return {std::move(a), std::move(b)};
  }
  ~MemoryPort() override {
    if (peer_ != nullptr) peer_->peer_ = nullptr;
  }

  bool transmit(Frame frame, const Offload&) override {
    if (peer_ == nullptr || peer_->inbox_.size() >= kMaxQueued) {
      stats_.tx_dropped++;
      return false;
    }
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    peer_->inbox_.emplace_back(frame.begin(), frame.end());
    return true;
  }

  // Delivers up to max queued frames to this end's sink; returns how many.
  size_t poll(size_t max = SIZE_MAX) {
    size_t n = 0;
    while (n < max && !inbox_.empty()) {
      std::vector<std::byte> f = std::move(inbox_.front());
      inbox_.pop_front();
      deliver(f);
      ++n;
    }
    return n;
  }
  size_t queued() const { return inbox_.size(); }

 private:
  MemoryPort() = default;
  MemoryPort* peer_ = nullptr;
  std::deque<std::vector<std::byte>> inbox_;
};

}  // namespace slipway::link
