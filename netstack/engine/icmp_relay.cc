// ICMP echo relay; see icmp_relay.h for the theory of operation.
//
// Packet bytes (what we send, what the raw socket and the error queue hand
// back) are read and written with the wire/ big-endian helpers and bounds
// checks; only kernel-defined control structures (sock_extended_err) are
// copied out with memcpy.
#include "netstack/engine/icmp_relay.h"

#include "netstack/wire/icmp.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace slipway::engine {
namespace {

constexpr uint8_t kEchoReply = 0;
constexpr uint8_t kDestUnreachable = 3;
constexpr uint8_t kEchoRequest = 8;
constexpr uint8_t kTimeExceeded = 11;
constexpr uint8_t kCodeNetUnreachable = 0;
constexpr uint8_t kCodeHostUnreachable = 1;
constexpr size_t kIcmpHeaderSize = 8;
constexpr size_t kIpv4MinHeader = 20;
constexpr uint8_t kProtoIcmp = 1;
constexpr size_t kRxBufferSize = 65536;  // the largest IPv4 datagram, IP header included

std::string addr_text(wire::Ipv4Addr a) { return a.to_string(); }

// Echo request: type 8, code 0, checksum, id, seq, payload.
std::vector<std::byte> build_echo_request(uint16_t id, uint16_t seq, wire::Bytes payload) {
  std::vector<std::byte> pkt(kIcmpHeaderSize + payload.size());
  wire::emit_icmp(pkt, wire::icmptype::kEchoRequest, 0, (uint32_t{id} << 16) | seq, payload);
  return pkt;
}

sockaddr_in to_sockaddr(wire::Ipv4Addr a) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(a.value);
  return sin;
}

// Opens a socket of the given type for probing or use; returns fd or -errno.
int open_icmp_socket(int type) {
  int fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  return fd >= 0 ? fd : -errno;
}

bool is_unreachable_errno(int err) { return err == ENETUNREACH || err == EHOSTUNREACH; }

// A view of an IPv4 packet carrying ICMP: header checked, payload bounded.
struct Ipv4Icmp {
  wire::Ipv4Addr src, dst;
  wire::Bytes icmp;
};
std::optional<Ipv4Icmp> parse_ipv4_icmp(wire::Bytes p, bool allow_truncated) {
  if (p.size() < kIpv4MinHeader) return std::nullopt;
  const uint8_t vihl = wire::load8(p, 0);
  const size_t ihl = size_t{vihl & 0x0fu} * 4;
  if ((vihl >> 4) != 4 || ihl < kIpv4MinHeader || ihl > p.size()) return std::nullopt;
  if (wire::load8(p, 9) != kProtoIcmp) return std::nullopt;
  size_t total = wire::load16(p, 2);
  if (total < ihl) return std::nullopt;
  if (total > p.size()) {
    // A quoted packet inside an ICMP error is cut short by design.
    if (!allow_truncated) return std::nullopt;
    total = p.size();
  }
  return Ipv4Icmp{wire::Ipv4Addr::load(p, 12), wire::Ipv4Addr::load(p, 16),
                  p.subspan(ihl, total - ihl)};
}

}  // namespace

// One socket and its poll handle. Freed only in the uv_close callback; owner
// is cleared when the relay lets go of it, so a late poll callback is a no-op.
struct IcmpEchoRelay::Socket {
  uv_poll_t poll{};
  int fd = -1;
  IcmpEchoRelay* owner = nullptr;
  bool ping = false;
  FlowKey key{};  // ping sockets: the flow this socket serves
  uint64_t last_used_ms = 0;
  int ttl = -1;  // last IP_TTL set, -1 for the kernel default
};

