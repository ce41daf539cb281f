// StreamPort; see stream_port.h for the theory of operation.
#include "netstack/link/stream_port.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "netstack/link/unix_socket.h"
#include "netstack/wire/bytes.h"

namespace slipway::link {

std::unique_ptr<StreamPort> StreamPort::listen(uv_loop_t* loop, const std::string& path, size_t mtu) {
  int fd = bind_unix(path, SOCK_STREAM);
  return std::unique_ptr<StreamPort>(new StreamPort(loop, fd, path, mtu));
}

StreamPort::StreamPort(uv_loop_t* loop, size_t mtu) : StreamPort(loop, -1, "", mtu) {}

StreamPort::StreamPort(uv_loop_t* loop, int listen_fd, std::string path, size_t mtu)
    : loop_(loop), path_(std::move(path)), max_frame_(mtu + 14),
      rx_(std::max<size_t>(2 * (4 + max_frame_), 256u << 10)) {
  if (listen_fd >= 0) {
    listener_ = std::make_unique<PolledFd>(loop, listen_fd, [this](int, int) { on_accept(); });
    listener_->watch(UV_READABLE);
    spdlog::info("stream: listening on {}", path_);
  }
}

StreamPort::~StreamPort() {
  conn_.reset();
  listener_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void StreamPort::on_accept() {
  for (int i = 0; i < 4; ++i) {
    int fd = ::accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conn_ != nullptr && peer_hung_up(conn_->fd())) {
      // The old frontend died (a VMM killed and restarted) but its hang-up
      // was not read yet: the new one takes its place.
      disconnect("frontend closed the connection");
    }
    if (conn_ != nullptr) {
      spdlog::warn("stream: refusing a second frontend on {} while one is connected", path_);
      ::close(fd);
      continue;
    }
    adopt(fd);
  }
}

void StreamPort::adopt(int fd) {
  if (conn_ != nullptr) disconnect("replaced by a new frontend");
  conn_ = std::make_unique<PolledFd>(loop_, fd, [this](int status, int events) {
    if (status < 0) {
      disconnect(uv_strerror(status));
      return;
    }
    on_io(events);
  });
  conn_->watch(UV_READABLE);
  connections_++;
  spdlog::info("stream: frontend connected");
}

void StreamPort::disconnect(const char* why) {
  if (conn_ == nullptr) return;
  spdlog::info("stream: frontend disconnected: {}", why);
  conn_.reset();
  rx_have_ = 0;
  stats_.tx_dropped += tx_queue_.size();
  tx_queue_.clear();
  tx_front_off_ = tx_queued_bytes_ = 0;
  note_tx_backlog(0);
}

void StreamPort::on_io(int events) {
  if ((events & UV_WRITABLE) && !flush()) return;
  if (events & UV_READABLE) read_some();
}

bool StreamPort::read_some() {
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    ssize_t n = ::read(conn_->fd(), rx_.data() + rx_have_, rx_.size() - rx_have_);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      disconnect(std::strerror(errno));
      return false;
    }
    if (n == 0) {
      disconnect("frontend closed the connection");
      return false;
    }
    rx_have_ += static_cast<size_t>(n);
    size_t off = 0;
    while (rx_have_ - off >= 4) {
      uint32_t len = wire::load32(rx_, off);
      if (len == 0 || len > max_frame_) {
        bad_lengths_++;
        stats_.rx_dropped++;
        spdlog::warn("stream: closing the connection: frame length {} (limit {})", len, max_frame_);
        disconnect("bad frame length");
        return false;
      }
      if (rx_have_ - off - 4 < len) break;
      deliver(Frame(rx_.data() + off + 4, len));
      if (conn_ == nullptr) return false;
      off += 4 + len;
    }
    // Keep the partial frame at the front; the buffer holds two whole
    // frames, so there is always room for the rest of it.
    if (off > 0) {
      std::memmove(rx_.data(), rx_.data() + off, rx_have_ - off);
      rx_have_ -= off;
    }
  }
  return true;
}

bool StreamPort::transmit(Frame frame, const Offload&) {
  if (conn_ == nullptr || frame.empty() || frame.size() > max_frame_) {
    stats_.tx_dropped++;
    return false;
  }
  std::byte len[4];
  wire::store32(len, 0, static_cast<uint32_t>(frame.size()));
  size_t total = 4 + frame.size();
  size_t written = 0;
  if (tx_queue_.empty()) {
    iovec iov[2] = {{len, 4}, {const_cast<std::byte*>(frame.data()), frame.size()}};
    ssize_t n = ::writev(conn_->fd(), iov, 2);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      stats_.tx_dropped++;
      disconnect(std::strerror(errno));
      return false;
    }
    written = n > 0 ? static_cast<size_t>(n) : 0;
    if (written == total) {
      stats_.tx_frames++;
      stats_.tx_bytes += frame.size();
      return true;
    }
  }
  // A frame partly written must be completed whatever the bound.
  if (written == 0 && tx_queued_bytes_ + total > kMaxQueuedBytes) {
    stats_.tx_queue_full++;
    stats_.tx_dropped++;
    return false;
  }
  std::vector<std::byte> rest;
  rest.reserve(total - written);
  if (written < 4) rest.insert(rest.end(), len + written, len + 4);
  size_t from = written > 4 ? written - 4 : 0;
  rest.insert(rest.end(), frame.begin() + static_cast<std::ptrdiff_t>(from), frame.end());
  tx_queued_bytes_ += rest.size();
  tx_queue_.push_back(std::move(rest));
  stats_.tx_frames++;
  stats_.tx_bytes += frame.size();
  stats_.tx_queued++;
  conn_->watch(UV_READABLE | UV_WRITABLE);
  note_tx_backlog(tx_queued_bytes_);
  return true;
}

bool StreamPort::flush() {
  // Bounded: at most the queue, which is bounded; stops at EAGAIN.
  while (!tx_queue_.empty()) {
    auto& f = tx_queue_.front();
    ssize_t n = ::write(conn_->fd(), f.data() + tx_front_off_, f.size() - tx_front_off_);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        disconnect(std::strerror(errno));
        return false;
      }
      break;
    }
    tx_front_off_ += static_cast<size_t>(n);
    if (tx_front_off_ < f.size()) break;
    tx_queued_bytes_ -= f.size();
    tx_queue_.pop_front();
    tx_front_off_ = 0;
  }
  if (tx_queue_.empty()) conn_->watch(UV_READABLE);
  note_tx_backlog(tx_queued_bytes_);
  return true;
}

}  // namespace slipway::link
