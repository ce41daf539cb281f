// Port: one L2 endpoint.
//
// A Port hands every frame it receives to its sink and accepts frames to
// send. Every transport is a Port (TAP fd, in-memory pair, vhost-user,
// stream and dgram sockets; see vm_transports.h); so is the Gateway; so are
// filters that wrap a Port (the pcap recorder). Nothing above a Port knows
// what is underneath.
//
// Frames are whole Ethernet frames without FCS. A Port never blocks: when it
// cannot take a frame (its bounded queue is full) send() drops it, counts it
// and returns false, as a NIC would; TCP above recovers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

namespace slipway::link {

using Frame = std::span<const std::byte>;

struct PortStats {
  uint64_t rx_frames = 0, rx_bytes = 0;   // delivered to the sink
  uint64_t tx_frames = 0, tx_bytes = 0;   // accepted by send()
  uint64_t tx_dropped = 0, rx_dropped = 0;
};

class Port {
 public:
  using Sink = std::function<void(Frame)>;

  Port() = default;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  virtual ~Port() = default;

  // Where received frames go. May be called again to re-wire.
  void set_sink(Sink sink) { sink_ = std::move(sink); }

  // Sends one frame; false if it was dropped.
  virtual bool send(Frame frame) = 0;

  const PortStats& stats() const { return stats_; }

 protected:
  void deliver(Frame frame) {
    stats_.rx_frames++;
    stats_.rx_bytes += frame.size();
    if (sink_) sink_(frame);
  }
  PortStats stats_;

 private:
  Sink sink_;
};

// Wires two ports back to back: what a receives goes out of b, and back.
inline void connect(Port& a, Port& b) {
  a.set_sink([&b](Frame f) { b.send(f); });
  b.set_sink([&a](Frame f) { a.send(f); });
}

}  // namespace slipway::link
