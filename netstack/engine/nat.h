// NAT address policy: which host address a guest destination reaches, and
// which address the guest sees for a host-side peer.
//
// The guest may talk to any address, with these exceptions, checked here so
// that no flow can reach a host address the configuration does not allow:
//   - with restrict_outbound (--restrict) every destination is refused: the
//     guest reaches only what the gateway serves itself (DHCP, DNS, NDP,
//     ping to the gateway) and answers within inbound (published) flows;
//   - the gateway address (IPv4 and IPv6) maps to the host's loopback
//     (127.0.0.1, ::1) when host_loopback is on, and is refused when it is off;
//   - the DNS addresses are served by the gateway itself (never relayed);
//   - a guest forward's ADDR:PORT (guest_forward.h) reaches its host target,
//     with restrict_outbound too (it is a gateway service); the engines ask
//     guest_forward() before host_destination();
//   - IPv4 0.0.0.0/8, 127.0.0.0/8, multicast, 240.0.0.0/4 and the guest
//     subnet's broadcast are refused: on the host they would mean the host
//     itself or every host;
//   - IPv6 ::, ::1, multicast, link-local, IPv4-mapped and -compatible
//     addresses (which would reach IPv4 loopback through the back door) and
//     the guest's own prefix (in NAT mode) are refused.
// The egress policy (`egress`) then says which of the rest the guest may
// reach; unlike the refusals here, it depends on the port.
#pragma once

#include <optional>
#include <vector>

#include "netstack/engine/guest_forward.h"

#include "netstack/engine/egress_policy.h"
#include "netstack/engine/ip_addr.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::engine {

struct NatPolicy {
  wire::Ipv4Addr gateway{10, 0, 2, 2};
  wire::Ipv4Addr dns{10, 0, 2, 3};
  wire::Ipv4Addr guest{10, 0, 2, 15};
  unsigned prefix = 24;
  bool host_loopback = true;
  bool ipv6 = false;
  wire::Ipv6Addr prefix6 = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0});
  unsigned prefix6_len = 64;
  wire::Ipv6Addr gateway6 = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 2});
  wire::Ipv6Addr dns6 = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 3});
  // NAT mode: prefix6 is the guest's private link, never a host destination.
  // Mirrored mode: it is the host's real link, whose other hosts are reached.
  bool refuse_prefix6 = true;
  bool restrict_outbound = false;  // --restrict: no destination at all
  std::vector<GuestForward> guest_forwards;  // --guest-forward
  // What the guest may reach beyond the refusals above (--allow, --deny):
  // checked where a flow would open a host socket, a denial answered with
  // ICMP administratively prohibited (egress_policy.h).
  EgressPolicy egress;

  static constexpr wire::Ipv4Addr kHostLoopback{127, 0, 0, 1};
  static constexpr wire::Ipv6Addr kHostLoopback6 = wire::Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0, 1});

  // The host-side address for a guest destination, or nullopt if refused.
  std::optional<wire::Ipv4Addr> host_destination(wire::Ipv4Addr dst) const {
    if (restrict_outbound) return std::nullopt;
    if (dst == gateway) {
      if (host_loopback) return kHostLoopback;
      return std::nullopt;
    }
    if (dst == dns) return std::nullopt;
    uint8_t first = static_cast<uint8_t>(dst.value >> 24);
    if (first == 0 || first == 127 || first >= 224) return std::nullopt;
    // The subnet's broadcast address.
    uint32_t mask = wire::prefix_to_mask(prefix);
    if (prefix < 31 && (dst.value & ~mask) == ~mask && dst.in_subnet(guest, prefix))
      return std::nullopt;
    return dst;
  }

  std::optional<wire::Ipv6Addr> host_destination(const wire::Ipv6Addr& dst) const {
    if (!ipv6 || restrict_outbound) return std::nullopt;
    if (dst == gateway6) {
      if (host_loopback) return kHostLoopback6;
      return std::nullopt;
    }
    if (dst == dns6 || dst.is_unspecified() || dst.is_loopback() || dst.is_multicast() || dst.is_link_local())
      return std::nullopt;
    // ::ffff:0:0/96 (mapped) and ::/96 (compatible) would reach IPv4 hosts,
    // 127.0.0.1 included, through the host's IPv6 socket.
    static constexpr auto kMapped = wire::Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0xffff, 0, 0});
    if (dst.in_prefix(kMapped, 96) || dst.in_prefix(wire::Ipv6Addr{}, 96)) return std::nullopt;
    if (refuse_prefix6 && dst.in_prefix(prefix6, prefix6_len)) return std::nullopt;  // the guest's own link
    return dst;
  }

  std::optional<IpAddr> host_destination(const IpAddr& dst) const {
    if (dst.v6) {
      auto h = host_destination(dst.v6addr);
      if (!h) return std::nullopt;
      return IpAddr(*h);
    }
    auto h = host_destination(dst.v4);
    if (!h) return std::nullopt;
    return IpAddr(*h);
  }

  // The guest forward at dst:port, or null.
  const GuestForward* guest_forward(const IpAddr& dst, uint16_t port) const {
    if (dst.v6) return nullptr;
    for (const auto& f : guest_forwards)
      if (f.addr == dst.v4 && f.port == port) return &f;
    return nullptr;
  }
  // An address of a guest forward (the gateway answers ARP for it).
  bool is_guest_forward_address(wire::Ipv4Addr a) const {
    for (const auto& f : guest_forwards)
      if (f.addr == a) return true;
    return false;
  }

  bool is_dns(const IpAddr& a) const { return a.v6 ? (ipv6 && a.v6addr == dns6) : a.v4 == dns; }
  bool is_gateway(const IpAddr& a) const { return a.v6 ? (ipv6 && a.v6addr == gateway6) : a.v4 == gateway; }
  IpAddr gateway_for(const IpAddr& family_of) const {
    return family_of.v6 ? IpAddr(gateway6) : IpAddr(gateway);
  }

  // The address the guest sees for a host-side peer address.
  wire::Ipv4Addr guest_source(wire::Ipv4Addr host_src) const {
    if (host_loopback && host_src.is_loopback()) return gateway;
    return host_src;
  }
  IpAddr guest_source(const IpAddr& host_src) const {
    if (!host_src.v6) return guest_source(host_src.v4);
    if (host_loopback && host_src.v6addr.is_loopback()) return gateway6;
    return host_src;
  }

  // The source the guest sees for a published port's client: the client,
  // but a loopback client always appears as the gateway, host loopback or
  // not (the guest's kernel drops a 127.0.0.1 or ::1 source arriving on its
  // link as a martian; showing the gateway opens nothing: the guest answers
  // within the inbound flow).
  IpAddr inbound_source(const IpAddr& client) const {
    if (client.v6 ? client.v6addr.is_loopback() : client.v4.is_loopback()) return gateway_for(client);
    return client;
  }
};

}  // namespace slipway::engine
