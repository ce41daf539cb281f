// NDP, RA, ICMPv6 echo and stateless DHCPv6 for the gateway; the theory of
// operation is in ndp_responder.h.
//
// handle() peels the frame layer by layer (Ethernet, IPv6 with its
// extension headers, ICMPv6 or UDP) and stops at the first check that
// fails, counting why. Replies are whole frames from the gateway MAC.
#include "netstack/gateway/ndp_responder.h"

#include <utility>

#include "netstack/wire/dhcp.h"
#include "netstack/wire/dhcpv6.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace slipway::gateway {

using wire::Bytes;
using wire::Dhcpv6Message;
using wire::Icmpv6Message;
using wire::Ipv6Addr;
using wire::Ipv6Packet;
using wire::MacAddr;
namespace icmpv6type = wire::icmpv6type;
namespace dhcpv6msg = wire::dhcpv6msg;
namespace dhcpv6status = wire::dhcpv6status;

namespace {

constexpr uint8_t kDefaultHopLimit = 64;

bool is_ndp_type(uint8_t type) {
  return type >= icmpv6type::kRouterSolicit && type <= icmpv6type::kRedirect;
}

// A host's source address: not unspecified, not multicast.
bool is_unicast(const Ipv6Addr& a) { return !a.is_unspecified() && !a.is_multicast(); }

}  // namespace

std::string validate(const NdpResponderConfig& c) {
  using std::chrono::seconds;
  if (c.prefix_len != 64) return "IPv6: the prefix must be a /64 (SLAAC needs 64-bit interface identifiers)";
  if (c.prefix.is_multicast() || c.prefix.is_link_local())
    return "IPv6: the prefix must be a unicast global or ULA prefix";
  // In NAT mode both sit in the prefix; in mirrored mode the prefix is the
  // host's and they stay on their own (reached through the default route).
  if (!is_unicast(c.address) || c.address.is_link_local())
    return "IPv6: gateway address " + c.address.to_string() + " is not a global or ULA unicast address";
  if (!is_unicast(c.dns) || c.dns.is_link_local())
    return "IPv6: DNS address " + c.dns.to_string() + " is not a global or ULA unicast address";
  if (c.address == c.dns) return "IPv6: the gateway and DNS addresses must differ";
  if (c.link_local && !c.link_local->is_link_local()) return "IPv6: the link-local address must be in fe80::/10";
  if (c.mtu < wire::kIpv6MinMtu) return "IPv6: MTU must be at least 1280";
  // RFC 4861 §6.2.1: MaxRtrAdvInterval 4..1800 s, AdvDefaultLifetime up to 9000 s.
  if (c.ra_interval < seconds{4} || c.ra_interval > seconds{1800}) return "IPv6: RA interval must be 4..1800 s";
  if (c.router_lifetime < seconds{0} || c.router_lifetime > seconds{9000})
    return "IPv6: router lifetime must be 0..9000 s";
  if (c.preferred_lifetime < seconds{0} || c.preferred_lifetime > c.valid_lifetime ||
      c.valid_lifetime > seconds{0xffffffffLL})
    return "IPv6: prefix lifetimes must satisfy 0 <= preferred <= valid < 2^32 s";
  for (const auto& d : c.search_domains) {
    if (!wire::is_valid_domain_name(d)) return "IPv6: invalid search domain '" + d + "'";
  }
  return {};
}

NdpResponder::NdpResponder(NdpResponderConfig config)
    : config_(std::move(config)),
      link_local_(config_.link_local.value_or(Ipv6Addr::link_local_from_mac(config_.mac))),
      duid_(wire::duid_ll(config_.mac)) {}

bool NdpResponder::is_own_address(const Ipv6Addr& addr) const {
  return addr == link_local_ || addr == config_.address || addr == config_.dns;
}

