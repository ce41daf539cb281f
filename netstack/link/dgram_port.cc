#include "netstack/link/dgram_port.h"

#include <spdlog/spdlog.h>
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
    : path_(std::move(path)), max_frame_(mtu + 14), rx_(max_frame_ + 1) {
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
        spdlog::info("dgram: frontend at {}", std::string(peer_.sun_path, strnlen(peer_.sun_path, sizeof(peer_.sun_path))));
      }
    }
    deliver(Frame(rx_.data(), static_cast<size_t>(n)));
  }
}

bool DgramPort::send_now(Frame frame) {
  ssize_t n = connected_socket_
                  ? ::send(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                  : ::sendto(sock_->fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
  if (n >= 0) {
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    return true;
  }
  if (errno == EAGAIN || errno == EINTR) return false;
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
  if (tx_queue_.size() >= kMaxQueuedFrames) {
    stats_.tx_dropped++;
    return false;
  }
  tx_queue_.emplace_back(frame.begin(), frame.end());
  sock_->watch(UV_READABLE | UV_WRITABLE);
  return true;
}

void DgramPort::flush() {
  while (!tx_queue_.empty()) {
    if (!send_now(tx_queue_.front())) return;
    tx_queue_.pop_front();
  }
  sock_->watch(UV_READABLE);
}

}  // namespace slipway::link
