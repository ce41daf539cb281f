#include "netstack/link/dgram_port.h"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <unistd.h>

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
  if (!path_.empty()) spdlog::info("dgram: bound to {}", path_);
}

DgramPort::~DgramPort() {
  peer_watch_.reset();
  sock_.reset();
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
        peer_watch_.reset();
        peer_watch_refused_ = false;
        if (!tx_queue_.empty()) wait_writable();
        spdlog::info("dgram: frontend at {}", std::string(peer_.sun_path, strnlen(peer_.sun_path, sizeof(peer_.sun_path))));
      }
    }
    deliver(Frame(rx_.data(), static_cast<size_t>(n)));
  }
}

DgramPort::SendResult DgramPort::send_now(Frame frame) {
  ssize_t n = connected_socket_
                  ? ::send(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                  : ::sendto(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
  if (n >= 0) {
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    return SendResult::kSent;
  }
  if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS) return SendResult::kFull;
  // The peer's socket is gone (ECONNREFUSED, ENOENT): drop; its next frame
  // tells us where it is now.
  stats_.tx_dropped++;
  return SendResult::kGone;
}

bool DgramPort::transmit(Frame frame, const Offload&) {
  if (!has_peer() || frame.empty() || frame.size() > max_frame_) {
    stats_.tx_dropped++;
    return false;
  }
  if (tx_queue_.empty()) {
    auto r = send_now(frame);
    if (r != SendResult::kFull) return r == SendResult::kSent;
  }
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

bool DgramPort::watch_peer() {
  if (peer_watch_ != nullptr) return true;
  if (connected_socket_ || peer_watch_refused_ || peer_len_ == 0) return false;
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&peer_), peer_len_) != 0) {
    // EPERM: the peer's socket is connected to ours (no queue limit then);
    // anything else: it is gone, and the next write says so.
    ::close(fd);
    peer_watch_refused_ = true;
    return false;
  }
  peer_watch_ = std::make_unique<PolledFd>(loop_, fd, [this](int status, int events) {
    if (status < 0 || (events & UV_WRITABLE)) flush();
  });
  return true;
}

void DgramPort::wait_writable() {
  // See the header: which socket's poll() will say when a write can succeed.
  pollfd p{sock_->fd(), POLLOUT, 0};
  bool ours_writable = ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0;
  if (ours_writable && watch_peer()) {
    sock_->watch(UV_READABLE);
    peer_watch_->watch(UV_WRITABLE);
    return;
  }
  if (peer_watch_ != nullptr) peer_watch_->watch(0);
  sock_->watch(UV_READABLE | UV_WRITABLE);
}

void DgramPort::stop_waiting() {
  if (peer_watch_ != nullptr) peer_watch_->watch(0);
  sock_->watch(UV_READABLE);
}

void DgramPort::flush() {
  // Bounded by the queue; stops when the peer's socket is full.
  while (!tx_queue_.empty()) {
    auto r = send_now(Frame(tx_queue_.front().bytes));
    if (r == SendResult::kFull) break;
    tx_queue_.pop();
    if (r == SendResult::kGone) {
      stats_.tx_dropped += tx_queue_.clear();  // the rest would go the same way
      break;
    }
  }
  if (tx_queue_.empty()) {
    stop_waiting();
  } else {
    wait_writable();
  }
  note_tx_backlog(tx_queue_.bytes());
}

}  // namespace slipway::link
