// EgressPolicy: which host destinations a guest may reach (--allow, --deny).
//
// Theory of operation
// - A rule is CIDR[:PORTS]: an IPv4 or IPv6 network (a bare address is a /32
//   or /128; IPv6 with ports goes in brackets, "[2001:db8::/32]:443") and
//   optionally ports: "80", "1000-2000", "80,443,8000-8080". A rule without
//   ports covers every TCP and UDP port and ICMP echo; a rule with ports
//   covers TCP and UDP to those ports only.
// - A destination is denied when a deny rule covers it and no allow rule
//   does: an allow rule always wins, whatever the order. So `--deny
//   0.0.0.0/0 --allow 10.0.0.0/8` lets the guest reach 10.0.0.0/8 only.
// - Cloud metadata services (169.254.169.254 and fd00:ec2::254, every port)
//   are denied from the start; an allow rule that covers them lifts that.
// - A rule is checked against both the address the guest used and the host
//   address the NAT policy maps it to: `--deny 127.0.0.1:8080` also stops
//   the guest's connections to the gateway's port 8080, which reach the
//   host's 127.0.0.1.
// - The engine asks allows() where a TCP SYN, a UDP datagram or an ICMP echo
//   would open a host socket; a denied one is answered at once with ICMP
//   destination unreachable, administratively prohibited (ICMPv6: code 1),
//   which a guest's kernel reports as "No route to host" (EHOSTUNREACH) or
//   "Permission denied" (EACCES, IPv6) to connect(), and ping as "Packet
//   filtered".
//
// Limits: rules are scanned in a list (a policy holds a few; a check costs
// one pass per new flow, not per packet). No per-guest rules: the policy is
// the whole stack's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/engine/ip_addr.h"

namespace slipway::engine {

struct EgressRule {
  IpAddr network;
  unsigned prefix = 0;
  struct PortRange {
    uint16_t first = 0, last = 0;
    friend bool operator==(const PortRange&, const PortRange&) = default;
  };
  std::vector<PortRange> ports;  // empty: every port, and ICMP
  bool allow = false;

  // Parses CIDR[:PORTS]; nullopt with *error saying why.
  static std::optional<EgressRule> parse(std::string_view text, bool allow, std::string* error);
  bool covers_address(const IpAddr& a) const;
  std::string to_string() const;
};

class EgressPolicy {
 public:
  enum class Proto { kTcp, kUdp, kIcmp };

  // With the built-in deny rules for cloud metadata.
  EgressPolicy();

  void add(EgressRule rule) { rules_.push_back(std::move(rule)); }
  // Throws std::invalid_argument "'TEXT': why" for a bad rule.
  void add(std::string_view text, bool allow);

  // May the guest reach `host` (what `guest_dst` maps to) with this
  // protocol and port? Port is ignored for ICMP.
  bool allows(const IpAddr& guest_dst, const IpAddr& host, Proto proto, uint16_t port) const;
  bool allows(const IpAddr& dst, Proto proto, uint16_t port) const { return allows(dst, dst, proto, port); }

  const std::vector<EgressRule>& rules() const { return rules_; }

 private:
  std::vector<EgressRule> rules_;
};

}  // namespace slipway::engine