IcmpEchoRelay::IcmpEchoRelay(uv_loop_t* loop, std::function<void(const IcmpEchoReply&)> on_reply,
                             std::function<void(const IcmpError&)> on_error, Mode mode)
    : loop_(loop),
      on_reply_(std::move(on_reply)),
      on_error_(std::move(on_error)),
      rx_buf_(kRxBufferSize) {
  // Probe once, here, so active_mode() is known before the first ping. The
  // probe sockets are closed; the real ones open on demand.
  int ping_err = 0, raw_err = 0;
  if (mode == Mode::kAuto || mode == Mode::kPingSocket) {
    int fd = open_icmp_socket(SOCK_DGRAM);
    if (fd >= 0) {
      ::close(fd);
      mode_ = Mode::kPingSocket;
    } else {
      ping_err = -fd;
    }
  }
  const bool try_raw =
      mode == Mode::kRaw || (mode == Mode::kAuto && mode_ == Mode::kAuto &&
                             (ping_err == EACCES || ping_err == EPERM ||
                              ping_err == EPROTONOSUPPORT || ping_err == ESOCKTNOSUPPORT));
  if (try_raw) {
    int fd = open_icmp_socket(SOCK_RAW);
    if (fd >= 0) {
      ::close(fd);
      mode_ = Mode::kRaw;
    } else {
      raw_err = -fd;
    }
  }
  if (mode_ == Mode::kAuto) {
    if (ping_err != 0) {
      unavailable_reason_ =
          std::string("ping socket: ") + std::strerror(ping_err) +
          (ping_err == EACCES ? " (gid outside /proc/sys/net/ipv4/ping_group_range)" : "");
    }
    if (raw_err != 0) {
      if (!unavailable_reason_.empty()) unavailable_reason_ += "; ";
      unavailable_reason_ += std::string("raw socket: ") + std::strerror(raw_err) +
                             (raw_err == EPERM ? " (needs CAP_NET_RAW)" : "");
    }
    spdlog::debug("icmp relay: no ICMP socket: {}", unavailable_reason_);
  } else {
    spdlog::debug("icmp relay: using {}",
                  mode_ == Mode::kPingSocket ? "ping sockets" : "a raw socket");
  }

  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

IcmpEchoRelay::~IcmpEchoRelay() {
  for (auto& [key, s] : flows_) close_socket(s);
  flows_.clear();
  if (raw_ != nullptr) close_socket(raw_);
  raw_ = nullptr;
  uv_idle_stop(idle_);
  idle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(idle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
}

bool IcmpEchoRelay::send_echo(wire::Ipv4Addr guest, wire::Ipv4Addr host_dst, uint16_t id,
                              uint16_t seq, wire::Bytes payload, uint8_t ttl, uint64_t now_ms) {
  if (mode_ == Mode::kAuto) {
    if (!warned_unavailable_) {
      spdlog::warn("icmp relay: cannot relay the guest's pings: {}", unavailable_reason_);
      warned_unavailable_ = true;
    }
    return false;
  }
  if (payload.size() > kMaxPayload) {
    spdlog::trace("icmp relay: echo from {} with {}-byte payload dropped", addr_text(guest),
                  payload.size());
    stats_.dropped++;
    return false;
  }
  if (ttl == 0) ttl = 1;  // the caller forwards what the guest sent; 0 is not settable
  return mode_ == Mode::kPingSocket ? send_ping(guest, host_dst, id, seq, payload, ttl, now_ms)
                                    : send_raw(guest, host_dst, id, seq, payload, ttl, now_ms);
}

bool IcmpEchoRelay::send_ping(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id, uint16_t seq,
                              wire::Bytes payload, uint8_t ttl, uint64_t now_ms) {
  const FlowKey key{guest.value, id, dst.value};
  Socket* s = nullptr;
  if (auto it = flows_.find(key); it != flows_.end()) {
    s = it->second;
  } else {
    if (flows_.size() >= kMaxFlows) {
      auto lru = flows_.begin();
      for (auto it2 = flows_.begin(); it2 != flows_.end(); ++it2) {
        if (it2->second->last_used_ms < lru->second->last_used_ms) lru = it2;
      }
      close_socket(lru->second);
      flows_.erase(lru);
    }
    int fd = open_icmp_socket(SOCK_DGRAM);
    if (fd < 0) {
      spdlog::debug("icmp relay: ping socket: {}", std::strerror(-fd));
      stats_.dropped++;
      return false;
    }
    const int one = 1;
    if (::setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof one) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one) != 0) {
      spdlog::debug("icmp relay: ping socket options: {}", std::strerror(errno));
      ::close(fd);
      stats_.dropped++;
      return false;
    }
    s = open_socket(fd, true);
    if (s == nullptr) {
      stats_.dropped++;
      return false;
    }
    s->key = key;
    flows_.emplace(key, s);
  }
  s->last_used_ms = now_ms;
  if (!set_ttl(s, ttl)) {
    stats_.dropped++;
    return false;
  }

  const auto pkt = build_echo_request(id, seq, payload);
  const sockaddr_in sin = to_sockaddr(dst);
  if (::sendto(s->fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&sin),
               sizeof sin) < 0) {
    const int err = errno;
    if (is_unreachable_errno(err)) {
      stats_.requests++;
      queue_local_error(guest, dst, id, seq, err);
      return true;
    }
    spdlog::debug("icmp relay: echo to {} failed: {}", addr_text(dst), std::strerror(err));
    stats_.dropped++;
    return false;
  }
  stats_.requests++;
  return true;
}

