// ICMP echo relay; see icmp_relay.h for the theory of operation.
//
// Packet bytes (what we send, what the raw sockets and the error queues hand
// back) are written with wire/'s emitters and read through its checked
// views: IPv4 packets with Ipv4Packet (parse for what a raw socket receives,
// parse_quoted for the request an error quotes), quoted IPv6 packets with
// Ipv6Packet::parse_quoted and upper_layer(), ICMP and ICMPv6 messages alike
// with AnyIcmpMessage. Only kernel-defined control structures
// (sock_extended_err) are copied out with memcpy.
#include "netstack/engine/icmp_relay.h"

#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace slipway::engine {
namespace {

constexpr size_t kRxBufferSize = 65536;  // the largest IPv4 datagram, IP header included

// The family's echo request, echo reply and the two errors we report.
struct IcmpTypes {
  uint8_t echo_request, echo_reply, dest_unreachable, time_exceeded;
};
constexpr IcmpTypes kIcmp4{wire::icmptype::kEchoRequest, wire::icmptype::kEchoReply,
                           wire::icmptype::kDestUnreachable, wire::icmptype::kTimeExceeded};
constexpr IcmpTypes kIcmp6{wire::icmpv6type::kEchoRequest, wire::icmpv6type::kEchoReply,
                           wire::icmpv6type::kDestUnreachable, wire::icmpv6type::kTimeExceeded};
const IcmpTypes& types_of(bool v6) { return v6 ? kIcmp6 : kIcmp4; }

// Echo request: type, code 0, checksum, id, seq, payload. The kernel fills
// in the ICMPv6 checksum (it covers the pseudo-header, whose source address
// only the kernel knows), on ping and raw sockets alike.
std::vector<std::byte> build_echo_request(bool v6, uint16_t id, uint16_t seq, wire::Bytes payload) {
  std::vector<std::byte> pkt(wire::AnyIcmpMessage::kHeaderLen + payload.size());
  const uint32_t rest = (uint32_t{id} << 16) | seq;
  if (v6) {
    wire::emit_icmp_unchecksummed(pkt, wire::icmpv6type::kEchoRequest, 0, rest, payload);
  } else {
    wire::emit_icmp(pkt, wire::icmptype::kEchoRequest, 0, rest, payload);
  }
  return pkt;
}

// Opens an ICMP socket of the family and type (SOCK_DGRAM: ping socket,
// SOCK_RAW); returns the fd or -errno.
int open_icmp_socket(bool v6, int type) {
  const int domain = v6 ? AF_INET6 : AF_INET;
  const int protocol = v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  return fd >= 0 ? fd : -errno;
}

// Whether an IPv4 ICMP socket of the type can be opened: 0, or the errno.
int probe_icmp_socket(int type) {
  const int fd = open_icmp_socket(false, type);
  if (fd < 0) return -fd;
  ::close(fd);
  return 0;
}

bool is_unreachable_errno(int err) { return err == ENETUNREACH || err == EHOSTUNREACH; }

socklen_t sockaddr_len(bool v6) { return v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }

}  // namespace

// One socket and its poll handle. Freed only in the uv_close callback; owner
// is cleared when the relay lets go of it, so a late poll callback is a no-op.
struct IcmpEchoRelay::Socket {
  uv_poll_t poll{};
  int fd = -1;
  IcmpEchoRelay* owner = nullptr;
  bool ping = false;
  bool v6 = false;
  // Ping sockets: the flow this socket serves.
  IpAddr guest, dst;
  uint16_t id = 0;
  uint64_t last_used_ms = 0;
  int hop_limit = -1;  // last IP_TTL / IPV6_UNICAST_HOPS set, -1 for the kernel default
};

IcmpEchoRelay::AddrKey IcmpEchoRelay::key_of(const IpAddr& a) {
  AddrKey k;
  k.v6 = a.v6;
  if (a.v6) {
    k.bytes = a.v6addr.octets;
  } else {
    for (size_t i = 0; i < 4; ++i) k.bytes[i] = static_cast<uint8_t>(a.v4.value >> (24 - 8 * i));
  }
  return k;
}

