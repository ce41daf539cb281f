// VirtioNetDevice; see virtio_net_device.h for the theory of operation.
#include "netstack/link/virtio_net_device.h"

#include <algorithm>
#include <cstring>

#include "netstack/wire/bytes.h"

namespace slipway::link {

void VirtioNetDevice::fail(std::string why) {
  if (!broken_) stats_.ring_errors++;
  broken_ = true;
  error_ = std::move(why);
}

void VirtioNetDevice::reset() {
  for (auto& q : queues_) q.reset();
  for (auto& e : enabled_) e = false;
  memory_.clear();
  broken_ = false;
  error_.clear();
  mergeable_rx_ = false;
  large_tx_ = false;
}

VirtioNetDevice::TxResult VirtioNetDevice::transmit(const std::function<void(Frame, const Offload&)>& deliver) {
  if (!running(kTxQueue)) return broken_ ? TxResult::kBroken : TxResult::kDone;
  Virtqueue& q = queues_[kTxQueue];
  std::string why;
  for (int n = 0; n < kMaxFramesPerKick; ++n) {
    auto r = q.pop(tx_chain_, &why);
    if (r == Virtqueue::PopResult::kEmpty) {
      q.publish();
      return TxResult::kDone;
    }
    if (r == Virtqueue::PopResult::kError) {
      fail("transmit queue: " + why);
      return TxResult::kBroken;
    }
    // Copy out before handing on: the guest may rewrite its buffers at any
    // time, and the frame may be scattered over several segments.
    bool deliverable = false;
    const size_t max_frame = large_tx_ ? std::max(max_frame_, kMaxGsoFrame) : max_frame_;
    if (tx_chain_.readable_bytes < kHeaderSize) {
      stats_.tx_runt++;
    } else if (tx_chain_.readable_bytes - kHeaderSize > max_frame) {
      stats_.tx_oversize++;
    } else {
      tx_buf_.resize(static_cast<size_t>(tx_chain_.readable_bytes));
      size_t off = 0;
      for (const auto& s : tx_chain_.readable) {
        std::memcpy(tx_buf_.data() + off, s.data, s.len);
        off += s.len;
      }
      deliverable = true;
    }
    uint16_t head = tx_chain_.head;
    q.push(head, 0);
    if (deliverable) {
      stats_.tx_frames++;
      // Publish first: deliver() may answer at once on the receive queue.
      q.publish();
      if (auto offload = wire::parse_virtio_net_hdr(Frame(tx_buf_))) {
        deliver(Frame(tx_buf_.data() + kHeaderSize, tx_buf_.size() - kHeaderSize), *offload);
      } else {
        stats_.tx_bad_header++;
      }
      if (broken_) return TxResult::kBroken;
    }
  }
  q.publish();
  return q.has_available() ? TxResult::kMore : TxResult::kDone;
}

VirtioNetDevice::RxResult VirtioNetDevice::receive(Frame frame, const Offload& offload) {
  if (broken_) return RxResult::kBroken;
  if (!running(kRxQueue)) return RxResult::kNotReady;
  Virtqueue& q = queues_[kRxQueue];
  std::byte hdr[kHeaderSize] = {};
  const size_t total = kHeaderSize + frame.size();
  size_t done = 0;  // bytes of header + frame written so far
  rx_used_.clear();
  rx_first_.clear();
  std::string why;
  bool ring_empty = false;  // else: the frame cannot fit, whatever the guest adds
  while (done < total) {
    if (!rx_used_.empty() && !mergeable_rx_) break;  // one chain only
    if (rx_used_.size() >= q.num()) break;
    auto r = q.pop(rx_chain_, &why);
    if (r == Virtqueue::PopResult::kError) {
      fail("receive queue: " + why);
      return RxResult::kBroken;
    }
    if (r == Virtqueue::PopResult::kEmpty) {
      ring_empty = true;
      break;
    }
    if (!rx_chain_.readable.empty()) {
      fail("receive queue: chain has device-readable buffers");
      return RxResult::kBroken;
    }
    size_t written = 0;
    for (const auto& s : rx_chain_.writable) {
      if (done >= total) break;
      size_t n = std::min<size_t>(s.len, total - done);
      // Bytes [0, 12) are the header, written at the end (num_buffers is
      // known only then); frame bytes follow.
      size_t hdr_part = done < kHeaderSize ? std::min(n, kHeaderSize - done) : 0;
      if (hdr_part < n) std::memcpy(s.data + hdr_part, frame.data() + (done + hdr_part - kHeaderSize), n - hdr_part);
      done += n;
      written += n;
    }
    if (rx_used_.empty()) {
      if (rx_chain_.writable_bytes < kHeaderSize) {
        fail("receive queue: first buffer smaller than the virtio-net header");
        return RxResult::kBroken;
      }
      rx_first_ = rx_chain_.writable;
    }
    rx_used_.push_back(Used{rx_chain_.head, static_cast<uint32_t>(written)});
  }
  if (done < total) {
    // The chains go back to the guest untouched (as far as it can tell:
    // nothing is marked used).
    q.rewind(static_cast<uint16_t>(rx_used_.size()));
    if (ring_empty) {
      stats_.rx_no_buffers++;
      return RxResult::kNoBuffers;
    }
    stats_.rx_too_large++;
    return RxResult::kTooLarge;
  }
  // The header goes into the first chain's first bytes.
  uint16_t nbufs = static_cast<uint16_t>(rx_used_.size());
  wire::emit_virtio_net_hdr(hdr, offload);
  wire::store_le16(hdr, 10, nbufs);  // virtio_net_hdr.num_buffers
  size_t h = 0;
  for (const auto& s : rx_first_) {
    if (h >= kHeaderSize) break;
    size_t n = std::min<size_t>(s.len, kHeaderSize - h);
    std::memcpy(s.data, hdr + h, n);
    h += n;
  }
  for (const auto& u : rx_used_) q.push(u.head, u.len);
  q.publish();
  stats_.rx_frames++;
  return RxResult::kDelivered;
}

}  // namespace slipway::link