bool IcmpEchoRelay::send_raw(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id, uint16_t seq,
                             wire::Bytes payload, uint8_t ttl, uint64_t now_ms) {
  if (raw_ == nullptr) {
    int fd = open_icmp_socket(SOCK_RAW);
    if (fd < 0) {
      spdlog::debug("icmp relay: raw socket: {}", std::strerror(-fd));
      stats_.dropped++;
      return false;
    }
    // Only what can answer an echo request reaches us; the rest of the
    // host's ICMP traffic stays in the kernel. (A set bit blocks a type.)
    icmp_filter filter{};
    filter.data = ~((1u << kEchoReply) | (1u << kDestUnreachable) | (1u << kTimeExceeded));
    const int one = 1;
    if (::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one) != 0) {
      spdlog::debug("icmp relay: raw socket options: {}", std::strerror(errno));
      ::close(fd);
      stats_.dropped++;
      return false;
    }
    raw_ = open_socket(fd, false);
    if (raw_ == nullptr) {
      stats_.dropped++;
      return false;
    }
  }
  raw_->last_used_ms = now_ms;
  if (!set_ttl(raw_, ttl)) {
    stats_.dropped++;
    return false;
  }

  const PendingKey key{dst.value, id, seq};
  if (pending_.size() >= kMaxPending && pending_.find(key) == pending_.end()) {
    auto oldest = pending_.begin();
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->second.sent_ms < oldest->second.sent_ms) oldest = it;
    }
    pending_.erase(oldest);
  }
  pending_[key] = Pending{guest, now_ms};

  const auto pkt = build_echo_request(id, seq, payload);
  const sockaddr_in sin = to_sockaddr(dst);
  if (::sendto(raw_->fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&sin),
               sizeof sin) < 0) {
    const int err = errno;
    pending_.erase(key);
    if (is_unreachable_errno(err)) {
      stats_.requests++;
      queue_local_error(guest, dst, id, seq, err);
      return true;
    }
    spdlog::debug("icmp relay: echo to {} failed: {}", addr_text(dst), std::strerror(err));
    stats_.dropped++;
    return false;
  }
  stats_.requests++;
  return true;
}

IcmpEchoRelay::Socket* IcmpEchoRelay::open_socket(int fd, bool ping) {
  auto* s = new Socket;
  s->fd = fd;
  s->ping = ping;
  int rc = uv_poll_init_socket(loop_, &s->poll, fd);
  if (rc != 0) {
    // Not initialised, so not registered with the loop: free directly.
    spdlog::debug("icmp relay: uv_poll_init_socket: {}", uv_strerror(rc));
    ::close(fd);
    delete s;
    return nullptr;
  }
  s->owner = this;
  s->poll.data = s;
  stats_.sockets++;
  // UV_PRIORITIZED: with SO_SELECT_ERR_QUEUE a queued error raises POLLPRI
  // along with POLLERR, and libuv then reports it instead of stopping us.
  rc = uv_poll_start(&s->poll, UV_READABLE | UV_PRIORITIZED, &IcmpEchoRelay::on_poll);
  if (rc != 0) {
    spdlog::debug("icmp relay: uv_poll_start: {}", uv_strerror(rc));
    close_socket(s);
    return nullptr;
  }
  return s;
}

