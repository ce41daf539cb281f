// Port-forward rules as given on the command line: `-p, --publish
// [HOSTADDR:]HOSTPORT[-END]:[GUEST:]GUESTPORT[-END][/tcp|/udp]`, the
// docker/podman syntax with an optional guest.
//
// A rule publishes the guest ports GUESTPORT..END on the host address
// HOSTADDR, ports HOSTPORT..END (the two ranges must have the same length;
// host port first+i maps to guest port first+i). HOSTADDR defaults to
// 127.0.0.1, so a forward is reachable only from the host unless an address
// is named; an IPv6 address is written in brackets (`[::1]:8080:80`). The
// protocol defaults to tcp. GUEST names the guest when several share one
// gateway (a vswitch): a name (a DNS label, e.g. `8080:web:80`, the name of
// its DHCP lease) or an IPv4 address; without it, the first guest.
//
// Unlike docker, a host port is always required (no `-p 80` or
// `-p 127.0.0.1::80` with an ephemeral host port), port 0 is invalid, and a
// host name is not accepted as HOSTADDR (no resolution here). Addresses are
// stored in canonical text form (inet_ntop), so to_string() gives back a
// rule that parses to the same value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "portfwd/protocol.h"

namespace slipway::portfwd {

struct Rule {
  std::string host_addr = "127.0.0.1";  // IPv4 or IPv6 literal, no brackets
  uint16_t host_port_first = 0;
  uint16_t host_port_last = 0;
  uint16_t guest_port_first = 0;
  uint16_t guest_port_last = 0;
  Protocol proto = Protocol::kTcp;
  std::string guest;  // "" (the first guest), a DNS label or an IPv4 literal

  // Number of ports in each range (at least 1 in a parsed rule).
  unsigned count() const { return unsigned{host_port_last} - host_port_first + 1; }
  // "127.0.0.1:8080:80/tcp", "[::1]:8000-8001:80-81/udp", "127.0.0.1:8080:web:80/tcp".
  std::string to_string() const;
  bool operator==(const Rule&) const = default;
};

// Parses one rule. On failure returns nothing and, if `error` is not null,
// sets it to a message naming the part that is wrong, e.g.
// "invalid host port '70000' in '70000:80' (1..65535)".
std::optional<Rule> parse_rule(std::string_view text, std::string* error);

}  // namespace slipway::portfwd