IcmpEchoRelay::IcmpEchoRelay(uv_loop_t* loop, std::function<void(const IcmpEchoReply&)> on_reply,
                             std::function<void(const IcmpError&)> on_error, Mode mode,
                             size_t max_flows)
    : loop_(loop),
      max_flows_(std::max<size_t>(max_flows, 1)),
      on_reply_(std::move(on_reply)),
      on_error_(std::move(on_error)),
      rx_buf_(kRxBufferSize) {
  // Probe once, here, so active_mode() is known before the first ping. The
  // probe sockets are closed; the real ones open on demand. IPv4 decides for
  // both families: the same ping_group_range and CAP_NET_RAW govern IPv6.
  int ping_err = 0, raw_err = 0;
  if (mode == Mode::kAuto || mode == Mode::kPingSocket) {
    ping_err = probe_icmp_socket(SOCK_DGRAM);
    if (ping_err == 0) mode_ = Mode::kPingSocket;
  }
  const bool try_raw =
      mode == Mode::kRaw || (mode == Mode::kAuto && mode_ == Mode::kAuto &&
                             (ping_err == EACCES || ping_err == EPERM ||
                              ping_err == EPROTONOSUPPORT || ping_err == ESOCKTNOSUPPORT));
  if (try_raw) {
    raw_err = probe_icmp_socket(SOCK_RAW);
    if (raw_err == 0) mode_ = Mode::kRaw;
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
                  mode_ == Mode::kPingSocket ? "ping sockets" : "raw sockets");
  }

  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
}

IcmpEchoRelay::~IcmpEchoRelay() {
  for (auto& [key, s] : flows_) close_socket(s);
  flows_.clear();
  for (Socket** raw : {&raw4_, &raw6_}) {
    if (*raw != nullptr) close_socket(*raw);
    *raw = nullptr;
  }
  uv_idle_stop(idle_);
  idle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(idle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
}

bool IcmpEchoRelay::send_echo(const IpAddr& guest, const IpAddr& host_dst, uint16_t id,
                              uint16_t seq, wire::Bytes payload, uint8_t hop_limit,
                              uint64_t now_ms) {
  if (mode_ == Mode::kAuto) {
    if (!warned_unavailable_) {
      spdlog::warn("icmp relay: cannot relay the guest's pings: {}", unavailable_reason_);
      warned_unavailable_ = true;
    }
    return false;
  }
  if (guest.v6 != host_dst.v6) {
    spdlog::trace("icmp relay: echo from {} to {}: mixed families", guest.to_string(),
                  host_dst.to_string());
    stats_.dropped++;
    return false;
  }
  if (payload.size() > (host_dst.v6 ? kMaxPayload6 : kMaxPayload)) {
    spdlog::trace("icmp relay: echo from {} with {}-byte payload dropped", guest.to_string(),
                  payload.size());
    stats_.dropped++;
    return false;
  }
  if (hop_limit == 0) hop_limit = 1;  // the caller forwards what the guest sent; 0 is not settable
  return mode_ == Mode::kPingSocket
             ? send_ping(guest, host_dst, id, seq, payload, hop_limit, now_ms)
             : send_raw(guest, host_dst, id, seq, payload, hop_limit, now_ms);
}

bool IcmpEchoRelay::send_ping(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq,
                              wire::Bytes payload, uint8_t hop_limit, uint64_t now_ms) {
  const FlowKey key{key_of(guest), id, key_of(dst)};
  Socket* s = nullptr;
  if (auto it = flows_.find(key); it != flows_.end()) {
    s = it->second;
  } else {
    if (flows_.size() >= max_flows_) {
      auto lru = flows_.begin();
      for (auto it2 = flows_.begin(); it2 != flows_.end(); ++it2) {
        if (it2->second->last_used_ms < lru->second->last_used_ms) lru = it2;
      }
      close_socket(lru->second);
      flows_.erase(lru);
      stats_.evicted++;
    }
    int fd = open_icmp_socket(dst.v6, SOCK_DGRAM);
    if (fd < 0) {
      spdlog::debug("icmp relay: {} ping socket: {}", dst.v6 ? "IPv6" : "IPv4",
                    std::strerror(-fd));
      socket_failed(guest, dst, id, seq, -fd, now_ms);
      return false;
    }
    const int one = 1;
    const int recverr = dst.v6 ? ::setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof one)
                               : ::setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof one);
    if (recverr != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one) != 0) {
      spdlog::debug("icmp relay: ping socket options: {}", std::strerror(errno));
      ::close(fd);
      stats_.dropped++;
      return false;
    }
    s = open_socket(fd, true, dst.v6);
    if (s == nullptr) {
      stats_.dropped++;
      return false;
    }
    s->guest = guest;
    s->dst = dst;
    s->id = id;
    flows_.emplace(key, s);
  }
  s->last_used_ms = now_ms;
  if (!set_hop_limit(s, hop_limit)) {
    stats_.dropped++;
    return false;
  }
  return finish_send(send_request(s, dst, id, seq, payload), guest, dst, id, seq);
}

