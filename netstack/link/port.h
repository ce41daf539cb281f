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

  PortStats stats_;

 private:
  bool finish_in_software(Frame frame, const Offload& offload);

  Sink sink_;
  Capabilities capabilities_;
  std::function<void()> listener_;
  std::vector<std::byte> scratch_;
};

// Wires two ports back to back: what a receives goes out of b, and back.
inline void connect(Port& a, Port& b) {
  a.set_sink([&b](Frame f, const Offload& o) { b.send(f, o); });
  b.set_sink([&a](Frame f, const Offload& o) { a.send(f, o); });
}

}  // namespace slipway::link
