// ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861, RFC 8106): a checked
// view, an emitter, NDP message values, and when an ICMPv6 error may be
// sent. The frames that carry them are built in frame.h.
//
// Icmpv6Message is AnyIcmpMessage (icmp.h) with the ICMPv6 checksum: parse()
// only requires the 8-byte header (every message type has at least 8
// bytes); the checksum, which covers the IPv6 pseudo-header, is reported by
// checksum_ok(src, dst) rather than enforced, so that callers can count bad
// checksums separately.
//
// NDP values (NeighborSolicit, NeighborAdvert, RouterSolicit, RouterAdvert)
// have parse(), which checks the type, code 0 and the minimum length of RFC
// 4861 §6.1/§7.1 and validates every option, and emit(), which returns the
// ICMPv6 message with a zero checksum: build_ipv6_icmpv6_frame() (frame.h)
// or set_icmpv6_checksum() fills it once the addresses are known. The IP-level
// validity checks (hop limit 255, the source/destination rules) need the
// IPv6 header and are the caller's.
//
// NdpOptions::parse() rejects an option of length 0, an option running past
// the end, and known options of the wrong length (link-layer addresses must
// be Ethernet, 8 bytes). Unknown options are skipped. DNSSL names use the
// DNS wire encoding without compression (RFC 8106 §5.2), padded with zeros
// to the option's 8-byte boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netstack/wire/bytes.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv6.h"

namespace slipway::wire {

namespace icmpv6type {
constexpr uint8_t kDestUnreachable = 1, kPacketTooBig = 2, kTimeExceeded = 3, kParamProblem = 4,
                  kEchoRequest = 128, kEchoReply = 129, kRouterSolicit = 133, kRouterAdvert = 134,
                  kNeighborSolicit = 135, kNeighborAdvert = 136, kRedirect = 137;
}
// Destination Unreachable codes (RFC 4443 §3.1).
namespace icmpv6code {
constexpr uint8_t kNoRoute = 0, kAdminProhibited = 1, kBeyondScope = 2, kAddressUnreachable = 3,
                  kPortUnreachable = 4;
}
namespace ndpopt {
constexpr uint8_t kSourceLinkAddr = 1, kTargetLinkAddr = 2, kPrefixInfo = 3, kRedirected = 4, kMtu = 5,
                  kRdnss = 25, kDnssl = 31;
}

constexpr size_t kIpv6MinMtu = 1280;
// NDP messages are sent, and accepted only, with this hop limit (RFC 4861).
constexpr uint8_t kNdpHopLimit = 255;

class Icmpv6Message : public AnyIcmpMessage {
 public:
  static std::optional<Icmpv6Message> parse(Bytes l4);

  bool checksum_ok(const Ipv6Addr& src, const Ipv6Addr& dst) const;
  // For Packet Too Big.
  uint32_t mtu() const { return load32(data_, 4); }

 private:
  using AnyIcmpMessage::AnyIcmpMessage;
};

// Writes the header, a copy of `payload` and the checksum at the start of
// `out`; returns 8 + payload.size() (out.size() must be at least that).
size_t emit_icmpv6(MutBytes out, const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t type, uint8_t code,
                   uint32_t rest, Bytes payload);
// Computes and stores the checksum of a whole ICMPv6 message in place.
void set_icmpv6_checksum(MutBytes message, const Ipv6Addr& src, const Ipv6Addr& dst);

struct PrefixInfo {
  Ipv6Addr prefix;
  uint8_t prefix_len = 64;
  bool on_link = true;     // L
  bool autonomous = true;  // A: usable for SLAAC
  uint32_t valid_lifetime = 0, preferred_lifetime = 0;
  friend bool operator==(const PrefixInfo&, const PrefixInfo&) = default;
};

struct RdnssOption {
  uint32_t lifetime = 0;
  std::vector<Ipv6Addr> servers;  // at least one
  friend bool operator==(const RdnssOption&, const RdnssOption&) = default;
};

struct DnsslOption {
  uint32_t lifetime = 0;
  std::vector<std::string> domains;  // without final dots
  friend bool operator==(const DnsslOption&, const DnsslOption&) = default;
};

struct NdpOptions {
  std::optional<MacAddr> source_link_addr, target_link_addr;
  std::optional<uint32_t> mtu;
  std::vector<PrefixInfo> prefixes;
  std::vector<RdnssOption> rdnss;
  std::vector<DnsslOption> dnssl;

  static std::optional<NdpOptions> parse(Bytes options);
  // Appends the options in the order above; a DNSSL with no valid domain is
  // left out.
  void emit(std::vector<std::byte>& out) const;
};

struct NeighborSolicit {
  static constexpr size_t kMinLen = 24;
  Ipv6Addr target;
  NdpOptions options;

  static std::optional<NeighborSolicit> parse(const Icmpv6Message& msg);
  std::vector<std::byte> emit() const;
};

struct NeighborAdvert {
  static constexpr size_t kMinLen = 24;
  bool router = false, solicited = false, override_flag = false;
  Ipv6Addr target;
  NdpOptions options;

  static std::optional<NeighborAdvert> parse(const Icmpv6Message& msg);
  std::vector<std::byte> emit() const;
};

struct RouterSolicit {
  static constexpr size_t kMinLen = 8;
  NdpOptions options;

  static std::optional<RouterSolicit> parse(const Icmpv6Message& msg);
  std::vector<std::byte> emit() const;
};

struct RouterAdvert {
  static constexpr size_t kMinLen = 16;
  uint8_t cur_hop_limit = 64;
  bool managed = false;  // M: addresses via DHCPv6
  bool other = false;    // O: other configuration via DHCPv6
  uint16_t router_lifetime = 0;  // seconds; 0: not a default router
  uint32_t reachable_time = 0, retrans_timer = 0;  // milliseconds; 0: unspecified
  NdpOptions options;

  static std::optional<RouterAdvert> parse(const Icmpv6Message& msg);
  std::vector<std::byte> emit() const;
};

// DNS names in wire form without compression, as DNSSL and DHCPv6 use them.
// Invalid names (see is_valid_domain_name() in dhcp.h) are skipped.
std::vector<std::byte> encode_dns_name_list(std::span<const std::string> names);
// The inverse; names are returned without a final dot. nullopt on a label
// running past the end, a compression pointer or reserved label type, or a
// name longer than 255 bytes. With `zero_padded`, a zero byte where a name
// would start ends the list (the rest is padding); without, it is an empty
// (root) name and is skipped.
std::optional<std::vector<std::string>> decode_dns_name_list(Bytes data, bool zero_padded);

// RFC 4443 §2.4(e): no error about an ICMPv6 error or redirect (or an
// ICMPv6 message that cannot be seen: malformed, or a non-first fragment),
// nor about a packet whose source is not a single host (unspecified,
// multicast), nor about a packet sent to a multicast group or link-layer
// multicast/broadcast, except Packet Too Big (and Parameter Problem code 2),
// which may answer multicast.
bool icmpv6_error_allowed(const Ipv6Packet& offending, bool link_multicast, uint8_t error_type,
                          uint8_t error_code = 0);

}  // namespace slipway::wire