std::vector<std::vector<std::byte>> NdpResponder::handle(Bytes frame, Clock::time_point now) {
  auto eth = wire::EthernetFrame::parse(frame);
  if (!eth) {
    ++stats_.malformed;
    return {};
  }
  if (eth->ethertype() != wire::ethertype::kIpv6) {
    ++stats_.ignored;
    return {};
  }
  MacAddr eth_dst = eth->dst();
  MacAddr eth_src = eth->src();
  if (!(eth_dst == config_.mac || eth_dst.is_multicast())) {
    ++stats_.ignored;
    return {};
  }
  if (eth_src.is_multicast() || eth_src.is_zero()) {
    ++stats_.malformed;
    return {};
  }
  auto ip = Ipv6Packet::parse(eth->payload());
  if (!ip) {
    ++stats_.malformed;
    return {};
  }
  Ipv6Addr dst = ip->dst();
  bool for_us = is_own_address(dst) || dst == Ipv6Addr::all_nodes() || dst == Ipv6Addr::all_routers() ||
                dst == wire::kAllDhcpv6Servers || dst == link_local_.solicited_node_multicast() ||
                dst == config_.address.solicited_node_multicast() || dst == config_.dns.solicited_node_multicast();
  // Proxying: solicitations for any target, to its group or to itself.
  static constexpr auto kSolicitedNodes = Ipv6Addr::from_groups({0xff02, 0, 0, 0, 0, 1, 0xff00, 0});
  if (config_.proxy_neighbors && (dst.in_prefix(kSolicitedNodes, 104) || !dst.is_multicast())) for_us = true;
  if (!for_us) {
    ++stats_.ignored;
    return {};
  }
  auto ul = ip->upper_layer();
  if (!ul) {
    ++stats_.malformed;
    return {};
  }
  if (ul->is_fragment) {
    ++stats_.ignored;  // nothing we answer needs fragmenting; no reassembly here
    return {};
  }
  switch (ul->protocol) {
    case wire::ipproto::kIcmpv6:
      return on_icmpv6(*ip, eth_src, ul->data, now);
    case wire::ipproto::kUdp:
      return on_udp(*ip, eth_src, ul->data);
    default:
      ++stats_.ignored;
      return {};
  }
}

NdpResponder::Frames NdpResponder::on_icmpv6(const Ipv6Packet& ip, MacAddr eth_src, Bytes l4,
                                             Clock::time_point now) {
  auto icmp = Icmpv6Message::parse(l4);
  if (!icmp) {
    ++stats_.malformed;
    return {};
  }
  uint8_t type = icmp->type();
  if (type != icmpv6type::kNeighborSolicit && type != icmpv6type::kRouterSolicit &&
      type != icmpv6type::kEchoRequest) {
    ++stats_.ignored;  // NA, RA and redirects from the guest, MLD, errors
    return {};
  }
  // RFC 4861 §6.1.1/§7.1.1: a hop limit below 255 means the message crossed
  // a router and may be forged from off-link.
  if (is_ndp_type(type) && ip.hop_limit() != wire::kNdpHopLimit) {
    ++stats_.ndp_invalid;
    return {};
  }
  if (!icmp->checksum_ok(ip.src(), ip.dst())) {
    ++stats_.bad_checksum;
    return {};
  }
  switch (type) {
    case icmpv6type::kNeighborSolicit:
      return on_neighbor_solicit(ip, eth_src, l4);
    case icmpv6type::kRouterSolicit:
      return on_router_solicit(ip, eth_src, l4, now);
    default:
      return on_echo(ip, eth_src, l4);
  }
}

NdpResponder::Frames NdpResponder::on_neighbor_solicit(const Ipv6Packet& ip, MacAddr eth_src, Bytes l4) {
  auto ns = wire::NeighborSolicit::parse(*Icmpv6Message::parse(l4));
  Ipv6Addr src = ip.src();
  // RFC 4861 §7.1.1: the target is not multicast; a DAD probe (source ::)
  // goes to the target's solicited-node group and carries no source
  // link-layer address.
  if (!ns || ns->target.is_multicast() || src.is_multicast() ||
      (src.is_unspecified() &&
       (ip.dst() != ns->target.solicited_node_multicast() || ns->options.source_link_addr))) {
    ++stats_.ndp_invalid;
    return {};
  }
  bool own = is_own_address(ns->target);
  // Mirrored mode: every other global host on the link is reached through
  // us, so we answer for it (never for the soliciting address itself, nor a
  // DAD probe, nor link-local targets, which cannot be relayed).
  bool proxied = !own && config_.proxy_neighbors && !src.is_unspecified() && ns->target != src &&
                 !ns->target.is_link_local() && !ns->target.is_unspecified();
  if (!own && !proxied) {
    ++stats_.ignored;  // the guest's own DAD, or a neighbor we do not proxy
    return {};
  }
  ++stats_.neighbor_solicits;

  wire::NeighborAdvert na;
  na.router = own;
  na.override_flag = true;
  na.target = ns->target;
  na.options.target_link_addr = config_.mac;
  Ipv6Addr dst = src;
  MacAddr eth_dst = ns->options.source_link_addr.value_or(eth_src);
  if (src.is_unspecified()) {
    // RFC 4861 §7.2.4: answer a DAD probe to all nodes, unsolicited.
    dst = Ipv6Addr::all_nodes();
    eth_dst = dst.multicast_mac();
  } else {
    na.solicited = true;
  }
  ++stats_.neighbor_adverts_sent;
  Frames out;
  out.push_back(wire::build_ipv6_icmpv6_frame(eth_dst, config_.mac, ns->target, dst, wire::kNdpHopLimit,
                                              na.emit()));
  return out;
}

