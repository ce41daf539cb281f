#include "netstack/link/tap_port.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace slipway::link {

struct TapPort::Handle {
  uv_poll_t poll;
  int fd;
  TapPort* owner;  // null once the TapPort is gone
};

TapPort::TapPort(uv_loop_t* loop, int fd, size_t mtu) : handle_(new Handle), rx_buffer_(mtu + 64) {
  handle_->fd = fd;
  handle_->owner = this;
  int rc = uv_poll_init(loop, &handle_->poll, fd);
  if (rc != 0) {
    delete handle_;
    ::close(fd);
    throw std::runtime_error(std::string("TAP: cannot poll the device: ") + uv_strerror(rc));
  }
  handle_->poll.data = handle_;
  update_poll();
}

TapPort::~TapPort() {
  handle_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), [](uv_handle_t* h) {
    auto* hd = static_cast<Handle*>(h->data);
    ::close(hd->fd);
    delete hd;
  });
}

void TapPort::update_poll() {
  int events = UV_READABLE | (want_write_ ? UV_WRITABLE : 0);
  uv_poll_start(&handle_->poll, events, [](uv_poll_t* p, int status, int ev) {
    auto* hd = static_cast<Handle*>(p->data);
    if (hd->owner != nullptr) hd->owner->on_poll(status, ev);
  });
}

void TapPort::on_poll(int status, int events) {
  if (status < 0) {
    spdlog::error("TAP: poll error: {}", uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE) drain_queue();
  if (events & UV_READABLE) {
    for (int i = 0; i < kMaxReadsPerWake; ++i) {
      ssize_t n = ::read(handle_->fd, rx_buffer_.data(), rx_buffer_.size());
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) spdlog::debug("TAP: read: {}", std::strerror(errno));
        break;
      }
      if (n == 0) break;
      deliver(Frame(rx_buffer_.data(), static_cast<size_t>(n)));
    }
  }
}

bool TapPort::transmit(Frame frame, const Offload&) {
  if (tx_queue_.empty()) {
    ssize_t n = ::write(handle_->fd, frame.data(), frame.size());
    if (n >= 0) {
      stats_.tx_frames++;
      stats_.tx_bytes += frame.size();
      return true;
    }
    if (errno != EAGAIN && errno != EINTR) {
      stats_.tx_dropped++;
      spdlog::debug("TAP: write: {}", std::strerror(errno));
      return false;
    }
  }
  if (tx_queue_.size() >= kMaxQueuedFrames || tx_queued_bytes_ + frame.size() > kMaxQueuedBytes) {
    stats_.tx_dropped++;
    return false;
  }
  tx_queue_.emplace_back(frame.begin(), frame.end());
  tx_queued_bytes_ += frame.size();
  if (!want_write_) {
    want_write_ = true;
    update_poll();
  }
  return true;
}

void TapPort::drain_queue() {
  while (!tx_queue_.empty()) {
    auto& f = tx_queue_.front();
    ssize_t n = ::write(handle_->fd, f.data(), f.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      stats_.tx_dropped++;
    } else {
      stats_.tx_frames++;
      stats_.tx_bytes += f.size();
    }
    tx_queued_bytes_ -= f.size();
    tx_queue_.pop_front();
  }
  want_write_ = false;
  update_poll();
}

}  // namespace slipway::link
