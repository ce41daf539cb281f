#include "netstack/engine/udp_flow.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "netstack/engine/flow_host.h"

namespace slipway::engine {

struct UdpFlowCallbacks {
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* f = static_cast<UdpFlow*>(h->data);
    auto& rb = f->host_->read_buffer();
    *buf = uv_buf_init(reinterpret_cast<char*>(rb.data()), static_cast<unsigned>(rb.size()));
  }
  static void on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const struct sockaddr* addr, unsigned flags) {
    auto* f = static_cast<UdpFlow*>(h->data);
    if (nread < 0 || addr == nullptr || f->closing_) return;
    if (flags & UV_UDP_PARTIAL) {
      f->host_->counters().udp_dropped++;
      return;
    }
    f->received(addr, reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread));
  }
  static void on_close(uv_handle_t* h) {
    auto* f = static_cast<UdpFlow*>(h->data);
    if (f->host_ != nullptr) f->host_->closed(f);
    delete f;
  }
};

UdpFlow::UdpFlow(FlowHost& host, const IpAddr& guest, uint16_t guest_port, uint64_t now)
    : host_(&host), guest_(guest), guest_port_(guest_port), last_active_(now) {
  std::memset(&sock_, 0, sizeof sock_);
  sock_.data = this;
}

bool UdpFlow::open() {
  // recvmmsg: several datagrams per system call into the engine's read
  // buffer (a multiple of 64 KiB, as libuv needs).
  if (uv_udp_init_ex(host_->loop(), &sock_, AF_UNSPEC | UV_UDP_RECVMMSG) != 0) {
    delete this;
    return false;
  }
  // A socket of the guest's family, on any address and a free port.
  sockaddr_storage any = to_sockaddr(guest_.v6 ? IpAddr(wire::Ipv6Addr{}) : IpAddr(wire::Ipv4Addr{}), 0);
  int rc = uv_udp_bind(&sock_, reinterpret_cast<const sockaddr*>(&any), guest_.v6 ? UV_UDP_IPV6ONLY : 0);
  if (rc == 0) rc = uv_udp_recv_start(&sock_, UdpFlowCallbacks::on_alloc, UdpFlowCallbacks::on_recv);
  if (rc != 0) {
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM) {
      // Counted and logged at most once in a while: a flood meets this once
      // per datagram.
      host_->counters().udp_no_fd++;
      host_->out_of_descriptors("udp", rc);
    } else {
      spdlog::debug("udp: cannot open a host socket for {}:{}: {}", guest_.to_string(), guest_port_, uv_strerror(rc));
    }
    closing_ = true;
    // Not yet in the engine's table: the close callback's erase is a no-op.
    uv_close(reinterpret_cast<uv_handle_t*>(&sock_), UdpFlowCallbacks::on_close);
    return false;
  }
  return true;
}

void UdpFlow::send(const IpAddr& host_dst, uint16_t port, wire::Bytes payload, uint64_t now) {
  if (closing_) return;
  last_active_ = now;
  if (std::find(peers_.begin(), peers_.end(), host_dst) == peers_.end()) {
    if (peers_.size() >= kMaxPeers) peers_.erase(peers_.begin());
    peers_.push_back(host_dst);
  }
  if (host_ == nullptr) return;
  if (payload.size() > kMaxQueuedBytes) {
    host_->counters().udp_dropped++;
    return;
  }
  if (queued_.size() >= kMaxQueued || queued_bytes_.size() + payload.size() > kMaxQueuedBytes) send_queued();
  queued_.push_back(Queued{to_sockaddr(host_dst, port), queued_bytes_.size(), payload.size()});
  queued_bytes_.insert(queued_bytes_.end(), payload.begin(), payload.end());
  if (!flush_pending_) {
    flush_pending_ = true;
    host_->flush_later(this);
  }
}

void UdpFlow::flush() {
  flush_pending_ = false;
  send_queued();
}

void UdpFlow::send_queued() {
  if (queued_.empty()) return;
  uv_os_fd_t fd = -1;
  size_t sent = 0;
  if (!closing_ && uv_fileno(reinterpret_cast<const uv_handle_t*>(&sock_), &fd) == 0) {
    std::vector<mmsghdr> msgs(queued_.size());
    std::vector<iovec> iov(queued_.size());
    for (size_t i = 0; i < queued_.size(); ++i) {
      iov[i] = {queued_bytes_.data() + queued_[i].offset, queued_[i].len};
      msghdr& h = msgs[i].msg_hdr;
      h = {};
      h.msg_name = &queued_[i].to;
      h.msg_namelen = queued_[i].to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      h.msg_iov = &iov[i];
      h.msg_iovlen = 1;
    }
    while (sent < queued_.size()) {
      int n = ::sendmmsg(fd, msgs.data() + sent, static_cast<unsigned>(queued_.size() - sent), MSG_DONTWAIT);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        // A full socket buffer (or an error for one datagram) drops it, as
        // a congested link would; the rest are tried.
        if (n < 0) spdlog::trace("udp: send from {}:{}: {}", guest_.to_string(), guest_port_, std::strerror(errno));
        if (n < 0 && errno == EAGAIN) break;
        ++sent;
        if (host_ != nullptr) host_->counters().udp_dropped++;
        continue;
      }
      for (int i = 0; i < n; ++i) bytes_to_host_ += queued_[sent + static_cast<size_t>(i)].len;
      sent += static_cast<size_t>(n);
    }
  }
  if (sent < queued_.size() && host_ != nullptr) host_->counters().udp_dropped += queued_.size() - sent;
  queued_.clear();
  queued_bytes_.clear();
}

void UdpFlow::received(const struct sockaddr* from, const std::byte* data, size_t len) {
  IpAddr src;
  uint16_t src_port = 0;
  if (!from_sockaddr(from, &src, &src_port)) return;
  if (std::find(peers_.begin(), peers_.end(), src) == peers_.end()) {
    host_->counters().udp_filtered++;
    return;
  }
  last_active_ = host_->now();
  bytes_to_guest_ += len;
  host_->send_udp_to_guest(host_->nat().guest_source(src), src_port, guest_, guest_port_,
                            wire::Bytes(data, len));
}

void UdpFlow::close() {
  if (closing_) return;
  send_queued();
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock_), UdpFlowCallbacks::on_close);
}

}  // namespace slipway::engine
