// GuestLink: the guest's side of one slipway VM transport, for the
// benchmark's synthetic frontends (transport_frontend: ICMP echo at the
// gateway; transport_relay: a kernel's TAP relayed onto the transport).
//
// Theory of operation
//   Each link connects to slipway's socket and speaks the transport as a
//   VMM would:
//     - vhost-user: the frontend (what QEMU does, minus the guest): memfd
//       "guest memory" shared with slipway, two split virtqueues of
//       queue_size entries (default kQueueSize, 256, QEMU's default; a
//       power of two up to 32768), eventfd kicks and calls with
//       VIRTIO_RING_F_EVENT_IDX as Linux's virtio-net uses them. Receive
//       (queue 0): every buffer posted once, MRG_RXBUF (a frame may fill
//       several buffers; its header's num_buffers says how many), an
//       interrupt asked for only before sleeping (used_event = the last used
//       entry seen). Transmit (queue 1): one descriptor per frame, header and
//       frame in one buffer; a kick only when slipway asks (avail_event);
//       completions are reaped when a buffer is needed, and an interrupt is
//       asked for only when the ring is full (used_event), else used_event is
//       kept half the index space away. With offloads the frontend acks
//       VIRTIO_NET_F_CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6 and HOST/GUEST_ECN
//       (those slipway offers), without them none. A frame that does not fit
//       a buffer (rx_buffer, tx_buffer bytes with the 12-byte header) is
//       the caller's to avoid: tx_slot() says how much room there is.
//     - stream: QEMU -netdev stream framing (a 4-byte big-endian length,
//       then the frame), non-blocking, at most kMaxStreamPending unsent
//       bytes queued.
//     - dgram: QEMU -netdev dgram, one frame per datagram from a bound
//       socket (PATH.bench-PID); a datagram slipway's socket cannot take yet
//       (EAGAIN) is held, and nothing more is sent until it went.
//     - packet: AF_PACKET on an interface (the TAP of `slipway run`); the
//       ICMP benchmark's TAP reference.
//
//   Guest -> slipway is two steps, so that a frame can be read straight
//   into the transport's buffer (the relay reads its TAP into guest
//   memory): tx_slot() hands out room for one frame (and, on vhost-user with
//   offloads, for its 10-byte virtio-net header), tx_commit() sends it,
//   flush() makes what was committed visible (publish and kick, or write
//   out). Slipway -> guest: poll_rx() hands over frames already received,
//   at most max_frames per call, never waiting; a vhost-user frame is
//   handed over in its buffers' pieces (no copy).
//
//   Waiting: before sleeping, the caller asks arm_rx() (and arm_tx() when
//   tx_slot() had no room, or output is pending) what to poll; nullopt means
//   "there is work already, do not sleep". The link clears its own eventfds.
//
// Guest input checks. Slipway is the untrusted side here: a used entry
// with a bad id or length (on the transmit queue: an id not in flight), or
// a frame whose num_buffers is 0 or runs past the ring, is dropped and
// counted in errors().bad_used; a frame whose
// buffers are not all published yet is left for later and counted
// (rx_partial). A broken stream, a refused socket or a failed vhost-user
// message ends the program (die()).
#pragma once

#include <poll.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace slipway::bench {

// Prints "PROGRAM: what: strerror(errno)" and exits 1.
[[noreturn]] void die(const std::string& what);
// The same without errno.
[[noreturn]] void die_plain(const std::string& what);

// The virtio-net header as a TAP with IFF_VNET_HDR carries it
// (TUNSETVNETHDRSZ 10: no num_buffers), and as the ring carries it (12).
inline constexpr size_t kVnetHdrLen = 10;
inline constexpr size_t kRingHdrLen = 12;
// The largest frame a link takes: a 64 KiB IP packet and its Ethernet header.
inline constexpr size_t kMaxFrame = 65535 + 14;

struct TxSlot {
  std::span<std::byte> header;  // kVnetHdrLen bytes to fill (vhost-user with offloads), else empty
  std::span<std::byte> frame;   // room for one frame
};

struct RxFrame {
  std::span<const std::byte> header;  // the ring's header without num_buffers (vhost-user), else empty
  std::span<const iovec> pieces;      // the frame, in one or more pieces
  size_t size = 0;                    // bytes in all pieces
};
using RxHandler = std::function<void(const RxFrame&)>;

struct LinkErrors {
  uint64_t bad_used = 0;    // used entries with a bad or repeated id, length or num_buffers (dropped)
  uint64_t rx_partial = 0;   // times a frame's buffers were not all published together
};

class GuestLink {
 public:
  GuestLink() = default;
  GuestLink(const GuestLink&) = delete;
  GuestLink& operator=(const GuestLink&) = delete;
  virtual ~GuestLink() = default;

  // Guest -> slipway. Room for the next frame, or nullopt while the
  // transport takes no more (wait with arm_tx()).
  virtual std::optional<TxSlot> tx_slot() = 0;
  // Sends the first `size` bytes of the frame in the slot last handed out.
  virtual void tx_commit(size_t size) = 0;
  // Makes committed frames visible to slipway.
  virtual void flush() {}
  // Copies one frame into a slot and commits it; false if there was no room.
  bool send(std::span<const std::byte> frame);

  // Slipway -> guest: calls on_frame for at most max_frames frames already
  // received (valid during the call); returns how many.
  virtual int poll_rx(int max_frames, const RxHandler& on_frame) = 0;

  // What to poll before sleeping for received frames; nullopt: frames are
  // waiting already.
  virtual std::optional<pollfd> arm_rx() = 0;
  // What to poll for the transmit side: the link holds output it could not
  // hand over yet, or (after tx_slot() gave none) has no room. nullopt:
  // nothing to wait for (room appeared, or nothing is pending).
  virtual std::optional<pollfd> arm_tx() = 0;

  // poll_rx(), waiting up to timeout_ms for a first frame (ICMP benchmark).
  void receive(int timeout_ms, int max_frames, const RxHandler& on_frame);

  const LinkErrors& errors() const { return errors_; }

 protected:
  LinkErrors errors_;
};

inline constexpr uint16_t kQueueSize = 256;

struct VhostUserOptions {
  bool offloads = false;    // ack slipway's offload features
  uint16_t queue_size = kQueueSize;  // entries per ring (a power of two)
  size_t rx_buffer = 2048;  // bytes per receive buffer (header included)
  size_t tx_buffer = 2048;  // bytes per transmit buffer (header included)
};

inline constexpr size_t kMaxStreamPending = 1 << 20;

// kind: "vhost-user", "stream", "dgram" (target: slipway's socket path) or
// "packet" (target: an interface). Dies if it cannot connect.
std::unique_ptr<GuestLink> connect_link(const std::string& kind, const std::string& target,
                                        const VhostUserOptions& vhost = {});

}  // namespace slipway::bench
