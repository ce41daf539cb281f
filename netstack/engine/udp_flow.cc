#include "netstack/engine/udp_flow.h"

#include <netinet/in.h>
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
  if (uv_udp_init(host_->loop(), &sock_) != 0) {
    delete this;
    return false;
  }
  // A socket of the guest's family, on any address and a free port.
  sockaddr_storage any = to_sockaddr(guest_.v6 ? IpAddr(wire::Ipv6Addr{}) : IpAddr(wire::Ipv4Addr{}), 0);
  int rc = uv_udp_bind(&sock_, reinterpret_cast<const sockaddr*>(&any), guest_.v6 ? UV_UDP_IPV6ONLY : 0);
  if (rc == 0) rc = uv_udp_recv_start(&sock_, UdpFlowCallbacks::on_alloc, UdpFlowCallbacks::on_recv);
  if (rc != 0) {
    spdlog::warn("udp: cannot open a host socket for {}:{}: {}", guest_.to_string(), guest_port_, uv_strerror(rc));
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
  sockaddr_storage sa = to_sockaddr(host_dst, port);
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(payload.data())),
                           static_cast<unsigned>(payload.size()));
  int rc = uv_udp_try_send(&sock_, &b, 1, reinterpret_cast<const sockaddr*>(&sa));
  if (rc >= 0) bytes_to_host_ += payload.size();
  if (rc < 0) {
    // A full socket buffer drops the datagram, as a congested link would.
    host_->counters().udp_dropped++;
    spdlog::trace("udp: send from {}:{}: {}", guest_.to_string(), guest_port_, uv_strerror(rc));
  }
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
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock_), UdpFlowCallbacks::on_close);
}

}  // namespace slipway::engine
