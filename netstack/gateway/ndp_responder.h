// The gateway's IPv6 link presence: Neighbor Discovery (RFC 4861), router
// advertisements for SLAAC (RFC 4862) with DNS options (RFC 8106), ICMPv6
// echo, and a stateless DHCPv6 server (RFC 8415 §6.1) for DNS settings.
//
// Theory of operation. The guest's link is fd00::/64 (by default). The
// gateway owns three addresses on it: its link-local address (fe80::/64 with
// the EUI-64 of its MAC), its unique-local address (fd00::2) and the DNS
// address (fd00::3); all three answer at the gateway MAC. The guest forms
// its own address by SLAAC from the advertised prefix; no address is ever
// assigned here, so the responder keeps no per-guest state. handle() takes
// one whole Ethernet frame and returns the frames to send back (zero or
// one); unsolicited_ra() builds the periodic advertisement, which the caller
// sends at start and every ra_interval. Nothing here reads the clock or
// does I/O; `now` only rate-limits multicast replies to solicitations.
//
// Answered:
//   NS for one of our addresses   NA (R, S, O set; target link-layer
//                                 address) to the sender, or to ff02::1
//                                 with S clear if the sender is :: (DAD);
//                                 with proxy_neighbors, also for any
//                                 other global target (R clear)
//   RS                            RA to the sender, or to ff02::1 if the
//                                 sender is ::, at most one per
//                                 kMinDelayBetweenRas when multicast
//   echo request to our address   echo reply
//   DHCPv6 to port 547            REPLY (INFORMATION-REQUEST: DNS servers
//                                 and domain list; SOLICIT with rapid
//                                 commit, REQUEST, RENEW, REBIND: no
//                                 addresses, status NoAddrsAvail/NoBinding
//                                 in each IA_NA; RELEASE: Success), or
//                                 ADVERTISE with NoAddrsAvail to a SOLICIT
//                                 without rapid commit
//
// The RA says: router lifetime 1800 s, M=0, O=1, the link MTU, our
// link-layer address, the prefix with L=1 A=1 (valid 86400 s, preferred
// 14400 s), RDNSS with the DNS address and DNSSL with the search domains
// (both for 3 x the RA interval, RFC 8106 §5.1's lower bound).
//
// Guest input is untrusted. Every frame is length-checked layer by layer;
// NDP messages must meet RFC 4861 §6.1/§7.1 (hop limit 255, code 0, valid
// checksum, minimum length, well-formed options, the rules for source ::);
// ICMPv6 and UDP checksums are verified. Anything else is dropped and
// counted in Stats; frames that are simply not for us (other addresses,
// other protocols) are counted as ignored.
//
// Limits: extension headers are walked (Ipv6Packet::upper_layer()) but
// fragments are ignored, not reassembled; no DHCPv6 relays, no redirects,
// no neighbor cache: a reply goes to the frame's source MAC (or the
// solicitation's source link-layer address option).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::gateway {

using Clock = std::chrono::steady_clock;

struct NdpResponderConfig {
  wire::MacAddr mac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  // The gateway's link-local address; unset: derived from `mac` (EUI-64).
  std::optional<wire::Ipv6Addr> link_local;
  wire::Ipv6Addr address = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 2});
  wire::Ipv6Addr dns = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 3});
  wire::Ipv6Addr prefix = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0});
  unsigned prefix_len = 64;
  uint32_t mtu = 65520;
  std::vector<std::string> search_domains;
  // Answer neighbour solicitations for any global target but the sender's
  // own address (proxy NDP, as passt does): mirrored mode, where the prefix
  // is the host's real link and its other hosts are reached through us.
  bool proxy_neighbors = false;
  std::chrono::seconds ra_interval{200};
  std::chrono::seconds router_lifetime{1800};
  std::chrono::seconds valid_lifetime{86400};
  std::chrono::seconds preferred_lifetime{14400};
};

// Empty if `config` is usable, else what is wrong (prefix length 64, as
// SLAAC needs; address and DNS address distinct global or ULA unicast;
// link-local address in fe80::/10; MTU at least 1280; lifetimes ordered and
// within their fields; search domains valid).
std::string validate(const NdpResponderConfig& config);

class NdpResponder {
 public:
  // RFC 4861 §10 MIN_DELAY_BETWEEN_RAS.
  static constexpr std::chrono::seconds kMinDelayBetweenRas{3};

  explicit NdpResponder(NdpResponderConfig config);

  // Handles one Ethernet frame from the guest; returns the frames to send.
  std::vector<std::vector<std::byte>> handle(wire::Bytes ethernet_frame, Clock::time_point now);
  // An RA to all nodes, for start-up and every config().ra_interval.
  std::vector<std::byte> unsolicited_ra() const;

  const wire::Ipv6Addr& link_local() const { return link_local_; }
  // True if `addr` is one of the gateway's addresses (link-local, ULA, DNS).
  bool is_own_address(const wire::Ipv6Addr& addr) const;
  const NdpResponderConfig& config() const { return config_; }

  struct Stats {
    // Answered.
    uint64_t neighbor_solicits = 0, neighbor_adverts_sent = 0, router_solicits = 0, router_adverts_sent = 0,
             echo_requests = 0, dhcpv6_requests = 0, dhcpv6_replies = 0;
    // Dropped: not IPv6/ICMPv6/UDP as it claims, bad checksums, NDP failing
    // RFC 4861 validity (hop limit, code, length, options, source rules),
    // DHCPv6 that does not parse or breaks RFC 8415 §16, and RA replies
    // suppressed by the rate limit.
    uint64_t malformed = 0, bad_checksum = 0, ndp_invalid = 0, dhcpv6_invalid = 0, rs_rate_limited = 0;
    // Not for us: other destinations, other protocols, other NDP targets.
    uint64_t ignored = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  using Frames = std::vector<std::vector<std::byte>>;

  Frames on_icmpv6(const wire::Ipv6Packet& ip, wire::MacAddr eth_src, wire::Bytes l4, Clock::time_point now);
  Frames on_neighbor_solicit(const wire::Ipv6Packet& ip, wire::MacAddr eth_src, wire::Bytes l4);
  Frames on_router_solicit(const wire::Ipv6Packet& ip, wire::MacAddr eth_src, wire::Bytes l4,
                           Clock::time_point now);
  Frames on_echo(const wire::Ipv6Packet& ip, wire::MacAddr eth_src, wire::Bytes l4);
  Frames on_udp(const wire::Ipv6Packet& ip, wire::MacAddr eth_src, wire::Bytes l4);

  std::vector<std::byte> router_advert_message() const;
  std::vector<std::byte> ra_frame(wire::MacAddr eth_dst, const wire::Ipv6Addr& dst) const;

  NdpResponderConfig config_;
  wire::Ipv6Addr link_local_;
  std::vector<std::byte> duid_;
  Stats stats_;
  std::optional<Clock::time_point> last_multicast_ra_;
};

}  // namespace slipway::gateway
