// See vxlan_port.h.
#include "netstack/link/vxlan_port.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "netstack/wire/ethernet.h"
#include "netstack/wire/offload.h"
#include "netstack/wire/vlan.h"

namespace slipway::link {

namespace {

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

socklen_t to_sockaddr(const VxlanEndpoint& e, sockaddr_storage& ss) {
  ss = {};
  if (const auto* v6 = std::get_if<wire::Ipv6Addr>(&e.address)) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(e.port);
    std::memcpy(&sin6->sin6_addr, v6->octets.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(e.port);
  sin->sin_addr.s_addr = htonl(std::get<wire::Ipv4Addr>(e.address).value);
  return sizeof(sockaddr_in);
}

VxlanEndpoint from_sockaddr(const sockaddr_storage& ss) {
  VxlanEndpoint e;
  if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    wire::Ipv6Addr a;
    std::memcpy(a.octets.data(), &sin6->sin6_addr, 16);
    e.address = a;
    e.port = ntohs(sin6->sin6_port);
  } else {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    e.address = wire::Ipv4Addr{ntohl(sin->sin_addr.s_addr)};
    e.port = ntohs(sin->sin_port);
  }
  return e;
}

// Same address (the port is not compared: senders vary it).
bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&b)->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return reinterpret_cast<const sockaddr_in*>(&a)->sin_addr.s_addr ==
         reinterpret_cast<const sockaddr_in*>(&b)->sin_addr.s_addr;
}

// Raises a socket buffer: past net.core.*mem_max where allowed (root).
void raise_buffer(int fd, int force_option, int option) {
  int size = VxlanPort::kSocketBuffer;
  if (::setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) != 0) {
    ::setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
  }
}

}  // namespace

bool VxlanEndpoint::is_unspecified() const {
  return std::visit([](const auto& a) { return a.is_unspecified(); }, address);
}

bool VxlanEndpoint::is_multicast() const {
  return std::visit([](const auto& a) { return a.is_multicast(); }, address);
}

std::optional<VxlanEndpoint> VxlanEndpoint::parse(std::string_view text, uint16_t default_port) {
  VxlanEndpoint e;
  e.port = default_port;
  std::string_view host = text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      auto p = parse_port(rest.substr(1));
      if (!p) return std::nullopt;
      e.port = *p;
    }
    auto a = wire::Ipv6Addr::parse(host);
    if (!a) return std::nullopt;
    e.address = *a;
    return e;
  }
  size_t colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPv4 and a port.
    host = text.substr(0, colon);
    auto p = parse_port(text.substr(colon + 1));
    if (!p) return std::nullopt;
    e.port = *p;
  }
  if (auto a4 = wire::Ipv4Addr::parse(host)) {
    e.address = *a4;
    return e;
  }
  if (colon == std::string_view::npos || host != text) return std::nullopt;
  auto a6 = wire::Ipv6Addr::parse(host);  // a bare IPv6 address: no port
  if (!a6) return std::nullopt;
  e.address = *a6;
  return e;
}

std::string VxlanEndpoint::to_string() const {
  if (const auto* v6 = std::get_if<wire::Ipv6Addr>(&address)) {
    return "[" + v6->to_string() + "]:" + std::to_string(port);
  }
  return std::get<wire::Ipv4Addr>(address).to_string() + ":" + std::to_string(port);
}

std::unique_ptr<VxlanPort> VxlanPort::open(uv_loop_t* loop, const VxlanConfig& config) {
  if (config.vni > wire::kVxlanMaxVni) {
    throw std::invalid_argument("vxlan: VNI " + std::to_string(config.vni) + " is above 16777215 (24 bits)");
  }
  if (config.remote.is_unspecified() || config.remote.is_multicast()) {
    throw std::invalid_argument("vxlan: the remote " + config.remote.to_string() + " is not a unicast address");
  }
  if (config.remote.port == 0) throw std::invalid_argument("vxlan: the remote's port is 0");
  if (config.mtu < 68 || config.mtu > 65535) {
    throw std::invalid_argument("vxlan: MTU " + std::to_string(config.mtu) + " is outside 68..65535");
  }
  VxlanEndpoint local;
  if (config.local) {
    local = *config.local;
    if (local.is_v6() != config.remote.is_v6()) {
      throw std::invalid_argument("vxlan: the local address " + local.to_string() + " and the remote " +
                                  config.remote.to_string() + " are of different families");
    }
  } else if (config.remote.is_v6()) {
    local.address = wire::Ipv6Addr{};
  }
  const int family = local.is_v6() ? AF_INET6 : AF_INET;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("vxlan: cannot open a UDP socket: ") + std::strerror(errno));
  const int one = 1;
  if (family == AF_INET6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    const int dont = IPV6_PMTUDISC_DONT;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &dont, sizeof dont);
  } else {
    const int dont = IP_PMTUDISC_DONT;
    ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof dont);
  }
  raise_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  // UDP GSO: probed by setting the socket's default segment size (0: none).
  const int no_segment = 0;
  const bool udp_gso = ::setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &no_segment, sizeof no_segment) == 0;
  raise_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  sockaddr_storage ss{};
  socklen_t len = to_sockaddr(local, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("vxlan: cannot bind " + local.to_string() + ": " + std::strerror(err));
  }
  len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  auto port = std::unique_ptr<VxlanPort>(new VxlanPort(loop, fd, config, from_sockaddr(ss)));
  port->udp_gso_ = udp_gso;
  return port;
}