void IcmpEchoRelay::close_socket(Socket* s) {
  s->owner = nullptr;
  stats_.sockets--;
  uv_poll_stop(&s->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), [](uv_handle_t* h) {
    auto* sock = static_cast<Socket*>(h->data);
    ::close(sock->fd);
    delete sock;
  });
}

bool IcmpEchoRelay::set_ttl(Socket* s, uint8_t ttl) {
  if (s->ttl == ttl) return true;
  const int value = ttl;
  if (::setsockopt(s->fd, SOL_IP, IP_TTL, &value, sizeof value) != 0) {
    spdlog::debug("icmp relay: IP_TTL {}: {}", value, std::strerror(errno));
    return false;
  }
  s->ttl = ttl;
  return true;
}

void IcmpEchoRelay::queue_local_error(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id,
                                      uint16_t seq, int err) {
  if (local_errors_.size() >= kMaxQueuedErrors) {
    stats_.dropped++;
    return;
  }
  const uint8_t code = err == ENETUNREACH ? kCodeNetUnreachable : kCodeHostUnreachable;
  local_errors_.push_back(IcmpError{guest, dst, id, seq, kDestUnreachable, code});
  uv_idle_start(idle_, &IcmpEchoRelay::on_idle);
}

void IcmpEchoRelay::on_idle(uv_idle_t* handle) {
  for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
    auto* self = static_cast<IcmpEchoRelay*>(handle->data);
    if (self == nullptr || self->local_errors_.empty()) break;
    IcmpError e = self->local_errors_.front();
    self->local_errors_.pop_front();
    self->stats_.errors++;
    if (self->on_error_) self->on_error_(e);
  }
  auto* self = static_cast<IcmpEchoRelay*>(handle->data);
  if (self != nullptr && self->local_errors_.empty()) uv_idle_stop(handle);
}

void IcmpEchoRelay::on_poll(uv_poll_t* handle, int status, int /*events*/) {
  auto* s = static_cast<Socket*>(handle->data);
  IcmpEchoRelay* self = s->owner;
  if (self == nullptr) return;
  if (status < 0) {
    // libuv stopped the handle on a bare POLLERR (a pending socket error
    // without SO_SELECT_ERR_QUEUE's POLLPRI). Clear the error and go on.
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    spdlog::debug("icmp relay: poll error {} (socket error {})", uv_strerror(status), err);
    uv_poll_start(&s->poll, UV_READABLE | UV_PRIORITIZED, &IcmpEchoRelay::on_poll);
  }
  if (s->ping) {
    self->read_ping_errors(s);
    if (s->owner != nullptr) self->read_ping(s);
  } else {
    self->read_raw(s);
  }
}

void IcmpEchoRelay::read_ping(Socket* s) {
  for (int i = 0; i < kMaxReadsPerWakeup && s->owner != nullptr; ++i) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(s->fd, rx_buf_.data(), rx_buf_.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // A pending socket error (e.g. EHOSTUNREACH) is returned once by a
      // plain read; its details are on the error queue, read separately.
      continue;
    }
    const wire::Bytes pkt(rx_buf_.data(), static_cast<size_t>(n));
    if (pkt.size() < kIcmpHeaderSize || wire::load8(pkt, 0) != kEchoReply ||
        from.sin_family != AF_INET) {
      spdlog::trace("icmp relay: unexpected {}-byte datagram on ping socket", pkt.size());
      stats_.dropped++;
      continue;
    }
    IcmpEchoReply reply;
    reply.from = wire::Ipv4Addr{ntohl(from.sin_addr.s_addr)};
    reply.guest = wire::Ipv4Addr{s->key.guest};
    reply.id = s->key.id;  // the kernel's id is the socket's port; restore the guest's
    reply.seq = wire::load16(pkt, 6);
    reply.payload.assign(pkt.begin() + kIcmpHeaderSize, pkt.end());
    stats_.replies++;
    if (on_reply_) on_reply_(reply);
  }
}

