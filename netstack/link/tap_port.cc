#include "netstack/link/tap_port.h"

#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "netstack/sys/rx_blocks.h"

namespace slipway::link {

struct TapPort::Handle {
  uv_poll_t poll;
  int fd;
  TapPort* owner;  // null once the TapPort is gone
};

TapPort::TapPort(uv_loop_t* loop, int fd, size_t max_frame, bool vnet_header)
    : handle_(new Handle),
      vnet_header_(vnet_header),
      rx_size_(vnet_header ? kVnetHeaderLen + std::max(max_frame, kMaxGsoFrame) : max_frame + 50),
      rx_block_(sys::RxBlocks::acquire(rx_size_)) {
  if (vnet_header_) set_capabilities(Capabilities{.csum = true, .tso = true});
  handle_->fd = fd;
  handle_->owner = this;
  int rc = uv_poll_init(loop, &handle_->poll, fd);
  if (rc != 0) {
    sys::RxBlocks::release(rx_block_, rx_size_);
    delete handle_;
    ::close(fd);
    throw std::runtime_error(std::string("TAP: cannot poll the device: ") + uv_strerror(rc));
  }
  handle_->poll.data = handle_;
  update_poll();
}

TapPort::~TapPort() {
  sys::RxBlocks::release(rx_block_, rx_size_);
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
      ssize_t n = ::read(handle_->fd, rx_block_, rx_size_);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) spdlog::debug("TAP: read: {}", std::strerror(errno));
        break;
      }
      if (n == 0) break;
      Frame frame(rx_block_, static_cast<size_t>(n));
      std::optional<Offload> offload = Offload{};
      if (vnet_header_) {
        wire::OffloadError err{};
        offload = wire::parse_virtio_net_hdr(frame, &err);
        if (!offload || frame.size() <= kVnetHeaderLen) {
          stats_.rx_dropped++;
          spdlog::trace("TAP: dropping a frame with a bad virtio-net header: {}", wire::to_string(err));
          continue;
        }
        frame = frame.subspan(kVnetHeaderLen);
      }
      bool taken = false;
      {
        sys::RxBlocks::Offer offer(rx_block_, rx_size_);
        deliver(frame, *offload);
        taken = offer.taken();
      }
      if (taken) rx_block_ = sys::RxBlocks::acquire(rx_size_);
    }
  }
}

ssize_t TapPort::write_frame(Frame frame, const Offload& offload) {
  if (!vnet_header_) return ::write(handle_->fd, frame.data(), frame.size());
  std::byte header[kVnetHeaderLen];
  wire::emit_virtio_net_hdr(header, offload);
  iovec iov[2] = {{header, sizeof header}, {const_cast<std::byte*>(frame.data()), frame.size()}};
  return ::writev(handle_->fd, iov, 2);
}

bool TapPort::transmit(Frame frame, const Offload& offload) {
  if (tx_queue_.empty()) {
    ssize_t n = write_frame(frame, offload);
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
    stats_.tx_queue_full++;
    stats_.tx_dropped++;
    return false;
  }
  // Queued whole: with the header, as write() takes it.
  auto& q = tx_queue_.emplace_back();
  if (vnet_header_) {
    q.resize(kVnetHeaderLen);
    wire::emit_virtio_net_hdr(q, offload);
  }
  q.insert(q.end(), frame.begin(), frame.end());
  tx_queued_bytes_ += q.size();
  stats_.tx_queued++;
  if (!want_write_) {
    want_write_ = true;
    update_poll();
  }
  note_tx_backlog(tx_queued_bytes_);
  return true;
}

void TapPort::drain_queue() {
  while (!tx_queue_.empty()) {
    auto& f = tx_queue_.front();
    ssize_t n = ::write(handle_->fd, f.data(), f.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        note_tx_backlog(tx_queued_bytes_);
        return;
      }
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
  note_tx_backlog(0);
}

}  // namespace slipway::link
