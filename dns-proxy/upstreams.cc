// Upstream addresses, routes, resolv.conf and hosts files. See upstreams.h.
#include "dns-proxy/upstreams.h"

#include <arpa/inet.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "dns-proxy/message.h"

namespace slipway::dns {

namespace {

bool is_ip_literal(const std::string& s, int family) {
  unsigned char buf[16];
  std::string addr = s;
  if (family == AF_INET6) addr = addr.substr(0, addr.find('%'));  // scope id
  return inet_pton(family, addr.c_str(), buf) == 1;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<std::string> split_ws(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

}  // namespace

std::optional<Upstream> parse_upstream(std::string_view text, uint16_t default_port) {
  std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  Upstream u;
  u.port = default_port;
  if (t.front() == '[') {
    size_t close = t.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.address = t.substr(1, close - 1);
    std::string rest = t.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      auto p = parse_port(std::string_view(rest).substr(1));
      if (!p) return std::nullopt;
      u.port = *p;
    }
    if (!is_ip_literal(u.address, AF_INET6)) return std::nullopt;
    return u;
  }
  size_t colons = static_cast<size_t>(std::count(t.begin(), t.end(), ':'));
  if (colons > 1) {  // a bare IPv6 literal
    if (!is_ip_literal(t, AF_INET6)) return std::nullopt;
    u.address = t;
    return u;
  }
  if (colons == 1) {
    size_t c = t.find(':');
    auto p = parse_port(std::string_view(t).substr(c + 1));
    if (!p) return std::nullopt;
    u.port = *p;
    t.resize(c);
  }
  if (!is_ip_literal(t, AF_INET)) return std::nullopt;
  u.address = t;
  return u;
}

std::optional<Route> parse_route(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string suffix = lower(trim(text.substr(0, eq)));
  while (!suffix.empty() && suffix.front() == '.') suffix.erase(0, 1);
  if (!name_from_text(suffix)) return std::nullopt;
  auto u = parse_upstream(text.substr(eq + 1));
  if (!u) return std::nullopt;
  return Route{suffix, *u};
}

std::vector<Upstream> parse_resolv_conf(std::string_view text) {
  std::vector<Upstream> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto words = split_ws(line);
    if (words.size() < 2 || words[0] != "nameserver") continue;
    if (auto u = parse_upstream(words[1]); u && u->port == 53) out.push_back(*u);
  }
  return out;
}

std::map<std::string, std::vector<std::string>> parse_hosts(std::string_view text) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    auto words = split_ws(line);
    if (words.size() < 2 || !address_rdata(words[0])) continue;
    for (size_t i = 1; i < words.size(); ++i) {
      std::string name = lower(words[i]);
      if (!name.empty() && name.back() == '.') name.pop_back();
      if (!name_from_text(name)) continue;
      auto& addrs = out[name];
      if (std::find(addrs.begin(), addrs.end(), words[0]) == addrs.end()) addrs.push_back(words[0]);
    }
  }
  return out;
}

std::string ResolvedUpstream::to_string() const {
  if (upstream.address.find(':') != std::string::npos)
    return "[" + upstream.address + "]:" + std::to_string(upstream.port);
  return upstream.address + ":" + std::to_string(upstream.port);
}

std::optional<ResolvedUpstream> resolve_upstream(const Upstream& u) {
  ResolvedUpstream r;
  r.upstream = u;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&r.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&r.addr);
  if (uv_ip4_addr(u.address.c_str(), u.port, v4) == 0) return r;
  std::memset(&r.addr, 0, sizeof r.addr);
  if (uv_ip6_addr(u.address.c_str(), u.port, v6) == 0) return r;
  return std::nullopt;
}

UpstreamSet::UpstreamSet(const std::vector<Upstream>& defaults, const std::vector<Route>& routes) {
  for (const auto& u : defaults) {
    auto r = resolve_upstream(u);
    if (!r) throw std::runtime_error("dns-proxy: bad upstream address '" + u.address + "'");
    defaults_.push_back(*r);
  }
  for (const auto& route : routes) {
    std::string suffix = lower(route.suffix);
    while (!suffix.empty() && suffix.front() == '.') suffix.erase(0, 1);
    auto zone = name_from_text(suffix);
    if (!zone) throw std::runtime_error("dns-proxy: bad route suffix '" + route.suffix + "'");
    auto r = resolve_upstream(route.upstream);
    if (!r) throw std::runtime_error("dns-proxy: bad route upstream '" + route.upstream.address + "'");
    auto it = std::find_if(zones_.begin(), zones_.end(), [&](const Zone& z) { return z.zone_wire == *zone; });
    if (it == zones_.end()) {
      zones_.push_back(Zone{*zone, {}});
      it = std::prev(zones_.end());
    }
    it->servers.push_back(*r);
  }
  std::stable_sort(zones_.begin(), zones_.end(),
                   [](const Zone& a, const Zone& b) { return a.zone_wire.size() > b.zone_wire.size(); });
}

const std::vector<ResolvedUpstream>& UpstreamSet::select(std::string_view name_wire) const {
  for (const auto& z : zones_)
    if (name_in_zone(name_wire, z.zone_wire)) return z.servers;
  return defaults_;
}

}  // namespace slipway::dns