void IcmpEchoRelay::read_ping_errors(Socket* s) {
  for (int i = 0; i < kMaxReadsPerWakeup && s->owner != nullptr; ++i) {
    alignas(cmsghdr) std::byte control[512];
    iovec iov{rx_buf_.data(), rx_buf_.size()};
    sockaddr_in offender{};
    msghdr msg{};
    msg.msg_name = &offender;
    msg.msg_namelen = sizeof offender;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(s->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) break;  // EAGAIN: the queue is empty

    bool have_ee = false;
    sock_extended_err ee{};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR &&
          c->cmsg_len >= CMSG_LEN(sizeof ee)) {
        std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
        have_ee = true;
      }
    }
    // The data is the start of our own request as quoted by the error: at
    // least the 8-byte ICMP header, which holds the seq.
    const wire::Bytes quoted(rx_buf_.data(), static_cast<size_t>(n));
    if (!have_ee || ee.ee_origin != SO_EE_ORIGIN_ICMP || quoted.size() < kIcmpHeaderSize) {
      spdlog::trace("icmp relay: ignored error-queue entry (origin {}, errno {})",
                    have_ee ? ee.ee_origin : 0, have_ee ? ee.ee_errno : 0);
      stats_.dropped++;
      continue;
    }
    IcmpError e{wire::Ipv4Addr{s->key.guest},
                wire::Ipv4Addr{s->key.dst},
                s->key.id,
                wire::load16(quoted, 6),
                ee.ee_type,
                ee.ee_code};
    stats_.errors++;
    if (on_error_) on_error_(e);
  }
}

void IcmpEchoRelay::read_raw(Socket* s) {
  for (int i = 0; i < kMaxReadsPerWakeup && s->owner != nullptr; ++i) {
    const ssize_t n = ::recv(s->fd, rx_buf_.data(), rx_buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      continue;  // a pending socket error, returned once; read on
    }
    handle_raw_packet(wire::Bytes(rx_buf_.data(), static_cast<size_t>(n)));
  }
}

void IcmpEchoRelay::handle_raw_packet(wire::Bytes packet) {
  // Everything here is traffic addressed to the host: most of it is not
  // ours, so a mismatch is ignored rather than counted.
  auto outer = parse_ipv4_icmp(packet, false);
  if (!outer || outer->icmp.size() < kIcmpHeaderSize) return;
  const wire::Bytes icmp = outer->icmp;
  const uint8_t type = wire::load8(icmp, 0);
  const uint8_t code = wire::load8(icmp, 1);

  if (type == kEchoReply) {
    const PendingKey key{outer->src.value, wire::load16(icmp, 4), wire::load16(icmp, 6)};
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    IcmpEchoReply reply;
    reply.from = outer->src;
    reply.guest = it->second.guest;
    reply.id = key.id;
    reply.seq = key.seq;
    reply.payload.assign(icmp.begin() + kIcmpHeaderSize, icmp.end());
    pending_.erase(it);
    stats_.replies++;
    if (on_reply_) on_reply_(reply);
    return;
  }
  if (type != kDestUnreachable && type != kTimeExceeded) return;
  // An error quotes the offending IP header and the first 8 bytes after it:
  // our echo request's type, code, checksum, id and seq.
  auto inner = parse_ipv4_icmp(icmp.subspan(kIcmpHeaderSize), true);
  if (!inner || inner->icmp.size() < kIcmpHeaderSize ||
      wire::load8(inner->icmp, 0) != kEchoRequest) {
    return;
  }
  const PendingKey key{inner->dst.value, wire::load16(inner->icmp, 4),
                       wire::load16(inner->icmp, 6)};
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  IcmpError e{it->second.guest, inner->dst, key.id, key.seq, type, code};
  pending_.erase(it);
  stats_.errors++;
  if (on_error_) on_error_(e);
}

void IcmpEchoRelay::expire(uint64_t now_ms) {
  auto idle = [now_ms](uint64_t last, uint64_t timeout) {
    return now_ms > last && now_ms - last > timeout;
  };
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (idle(it->second->last_used_ms, kIdleTimeoutMs)) {
      close_socket(it->second);
      it = flows_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = idle(it->second.sent_ms, kPendingTimeoutMs) ? pending_.erase(it) : std::next(it);
  }
  if (raw_ != nullptr && pending_.empty() && idle(raw_->last_used_ms, kIdleTimeoutMs)) {
    close_socket(raw_);
    raw_ = nullptr;
  }
}

}  // namespace slipway::engine
