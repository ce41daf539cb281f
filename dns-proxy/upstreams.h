// Upstream servers: parsing of addresses, routes, resolv.conf and hosts
// files, and the choice of servers for a name.
//
// Theory of operation
// - An upstream is an IPv4 or IPv6 literal and a port: "192.0.2.1",
//   "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353", "fe80::1%eth0".
// - A route sends every name at or below a suffix to its own upstreams
//   (split DNS: VPN and corporate resolvers). The longest matching suffix
//   wins; several routes with the same suffix are failover alternatives.
//   Names no route matches go to the default upstreams.
// - resolv.conf: only `nameserver` lines matter; unknown lines are ignored,
//   as glibc does. Hosts files: "ADDRESS NAME [NAME...]" with '#' comments.
// - Limits: the files are read only if they are regular files of at most
//   kMaxResolvConfBytes (1 MiB) and kMaxHostsFileBytes (8 MiB: parsed, a
//   hosts file costs about 12 times its size while it is loaded; the
//   largest public block lists are under 5 MiB).
// - UpstreamSet resolves the addresses to sockaddrs once; it is a plain value
//   that the proxy replaces as a whole when the configuration is re-read.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::dns {

constexpr size_t kMaxResolvConfBytes = 1 << 20;
constexpr size_t kMaxHostsFileBytes = 8 << 20;

struct Upstream {
  std::string address;  // IPv4 or IPv6 literal
  uint16_t port = 53;
  friend bool operator==(const Upstream&, const Upstream&) = default;
};

struct Route {
  std::string suffix;
  Upstream upstream;
  friend bool operator==(const Route&, const Route&) = default;
};

// "ADDR", "ADDR:PORT", "[V6]:PORT", "V6"; nullopt on anything else.
std::optional<Upstream> parse_upstream(std::string_view text, uint16_t default_port = 53);
// "SUFFIX=ADDR[:PORT]"; nullopt on anything else.
std::optional<Route> parse_route(std::string_view text);
// The nameservers of a resolv.conf text, in order.
std::vector<Upstream> parse_resolv_conf(std::string_view text);
// name (lower case, no trailing dot) -> addresses, in file order.
std::map<std::string, std::vector<std::string>> parse_hosts(std::string_view text);

// An upstream with its socket address.
struct ResolvedUpstream {
  Upstream upstream;
  sockaddr_storage addr{};
  std::string to_string() const;
};
std::optional<ResolvedUpstream> resolve_upstream(const Upstream& u);

class UpstreamSet {
 public:
  UpstreamSet() = default;
  // Throws std::runtime_error naming the bad entry.
  UpstreamSet(const std::vector<Upstream>& defaults, const std::vector<Route>& routes);

  // The servers for a name (wire form), in preference order; empty when
  // there are none.
  const std::vector<ResolvedUpstream>& select(std::string_view name_wire) const;

  const std::vector<ResolvedUpstream>& defaults() const { return defaults_; }

 private:
  struct Zone {
    std::string zone_wire;  // lower case
    std::vector<ResolvedUpstream> servers;
  };
  std::vector<ResolvedUpstream> defaults_;
  std::vector<Zone> zones_;  // longest suffix first
};

}  // namespace slipway::dns