VxlanPort::VxlanPort(uv_loop_t* loop, int fd, VxlanConfig config, VxlanEndpoint local)
    : config_(std::move(config)),
      local_(std::move(local)),
      max_frame_(config_.mtu + wire::kEthernetHeaderLen + wire::kVlanTagLen),
      // One byte more than the largest datagram we take, so that MSG_TRUNC
      // is not needed to tell a longer one.
      rx_slot_(wire::kVxlanHeaderLen + max_frame_ + 1),
      rx_slots_(std::clamp<size_t>(kRxBatchBytes / rx_slot_, 1, kMaxReadsPerWake)),
      rx_(rx_slot_ * rx_slots_) {
  remote_len_ = to_sockaddr(config_.remote, remote_);
  wire::emit_vxlan(tx_header_, config_.vni);
  set_capabilities(Capabilities{.csum = true, .tso = true});
  sock_ = std::make_unique<PolledFd>(loop, fd, [this](int status, int events) {
    if (status < 0) {
      spdlog::debug("vxlan: poll error: {}", uv_strerror(status));
      return;
    }
    if (events & UV_READABLE) on_readable();
  });
  sock_->watch(UV_READABLE);
  spdlog::info("vxlan: VNI {} on {} to {}", config_.vni, local_.to_string(), config_.remote.to_string());
}

VxlanPort::~VxlanPort() = default;

std::vector<std::pair<const char*, uint64_t>> VxlanPort::link_counters() const {
  const auto& v = vxlan_stats_;
  return {{"rx_bad_source", v.rx_bad_source}, {"rx_bad_header", v.rx_bad_header}, {"rx_bad_vni", v.rx_bad_vni},
          {"rx_runt", v.rx_runt},             {"rx_oversize", v.rx_oversize},     {"tx_again", v.tx_again},
          {"tx_errors", v.tx_errors},         {"tx_bad_length", v.tx_bad_length},
          {"tx_bad_offload", v.tx_bad_offload}, {"tx_gso_sends", v.tx_gso_sends}};
}

