// Port: one L2 endpoint.
//
// A Port hands every frame it receives to its sink and accepts frames to
// send. Every transport is a Port (TAP fd, in-memory pair, vhost-user,
// stream and dgram sockets; see vm_transports.h); so is the Gateway; so are
// filters that wrap a Port (the pcap recorder). Nothing above a Port knows
// what is underneath.
//
// Frames are whole Ethernet frames without FCS. A Port never blocks: when
// its link cannot take a frame now (the guest's receive ring or socket is
// full) the frame waits in the port's queue, which is bounded in bytes and
// frames; only beyond that bound send() drops it, counts it and returns
// false, as a NIC would, and TCP above recovers.
//
// Backpressure. A port with such a queue is "not ready" (tx_ready() false)
// once the queue holds more than kTxHighWater bytes (1 MiB), and ready
// again once its link took enough that at most kTxLowWater bytes (256 KiB)
// wait; each change goes to the tx-ready listener. The Stack passes it to
// the engine, which then stops reading the host sockets of its TCP flows,
// so that no more data enters lwIP for the guest while the link is backed
// up: the host's sender sees the TCP window close instead of the guest
// losing frames. A port becomes ready again only outside send() (when its
// link drains or its guest goes away), but listeners must not assume it.
//
// Offloads. A frame may travel with a wire::Offload: a TCP or UDP checksum
// still to be computed, or one large TCP segment standing for several (GSO),
// in the virtio-net header's terms (see wire/offload.h). A port says what
// its link carries as is in capabilities(); send() finishes in software
// whatever the link cannot carry (computes the checksum, cuts the segment
// into MTU-sized ones, as Linux's software GSO does) and hands the port's
// transmit() only what it can take. So any frame may be sent to any port;
// offloads only save work where both ends understand them. Frames a port
// receives reach the sink with the Offload its link delivered them with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "netstack/wire/offload.h"

namespace slipway::link {

using Frame = std::span<const std::byte>;
using Offload = wire::Offload;

struct PortStats {
  uint64_t rx_frames = 0, rx_bytes = 0;   // delivered to the sink
  uint64_t tx_frames = 0, tx_bytes = 0;   // accepted by send()
  uint64_t tx_dropped = 0, rx_dropped = 0;
  uint64_t tx_finished = 0;               // offloaded frames finished in software
  uint64_t tx_bad_offload = 0;            // offloaded frames that could not be finished (dropped)
  uint64_t tx_queued = 0;                 // accepted frames that had to wait in the port's queue
  uint64_t tx_queue_full = 0;             // dropped: the queue was at its bound (in tx_dropped too)
};

// What a port's link carries without help.
struct Capabilities {
  bool csum = false;  // frames whose checksum is still to be computed
  bool tso = false;   // TCP GSO frames (with csum)
  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

class Port {
 public:
  using Sink = std::function<void(Frame, const Offload&)>;
  // Backpressure watermarks of a port's queue (see the top of this file).
  static constexpr size_t kTxHighWater = 1u << 20;
  static constexpr size_t kTxLowWater = 256u << 10;

  Port() = default;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  virtual ~Port() = default;

  // Where received frames go. May be called again to re-wire. A sink that
  // takes only the frame is for ports whose link never delivers offloaded
  // frames.
  void set_sink(Sink sink) { sink_ = std::move(sink); }
  void set_sink(std::function<void(Frame)> sink) {
    if (!sink) {
      sink_ = nullptr;
      return;
    }
    sink_ = [s = std::move(sink)](Frame f, const Offload&) { s(f); };
  }
  void set_sink(std::nullptr_t) { sink_ = nullptr; }

  // Sends one frame, finishing first what the link cannot carry; false if
  // it was dropped.
  bool send(Frame frame, const Offload& offload = {});

  virtual Capabilities capabilities() const { return capabilities_; }
  // Called (with no arguments) when capabilities() changes, e.g. when a new
  // vhost-user frontend negotiated other features.
  void set_capabilities_listener(std::function<void()> listener) { listener_ = std::move(listener); }
  const PortStats& stats() const { return stats_; }
  // False while the port's queue is over its high-water mark.
  bool tx_ready() const { return tx_ready_; }
  // Called with the new state whenever tx_ready() changes.
  void set_tx_ready_listener(std::function<void(bool)> listener) { ready_listener_ = std::move(listener); }
  // The link's own counters beyond PortStats, by name (a VXLAN port's
  // refusals, say), for the control API's port list. None by default.
  virtual std::vector<std::pair<const char*, uint64_t>> link_counters() const { return {}; }

 protected:
  // The link's own send: `offload` is plain or within capabilities().
  virtual bool transmit(Frame frame, const Offload& offload) = 0;
  void deliver(Frame frame, const Offload& offload = {}) {
    stats_.rx_frames++;
    stats_.rx_bytes += frame.size();
    if (sink_) sink_(frame, offload);
  }
  void set_capabilities(Capabilities c);
  void capabilities_changed() {
    if (listener_) listener_();
  }
  // Applies the watermarks to the bytes now waiting in the port's queue.
  void note_tx_backlog(size_t queued_bytes) {
    if (tx_ready_ && queued_bytes > kTxHighWater) set_tx_ready(false);
    else if (!tx_ready_ && queued_bytes <= kTxLowWater) set_tx_ready(true);
  }
  void set_tx_ready(bool ready) {
    if (ready == tx_ready_) return;
    tx_ready_ = ready;
    if (ready_listener_) ready_listener_(ready);
  }

  PortStats stats_;

 private:
  bool finish_in_software(Frame frame, const Offload& offload);

  Sink sink_;
  Capabilities capabilities_;
  std::function<void()> listener_;
  std::function<void(bool)> ready_listener_;
  bool tx_ready_ = true;
  std::vector<std::byte> scratch_;
};

// Wires two ports back to back: what a receives goes out of b, and back.
inline void connect(Port& a, Port& b) {
  a.set_sink([&b](Frame f, const Offload& o) { b.send(f, o); });
  b.set_sink([&a](Frame f, const Offload& o) { a.send(f, o); });
}

}  // namespace slipway::link
