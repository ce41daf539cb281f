#include "netstack/engine/guest_forward.h"

#include <sys/un.h>

#include <charconv>

#include "netstack/wire/ipv6.h"

namespace slipway::engine {

namespace {

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string GuestForward::target() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (kind == Kind::kCmd) return "cmd:" + path;
  return "tcp:" + host.endpoint(host_port);
}

std::string GuestForward::to_string() const { return addr.to_string() + ":" + std::to_string(port) + "=" + target(); }

std::optional<GuestForward> parse_guest_forward(std::string_view spec, std::string* err) {
  auto fail = [&](std::string why) -> std::optional<GuestForward> {
    *err = std::move(why);
    return std::nullopt;
  };
  auto eq = spec.find('=');
  if (eq == std::string_view::npos) return fail("expected ADDR:PORT=TARGET");
  std::string_view left = spec.substr(0, eq), right = spec.substr(eq + 1);
  GuestForward f;
  auto colon = left.rfind(':');
  if (colon == std::string_view::npos) return fail("'" + std::string(left) + "' is not ADDR:PORT");
  auto addr = wire::Ipv4Addr::parse(left.substr(0, colon));
  if (!addr) return fail("'" + std::string(left.substr(0, colon)) + "' is not an IPv4 address");
  auto port = parse_port(left.substr(colon + 1));
  if (!port) return fail("'" + std::string(left.substr(colon + 1)) + "' is not a port (1-65535)");
  f.addr = *addr;
  f.port = *port;
  if (right.starts_with("unix:")) {
    f.kind = GuestForward::Kind::kUnix;
    f.path = std::string(right.substr(5));
    if (f.path.empty() || f.path[0] != '/') return fail("unix:PATH needs an absolute path");
    if (f.path.size() >= sizeof(sockaddr_un::sun_path))
      return fail("unix:PATH is longer than " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    if (f.path.find('\0') != std::string::npos) return fail("unix:PATH holds a NUL byte");
    return f;
  }
  if (right.starts_with("cmd:")) {
    f.kind = GuestForward::Kind::kCmd;
    f.path = std::string(right.substr(4));
    if (f.path.find_first_not_of(" \t") == std::string::npos) return fail("cmd:COMMAND needs a command");
    if (f.path.find('\0') != std::string::npos) return fail("cmd:COMMAND holds a NUL byte");
    return f;
  }
  if (right.starts_with("tcp:")) {
    f.kind = GuestForward::Kind::kTcp;
    std::string_view hp = right.substr(4);
    std::string_view host, hport;
    if (hp.starts_with("[")) {
      auto close = hp.find("]:");
      if (close == std::string_view::npos) return fail("tcp:[IPV6]:PORT expected");
      host = hp.substr(1, close - 1);
      hport = hp.substr(close + 2);
      auto a6 = wire::Ipv6Addr::parse(host);
      if (!a6) return fail("'" + std::string(host) + "' is not an IPv6 address");
      f.host = IpAddr(*a6);
    } else {
      auto c = hp.rfind(':');
      if (c == std::string_view::npos) return fail("tcp:HOSTADDR:PORT expected");
      host = hp.substr(0, c);
      hport = hp.substr(c + 1);
      auto a4 = wire::Ipv4Addr::parse(host);
      if (!a4) return fail("'" + std::string(host) + "' is not an IPv4 address (IPv6: tcp:[ADDR]:PORT)");
      f.host = IpAddr(*a4);
    }
    auto p = parse_port(hport);
    if (!p) return fail("'" + std::string(hport) + "' is not a port (1-65535)");
    f.host_port = *p;
    return f;
  }
  return fail("unknown target '" + std::string(right) + "'; allowed: tcp:HOSTADDR:PORT, unix:PATH, cmd:COMMAND");
}

}  // namespace slipway::engine