bool IcmpEchoRelay::send_raw(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq,
                             wire::Bytes payload, uint8_t hop_limit, uint64_t now_ms) {
  Socket*& raw = dst.v6 ? raw6_ : raw4_;
  if (raw == nullptr) {
    errno = 0;
    raw = open_raw(dst.v6);
    if (raw == nullptr) {
      socket_failed(guest, dst, id, seq, errno, now_ms);
      return false;
    }
  }
  raw->last_used_ms = now_ms;
  if (!set_hop_limit(raw, hop_limit)) {
    stats_.dropped++;
    return false;
  }

  const PendingKey key{key_of(dst), id, seq};
  if (pending_.size() >= kMaxPending && pending_.find(key) == pending_.end()) {
    auto oldest = pending_.begin();
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->second.sent_ms < oldest->second.sent_ms) oldest = it;
    }
    pending_.erase(oldest);
  }
  pending_[key] = Pending{guest, now_ms};

  const int err = send_request(raw, dst, id, seq, payload);
  if (err != 0) pending_.erase(key);
  return finish_send(err, guest, dst, id, seq);
}

IcmpEchoRelay::Socket* IcmpEchoRelay::open_raw(bool v6) {
  int fd = open_icmp_socket(v6, SOCK_RAW);
  if (fd < 0) {
    spdlog::debug("icmp relay: {} raw socket: {}", v6 ? "IPv6" : "IPv4", std::strerror(-fd));
    errno = -fd;  // for the caller (socket_failed)
    return nullptr;
  }
  // Only what can answer an echo request reaches us; the rest of the
  // host's ICMP traffic stays in the kernel.
  int rc = 0;
  if (v6) {
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(kIcmp6.echo_reply, &filter);
    ICMP6_FILTER_SETPASS(kIcmp6.dest_unreachable, &filter);
    ICMP6_FILTER_SETPASS(kIcmp6.time_exceeded, &filter);
    rc = ::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
  } else {
    icmp_filter filter{};  // a set bit blocks a type
    filter.data = ~((1u << kIcmp4.echo_reply) | (1u << kIcmp4.dest_unreachable) |
                    (1u << kIcmp4.time_exceeded));
    rc = ::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
  }
  const int one = 1;
  if (rc != 0 || ::setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one) != 0) {
    spdlog::debug("icmp relay: raw socket options: {}", std::strerror(errno));
    ::close(fd);
    return nullptr;
  }
  return open_socket(fd, false, v6);
}

