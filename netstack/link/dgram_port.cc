#include "netstack/link/dgram_port.h"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "netstack/link/unix_socket.h"

namespace slipway::link {

std::unique_ptr<DgramPort> DgramPort::bind(uv_loop_t* loop, const std::string& path, size_t mtu) {
  int fd = bind_unix(path, SOCK_DGRAM);
  return std::make_unique<DgramPort>(loop, fd, path, mtu);
}

DgramPort::DgramPort(uv_loop_t* loop, int fd, std::string path, size_t mtu)
    : loop_(loop), path_(std::move(path)), max_frame_(mtu + 14), rx_(max_frame_ + 1) {
  sockaddr_un peer{};
  socklen_t len = sizeof(peer);
  // A connected socket (socketpair) has a peer already; a bound one learns it.
  connected_socket_ = ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0;
  sock_ = std::make_unique<PolledFd>(loop, fd, [this](int status, int events) {
    if (status < 0) {
      spdlog::debug("dgram: poll error: {}", uv_strerror(status));
      return;
    }
    on_io(events);
  });
  sock_->watch(UV_READABLE);
  retry_ = new uv_timer_t;
  uv_timer_init(loop, retry_);
  retry_->data = this;
  if (!path_.empty()) spdlog::info("dgram: bound to {}", path_);
}

DgramPort::~DgramPort() {
  sender_.reset();
  sock_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(retry_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  if (!path_.empty()) ::unlink(path_.c_str());
}

void DgramPort::on_io(int events) {
  if (events & UV_WRITABLE) flush();
  if (!(events & UV_READABLE)) return;
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    sockaddr_un from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(sock_->fd(), rx_.data(), rx_.size(), MSG_TRUNC | MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) spdlog::debug("dgram: recv: {}", std::strerror(errno));
      return;
    }
    if (n == 0 || static_cast<size_t>(n) > max_frame_) {
      oversize_++;
      stats_.rx_dropped++;
      continue;
    }
    // Answer whoever spoke last (an unnamed sender cannot be answered).
    if (!connected_socket_ && from_len > sizeof(sa_family_t)) {
      if (from_len != peer_len_ || std::memcmp(&from, &peer_, from_len) != 0) {
        std::memcpy(&peer_, &from, from_len);
        peer_len_ = from_len;
        spdlog::info("dgram: frontend at {}", std::string(peer_.sun_path, strnlen(peer_.sun_path, sizeof(peer_.sun_path))));
        connect_tried_ = false;  // a new address: connect to it now
        connect_sender();
        if (!tx_queue_.empty()) wait_writable();  // through the new socket
      } else if (!sender_ && (!connect_tried_ || uv_now(loop_) - last_connect_ms_ >= kReconnectMs)) {
        if (connect_sender() && !tx_queue_.empty()) wait_writable();
      }
    }
    deliver(Frame(rx_.data(), static_cast<size_t>(n)));
  }
}

bool DgramPort::connect_sender() {
  connect_tried_ = true;
  last_connect_ms_ = uv_now(loop_);
  if (!sender_) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      spdlog::debug("dgram: sending socket: {}", std::strerror(errno));
      return false;
    }
    sender_ = std::make_unique<PolledFd>(loop_, fd, [this](int status, int events) {
      if (status == 0 && (events & UV_WRITABLE)) flush();
    });
  }
  if (::connect(sender_->fd(), reinterpret_cast<const sockaddr*>(&peer_), peer_len_) != 0) {
    spdlog::debug("dgram: cannot connect to the frontend's address: {}; sending from {}", std::strerror(errno),
                  path_);
    sender_.reset();
    return false;
  }
  return true;
}

bool DgramPort::send_now(Frame frame) {
  ssize_t n = -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (connected_socket_) {
      n = ::send(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (sender_) {
      n = ::send(sender_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
      n = ::sendto(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                   reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
    }
    if (n >= 0 || errno == EAGAIN || errno == EINTR) break;
    // The frontend's socket is gone (a restarted frontend may have bound a
    // new one at the same path): connect again, at most every kReconnectMs.
    bool gone = errno == ECONNREFUSED || errno == ENOTCONN || errno == ECONNRESET || errno == EDESTADDRREQ ||
                errno == ENOENT;
    if (connected_socket_ || !gone || uv_now(loop_) - last_connect_ms_ < kReconnectMs || !connect_sender()) break;
  }
  if (n >= 0) {
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    return true;
  }
  if (errno == EAGAIN || errno == EINTR) {
    send_retries_++;
    return false;
  }
  // The peer's socket is gone (ECONNREFUSED, ENOENT): drop; its next frame
  // tells us where it is now.
  stats_.tx_dropped++;
  return true;
}

bool DgramPort::transmit(Frame frame, const Offload&) {
  if (!has_peer() || frame.empty() || frame.size() > max_frame_) {
    stats_.tx_dropped++;
    return false;
  }
  if (tx_queue_.empty() && send_now(frame)) return true;
  if (!tx_queue_.push(frame, {})) {
    stats_.tx_queue_full++;
    stats_.tx_dropped++;
    return false;
  }
  stats_.tx_queued++;
  if (tx_queue_.size() == 1) wait_writable();
  note_tx_backlog(tx_queue_.bytes());
  return true;
}

void DgramPort::wait_writable() {
  if (connected_socket_) {
    sock_->watch(UV_READABLE | UV_WRITABLE);
    return;
  }
  if (sender_) {
    sender_->watch(UV_WRITABLE);
    return;
  }
  // Sending from the bound socket: its own send buffer is full, which its
  // poll() reports (see the header).
  pollfd p{sock_->fd(), POLLOUT, 0};
  bool writable = ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0;
  if (!writable) {
    sock_->watch(UV_READABLE | UV_WRITABLE);
    return;
  }
  // Writable yet full: retry by the clock, backing off.
  retry_ms_ = retry_ms_ == 0 ? kRetryMinMs : std::min(retry_ms_ * 2, kRetryMaxMs);
  uv_timer_start(retry_, [](uv_timer_t* t) { static_cast<DgramPort*>(t->data)->flush(); }, retry_ms_, 0);
}

void DgramPort::flush() {
  // Bounded by the queue; stops when the frontend's socket is full.
  while (!tx_queue_.empty()) {
    if (!send_now(Frame(tx_queue_.front().bytes))) {
      wait_writable();
      note_tx_backlog(tx_queue_.bytes());
      return;
    }
    tx_queue_.pop();
  }
  retry_ms_ = 0;
  uv_timer_stop(retry_);
  sock_->watch(UV_READABLE);
  if (sender_) sender_->watch(0);
  note_tx_backlog(0);
}

}  // namespace slipway::link
