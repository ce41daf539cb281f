// DgramPort: QEMU `-netdev dgram` on a unix datagram socket: one Ethernet
// frame per datagram.
//
// slipway binds PATH; QEMU binds its own local path and sends to PATH. We
// answer the address we last heard a frame from (a restarted frontend with
// a new address is picked up by its first frame); until then, or while the
// peer's socket is gone, frames for the guest are dropped and counted.
//
// Reads: at most kMaxReadsPerWake datagrams per wake-up; a datagram longer
// than max_frame (mtu + 14) or empty is dropped and counted. Writes: sendto()
// at once; when the peer's socket is full (EAGAIN) the frame waits, in
// order, in a FrameQueue bounded at kMaxQueuedBytes (4 MiB) and
// kMaxQueuedFrames (4096), written when the socket is writable; beyond the
// bound frames are dropped and counted (tx_queue_full). Over
// Port::kTxHighWater the port is not ready (port.h), so the engine stops
// feeding it. If the peer's socket is gone (ECONNREFUSED, ENOENT) the frame
// and the queue are dropped and counted.
//
// Writability. A sendto() fails with EAGAIN when our send buffer is full
// (the peer's unread datagrams are charged to it), which poll() on our
// socket reports, or when the peer's queue holds net.unix.max_dgram_qlen
// datagrams (10 by default; only if its socket is not connected to ours, as
// QEMU's is not), which poll() reports only to a socket connected to that
// peer: our own socket polls writable at once, over and over, while the
// peer does not read. So on EAGAIN the port watches our socket if it is
// not writable, else a second, unbound socket connected to the peer (made
// once per peer; the peer's queue wakes it when it reads) that never sends.
// A peer whose socket is connected to ours (it refuses the second socket's
// connect) has no such limit, and our socket's poll() tells all. Our own
// socket is never connected: it must keep hearing a restarted frontend at
// a new address (and disconnecting a unix datagram socket purges what it
// has not read yet). No timeouts.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "netstack/link/frame_queue.h"
#include "netstack/link/polled_fd.h"
#include "netstack/link/port.h"

namespace slipway::link {

class DgramPort : public Port {
 public:
  static constexpr int kMaxReadsPerWake = 64;
  static constexpr size_t kMaxQueuedBytes = 4u << 20;
  static constexpr size_t kMaxQueuedFrames = 4096;

  static std::unique_ptr<DgramPort> bind(uv_loop_t* loop, const std::string& path, size_t mtu);
  // Serves an already bound (or socketpair) datagram socket (takes ownership).
  DgramPort(uv_loop_t* loop, int fd, std::string path, size_t mtu);
  ~DgramPort() override;

  bool transmit(Frame frame, const Offload& offload) override;
  bool has_peer() const { return peer_len_ > 0 || connected_socket_; }
  uint64_t oversize() const { return oversize_; }
  // Frames (and their bytes) waiting for the peer's socket.
  size_t queued_frames() const { return tx_queue_.size(); }
  size_t queued_bytes() const { return tx_queue_.bytes(); }

 private:
  enum class SendResult { kSent, kFull, kGone };
  void on_io(int events);
  SendResult send_now(Frame frame);
  void flush();
  void wait_writable();  // frames wait: watch whichever socket will wake us
  void stop_waiting();   // the queue is empty again
  bool watch_peer();     // connects peer_watch_ if it can; false if not

  uv_loop_t* loop_;
  std::string path_;
  size_t max_frame_;
  std::unique_ptr<PolledFd> sock_;
  std::vector<std::byte> rx_;
  sockaddr_un peer_{};
  socklen_t peer_len_ = 0;
  bool connected_socket_ = false;  // a socketpair end: no address to answer
  // Connected to peer_ to learn when its queue has room (see above); null
  // until first needed, and again whenever the peer changes.
  std::unique_ptr<PolledFd> peer_watch_;
  bool peer_watch_refused_ = false;  // the peer is connected to us: not needed
  FrameQueue tx_queue_{kMaxQueuedBytes, kMaxQueuedFrames};
  uint64_t oversize_ = 0;
};

}  // namespace slipway::link