int IcmpEchoRelay::send_request(Socket* s, const IpAddr& dst, uint16_t id, uint16_t seq,
                                wire::Bytes payload) {
  const auto pkt = build_echo_request(dst.v6, id, seq, payload);
  const sockaddr_storage to = to_sockaddr(dst, 0);
  if (::sendto(s->fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to),
               sockaddr_len(dst.v6)) < 0) {
    return errno;
  }
  return 0;
}

bool IcmpEchoRelay::finish_send(int err, const IpAddr& guest, const IpAddr& dst, uint16_t id,
                                uint16_t seq) {
  if (err == 0) {
    stats_.requests++;
    return true;
  }
  if (is_unreachable_errno(err)) {
    stats_.requests++;
    queue_local_error(guest, dst, id, seq, err);
    return true;
  }
  spdlog::debug("icmp relay: echo to {} failed: {}", dst.to_string(), std::strerror(err));
  stats_.dropped++;
  return false;
}

IcmpEchoRelay::Socket* IcmpEchoRelay::open_socket(int fd, bool ping, bool v6) {
  auto* s = new Socket;
  s->fd = fd;
  s->ping = ping;
  s->v6 = v6;
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

bool IcmpEchoRelay::set_hop_limit(Socket* s, uint8_t hop_limit) {
  if (s->hop_limit == hop_limit) return true;
  const int value = hop_limit;
  const int rc = s->v6 ? ::setsockopt(s->fd, SOL_IPV6, IPV6_UNICAST_HOPS, &value, sizeof value)
                       : ::setsockopt(s->fd, SOL_IP, IP_TTL, &value, sizeof value);
  if (rc != 0) {
    spdlog::debug("icmp relay: {} {}: {}", s->v6 ? "IPV6_UNICAST_HOPS" : "IP_TTL", value,
                  std::strerror(errno));
    return false;
  }
  s->hop_limit = hop_limit;
  return true;
}

void IcmpEchoRelay::socket_failed(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq, int err,
                                  uint64_t now_ms) {
  stats_.dropped++;
  if (err != EMFILE && err != ENFILE) return;
  stats_.no_fd++;
  uint64_t held = 0;
  if (log_limit_.allow("no-fd", now_ms, &held))
    spdlog::warn("icmp relay: the host refused a socket ({}): answering pings with unreachable until descriptors "
                 "are free (RLIMIT_NOFILE){}",
                 std::strerror(err), log_limit_.suffix(held));
  if (local_errors_.size() >= kMaxQueuedErrors) return;
  // As a router that may not forward it would: administratively prohibited.
  uint8_t code = dst.v6 ? wire::icmpv6code::kAdminProhibited : wire::icmpcode::kAdminProhibited;
  local_errors_.push_back(IcmpError{guest, dst, id, seq, types_of(dst.v6).dest_unreachable, code});
  uv_idle_start(idle_, &IcmpEchoRelay::on_idle);
}

void IcmpEchoRelay::queue_local_error(const IpAddr& guest, const IpAddr& dst, uint16_t id,
                                      uint16_t seq, int err) {
  if (local_errors_.size() >= kMaxQueuedErrors) {
    stats_.dropped++;
    return;
  }
  uint8_t code = 0;
  if (dst.v6) {
    code = err == ENETUNREACH ? wire::icmpv6code::kNoRoute : wire::icmpv6code::kAddressUnreachable;
  } else {
    code = err == ENETUNREACH ? wire::icmpcode::kNetUnreachable : wire::icmpcode::kHostUnreachable;
  }
  local_errors_.push_back(IcmpError{guest, dst, id, seq, types_of(dst.v6).dest_unreachable, code});
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
    self->read_datagrams(s, &IcmpEchoRelay::handle_ping_datagram);
  } else {
    self->read_datagrams(s, &IcmpEchoRelay::handle_raw_datagram);
  }
}

