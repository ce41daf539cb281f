#include "netstack/gateway/gateway.h"

#include <spdlog/spdlog.h>

#include "netstack/engine/icmp_relay.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/udp.h"

namespace slipway::gateway {

namespace {

// False for a TCP or UDP packet (IPv4, or IPv6 without extension headers)
// whose checksum is wrong; true for anything else.
bool l4_checksum_ok(const wire::EthernetFrame& eth) {
  constexpr uint8_t kTcp = 6, kUdp = 17;
  if (eth.ethertype() == wire::ethertype::kIpv4) {
    auto ip = wire::Ipv4Packet::parse(eth.payload());
    if (!ip || ip->is_fragment()) return true;
    if (ip->protocol() == kTcp) return wire::tcp_checksum_ok(ip->src(), ip->dst(), ip->payload());
    if (ip->protocol() == kUdp) return wire::udp_checksum_ok(ip->src(), ip->dst(), ip->payload());
    return true;
  }
  if (eth.ethertype() == wire::ethertype::kIpv6) {
    auto ip = wire::Ipv6Packet::parse(eth.payload());
    if (!ip) return true;
    uint8_t next = static_cast<uint8_t>(ip->bytes()[6]);
    if (next != kTcp && next != kUdp) return true;
    uint32_t sum = wire::pseudo_header_sum_v6(ip->src(), ip->dst(), next, static_cast<uint32_t>(ip->payload().size()));
    return wire::checksum_fold(wire::checksum_add(ip->payload(), sum)) == 0;
  }
  return true;
}

constexpr uint16_t kDhcpServerPort = 67;
constexpr uint16_t kDhcpClientPort = 68;
// Relayed echo replies leave the gateway with a fresh hop limit, as IPv4's
// leave with build_ipv4_icmp_frame's TTL 64.
constexpr uint8_t kEchoReplyHopLimit = 64;
}  // namespace

DhcpServerConfig dhcp_config_for(const GatewayConfig& config) {
  DhcpServerConfig d;
  const auto& nat = config.nat;
  uint32_t mask = wire::prefix_to_mask(nat.prefix);
  d.server_address = nat.gateway;
  d.subnet = wire::Ipv4Addr{nat.guest.value & mask};
  d.prefix = nat.prefix;
  d.router = nat.gateway;
  d.dns = {nat.dns};
  d.pool_start = nat.guest;
  // The pool runs from the guest address to the last host address.
  d.pool_end = wire::Ipv4Addr{(nat.guest.value & mask) | (~mask - 1)};
  if (d.pool_end.value < d.pool_start.value) d.pool_end = d.pool_start;
  d.reserved = {nat.gateway, nat.dns};
  d.mtu = config.mtu;
  d.lease_time = config.lease_time;
  d.domain_name = config.domain_name;
  d.search_domains = config.search_domains;
  d.statics = config.dhcp_statics;
  if (!config.boot_file.empty()) {
    d.next_server = nat.gateway;
    d.boot_file = config.boot_file;
  }
  return d;
}

NdpResponderConfig ndp_config_for(const GatewayConfig& config) {
  NdpResponderConfig n;
  const auto& nat = config.nat;
  n.mac = config.mac;
  n.link_local = config.link_local6;
  n.address = nat.gateway6;
  n.dns = nat.dns6;
  n.prefix = nat.prefix6;
  n.prefix_len = nat.prefix6_len;
  n.mtu = config.mtu;
  n.search_domains = config.search_domains;
  n.ra_interval = config.ra_interval;
  n.proxy_neighbors = config.proxy_neighbors;
  return n;
}

Gateway::Gateway(uv_loop_t* loop, const sys::Clock& clock, GatewayConfig config, engine::Engine& engine,
                 engine::IcmpEchoRelay* icmp)
    : clock_(clock), config_(std::move(config)), dhcp_(dhcp_config_for(config_)), engine_(engine), icmp_(icmp) {
  set_capabilities(link::Capabilities{.csum = true, .tso = true});
  if (config_.nat.ipv6) {
    auto nc = ndp_config_for(config_);
    if (auto err = validate(nc); !err.empty()) throw std::invalid_argument("IPv6 settings: " + err);
    ndp_ = std::make_unique<NdpResponder>(nc);
    start_router_adverts(loop);
  }
  if (!config_.tftp_root.empty()) {
    TftpServerConfig tc;
    tc.root = config_.tftp_root;
    tc.mtu = config_.mtu;
    tftp_ = std::make_unique<TftpServer>(
        tc, [this](const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port, wire::Bytes payload) {
          send_tftp(guest, guest_port, server_port, payload);
        });
    tftp_timer_ = new uv_timer_t;
    uv_timer_init(loop, tftp_timer_);
    tftp_timer_->data = this;
  }
}

Gateway::~Gateway() {
  for (uv_timer_t* t : {ra_timer_, tftp_timer_}) {
    if (t == nullptr) continue;
    t->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

bool Gateway::to_tftp(const engine::IpAddr& src, wire::Bytes udp_bytes, uint64_t now) {
  auto udp = wire::UdpDatagram::parse(udp_bytes);
  if (!udp || !tftp_->owns(src, udp->src_port(), udp->dst_port())) return false;
  tftp_->handle(src, udp->src_port(), udp->dst_port(), udp->payload(), now);
  arm_tftp_timer();
  return true;
}

void Gateway::send_tftp(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port, wire::Bytes payload) {
  if (guest.v6) {
    deliver_frame(wire::build_ipv6_udp_frame({}, {}, config_.nat.gateway6, server_port, guest.v6addr, guest_port,
                                             payload));
  } else {
    deliver_frame(
        wire::build_ipv4_udp_frame({}, {}, config_.nat.gateway, server_port, guest.v4, guest_port, payload));
  }
}

void Gateway::arm_tftp_timer() {
  auto next = tftp_->next_deadline();
  if (!next) {
    uv_timer_stop(tftp_timer_);
    return;
  }
  const uint64_t now = clock_.now_ms();
  uv_timer_start(
      tftp_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Gateway*>(t->data);
        if (self == nullptr) return;
        self->tftp_->poll(self->clock_.now_ms());
        self->arm_tftp_timer();
      },
      *next > now ? *next - now : 0, 0);
}

void Gateway::start_router_adverts(uv_loop_t* loop) {
  ra_timer_ = new uv_timer_t;
  uv_timer_init(loop, ra_timer_);
  ra_timer_->data = this;
  // The first at once (a guest that already solicited before we started
  // learns the prefix), then every ra_interval.
  auto interval = static_cast<uint64_t>(std::chrono::milliseconds(config_.ra_interval).count());
  uv_timer_start(
      ra_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Gateway*>(t->data);
        if (self == nullptr) return;
        self->stats_.frames_out++;
        self->deliver(self->ndp_->unsolicited_ra());
      },
      0, interval);
}

void Gateway::echo_reply(const engine::IcmpEchoReply& r) {
  // From the address the guest pinged (::1 and 127.0.0.1 appear as the gateway).
  engine::IpAddr from = config_.nat.guest_source(r.from);
  const uint32_t rest = (uint32_t{r.id} << 16) | r.seq;
  if (r.guest.v6) {
    deliver_frame(wire::build_ipv6_icmpv6_frame({}, {}, from.v6addr, r.guest.v6addr, kEchoReplyHopLimit,
                                                wire::icmpv6type::kEchoReply, 0, rest, r.payload));
  } else {
    deliver_frame(wire::build_ipv4_icmp_frame({}, {}, from.v4, r.guest.v4, wire::icmptype::kEchoReply, 0, rest,
                                              r.payload));
  }
}

void Gateway::echo_error(const engine::IcmpError& e) {
  // From the gateway, quoting a reconstruction of the guest's echo request
  // (its header and the echo's first 8 bytes; the relay keeps no payload) as
  // the guest addressed it.
  engine::IpAddr dst = config_.nat.guest_source(e.dst);
  const uint32_t rest = (uint32_t{e.id} << 16) | e.seq;
  if (e.guest.v6) {
    std::vector<std::byte> req(wire::Ipv6Header::kLen + wire::Icmpv6Message::kHeaderLen);
    wire::Ipv6Header h;
    h.src = e.guest.v6addr;
    h.dst = dst.v6addr;
    h.next_header = wire::ipproto::kIcmpv6;
    h.payload_len = wire::Icmpv6Message::kHeaderLen;
    h.emit(req);
    wire::emit_icmpv6(wire::MutBytes(req).subspan(wire::Ipv6Header::kLen), h.src, h.dst,
                      wire::icmpv6type::kEchoRequest, 0, rest, {});
    auto quoted = wire::Ipv6Packet::parse(req);
    if (!quoted) return;
    deliver_frame(wire::build_ipv6_icmpv6_error_frame({}, {}, config_.nat.gateway6, e.type, e.code, *quoted));
    return;
  }
  std::vector<std::byte> req(wire::Ipv4Header::kLen + wire::IcmpMessage::kHeaderLen);
  wire::Ipv4Header h;
  h.src = e.guest.v4;
  h.dst = dst.v4;
  h.protocol = wire::ipproto::kIcmp;
  h.payload_len = wire::IcmpMessage::kHeaderLen;
  h.emit(req);
  wire::emit_icmp(wire::MutBytes(req).subspan(wire::Ipv4Header::kLen), wire::icmptype::kEchoRequest, 0, rest, {});
  auto quoted = wire::Ipv4Packet::parse(req);
  if (!quoted) return;
  deliver_frame(wire::build_ipv4_icmp_error_frame({}, {}, config_.nat.gateway, e.type, e.code, *quoted));
}

bool Gateway::transmit(link::Frame frame, const link::Offload& offload) {
  stats_.frames_in++;
  const uint64_t now = clock_.now_ms();
  auto eth = wire::EthernetFrame::parse(frame);
  if (!eth) {
    stats_.dropped_malformed++;
    return true;
  }
  if (eth->dst() != config_.mac && !eth->dst().is_multicast()) {
    stats_.dropped_not_for_us++;
    return true;
  }
  if (config_.verify_checksums && offload.plain() && !l4_checksum_ok(*eth)) {
    stats_.dropped_bad_checksum++;
    return true;
  }
  switch (eth->ethertype()) {
    case wire::ethertype::kArp:
      on_arp(*eth);
      break;
    case wire::ethertype::kIpv4:
      on_ipv4(*eth, now);
      break;
    case wire::ethertype::kIpv6:
      on_ipv6(*eth, frame, offload, now);
      break;
    default:
      stats_.dropped_unsupported++;
      break;
  }
  return true;
}

bool Gateway::is_guest_source(wire::Ipv4Addr src) const {
  const auto& nat = config_.nat;
  if (!src.in_subnet(nat.guest, nat.prefix)) return false;
  if (src == nat.gateway || src == nat.dns) return false;
  uint32_t host = src.value & ~wire::prefix_to_mask(nat.prefix);
  return host != 0 && host != (~wire::prefix_to_mask(nat.prefix));
}

bool Gateway::is_guest_source(const wire::Ipv6Addr& src) const {
  const auto& nat = config_.nat;
  if (src.is_link_local()) return ndp_ == nullptr || !ndp_->is_own_address(src);
  if (!src.in_prefix(nat.prefix6, nat.prefix6_len)) return false;
  if (src == nat.gateway6 || src == nat.dns6) return false;
  // The subnet-router anycast address (the prefix itself).
  return src != nat.prefix6;
}

void Gateway::learn(const engine::IpAddr& ip, wire::MacAddr mac) {
  if (mac.is_multicast() || mac.is_zero() || !is_guest_source(ip)) return;
  auto it = neighbors_.find(ip);
  if (it == neighbors_.end() && neighbors_.size() >= kMaxNeighbors) {
    // Evict the least recently seen entry.
    auto oldest = neighbors_.begin();
    for (auto i = neighbors_.begin(); i != neighbors_.end(); ++i)
      if (i->second.seen < oldest->second.seen) oldest = i;
    neighbors_.erase(oldest);
  }
  neighbors_[ip] = Neighbor{mac, ++learn_count_};
  auto p = pending_.find(ip);
  if (p != pending_.end()) {
    auto frames = std::move(p->second.frames);
    pending_.erase(p);
    for (auto& f : frames) to_guest(wire::MutBytes(f.bytes.data(), f.bytes.size()), f.offload);
  }
}

void Gateway::on_arp(const wire::EthernetFrame& eth) {
  auto arp = wire::ArpPacket::parse(eth.payload());
  if (!arp) {
    stats_.dropped_malformed++;
    return;
  }
  learn(arp->sender_ip, arp->sender_mac);
  if (arp->op != wire::ArpPacket::kRequest) return;
  const auto& nat = config_.nat;
  bool own = arp->target_ip == nat.gateway || arp->target_ip == nat.dns || nat.is_guest_forward_address(arp->target_ip);
  // Proxy ARP: not for probes (sender 0.0.0.0), announcements (target is
  // the sender) or the guest's own address.
  bool proxied = config_.proxy_neighbors && !arp->sender_ip.is_unspecified() && arp->target_ip != arp->sender_ip &&
                 arp->target_ip != nat.guest && arp->target_ip.in_subnet(nat.guest, nat.prefix);
  if (!own && !proxied) return;
  wire::ArpPacket reply;
  reply.op = wire::ArpPacket::kReply;
  reply.sender_mac = config_.mac;
  reply.sender_ip = arp->target_ip;
  reply.target_mac = arp->sender_mac;
  reply.target_ip = arp->sender_ip;
  stats_.arp_replies++;
  stats_.frames_out++;
  auto frame = wire::build_arp_frame(arp->sender_mac, config_.mac, reply);
  deliver(frame);
}

void Gateway::on_ipv4(const wire::EthernetFrame& eth, uint64_t now) {
  auto ip = wire::Ipv4Packet::parse(eth.payload());
  if (!ip) {
    stats_.dropped_malformed++;
    return;
  }
  // DHCP comes from 0.0.0.0 before the guest has an address.
  if (ip->protocol() == wire::ipproto::kUdp && !ip->is_fragment()) {
    auto udp = wire::UdpDatagram::parse(ip->payload());
    if (udp && udp->dst_port() == kDhcpServerPort && udp->src_port() == kDhcpClientPort &&
        (ip->dst().is_broadcast() || ip->dst() == config_.nat.gateway)) {
      on_dhcp(eth, udp->payload(), now);
      return;
    }
  }
  if (!is_guest_source(ip->src())) {
    stats_.dropped_bad_source++;
    spdlog::trace("gateway: dropping IPv4 from {}", ip->src().to_string());
    return;
  }
  learn(ip->src(), eth.src());
  if (tftp_ && ip->protocol() == wire::ipproto::kUdp && ip->dst() == config_.nat.gateway && !ip->is_fragment() &&
      to_tftp(ip->src(), ip->payload(), now))
    return;
  switch (ip->protocol()) {
    case wire::ipproto::kIcmp:
      on_icmp(*ip, now);
      break;
    case wire::ipproto::kTcp:
    case wire::ipproto::kUdp:
      engine_.input(*ip);
      break;
    default:
      stats_.dropped_unsupported++;
      break;
  }
}

void Gateway::on_ipv6(const wire::EthernetFrame& eth, wire::Bytes frame, const wire::Offload& offload,
                      uint64_t now) {
  if (ndp_ == nullptr) {
    stats_.dropped_unsupported++;
    return;
  }
  auto ip = wire::Ipv6Packet::parse(eth.payload());
  auto ul = ip ? ip->upper_layer() : std::nullopt;
  if (!ul) {
    stats_.dropped_malformed++;
    return;
  }
  // Before any source check: NDP comes from link-local addresses and from
  // :: (duplicate address detection), DHCPv6 from link-local ones.
  if (!ul->is_fragment && ul->protocol == wire::ipproto::kIcmpv6) {
    auto icmp = wire::Icmpv6Message::parse(ul->data);
    if (icmp && icmp->type() == wire::icmpv6type::kEchoRequest && !ip->dst().is_multicast() &&
        !ndp_->is_own_address(ip->dst())) {
      on_icmpv6_echo(eth, *ip, *icmp, now);  // to another host: relayed or refused
      return;
    }
    if (icmp && (icmp->type() == wire::icmpv6type::kNeighborAdvert || icmp->type() == wire::icmpv6type::kNeighborSolicit))
      learn(ip->src(), eth.src());
    deliver_frames(ndp_->handle(frame, sys::Clock::TimePoint(std::chrono::milliseconds(now))));
    return;
  }
  if (!ul->is_fragment && ul->protocol == wire::ipproto::kUdp) {
    auto udp = wire::UdpDatagram::parse(ul->data);
    if (udp && udp->dst_port() == 547) {
      const auto at = sys::Clock::TimePoint(std::chrono::milliseconds(now));
      if (!offload.needs_csum()) {
        deliver_frames(ndp_->handle(frame, at));
        return;
      }
      // The guest's kernel left the checksum to us (checksum offload).
      std::vector<std::byte> whole(frame.begin(), frame.end());
      if (wire::complete_checksum(whole, offload) != wire::OffloadError::kNone) {
        stats_.dropped_malformed++;
        return;
      }
      deliver_frames(ndp_->handle(whole, at));
      return;
    }
  }
  if (!is_guest_source(ip->src()) || ip->src().is_link_local()) {
    stats_.dropped_bad_source++;
    spdlog::trace("gateway: dropping IPv6 from {}", ip->src().to_string());
    return;
  }
  learn(ip->src(), eth.src());
  if (tftp_ && ul->protocol == wire::ipproto::kUdp && ip->dst() == config_.nat.gateway6 && !ul->is_fragment &&
      to_tftp(ip->src(), ul->data, now))
    return;
  switch (ul->protocol) {
    case wire::ipproto::kTcp:
    case wire::ipproto::kUdp:
      engine_.input6(*ip);
      break;
    default:
      stats_.dropped_unsupported++;
      break;
  }
}

void Gateway::on_icmp(const wire::Ipv4Packet& ip, uint64_t now) {
  if (ip.is_fragment()) {
    stats_.dropped_unsupported++;
    return;
  }
  auto icmp = wire::IcmpMessage::parse(ip.payload());
  if (!icmp || !icmp->checksum_ok()) {
    stats_.dropped_malformed++;
    return;
  }
  if (icmp->type() != wire::icmptype::kEchoRequest || icmp->code() != 0) {
    stats_.dropped_unsupported++;  // errors about our own packets, and the rest
    return;
  }
  const auto& nat = config_.nat;
  if (ip.dst() == nat.gateway || ip.dst() == nat.dns) {
    stats_.icmp_echo_local++;
    deliver_frame(wire::build_ipv4_icmp_frame({}, {}, ip.dst(), ip.src(), wire::icmptype::kEchoReply, 0, icmp->rest(),
                                              icmp->payload()));
    return;
  }
  auto host = nat.host_destination(ip.dst());
  if (!host) {
    stats_.icmp_echo_failed++;
    return;
  }
  if (!nat.egress.allows(ip.dst(), *host, engine::EgressPolicy::Proto::kIcmp, 0)) {
    stats_.icmp_echo_denied++;
    deliver_frame(wire::build_ipv4_icmp_error_frame({}, {}, nat.gateway, wire::icmptype::kDestUnreachable,
                                                    wire::icmpcode::kAdminProhibited, ip));
    return;
  }
  relay_echo(ip.src(), *host, icmp->echo_id(), icmp->echo_seq(), icmp->payload(), ip.ttl(), now);
}

void Gateway::relay_echo(const engine::IpAddr& src, const engine::IpAddr& host, uint16_t id, uint16_t seq,
                         wire::Bytes payload, uint8_t hop_limit, uint64_t now) {
  if (icmp_ == nullptr) {
    stats_.icmp_echo_failed++;
    return;
  }
  icmp_->expire(now);
  if (icmp_->send_echo(src, host, id, seq, payload, hop_limit, now)) {
    stats_.icmp_echo_relayed++;
  } else {
    stats_.icmp_echo_failed++;
  }
}

void Gateway::on_icmpv6_echo(const wire::EthernetFrame& eth, const wire::Ipv6Packet& ip,
                             const wire::Icmpv6Message& icmp, uint64_t now) {
  if (!is_guest_source(ip.src())) {
    stats_.dropped_bad_source++;
    spdlog::trace("gateway: dropping ICMPv6 echo from {}", ip.src().to_string());
    return;
  }
  if (icmp.code() != 0 || !icmp.checksum_ok(ip.src(), ip.dst())) {
    stats_.dropped_malformed++;
    return;
  }
  learn(ip.src(), eth.src());
  const auto& nat = config_.nat;
  auto host = nat.host_destination(ip.dst());
  // Refused destinations, and any echo from a link-local source (which may
  // not leave the link, RFC 4291 §2.5.6), are answered at once.
  const bool denied = host && !nat.egress.allows(ip.dst(), *host, engine::EgressPolicy::Proto::kIcmp, 0);
  if (!host || denied || ip.src().is_link_local()) {
    stats_.icmpv6_echo_refused++;
    if (denied) stats_.icmp_echo_denied++;
    uint8_t code = host && !denied ? wire::icmpv6code::kBeyondScope : wire::icmpv6code::kAdminProhibited;
    if (wire::icmpv6_error_allowed(ip, eth.dst().is_multicast(), wire::icmpv6type::kDestUnreachable, code)) {
      deliver_frame(wire::build_ipv6_icmpv6_error_frame({}, {}, nat.gateway6, wire::icmpv6type::kDestUnreachable,
                                                        code, ip));
    }
    return;
  }
  relay_echo(ip.src(), *host, icmp.echo_id(), icmp.echo_seq(), icmp.payload(), ip.hop_limit(), now);
}

std::optional<wire::Ipv4Addr> Gateway::bind_lease(wire::MacAddr mac, const std::string& name) {
  const uint64_t before = dhcp_.generation();
  auto addr = dhcp_.bind(mac, name, clock_.now());
  if (dhcp_.generation() != before && lease_listener_) lease_listener_();
  return addr;
}

void Gateway::on_dhcp(const wire::EthernetFrame& eth, wire::Bytes udp_payload, uint64_t now) {
  const uint64_t before = dhcp_.generation();
  auto reply = dhcp_.handle(udp_payload, eth.src(), sys::Clock::TimePoint(std::chrono::milliseconds(now)));
  if (dhcp_.generation() != before && lease_listener_) lease_listener_();
  if (!reply) return;
  if (!reply->dst_ip.is_broadcast()) learn(reply->dst_ip, reply->dst_mac);
  stats_.frames_out++;
  auto frame = wire::build_ipv4_udp_frame(reply->dst_mac, config_.mac, config_.nat.gateway, kDhcpServerPort,
                                          reply->dst_ip, kDhcpClientPort, reply->payload);
  deliver(frame);
}

void Gateway::deliver_frame(std::vector<std::byte> frame) { to_guest(wire::MutBytes(frame.data(), frame.size())); }

void Gateway::deliver_frames(std::vector<std::vector<std::byte>> frames) {
  // NdpResponder's frames are complete, addressed to the solicitor's MAC.
  for (auto& f : frames) {
    stats_.frames_out++;
    deliver(f);
  }
}

void Gateway::to_guest(wire::MutBytes frame, const wire::Offload& offload) {
  constexpr size_t kL3 = wire::kEthernetHeaderLen;
  if (frame.size() < kL3 + wire::Ipv4Header::kLen) return;
  bool v6 = (static_cast<uint8_t>(frame[kL3]) >> 4) == 6;
  engine::IpAddr dst;
  wire::MacAddr mac;
  if (v6) {
    if (frame.size() < kL3 + wire::Ipv6Header::kLen) return;
    dst = wire::Ipv6Addr::load(frame, kL3 + 24);
  } else {
    dst = wire::Ipv4Addr::load(frame, kL3 + 16);
  }
  if (!v6 && dst.v4.is_broadcast()) {
    mac = wire::MacAddr::broadcast();
  } else if (v6 && dst.v6addr.is_multicast()) {
    mac = dst.v6addr.multicast_mac();
  } else {
    auto it = neighbors_.find(dst);
    if (it == neighbors_.end()) {
      hold_for_neighbor(dst, frame, offload, clock_.now_ms());
      return;
    }
    mac = it->second.mac;
  }
  wire::emit_ethernet_header(frame, mac, config_.mac, v6 ? wire::ethertype::kIpv6 : wire::ethertype::kIpv4);
  stats_.frames_out++;
  deliver(frame, offload);
}

void Gateway::hold_for_neighbor(const engine::IpAddr& dst, wire::MutBytes frame, const wire::Offload& offload,
                                uint64_t now) {
  if (!is_guest_source(dst)) {
    stats_.dropped_no_neighbor++;
    return;
  }
  std::erase_if(pending_, [now](const auto& kv) { return now - kv.second.since > kPendingTimeoutMs; });
  auto it = pending_.find(dst);
  if (it == pending_.end()) {
    if (pending_.size() >= kMaxPendingAddresses) {
      stats_.dropped_no_neighbor++;
      return;
    }
    it = pending_.emplace(dst, Pending{now, {}}).first;
    request_neighbor(dst);
  }
  if (it->second.frames.size() >= kMaxPendingFrames) {
    stats_.dropped_no_neighbor++;
    return;
  }
  it->second.frames.push_back(HeldFrame{{frame.begin(), frame.end()}, offload});
}

void Gateway::request_neighbor(const engine::IpAddr& ip) {
  if (!is_guest_source(ip)) return;
  std::vector<std::byte> frame;
  if (ip.v6) {
    if (ndp_ == nullptr) return;
    // RFC 4861 §7.2.2: to the solicited-node group, with our link-layer
    // address; from our link-local address.
    wire::NeighborSolicit ns;
    ns.target = ip.v6addr;
    ns.options.source_link_addr = config_.mac;
    auto group = ip.v6addr.solicited_node_multicast();
    frame = wire::build_ipv6_icmpv6_frame(group.multicast_mac(), config_.mac, ndp_->link_local(), group,
                                          wire::kNdpHopLimit, ns.emit());
    stats_.neighbor_solicits_sent++;
  } else {
    wire::ArpPacket req;
    req.op = wire::ArpPacket::kRequest;
    req.sender_mac = config_.mac;
    req.sender_ip = config_.nat.gateway;
    req.target_ip = ip.v4;
    frame = wire::build_arp_frame(wire::MacAddr::broadcast(), config_.mac, req);
  }
  stats_.frames_out++;
  deliver(frame);
}

}  // namespace slipway::gateway