NdpResponder::Frames NdpResponder::on_router_solicit(const Ipv6Packet& ip, MacAddr eth_src, Bytes l4,
                                                     Clock::time_point now) {
  auto rs = wire::RouterSolicit::parse(*Icmpv6Message::parse(l4));
  Ipv6Addr src = ip.src();
  // RFC 4861 §6.1.1: no source link-layer address from source ::.
  if (!rs || src.is_multicast() || (src.is_unspecified() && rs->options.source_link_addr)) {
    ++stats_.ndp_invalid;
    return {};
  }
  ++stats_.router_solicits;
  Frames out;
  if (src.is_unspecified()) {
    // RFC 4861 §6.2.6: multicast answers at most every MIN_DELAY_BETWEEN_RAS.
    if (last_multicast_ra_ && now - *last_multicast_ra_ < kMinDelayBetweenRas) {
      ++stats_.rs_rate_limited;
      return {};
    }
    last_multicast_ra_ = now;
    out.push_back(unsolicited_ra());
  } else {
    out.push_back(ra_frame(rs->options.source_link_addr.value_or(eth_src), src));
  }
  ++stats_.router_adverts_sent;
  return out;
}

NdpResponder::Frames NdpResponder::on_echo(const Ipv6Packet& ip, MacAddr eth_src, Bytes l4) {
  auto icmp = Icmpv6Message::parse(l4);
  Ipv6Addr src = ip.src();
  Ipv6Addr dst = ip.dst();
  if (!is_own_address(dst)) {
    ++stats_.ignored;  // multicast echo is not answered
    return {};
  }
  if (!is_unicast(src)) {
    ++stats_.malformed;
    return {};
  }
  ++stats_.echo_requests;
  Frames out;
  out.push_back(wire::build_ipv6_icmpv6_frame(eth_src, config_.mac, dst, src, kDefaultHopLimit,
                                              icmpv6type::kEchoReply, 0, icmp->rest(), icmp->payload()));
  return out;
}