void IcmpEchoRelay::read_datagrams(Socket* s, DatagramHandler handle) {
  for (int i = 0; i < kMaxReadsPerWakeup && s->owner != nullptr; ++i) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(s->fd, rx_buf_.data(), rx_buf_.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // A pending socket error (e.g. EHOSTUNREACH) is returned once by a
      // plain read; a ping socket's details are on its error queue, read
      // separately.
      continue;
    }
    IpAddr from_addr;
    uint16_t unused_port = 0;
    const bool known =
        from_sockaddr(reinterpret_cast<const sockaddr*>(&from), &from_addr, &unused_port);
    (this->*handle)(s, wire::Bytes(rx_buf_.data(), static_cast<size_t>(n)),
                    known ? std::optional<IpAddr>(from_addr) : std::nullopt);
  }
}

void IcmpEchoRelay::handle_ping_datagram(Socket* s, wire::Bytes datagram,
                                         const std::optional<IpAddr>& from) {
  const auto msg = wire::AnyIcmpMessage::parse(datagram);
  if (!msg || msg->type() != types_of(s->v6).echo_reply || !from || from->v6 != s->v6) {
    spdlog::trace("icmp relay: unexpected {}-byte datagram on ping socket", datagram.size());
    stats_.dropped++;
    return;
  }
  IcmpEchoReply reply;
  reply.from = *from;
  reply.guest = s->guest;
  reply.id = s->id;  // the kernel's id is the socket's port; restore the guest's
  reply.seq = msg->echo_seq();
  reply.payload.assign(msg->payload().begin(), msg->payload().end());
  stats_.replies++;
  if (on_reply_) on_reply_(reply);
}

void IcmpEchoRelay::read_ping_errors(Socket* s) {
  const IcmpTypes& types = types_of(s->v6);
  const int level = s->v6 ? SOL_IPV6 : SOL_IP;
  const int type = s->v6 ? IPV6_RECVERR : IP_RECVERR;
  const uint8_t origin = s->v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
  for (int i = 0; i < kMaxReadsPerWakeup && s->owner != nullptr; ++i) {
    alignas(cmsghdr) std::byte control[512];
    iovec iov{rx_buf_.data(), rx_buf_.size()};
    sockaddr_storage offender{};
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
      if (c->cmsg_level == level && c->cmsg_type == type && c->cmsg_len >= CMSG_LEN(sizeof ee)) {
        std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
        have_ee = true;
      }
    }
    // The data is the start of our own request as quoted by the error: at
    // least the 8-byte ICMP header, which holds the seq. Only the errors the
    // raw sockets' filters let through are reported, in both modes.
    const auto request =
        wire::AnyIcmpMessage::parse(wire::Bytes(rx_buf_.data(), static_cast<size_t>(n)));
    if (!have_ee || ee.ee_origin != origin || !request ||
        (ee.ee_type != types.dest_unreachable && ee.ee_type != types.time_exceeded)) {
      spdlog::trace("icmp relay: ignored error-queue entry (origin {}, type {}, errno {})",
                    have_ee ? ee.ee_origin : 0, have_ee ? ee.ee_type : 0,
                    have_ee ? ee.ee_errno : 0);
      stats_.dropped++;
      continue;
    }
    IcmpError e{s->guest, s->dst, s->id, request->echo_seq(), ee.ee_type, ee.ee_code};
    stats_.errors++;
    if (on_error_) on_error_(e);
  }
}

void IcmpEchoRelay::handle_raw_datagram(Socket* s, wire::Bytes datagram,
                                        const std::optional<IpAddr>& from) {
  if (!s->v6) {
    handle_raw_packet(datagram);
  } else if (from && from->v6) {
    handle_raw_packet6(from->v6addr, datagram);
  }
}

// A raw socket's echo reply from `from`: reported if it answers an
// outstanding request (matched on source, id and seq).
void IcmpEchoRelay::complete_reply(const IpAddr& from, const wire::AnyIcmpMessage& echo_reply) {
  const PendingKey key{key_of(from), echo_reply.echo_id(), echo_reply.echo_seq()};
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  IcmpEchoReply reply;
  reply.from = from;
  reply.guest = it->second.guest;
  reply.id = key.id;
  reply.seq = key.seq;
  reply.payload.assign(echo_reply.payload().begin(), echo_reply.payload().end());
  pending_.erase(it);
  stats_.replies++;
  if (on_reply_) on_reply_(reply);
}

