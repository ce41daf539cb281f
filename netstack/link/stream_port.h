// StreamPort: QEMU `-netdev stream` (and passt's qemu socket protocol) on a
// unix stream socket: each frame is preceded by its length as 4 bytes,
// big-endian.
//
// slipway listens on PATH; one frontend at a time is served (another one is
// refused while it is connected); when it disconnects the Port waits for the
// next. A length of 0 or above max_frame (mtu + 14) closes the connection:
// the stream cannot be resynchronised.
//
// Reads: at most kMaxReadsPerWake read() calls per wake-up into a fixed
// buffer of 2 x (4 + max_frame) bytes, at least 256 KiB (two whole frames);
// whole frames are delivered from it and a partial one is kept for the next
// read. Writes: send() writes at once (length and frame in one writev); what
// the kernel does not take (EAGAIN, or a partial write) is queued, up to
// kMaxQueuedBytes, and written when the socket is writable; frames beyond
// that are dropped and counted (a partial frame is never dropped: the
// stream would break). Over Port::kTxHighWater queued bytes the port is not
// ready (port.h), so the engine stops feeding it. No timeouts.
#pragma once

#include <uv.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "netstack/link/polled_fd.h"
#include "netstack/link/port.h"

namespace slipway::link {

class StreamPort : public Port {
 public:
  static constexpr int kMaxReadsPerWake = 16;
  static constexpr size_t kMaxQueuedBytes = 4u << 20;

  static std::unique_ptr<StreamPort> listen(uv_loop_t* loop, const std::string& path, size_t mtu);
  // No listener: serve connections handed in with adopt() (tests).
  StreamPort(uv_loop_t* loop, size_t mtu);
  ~StreamPort() override;

  // Serves the connected stream socket fd (takes ownership), replacing any.
  void adopt(int fd);
  bool transmit(Frame frame, const Offload& offload) override;

  bool connected() const { return conn_ != nullptr; }
  uint64_t connections() const { return connections_; }
  uint64_t bad_lengths() const { return bad_lengths_; }

 private:
  StreamPort(uv_loop_t* loop, int listen_fd, std::string path, size_t mtu);
  void on_accept();
  void on_io(int events);
  bool read_some();  // false: the connection is gone
  bool flush();      // false: the connection is gone
  void disconnect(const char* why);

  uv_loop_t* loop_;
  std::string path_;
  size_t max_frame_;
  std::unique_ptr<PolledFd> listener_;
  std::unique_ptr<PolledFd> conn_;
  std::vector<std::byte> rx_;
  size_t rx_have_ = 0;
  std::deque<std::vector<std::byte>> tx_queue_;  // each: length prefix + frame
  size_t tx_front_off_ = 0;                      // bytes of the front already written
  size_t tx_queued_bytes_ = 0;
  uint64_t connections_ = 0, bad_lengths_ = 0;
};

}  // namespace slipway::link
