// See egress_policy.h.
#include "netstack/engine/egress_policy.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace slipway::engine {
namespace {

std::optional<unsigned> number(std::string_view s, unsigned max) {
  unsigned v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

bool parse_ports(std::string_view s, std::vector<EgressRule::PortRange>* out, std::string* error) {
  while (true) {
    auto comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    auto dash = item.find('-');
    auto first = number(item.substr(0, dash), 65535);
    auto last = dash == std::string_view::npos ? first : number(item.substr(dash + 1), 65535);
    if (!first || !last || *first == 0 || *last < *first) {
      *error = "'" + std::string(item) + "' is not a port (1-65535) or a range FIRST-LAST";
      return false;
    }
    out->push_back({static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)});
    if (comma == std::string_view::npos) return true;
    s = s.substr(comma + 1);
  }
}

}  // namespace

std::optional<EgressRule> EgressRule::parse(std::string_view text, bool allow, std::string* error) {
  EgressRule r;
  r.allow = allow;
  std::string_view net = text, ports;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      *error = "no ']' after the IPv6 network";
      return std::nullopt;
    }
    net = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || rest.size() == 1) {
        *error = "':PORTS' expected after ']'";
        return std::nullopt;
      }
      ports = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // IPv4 with ports
    auto colon = text.find(':');
    net = text.substr(0, colon);
    ports = text.substr(colon + 1);
    if (ports.empty()) {
      *error = "no ports after ':'";
      return std::nullopt;
    }
  }
  auto slash = net.find('/');
  std::string_view addr = net.substr(0, slash);
  if (auto v4 = wire::Ipv4Addr::parse(addr)) {
    r.network = IpAddr(*v4);
    r.prefix = 32;
  } else if (auto v6 = wire::Ipv6Addr::parse(addr)) {
    r.network = IpAddr(*v6);
    r.prefix = 128;
  } else {
    *error = "'" + std::string(addr) + "' is not an IPv4 or IPv6 address (IPv6 with ports: [ADDR/LEN]:PORTS)";
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    auto len = number(net.substr(slash + 1), r.prefix);
    if (!len) {
      *error = "prefix length '" + std::string(net.substr(slash + 1)) + "' is not 0 to " + std::to_string(r.prefix);
      return std::nullopt;
    }
    r.prefix = *len;
  }
  if (!ports.empty() && !parse_ports(ports, &r.ports, error)) return std::nullopt;
  return r;
}

bool EgressRule::covers_address(const IpAddr& a) const {
  if (a.v6 != network.v6) return false;
  return a.v6 ? a.v6addr.in_prefix(network.v6addr, prefix) : a.v4.in_subnet(network.v4, prefix);
}

std::string EgressRule::to_string() const {
  std::string net = network.to_string() + "/" + std::to_string(prefix);
  if (ports.empty()) return net;
  std::string p;
  for (const auto& r : ports) {
    if (!p.empty()) p += ",";
    p += std::to_string(r.first);
    if (r.last != r.first) p += "-" + std::to_string(r.last);
  }
  return (network.v6 ? "[" + net + "]" : net) + ":" + p;
}

EgressPolicy::EgressPolicy() {
  // Cloud metadata: AWS, GCP, Azure, OpenStack (IPv4) and AWS's IPv6 address.
  add("169.254.169.254", false);
  add("fd00:ec2::254", false);
}

void EgressPolicy::add(std::string_view text, bool allow) {
  std::string error;
  auto r = EgressRule::parse(text, allow, &error);
  if (!r) throw std::invalid_argument("'" + std::string(text) + "': " + error);
  add(std::move(*r));
}

bool EgressPolicy::allows(const IpAddr& guest_dst, const IpAddr& host, Proto proto, uint16_t port) const {
  bool denied = false;
  for (const auto& r : rules_) {
    if (!r.covers_address(guest_dst) && !r.covers_address(host)) continue;
    if (!r.ports.empty()) {
      if (proto == Proto::kIcmp) continue;
      bool in = false;
      for (const auto& p : r.ports) in = in || (port >= p.first && port <= p.last);
      if (!in) continue;
    }
    if (r.allow) return true;
    denied = true;
  }
  return !denied;
}

}  // namespace slipway::engine