// A raw socket's error quoting our echo request to `dst`: reported if that
// request is outstanding.
void IcmpEchoRelay::complete_error(const IpAddr& dst, const wire::AnyIcmpMessage& request,
                                   uint8_t type, uint8_t code) {
  const PendingKey key{key_of(dst), request.echo_id(), request.echo_seq()};
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  IcmpError e{it->second.guest, dst, key.id, key.seq, type, code};
  pending_.erase(it);
  stats_.errors++;
  if (on_error_) on_error_(e);
}

void IcmpEchoRelay::handle_raw_packet(wire::Bytes packet) {
  // Everything here is traffic addressed to the host: most of it is not
  // ours, so a mismatch is ignored rather than counted.
  const auto outer = wire::Ipv4Packet::parse(packet);
  if (!outer || outer->protocol() != wire::ipproto::kIcmp) return;
  const auto icmp = wire::AnyIcmpMessage::parse(outer->payload());
  if (!icmp) return;

  if (icmp->type() == kIcmp4.echo_reply) {
    complete_reply(outer->src(), *icmp);
    return;
  }
  if (icmp->type() != kIcmp4.dest_unreachable && icmp->type() != kIcmp4.time_exceeded) return;
  // An error quotes the offending IP header and the first 8 bytes after it:
  // our echo request's type, code, checksum, id and seq.
  const auto inner = wire::Ipv4Packet::parse_quoted(icmp->payload());
  if (!inner || inner->protocol() != wire::ipproto::kIcmp) return;
  const auto request = wire::AnyIcmpMessage::parse(inner->payload());
  if (!request || request->type() != kIcmp4.echo_request) return;
  complete_error(inner->dst(), *request, icmp->type(), icmp->code());
}

void IcmpEchoRelay::handle_raw_packet6(const wire::Ipv6Addr& src, wire::Bytes packet) {
  // As for IPv4, but the kernel hands us the ICMPv6 message alone (its
  // checksum already verified) and the source separately.
  const auto icmp = wire::AnyIcmpMessage::parse(packet);
  if (!icmp) return;

  if (icmp->type() == kIcmp6.echo_reply) {
    complete_reply(src, *icmp);
    return;
  }
  if (icmp->type() != kIcmp6.dest_unreachable && icmp->type() != kIcmp6.time_exceeded) return;
  // The error quotes as much of our request as fits in 1280 bytes, from its
  // IPv6 header on (RFC 4443 §3.1, §3.3). Our requests carry no extension
  // headers but a fragment header when the host fragmented a large one;
  // only the first fragment holds the ICMPv6 header.
  const auto inner = wire::Ipv6Packet::parse_quoted(icmp->payload());
  const auto upper = inner ? inner->upper_layer() : std::nullopt;
  if (!upper || upper->protocol != wire::ipproto::kIcmpv6 || upper->fragment_offset != 0) return;
  const auto request = wire::AnyIcmpMessage::parse(upper->data);
  if (!request || request->type() != kIcmp6.echo_request) return;
  complete_error(inner->dst(), *request, icmp->type(), icmp->code());
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
  bool pending4 = false, pending6 = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (idle(it->second.sent_ms, kPendingTimeoutMs)) {
      it = pending_.erase(it);
    } else {
      (it->first.dst.v6 ? pending6 : pending4) = true;
      ++it;
    }
  }
  // A raw socket stays open while requests of its family are outstanding.
  for (auto [raw, busy] : {std::pair{&raw4_, pending4}, std::pair{&raw6_, pending6}}) {
    if (*raw != nullptr && !busy && idle((*raw)->last_used_ms, kIdleTimeoutMs)) {
      close_socket(*raw);
      *raw = nullptr;
    }
  }
}

}  // namespace slipway::engine