NdpResponder::Frames NdpResponder::on_udp(const Ipv6Packet& ip, MacAddr eth_src, Bytes l4) {
  auto udp = wire::UdpDatagram::parse(l4);
  if (!udp) {
    ++stats_.malformed;
    return {};
  }
  Ipv6Addr src = ip.src();
  Ipv6Addr dst = ip.dst();
  if (udp->dst_port() != wire::kDhcpv6ServerPort || !(dst == wire::kAllDhcpv6Servers || is_own_address(dst))) {
    ++stats_.ignored;
    return {};
  }
  if (!wire::udp_v6_checksum_ok(src, dst, l4)) {
    ++stats_.bad_checksum;
    return {};
  }
  if (!is_unicast(src)) {
    ++stats_.malformed;
    return {};
  }
  auto msg = Dhcpv6Message::parse(udp->payload());
  if (!msg) {
    ++stats_.dhcpv6_invalid;
    return {};
  }

  // RFC 8415 §16: which identifiers each message must (not) carry. A
  // message naming another server is that server's business.
  bool has_client = !msg->client_id.empty();
  bool has_server = !msg->server_id.empty();
  if (has_server && msg->server_id != duid_) {
    bool must_not = msg->msg_type == dhcpv6msg::kSolicit || msg->msg_type == dhcpv6msg::kRebind;
    if (must_not) {
      ++stats_.dhcpv6_invalid;
    } else {
      ++stats_.ignored;
    }
    return {};
  }
  Dhcpv6Message reply;
  reply.msg_type = dhcpv6msg::kReply;
  auto no_addresses_in_ias = [&](uint16_t code) {
    for (const auto& ia : msg->ia_na) {
      reply.ia_na.push_back(wire::Dhcpv6IaNa{ia.iaid, 0, 0, wire::Dhcpv6Status{code, "no addresses here"}});
    }
    if (msg->ia_na.empty()) reply.status = wire::Dhcpv6Status{code, "no addresses here"};
  };
  bool valid = true;
  switch (msg->msg_type) {
    case dhcpv6msg::kInformationRequest:
      valid = msg->ia_na.empty();  // §16.12
      break;
    case dhcpv6msg::kSolicit:
      valid = has_client && !has_server;
      // §18.3.9: a server that will assign nothing says NoAddrsAvail only.
      reply.msg_type = msg->rapid_commit ? dhcpv6msg::kReply : dhcpv6msg::kAdvertise;
      reply.rapid_commit = msg->rapid_commit;
      reply.status = wire::Dhcpv6Status{dhcpv6status::kNoAddrsAvail, "no addresses here"};
      break;
    case dhcpv6msg::kRequest:
      valid = has_client && has_server;
      no_addresses_in_ias(dhcpv6status::kNoAddrsAvail);
      break;
    case dhcpv6msg::kRenew:
      valid = has_client && has_server;
      no_addresses_in_ias(dhcpv6status::kNoBinding);
      break;
    case dhcpv6msg::kRebind:
      valid = has_client && !has_server;
      no_addresses_in_ias(dhcpv6status::kNoBinding);
      break;
    case dhcpv6msg::kRelease:
      valid = has_client && has_server;
      reply.status = wire::Dhcpv6Status{dhcpv6status::kSuccess, "released"};
      break;
    case dhcpv6msg::kConfirm:
    case dhcpv6msg::kDecline:
      // §18.3.3: with no address information, Confirm gets no reply; we
      // assigned nothing that could be declined.
      ++stats_.ignored;
      return {};
    default:
      valid = false;  // server-to-client types
      break;
  }
  if (!valid) {
    ++stats_.dhcpv6_invalid;
    return {};
  }
  ++stats_.dhcpv6_requests;
  reply.transaction_id = msg->transaction_id;
  reply.client_id = msg->client_id;
  reply.server_id = duid_;
  if (msg->msg_type != dhcpv6msg::kRelease) {
    reply.dns_servers = {config_.dns};
    reply.domain_list = config_.search_domains;
  }
  Ipv6Addr from = is_own_address(dst) ? dst : link_local_;
  ++stats_.dhcpv6_replies;
  Frames out;
  out.push_back(wire::build_ipv6_udp_frame(eth_src, config_.mac, from, wire::kDhcpv6ServerPort, src,
                                           udp->src_port(), reply.emit(), kDefaultHopLimit));
  return out;
}

std::vector<std::byte> NdpResponder::router_advert_message() const {
  auto dns_lifetime = static_cast<uint32_t>(3 * config_.ra_interval.count());
  wire::RouterAdvert ra;
  ra.cur_hop_limit = kDefaultHopLimit;
  ra.managed = false;
  ra.other = true;
  ra.router_lifetime = static_cast<uint16_t>(config_.router_lifetime.count());
  ra.options.source_link_addr = config_.mac;
  ra.options.mtu = config_.mtu;
  wire::PrefixInfo pi;
  pi.prefix = config_.prefix;
  pi.prefix_len = static_cast<uint8_t>(config_.prefix_len);
  pi.on_link = true;
  pi.autonomous = true;
  pi.valid_lifetime = static_cast<uint32_t>(config_.valid_lifetime.count());
  pi.preferred_lifetime = static_cast<uint32_t>(config_.preferred_lifetime.count());
  ra.options.prefixes.push_back(pi);
  ra.options.rdnss.push_back(wire::RdnssOption{dns_lifetime, {config_.dns}});
  if (!config_.search_domains.empty())
    ra.options.dnssl.push_back(wire::DnsslOption{dns_lifetime, config_.search_domains});
  return ra.emit();
}

std::vector<std::byte> NdpResponder::ra_frame(MacAddr eth_dst, const Ipv6Addr& dst) const {
  // RFC 4861 §4.2: an RA comes from the router's link-local address.
  return wire::build_ipv6_icmpv6_frame(eth_dst, config_.mac, link_local_, dst, wire::kNdpHopLimit,
                                       router_advert_message());
}

std::vector<std::byte> NdpResponder::unsolicited_ra() const {
  Ipv6Addr all = Ipv6Addr::all_nodes();
  return ra_frame(all.multicast_mac(), all);
}

}  // namespace slipway::gateway
