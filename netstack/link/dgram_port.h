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
// at once; on EAGAIN the frame is copied into a bounded queue
// (kMaxQueuedFrames) written when the socket is writable, beyond which
// frames are dropped and counted. No connection, so no states beyond
// "peer known or not", and no timeouts.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "netstack/link/polled_fd.h"
#include "netstack/link/port.h"

namespace slipway::link {

class DgramPort : public Port {
 public:
  static constexpr int kMaxReadsPerWake = 64;
  static constexpr size_t kMaxQueuedFrames = 256;

  static std::unique_ptr<DgramPort> bind(uv_loop_t* loop, const std::string& path, size_t mtu);
  // Serves an already bound (or socketpair) datagram socket (takes ownership).
  DgramPort(uv_loop_t* loop, int fd, std::string path, size_t mtu);
  ~DgramPort() override;

  bool transmit(Frame frame, const Offload& offload) override;
  bool has_peer() const { return peer_len_ > 0 || connected_socket_; }
  uint64_t oversize() const { return oversize_; }

 private:
  void on_io(int events);
  bool send_now(Frame frame);  // false on EAGAIN
  void flush();

  std::string path_;
  size_t max_frame_;
  std::unique_ptr<PolledFd> sock_;
  std::vector<std::byte> rx_;
  sockaddr_un peer_{};
  socklen_t peer_len_ = 0;
  bool connected_socket_ = false;  // a socketpair end: no address to answer
  std::deque<std::vector<std::byte>> tx_queue_;
  uint64_t oversize_ = 0;
};

}  // namespace slipway::link
