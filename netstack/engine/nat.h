// NAT address policy: which host address a guest destination reaches, and
// which address the guest sees for a host-side peer.
//
// The guest may talk to any address, with these exceptions, checked here so
// that no flow can reach a host address the configuration does not allow:
//   - the gateway address maps to the host's loopback (127.0.0.1) when
//     host_loopback is on, and is refused when it is off;
//   - the DNS address is served by the gateway itself (never relayed);
//   - 0.0.0.0/8, 127.0.0.0/8, multicast, and 240.0.0.0/4 (including the
//     limited broadcast) are refused: on the host they would mean the host
//     itself or every host.
#pragma once

#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::engine {

struct NatPolicy {
  wire::Ipv4Addr gateway{10, 0, 2, 2};
  wire::Ipv4Addr dns{10, 0, 2, 3};
  wire::Ipv4Addr guest{10, 0, 2, 15};
  unsigned prefix = 24;
  bool host_loopback = true;

  static constexpr wire::Ipv4Addr kHostLoopback{127, 0, 0, 1};

  // The host-side address for a guest destination, or nullopt if refused.
  std::optional<wire::Ipv4Addr> host_destination(wire::Ipv4Addr dst) const {
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

  // The address the guest sees for a host-side peer address.
  wire::Ipv4Addr guest_source(wire::Ipv4Addr host_src) const {
    if (host_loopback && host_src.is_loopback()) return gateway;
    return host_src;
  }
};

}  // namespace slipway::engine
