// DgramPort: QEMU `-netdev dgram` on a unix datagram socket: one Ethernet
// frame per datagram.
//
// slipway binds PATH; QEMU binds its own local path and sends to PATH. We
// answer the address we last heard a frame from (a restarted frontend with
// a new address is picked up by its first frame); until then, or while the
// peer's socket is gone, frames for the guest are dropped and counted.
//
// Reads: at most kMaxReadsPerWake datagrams per wake-up; a datagram longer
// than max_frame (mtu + 14) or empty is dropped and counted.
//
// Writes: send at once; on EAGAIN (the frontend's receive queue is full: a
// paused VM, or a guest that receives slower than slipway sends) the frame
// waits, in order, in a FrameQueue bounded at kMaxQueuedBytes (4 MiB) and
// kMaxQueuedFrames (4096), beyond which frames are dropped and counted
// (tx_queue_full); over Port::kTxHighWater queued bytes the port is not
// ready (port.h), so the engine stops feeding it. The queue is written when
// the frontend reads again, which only a socket *connected* to the
// frontend's address can tell: a bound, unconnected datagram socket always
// polls writable (the kernel cannot know where its next datagram goes), so
// waiting for it to be writable retried at once, forever (97 % CPU, tens of
// thousands of failed sends a second). So frames go out through a second,
// unbound socket connected to the frontend's address (its writability is
// the frontend's queue having room), re-connected when the frontend's
// address changes or its socket was replaced (at most once per
// kReconnectMs). If the frontend refuses that (EPERM: its socket is
// connected to our path), frames go out of the bound socket with sendto();
// the frontend's queue limit (net.unix.max_dgram_qlen) does not apply to a
// socket connected to ours, so what fills is our own send buffer (the
// frontend's unread datagrams are charged to it), and the bound socket is
// polled writable while it is not; should it poll writable yet refuse, a
// timer retries, every kRetryMinMs (1 ms) doubling to kRetryMaxMs (64 ms).
// A socketpair end (connected already) polls correctly and is used as it is.
//
// No connection state beyond "peer known or not", and no timeouts.
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
  static constexpr uint64_t kReconnectMs = 100;
  static constexpr uint64_t kRetryMinMs = 1;
  static constexpr uint64_t kRetryMaxMs = 64;

  static std::unique_ptr<DgramPort> bind(uv_loop_t* loop, const std::string& path, size_t mtu);
  // Serves an already bound (or socketpair) datagram socket (takes ownership).
  DgramPort(uv_loop_t* loop, int fd, std::string path, size_t mtu);
  ~DgramPort() override;

  bool transmit(Frame frame, const Offload& offload) override;
  bool has_peer() const { return peer_len_ > 0 || connected_socket_; }
  uint64_t oversize() const { return oversize_; }
  // Sends that failed with EAGAIN (the frontend's queue was full).
  uint64_t send_retries() const { return send_retries_; }
  // Frames (and their bytes) waiting for the frontend's socket.
  size_t queued_frames() const { return tx_queue_.size(); }
  size_t queued_bytes() const { return tx_queue_.bytes(); }

 private:
  void on_io(int events);
  bool send_now(Frame frame);  // false on EAGAIN
  void flush();
  // (Re)connects the sending socket to peer_; false if the frontend
  // refuses it (frames then go out of the bound socket).
  bool connect_sender();
  void wait_writable();  // after EAGAIN: a socket's poll, or the retry timer

  uv_loop_t* loop_;
  std::string path_;
  size_t max_frame_;
  std::unique_ptr<PolledFd> sock_;
  std::unique_ptr<PolledFd> sender_;  // connected to peer_ (null: none yet, or refused)
  uint64_t last_connect_ms_ = 0;
  bool connect_tried_ = false;
  uv_timer_t* retry_ = nullptr;       // fallback retries; freed in its close callback
  uint64_t retry_ms_ = 0;             // 0: not waiting
  std::vector<std::byte> rx_;
  sockaddr_un peer_{};
  socklen_t peer_len_ = 0;
  bool connected_socket_ = false;  // a socketpair end: no address to answer
  FrameQueue tx_queue_{kMaxQueuedBytes, kMaxQueuedFrames};
  uint64_t oversize_ = 0;
  uint64_t send_retries_ = 0;
};

}  // namespace slipway::link