void VxlanPort::on_readable() {
  std::array<mmsghdr, kMaxReadsPerWake> msgs{};
  std::array<iovec, kMaxReadsPerWake> iovs{};
  std::array<sockaddr_storage, kMaxReadsPerWake> from{};
  for (size_t done = 0; done < static_cast<size_t>(kMaxReadsPerWake);) {
    const size_t batch = std::min(rx_slots_, kMaxReadsPerWake - done);
    for (size_t i = 0; i < batch; ++i) {
      iovs[i] = {rx_.data() + i * rx_slot_, rx_slot_};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = ::recvmmsg(sock_->fd(), msgs.data(), static_cast<unsigned>(batch), MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EINTR) spdlog::debug("vxlan: recv: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) receive(Frame(rx_.data() + i * rx_slot_, msgs[i].msg_len), from[i]);
    done += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < batch) return;  // drained
  }
}

void VxlanPort::receive(Frame datagram, const sockaddr_storage& from) {
  auto drop = [&](uint64_t& counter, const char* why) {
    counter++;
    stats_.rx_dropped++;
    spdlog::trace("vxlan: dropping a datagram from {}: {}", from_sockaddr(from).to_string(), why);
  };
  if (!same_address(from, remote_)) return drop(vxlan_stats_.rx_bad_source, "not the remote");
  if (datagram.size() > wire::kVxlanHeaderLen + max_frame_) {
    return drop(vxlan_stats_.rx_oversize, "an inner frame above the MTU");
  }
  wire::VxlanError err{};
  auto header = wire::parse_vxlan(datagram, &err);
  if (!header) return drop(vxlan_stats_.rx_bad_header, wire::to_string(err));
  if (header->vni != config_.vni) return drop(vxlan_stats_.rx_bad_vni, "another VNI");
  Frame inner = datagram.subspan(wire::kVxlanHeaderLen);
  if (inner.size() < wire::kEthernetHeaderLen) return drop(vxlan_stats_.rx_runt, "an inner frame below 14 bytes");
  deliver(inner);
}

bool VxlanPort::transmit(Frame frame, const Offload& offload) {
  if (offload.is_gso()) return send_segments(frame, offload);
  if (offload.needs_csum()) {
    scratch_.assign(frame.begin(), frame.end());
    if (wire::complete_checksum(scratch_, offload) != wire::OffloadError::kNone) {
      vxlan_stats_.tx_bad_offload++;
      stats_.tx_dropped++;
      return false;
    }
    return send_one(scratch_);
  }
  return send_one(frame);
}

bool VxlanPort::send_one(Frame frame) {
  if (frame.size() > max_frame_ || frame.size() < wire::kEthernetHeaderLen) {
    vxlan_stats_.tx_bad_length++;
    stats_.tx_dropped++;
    return false;
  }
  iovec iov[2] = {{tx_header_.data(), tx_header_.size()},
                  {const_cast<std::byte*>(frame.data()), frame.size()}};
  msghdr msg{};
  msg.msg_name = &remote_;
  msg.msg_namelen = remote_len_;
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  if (::sendmsg(sock_->fd(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
    stats_.tx_frames++;
    stats_.tx_bytes += frame.size();
    return true;
  }
  stats_.tx_dropped++;
  if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
    vxlan_stats_.tx_again++;
  } else {
    vxlan_stats_.tx_errors++;
    spdlog::trace("vxlan: send to {}: {}", config_.remote.to_string(), std::strerror(errno));
  }
  return false;
}

bool VxlanPort::send_segments(Frame frame, const Offload& offload) {
  bool sent = true;
  size_t size = 0, count = 0;  // of the batch being built: datagram size, datagrams
  batch_.clear();
  auto append = [&](wire::Bytes seg) {
    batch_.insert(batch_.end(), tx_header_.begin(), tx_header_.end());
    batch_.insert(batch_.end(), seg.begin(), seg.end());
    count++;
  };
  auto err = wire::segment_tcp(frame, offload, scratch_, [&](wire::Bytes seg) {
    if (seg.size() > max_frame_ || seg.size() < wire::kEthernetHeaderLen) {
      vxlan_stats_.tx_bad_length++;
      stats_.tx_dropped++;
      sent = false;
      return;
    }
    const size_t datagram = wire::kVxlanHeaderLen + seg.size();
    const bool room = count < kMaxGsoSegments && batch_.size() + datagram <= kMaxGsoBytes;
    if (count > 0 && room && datagram == size) {
      append(seg);
    } else if (count > 0 && room && datagram < size) {
      append(seg);  // a shorter datagram ends a UDP GSO batch
      sent = flush_batch(size, count) && sent;
      count = 0;
    } else {
      if (count > 0) sent = flush_batch(size, count) && sent;
      count = 0;
      size = datagram;
      append(seg);
    }
  });
  if (count > 0) sent = flush_batch(size, count) && sent;
  if (err != wire::OffloadError::kNone) {
    vxlan_stats_.tx_bad_offload++;
    stats_.tx_dropped++;
    spdlog::trace("vxlan: dropping a GSO frame that cannot be cut: {}", wire::to_string(err));
    return false;
  }
  return sent;
}

bool VxlanPort::flush_batch(size_t size, size_t count) {
  const size_t total = batch_.size();
  if (count > 1 && udp_gso_) {
    iovec iov{batch_.data(), total};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
    msghdr msg{};
    msg.msg_name = &remote_;
    msg.msg_namelen = remote_len_;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = IPPROTO_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const auto segment = static_cast<uint16_t>(size);
    std::memcpy(CMSG_DATA(cm), &segment, sizeof segment);
    if (::sendmsg(sock_->fd(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
      vxlan_stats_.tx_gso_sends++;
      stats_.tx_frames += count;
      stats_.tx_bytes += total - count * wire::kVxlanHeaderLen;
      batch_.clear();
      return true;
    }
    if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
      vxlan_stats_.tx_again += count;
      stats_.tx_dropped += count;
      batch_.clear();
      return false;
    }
    // No UDP GSO here (or datagrams above the path MTU, which it does not
    // fragment): one at a time from now on.
    spdlog::debug("vxlan: UDP GSO refused ({}); sending datagrams one by one", std::strerror(errno));
    udp_gso_ = false;
  }
  bool sent = true;
  for (size_t off = 0; off < total; off += size) {
    const size_t len = std::min(size, total - off);
    sent = send_one(Frame(batch_.data() + off + wire::kVxlanHeaderLen, len - wire::kVxlanHeaderLen)) && sent;
  }
  batch_.clear();
  return sent;
}

}  // namespace slipway::link
