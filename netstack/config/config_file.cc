// The configuration file: schema, reading with positioned errors, merging
// over the command line, and printing. See config_file.h.
//
// Every key is one row of kKeys: its table and name, its flag, and four
// functions (read a TOML node into Settings, print the value as TOML, copy
// it between Settings, compare it). Reading, merging, reloading and printing
// all walk the same table, so a key added there is handled everywhere.
#include "netstack/config/config_file.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>

#include "dns-proxy/upstreams.h"
#include "netstack/engine/guest_forward.h"
#include "netstack/engine/egress_policy.h"
#include "netstack/link/fault_port.h"
#include "netstack/sys/read_file.h"
#include "netstack/wire/bytes.h"
#include "portfwd/rule.h"

namespace slipway::config {
namespace {

// ------------------------------------------------------------- formatting

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

bool is_bare_key(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

std::string key_text(std::string_view s) { return is_bare_key(s) ? std::string(s) : quote(s); }

std::string join(const std::vector<std::string_view>& items, std::string_view sep = ", ") {
  std::string out;
  for (auto i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

std::string strings_toml(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
  return out + "]";
}

std::string ports_toml(const std::vector<uint16_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

std::string bool_toml(bool b) { return b ? "true" : "false"; }

// A node's value as a user would have written it, for "got ..." messages.
std::string describe(const toml::node& n) {
  if (auto s = n.as_string()) return quote(s->get());
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto b = n.as_boolean()) return bool_toml(b->get());
  if (auto f = n.as_floating_point()) {
    std::ostringstream os;
    os << f->get();
    return os.str();
  }
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  return "a date or time";
}

// ------------------------------------------------------------- value checks
// Each returns "" when the text is valid, else what is wrong with it.

std::string check_ipv4(std::string_view s) {
  return wire::Ipv4Addr::parse(s) ? "" : quote(s) + " is not an IPv4 address";
}

std::optional<std::pair<wire::Ipv4Addr, unsigned>> parse_cidr4(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = wire::Ipv4Addr::parse(s.substr(0, slash));
  unsigned prefix = 0;
  auto tail = s.substr(slash + 1);
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), prefix);
  if (!a || tail.empty() || ec != std::errc() || p != tail.data() + tail.size() || prefix < 8 || prefix > 30)
    return std::nullopt;
  return std::pair{*a, prefix};
}

std::string check_cidr4(std::string_view s) {
  return parse_cidr4(s) ? "" : quote(s) + " is not ADDR/PREFIX with an IPv4 address and a prefix length from 8 to 30";
}

std::optional<in6_addr> parse_ipv6(std::string_view s) {
  in6_addr a{};
  if (inet_pton(AF_INET6, std::string(s).c_str(), &a) != 1) return std::nullopt;
  return a;
}

std::optional<std::pair<in6_addr, unsigned>> parse_cidr6(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = parse_ipv6(s.substr(0, slash));
  unsigned prefix = 0;
  auto tail = s.substr(slash + 1);
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), prefix);
  if (!a || tail.empty() || ec != std::errc() || p != tail.data() + tail.size() || prefix != 64)
    return std::nullopt;
  return std::pair{*a, prefix};
}

bool in_prefix6(const in6_addr& a, const in6_addr& net, unsigned prefix) {
  for (unsigned bit = 0; bit < prefix; ++bit) {
    unsigned byte = bit / 8, mask = 0x80u >> (bit % 8);
    if ((a.s6_addr[byte] & mask) != (net.s6_addr[byte] & mask)) return false;
  }
  return true;
}

std::string check_ipv6(std::string_view s) { return parse_ipv6(s) ? "" : quote(s) + " is not an IPv6 address"; }

std::string check_cidr6(std::string_view s) {
  return parse_cidr6(s) ? "" : quote(s) + " is not ADDR/64 with an IPv6 address (SLAAC needs a prefix length of 64)";
}

std::string check_mac(std::string_view s) {
  auto m = wire::MacAddr::parse(s);
  return m && !m->is_multicast() && !m->is_zero() ? "" : quote(s) + " is not a unicast MAC address (52:54:00:12:34:56)";
}

std::string check_interface(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 15;
  for (char c : s) ok = ok && c != '/' && c != ':' && c > ' ' && c != 0x7f;
  return ok ? "" : quote(s) + " is not an interface name (1 to 15 characters, no '/', ':' or spaces)";
}

std::string check_domain(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 253;
  for (char c : s) ok = ok && c > ' ' && c != 0x7f && c != ',';
  return ok ? "" : quote(s) + " is not a domain name";
}

// One DNS label (a guest's name, answered as NAME.internal).
std::string check_label(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 63 && s.front() != '-' && s.back() != '-';
  for (char c : s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  return ok ? "" : quote(s) + " is not a host name (1 to 63 letters, digits and '-')";
}

std::string check_upstream(std::string_view s) {
  return dns::parse_upstream(s) ? "" : quote(s) + " is not ADDR[:PORT]";
}

std::string check_route(std::string_view s) {
  return dns::parse_route(s) ? "" : quote(s) + " is not SUFFIX=ADDR[:PORT]";
}

// A hosts file must be there when the proxy starts: a readable regular file
// within the proxy's bound ("" is no file).
std::string check_hosts_file(std::string_view s) {
  if (s.empty()) return "";
  auto f = sys::read_regular_file(std::string(s), dns::kMaxHostsFileBytes);
  return f ? "" : "cannot read the hosts file " + quote(s) + ": " + f.why();
}

std::string check_egress(std::string_view s) {
  std::string error;
  return engine::EgressRule::parse(s, false, &error) ? "" : quote(s) + ": " + error;
}

std::string check_link_faults(std::string_view s) {
  std::string error;
  return link::LinkFaults::parse(s, &error) ? "" : quote(s) + ": " + error;
}

std::string check_name_address(std::string_view s) {
  return wire::Ipv4Addr::parse(s) || parse_ipv6(s) ? "" : quote(s) + " is not an IPv4 or IPv6 address";
}

// The TFTP server's directory must be there when it starts ("" is none).
std::string check_tftp_dir(std::string_view s) {
  if (s.empty()) return "";
  struct stat st {};
  if (::stat(std::string(s).c_str(), &st) != 0)
    return "cannot use " + quote(s) + " as the TFTP directory: " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return quote(s) + " is not a directory; allowed: an existing directory";
  return "";
}

// A boot file name for DHCP options 67 (and the BOOTP file field): 1 to 255
// printable characters ("" is none).
std::string check_boot_file(std::string_view s) {
  bool ok = s.size() <= 255;
  for (char c : s) ok = ok && static_cast<unsigned char>(c) >= ' ' && c != 0x7f;
  return ok ? "" : quote(s) + " is not a boot file name; allowed: 1 to 255 printable characters (a path in the TFTP "
                              "directory, or a URL for iPXE)";
}

std::string check_guest_forward(std::string_view s) {
  std::string err;
  if (engine::parse_guest_forward(s, &err)) return "";
  return quote(s) + " is not a guest forward: " + err + "; allowed: ADDR:PORT=tcp:HOSTADDR:PORT, ADDR:PORT=unix:PATH or ADDR:PORT=cmd:COMMAND";
}

constexpr std::string_view kRuleSyntax =
    "[HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp], or a table {host_addr, host_port, guest_port, protocol}";

// ------------------------------------------------------------- reading

// Where a key is being read, for messages.
struct Ctx {
  const std::string& file;
  std::string key;

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key_name, std::string message) const {
    throw ConfigError(file, where.begin.line, where.begin.column, std::string(key_name), std::move(message));
  }
  [[noreturn]] void fail(const toml::node& n, std::string message) const { fail(n.source(), key, std::move(message)); }
  Ctx item(size_t i) const { return Ctx{file, key + "[" + std::to_string(i) + "]"}; }
};

std::string string_of(const toml::node& n, const Ctx& c, std::string_view expected = "a string") {
  if (auto s = n.as_string()) return s->get();
  c.fail(n, "expected " + std::string(expected) + ", got " + describe(n));
}

// A string that passes `check`.
std::string checked_string(const toml::node& n, const Ctx& c, std::string (*check)(std::string_view),
                           std::string_view expected) {
  auto s = string_of(n, c, expected);
  if (auto err = check(s); !err.empty()) c.fail(n, err);
  return s;
}

std::string one_of(const toml::node& n, const Ctx& c, std::vector<std::string_view> allowed) {
  auto s = n.as_string();
  if (!s) c.fail(n, "expected a string, got " + describe(n) + "; allowed: " + join(allowed));
  for (auto a : allowed)
    if (s->get() == a) return s->get();
  c.fail(n, quote(s->get()) + " is not allowed; allowed: " + join(allowed));
}

bool bool_of(const toml::node& n, const Ctx& c) {
  if (auto b = n.as_boolean()) return b->get();
  c.fail(n, "expected true or false, got " + describe(n));
}

int64_t int_of(const toml::node& n, const Ctx& c, int64_t lo, int64_t hi) {
  auto i = n.as_integer();
  if (!i || i->get() < lo || i->get() > hi)
    c.fail(n, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + describe(n));
  return i->get();
}

const toml::array& array_of(const toml::node& n, const Ctx& c, std::string_view of) {
  if (auto a = n.as_array()) return *a;
  c.fail(n, "expected an array of " + std::string(of) + ", got " + describe(n));
}

std::vector<std::string> strings_of(const toml::node& n, const Ctx& c, std::string (*check)(std::string_view),
                                    std::string_view what) {
  std::vector<std::string> out;
  const auto& a = array_of(n, c, what);
  for (size_t i = 0; i < a.size(); ++i) out.push_back(checked_string(a[i], c.item(i), check, what));
  return out;
}

// One forward: a rule string, or a table turned into one.
std::string rule_of(const toml::node& n, const Ctx& c) {
  std::string text;
  if (auto s = n.as_string()) {
    text = s->get();
  } else if (auto t = n.as_table()) {
    static const std::vector<std::string_view> kFields = {"host_addr", "host_port", "guest_port", "protocol"};
    std::string host_addr = "127.0.0.1", host_port, guest_port, protocol = "tcp";
    for (auto&& [k, v] : *t) {
      Ctx field{c.file, c.key + "." + key_text(k.str())};
      auto port_range = [&](const toml::node& p) {
        if (auto i = p.as_integer()) return std::to_string(i->get());
        return string_of(p, field, "a port or a range \"FIRST-LAST\"");
      };
      if (k.str() == "host_addr") {
        host_addr = string_of(v, field);
      } else if (k.str() == "host_port") {
        host_port = port_range(v);
      } else if (k.str() == "guest_port") {
        guest_port = port_range(v);
      } else if (k.str() == "protocol") {
        protocol = one_of(v, field, {"tcp", "udp"});
      } else {
        c.fail(k.source(), field.key, "unknown key; allowed: " + join(kFields));
      }
    }
    if (host_port.empty() || guest_port.empty())
      c.fail(n, std::string("missing ") + (host_port.empty() ? "host_port" : "guest_port") +
                    "; a forward table needs host_port and guest_port");
    bool v6 = host_addr.find(':') != std::string::npos;
    text = (v6 ? "[" + host_addr + "]" : host_addr) + ":" + host_port + ":" + guest_port + "/" + protocol;
  } else {
    c.fail(n, "expected a forward rule, got " + describe(n) + "; allowed: " + std::string(kRuleSyntax));
  }
  std::string err;
  auto rule = portfwd::parse_rule(text, &err);
  if (!rule) c.fail(n, quote(text) + " is not a forward rule: " + err + "; allowed: " + std::string(kRuleSyntax));
  return n.is_string() ? text : rule->to_string();
}

std::map<std::string, std::vector<std::string>> names_of(const toml::node& n, const Ctx& c) {
  auto t = n.as_table();
  if (!t) c.fail(n, "expected a table of NAME = \"ADDR\" or [\"ADDR\", ...], got " + describe(n));
  std::map<std::string, std::vector<std::string>> out;
  for (auto&& [k, v] : *t) {
    Ctx name{c.file, c.key + "." + key_text(k.str())};
    if (auto err = check_domain(k.str()); !err.empty()) c.fail(k.source(), name.key, err);
    if (v.is_array()) {
      auto addrs = strings_of(v, name, check_name_address, "IP addresses");
      if (addrs.empty()) name.fail(v, "expected at least one address");
      out[std::string(k.str())] = addrs;
    } else {
      out[std::string(k.str())] = {checked_string(v, name, check_name_address, "an IP address or an array of them")};
    }
  }
  return out;
}

// A guest's socket path or namespace: a string, or an array of them.
std::vector<std::string> paths_of(const toml::node& n, const Ctx& c) {
  auto nonempty = [](std::string_view v) { return v.empty() ? std::string("an empty string") : std::string(); };
  if (n.is_string()) return {checked_string(n, c, nonempty, "a string or an array of strings")};
  return strings_of(n, c, nonempty, "strings");
}

// [[dhcp.static]]: an array of {mac, address, name} tables.
std::vector<Settings::DhcpStatic> statics_of(const toml::node& n, const Ctx& c) {
  std::vector<Settings::DhcpStatic> out;
  const auto& a = array_of(n, c, "tables {mac, address, name} ([[dhcp.static]])");
  for (size_t i = 0; i < a.size(); ++i) {
    Ctx item = c.item(i);
    auto t = a[i].as_table();
    if (!t) item.fail(a[i], "expected a table {mac, address, name}, got " + describe(a[i]));
    Settings::DhcpStatic st;
    for (auto&& [k, v] : *t) {
      Ctx field{c.file, item.key + "." + key_text(k.str())};
      if (k.str() == "mac") {
        st.mac = checked_string(v, field, check_mac, "a MAC address string");
      } else if (k.str() == "address") {
        st.address = checked_string(v, field, check_ipv4, "an IPv4 address string");
      } else if (k.str() == "name") {
        st.name = checked_string(v, field, check_label, "a host name");
      } else {
        c.fail(k.source(), field.key, "unknown key; allowed: mac, address, name");
      }
    }
    if (st.mac.empty() || st.address.empty())
      item.fail(a[i], std::string("missing ") + (st.mac.empty() ? "mac" : "address") +
                          "; a static lease needs mac and address");
    out.push_back(st);
  }
  return out;
}

// ------------------------------------------------------------- the schema

using ReadFn = void (*)(const toml::node&, const Ctx&, Settings&);
using PrintFn = std::string (*)(const Settings&);
using CopyFn = void (*)(Settings&, const Settings&);
using EqualFn = bool (*)(const Settings&, const Settings&);

template <auto Member>
void copy_member(Settings& to, const Settings& from) {
  to.*Member = from.*Member;
}
template <auto Member>
bool same_member(const Settings& a, const Settings& b) {
  return a.*Member == b.*Member;
}

struct KeyDef {
  std::string_view table;  // "" for the top level
  std::string_view name;
  std::string_view flag;
  ReadFn read;
  PrintFn print;
  CopyFn copy;
  EqualFn equal;
};

template <auto Member>
KeyDef def(std::string_view table, std::string_view name, std::string_view flag, ReadFn read, PrintFn print) {
  return KeyDef{table, name, flag, read, print, copy_member<Member>, same_member<Member>};
}

const std::vector<std::string_view> kModes = {"nat", "mirrored"};
const std::vector<std::string_view> kEngines = {"lwip", "slirp"};
const std::vector<std::string_view> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr int64_t kMaxFlows = 1 << 20;

const std::vector<KeyDef>& schema() {
  using S = Settings;
  static const std::vector<KeyDef> kKeys = {
      def<&S::mode>(
          "", "mode", "--mode", [](auto& n, auto& c, S& s) { s.mode = one_of(n, c, kModes); },
          [](const S& s) { return quote(s.mode); }),
      def<&S::engine>(
          "", "engine", "--engine", [](auto& n, auto& c, S& s) { s.engine = one_of(n, c, kEngines); },
          [](const S& s) { return quote(s.engine); }),
      // [network]
      def<&S::address>(
          "network", "address", "--address",
          [](auto& n, auto& c, S& s) { s.address = checked_string(n, c, check_cidr4, "a string ADDR/PREFIX"); },
          [](const S& s) { return quote(s.address); }),
      def<&S::gateway>(
          "network", "gateway", "--gateway",
          [](auto& n, auto& c, S& s) { s.gateway = checked_string(n, c, check_ipv4, "an IPv4 address string"); },
          [](const S& s) { return quote(s.gateway); }),
      def<&S::dns>(
          "network", "dns", "--dns",
          [](auto& n, auto& c, S& s) { s.dns = checked_string(n, c, check_ipv4, "an IPv4 address string"); },
          [](const S& s) { return quote(s.dns); }),
      def<&S::mac>(
          "network", "mac", "--mac",
          [](auto& n, auto& c, S& s) { s.mac = checked_string(n, c, check_mac, "a MAC address string"); },
          [](const S& s) { return quote(s.mac); }),
      def<&S::mtu>(
          "network", "mtu", "--mtu",
          [](auto& n, auto& c, S& s) { s.mtu = static_cast<uint32_t>(int_of(n, c, 576, 65520)); },
          [](const S& s) { return std::to_string(s.mtu); }),
      def<&S::interface>(
          "network", "interface", "--interface",
          [](auto& n, auto& c, S& s) { s.interface = checked_string(n, c, check_interface, "an interface name"); },
          [](const S& s) { return quote(s.interface); }),
      def<&S::no_host_loopback>(
          "network", "host_loopback", "--no-host-loopback",
          [](auto& n, auto& c, S& s) { s.no_host_loopback = !bool_of(n, c); },
          [](const S& s) { return bool_toml(!s.no_host_loopback); }),
      def<&S::restrict_guest>(
          "network", "restrict", "--restrict", [](auto& n, auto& c, S& s) { s.restrict_guest = bool_of(n, c); },
          [](const S& s) { return bool_toml(s.restrict_guest); }),
      def<&S::no_configure>(
          "network", "configure", "--no-configure", [](auto& n, auto& c, S& s) { s.no_configure = !bool_of(n, c); },
          [](const S& s) { return bool_toml(!s.no_configure); }),
      def<&S::no_offload>(
          "network", "offload", "--no-offload", [](auto& n, auto& c, S& s) { s.no_offload = !bool_of(n, c); },
          [](const S& s) { return bool_toml(!s.no_offload); }),
      def<&S::search>(
          "network", "search", "--search",
          [](auto& n, auto& c, S& s) { s.search = strings_of(n, c, check_domain, "domain names"); },
          [](const S& s) { return strings_toml(s.search); }),
      // [ipv6]
      def<&S::ipv6>(
          "ipv6", "enabled", "--ipv6", [](auto& n, auto& c, S& s) { s.ipv6 = bool_of(n, c); },
          [](const S& s) { return bool_toml(s.ipv6); }),
      def<&S::ipv6_prefix>(
          "ipv6", "prefix", "--ipv6-prefix",
          [](auto& n, auto& c, S& s) { s.ipv6_prefix = checked_string(n, c, check_cidr6, "a string ADDR/PREFIX"); },
          [](const S& s) { return quote(s.ipv6_prefix); }),
      def<&S::ipv6_gateway>(
          "ipv6", "gateway", "--ipv6-gateway",
          [](auto& n, auto& c, S& s) { s.ipv6_gateway = checked_string(n, c, check_ipv6, "an IPv6 address string"); },
          [](const S& s) { return quote(s.ipv6_gateway); }),
      def<&S::ipv6_dns>(
          "ipv6", "dns", "--ipv6-dns",
          [](auto& n, auto& c, S& s) { s.ipv6_dns = checked_string(n, c, check_ipv6, "an IPv6 address string"); },
          [](const S& s) { return quote(s.ipv6_dns); }),
      // [dns]
      def<&S::dns_upstreams>(
          "dns", "upstreams", "--dns-upstream",
          [](auto& n, auto& c, S& s) { s.dns_upstreams = strings_of(n, c, check_upstream, "ADDR[:PORT] strings"); },
          [](const S& s) { return strings_toml(s.dns_upstreams); }),
      def<&S::dns_routes>(
          "dns", "routes", "--dns-route",
          [](auto& n, auto& c, S& s) { s.dns_routes = strings_of(n, c, check_route, "SUFFIX=ADDR[:PORT] strings"); },
          [](const S& s) { return strings_toml(s.dns_routes); }),
      def<&S::dns_hosts>(
          "dns", "hosts_file", "--dns-hosts",
          [](auto& n, auto& c, S& s) { s.dns_hosts = checked_string(n, c, check_hosts_file, "a file name"); },
          [](const S& s) { return quote(s.dns_hosts); }),
      def<&S::no_dns_cache>(
          "dns", "cache", "--no-dns-cache", [](auto& n, auto& c, S& s) { s.no_dns_cache = !bool_of(n, c); },
          [](const S& s) { return bool_toml(!s.no_dns_cache); }),
      // Printed as the [dns.names] table by to_toml().
      def<&S::dns_names>(
          "dns", "names", "", [](auto& n, auto& c, S& s) { s.dns_names = names_of(n, c); },
          [](const S&) { return std::string(); }),
      // [forwarding]
      def<&S::publish>(
          "forwarding", "forwards", "--publish",
          [](auto& n, auto& c, S& s) {
            std::vector<std::string> rules;
            const auto& a = array_of(n, c, "forward rules");
            for (size_t i = 0; i < a.size(); ++i) rules.push_back(rule_of(a[i], c.item(i)));
            s.publish = rules;
          },
          [](const S& s) { return strings_toml(s.publish); }),
      def<&S::guest_forwards>(
          "forwarding", "guest_forwards", "--guest-forward",
          [](auto& n, auto& c, S& s) {
            s.guest_forwards = strings_of(n, c, check_guest_forward, "guest forwards ADDR:PORT=TARGET");
          },
          [](const S& s) { return strings_toml(s.guest_forwards); }),
      def<&S::forward_auto>(
          "forwarding", "auto", "--forward-auto", [](auto& n, auto& c, S& s) { s.forward_auto = bool_of(n, c); },
          [](const S& s) { return bool_toml(s.forward_auto); }),
      def<&S::forward_exclude>(
          "forwarding", "exclude", "--forward-exclude",
          [](auto& n, auto& c, S& s) {
            std::vector<uint16_t> ports;
            const auto& a = array_of(n, c, "ports");
            for (size_t i = 0; i < a.size(); ++i)
              ports.push_back(static_cast<uint16_t>(int_of(a[i], c.item(i), 1, 65535)));
            s.forward_exclude = ports;
          },
          [](const S& s) { return ports_toml(s.forward_exclude); }),
      def<&S::agent_port>(
          "forwarding", "agent_port", "--agent-port",
          [](auto& n, auto& c, S& s) { s.agent_port = static_cast<uint16_t>(int_of(n, c, 1, 65535)); },
          [](const S& s) { return std::to_string(s.agent_port); }),
      def<&S::publish_source>(
          "forwarding", "source", "--publish-source",
          [](auto& n, auto& c, S& s) {
            s.publish_source = one_of(n, c, {"client", "gateway"});
          },
          [](const S& s) { return quote(s.publish_source); }),
      // [tftp]
      def<&S::tftp_dir>(
          "tftp", "directory", "--tftp",
          [](auto& n, auto& c, S& s) { s.tftp_dir = checked_string(n, c, check_tftp_dir, "a directory name"); },
          [](const S& s) { return quote(s.tftp_dir); }),
      def<&S::boot_file>(
          "tftp", "boot_file", "--boot-file",
          [](auto& n, auto& c, S& s) { s.boot_file = checked_string(n, c, check_boot_file, "a file name"); },
          [](const S& s) { return quote(s.boot_file); }),
      // [limits]
      def<&S::max_tcp_flows>(
          "limits", "max_tcp_flows", "--max-tcp-flows",
          [](auto& n, auto& c, S& s) { s.max_tcp_flows = static_cast<size_t>(int_of(n, c, 1, kMaxFlows)); },
          [](const S& s) { return std::to_string(s.max_tcp_flows); }),
      def<&S::max_udp_flows>(
          "limits", "max_udp_flows", "--max-udp-flows",
          [](auto& n, auto& c, S& s) { s.max_udp_flows = static_cast<size_t>(int_of(n, c, 1, kMaxFlows)); },
          [](const S& s) { return std::to_string(s.max_udp_flows); }),
      def<&S::max_icmp_flows>(
          "limits", "max_icmp_flows", "--max-icmp-flows",
          [](auto& n, auto& c, S& s) { s.max_icmp_flows = static_cast<size_t>(int_of(n, c, 1, kMaxFlows)); },
          [](const S& s) { return std::to_string(s.max_icmp_flows); }),
      def<&S::max_new_flows_per_second>(
          "limits", "max_new_flows_per_second", "--max-new-flows-per-second",
          [](auto& n, auto& c, S& s) {
            s.max_new_flows_per_second = static_cast<uint32_t>(int_of(n, c, 0, kMaxFlows));
          },
          [](const S& s) { return std::to_string(s.max_new_flows_per_second); }),
      def<&S::max_buffered_mib>(
          "limits", "max_buffered_mib", "--max-buffered-mib",
          [](auto& n, auto& c, S& s) { s.max_buffered_mib = static_cast<uint32_t>(int_of(n, c, 0, 1 << 20)); },
          [](const S& s) { return std::to_string(s.max_buffered_mib); }),
      // [egress]
      def<&S::egress_allow>(
          "egress", "allow", "--allow",
          [](auto& n, auto& c, S& s) { s.egress_allow = strings_of(n, c, check_egress, "CIDR[:PORTS] strings"); },
          [](const S& s) { return strings_toml(s.egress_allow); }),
      def<&S::egress_deny>(
          "egress", "deny", "--deny",
          [](auto& n, auto& c, S& s) { s.egress_deny = strings_of(n, c, check_egress, "CIDR[:PORTS] strings"); },
          [](const S& s) { return strings_toml(s.egress_deny); }),
      // [sandbox]
      def<&S::no_sandbox>(
          "sandbox", "enabled", "--no-sandbox", [](auto& n, auto& c, S& s) { s.no_sandbox = !bool_of(n, c); },
          [](const S& s) { return bool_toml(!s.no_sandbox); }),
      // [faults]
      def<&S::link_faults>(
          "faults", "link", "--link-faults",
          [](auto& n, auto& c, S& s) {
            s.link_faults = checked_string(n, c, check_link_faults, "a string loss=P%,dup=P%,reorder=P%,corrupt=P%,"
                                                                    "delay=Nms,seed=N");
          },
          [](const S& s) { return quote(s.link_faults); }),
      // [log]
      def<&S::log_level>(
          "log", "level", "--log-level", [](auto& n, auto& c, S& s) { s.log_level = one_of(n, c, kLogLevels); },
          [](const S& s) { return quote(s.log_level); }),
      def<&S::pcap>(
          "log", "pcap", "--pcap", [](auto& n, auto& c, S& s) { s.pcap = string_of(n, c); },
          [](const S& s) { return quote(s.pcap); }),
      // [control]
      def<&S::control>(
          "control", "socket", "--control", [](auto& n, auto& c, S& s) { s.control = string_of(n, c); },
          [](const S& s) { return quote(s.control); }),
      // [dhcp]; printed as [[dhcp.static]] tables by to_toml().
      def<&S::dhcp_static>(
          "dhcp", "static", "", [](auto& n, auto& c, S& s) { s.dhcp_static = statics_of(n, c); },
          [](const S&) { return std::string(); }),
      // [serve]
      def<&S::vhost_user>(
          "serve", "vhost_user", "--vhost-user",
          [](auto& n, auto& c, S& s) { s.vhost_user = paths_of(n, c); },
          [](const S& s) { return strings_toml(s.vhost_user); }),
      def<&S::stream>(
          "serve", "stream", "--stream", [](auto& n, auto& c, S& s) { s.stream = paths_of(n, c); },
          [](const S& s) { return strings_toml(s.stream); }),
      def<&S::dgram>(
          "serve", "dgram", "--dgram", [](auto& n, auto& c, S& s) { s.dgram = paths_of(n, c); },
          [](const S& s) { return strings_toml(s.dgram); }),
      def<&S::netns>(
          "serve", "netns", "--netns", [](auto& n, auto& c, S& s) { s.netns = paths_of(n, c); },
          [](const S& s) { return strings_toml(s.netns); }),
      def<&S::vxlan>(
          "serve", "vxlan", "--vxlan", [](auto& n, auto& c, S& s) { s.vxlan = paths_of(n, c); },
          [](const S& s) { return strings_toml(s.vxlan); }),
      def<&S::isolate>(
          "serve", "isolate", "--isolate", [](auto& n, auto& c, S& s) { s.isolate = bool_of(n, c); },
          [](const S& s) { return bool_toml(s.isolate); }),
      // [mirrored]
      def<&S::mirrored_addresses>(
          "mirrored", "addresses", "--mirrored-addresses",
          [](auto& n, auto& c, S& s) {
            s.mirrored_addresses = one_of(n, c, {"loopback", "all"});
          },
          [](const S& s) { return quote(s.mirrored_addresses); }),
  };
  return kKeys;
}

std::string full_name(const KeyDef& k) {
  return k.table.empty() ? std::string(k.name) : std::string(k.table) + "." + std::string(k.name);
}

const KeyDef* find_key(std::string_view name) {
  for (const auto& k : schema())
    if (full_name(k) == name) return &k;
  return nullptr;
}

// The tables of the schema, in order, and the keys of one.
std::vector<std::string_view> table_names() {
  std::vector<std::string_view> out;
  for (const auto& k : schema())
    if (!k.table.empty() && (out.empty() || out.back() != k.table)) out.push_back(k.table);
  return out;
}

std::vector<std::string_view> keys_of(std::string_view table) {
  std::vector<std::string_view> out;
  for (const auto& k : schema())
    if (k.table == table) out.push_back(k.name);
  return out;
}

// ------------------------------------------------------------- cross checks

using Positions = std::map<std::string, toml::source_region>;

// Checks that involve several keys; the error points at the first of
// `candidates` the file set (or has no position).
void check_together(const Settings& s, const Positions& where, const std::string& file) {
  auto fail = [&](std::vector<std::string> candidates, std::string message) {
    for (const auto& k : candidates)
      if (auto it = where.find(k); it != where.end())
        throw ConfigError(file, it->second.begin.line, it->second.begin.column, k, std::move(message));
    throw ConfigError(file, 0, 0, candidates.front(), std::move(message));
  };
  if (auto net = parse_cidr4(s.address)) {
    auto [guest, prefix] = *net;
    auto gw = wire::Ipv4Addr::parse(s.gateway);
    auto dns = wire::Ipv4Addr::parse(s.dns);
    if (gw && !gw->in_subnet(guest, prefix))
      fail({"network.gateway", "network.address"},
           quote(s.gateway) + " is not in " + s.address + "; allowed: an address in network.address");
    if (dns && !dns->in_subnet(guest, prefix))
      fail({"network.dns", "network.address"},
           quote(s.dns) + " is not in " + s.address + "; allowed: an address in network.address");
    if ((gw && *gw == guest) || (dns && *dns == guest))
      fail({"network.address", "network.gateway", "network.dns"},
           "the guest address must differ from the gateway and DNS addresses; allowed: another address in the subnet");
  }
  if (auto net = parse_cidr6(s.ipv6_prefix)) {
    auto [prefix_addr, len] = *net;
    auto gw = parse_ipv6(s.ipv6_gateway);
    auto dns = parse_ipv6(s.ipv6_dns);
    if (gw && !in_prefix6(*gw, prefix_addr, len))
      fail({"ipv6.gateway", "ipv6.prefix"},
           quote(s.ipv6_gateway) + " is not in " + s.ipv6_prefix + "; allowed: an address in ipv6.prefix");
    if (dns && !in_prefix6(*dns, prefix_addr, len))
      fail({"ipv6.dns", "ipv6.prefix"},
           quote(s.ipv6_dns) + " is not in " + s.ipv6_prefix + "; allowed: an address in ipv6.prefix");
  }
  {
    // Guest forwards: a free address of the guest's subnet, each ADDR:PORT once.
    auto net = parse_cidr4(s.address);
    auto gw = wire::Ipv4Addr::parse(s.gateway);
    auto dns = wire::Ipv4Addr::parse(s.dns);
    std::set<std::string> seen;
    if (!s.guest_forwards.empty() && s.mode == "mirrored")
      fail({"forwarding.guest_forwards", "mode"},
           "guest forwards are not available in mirrored mode (the guest's subnet is the host's real link); "
           "allowed: mode = \"nat\"");
    for (const auto& text : s.guest_forwards) {
      std::string err;
      auto f = engine::parse_guest_forward(text, &err);
      if (!f) continue;  // reported when read
      if (!seen.insert(f->addr.to_string() + ":" + std::to_string(f->port)).second)
        fail({"forwarding.guest_forwards"}, quote(text) + ": " + f->addr.to_string() + ":" + std::to_string(f->port) +
                                                " is forwarded twice; allowed: one target per ADDR:PORT");
      if (net) {
        const uint32_t host_bits = ~(~0u << (32 - net->second));
        const uint32_t host = f->addr.value & host_bits;
        if (!f->addr.in_subnet(net->first, net->second) || f->addr == net->first || (gw && f->addr == *gw) ||
            (dns && f->addr == *dns) || host == 0 || host == host_bits)
          fail({"forwarding.guest_forwards", "network.address"},
               quote(text) + ": " + f->addr.to_string() + " cannot be a guest forward's address in " + s.address +
                   "; allowed: a free host address of network.address (not the guest's, the gateway's or the DNS "
                   "address)");
      }
    }
  }
  if (s.mode == "mirrored" && !s.tftp_dir.empty())
    fail({"tftp.directory", "mode"},
         "a TFTP server is not available in mirrored mode (the gateway address is the host's real router); "
         "allowed: mode = \"nat\"");
  if (s.mode == "mirrored" && !s.boot_file.empty())
    fail({"tftp.boot_file", "mode"},
         "a boot file is not available in mirrored mode (it names the gateway as the TFTP server); allowed: mode = "
         "\"nat\"");
  if (s.engine == "slirp") {
    // What libslirp cannot do is refused, not dropped (README, "Engines").
    const Settings d;
    const std::string no = " is not available with engine \"slirp\"";
    if (s.mode == "mirrored")
      fail({"mode", "engine"}, "mirrored mode" + no + " (libslirp serves a private network only); allowed: engine = \"lwip\"");
    if (s.publish_source == "gateway")
      fail({"forwarding.source", "engine"},
           "source = \"gateway\"" + no + " (libslirp's host forwards show the client); allowed: \"client\"");
    if (s.max_tcp_flows != d.max_tcp_flows)
      fail({"limits.max_tcp_flows", "engine"}, "a TCP flow limit" + no + " (libslirp has none); allowed: the default");
    if (s.max_udp_flows != d.max_udp_flows)
      fail({"limits.max_udp_flows", "engine"}, "a UDP flow limit" + no + " (libslirp has none); allowed: the default");
    if (s.max_new_flows_per_second != d.max_new_flows_per_second)
      fail({"limits.max_new_flows_per_second", "engine"},
           "a new-flow rate limit" + no + " (libslirp has none); allowed: the default");
    if (s.max_buffered_mib != d.max_buffered_mib)
      fail({"limits.max_buffered_mib", "engine"},
           "a buffered-bytes budget" + no + " (libslirp has none); allowed: the default");
  }
  std::set<std::string> macs, addresses, names;
  auto net = parse_cidr4(s.address);
  for (const auto& st : s.dhcp_static) {
    auto mac = wire::MacAddr::parse(st.mac);
    auto addr = wire::Ipv4Addr::parse(st.address);
    if (mac && !macs.insert(mac->to_string()).second)
      fail({"dhcp.static"}, quote(st.mac) + " has two static leases; allowed: one per MAC");
    if (!addresses.insert(st.address).second)
      fail({"dhcp.static"}, quote(st.address) + " is given twice; allowed: one MAC per address");
    if (!st.name.empty() && !names.insert(st.name).second)
      fail({"dhcp.static"}, quote(st.name) + " names two leases; allowed: one lease per name");
    if (net && addr) {
      auto gw = wire::Ipv4Addr::parse(s.gateway);
      auto dns = wire::Ipv4Addr::parse(s.dns);
      const uint32_t host_bits = ~(~0u << (32 - net->second));
      const uint32_t host = addr->value & host_bits;
      if (!addr->in_subnet(net->first, net->second) || (gw && *addr == *gw) || (dns && *addr == *dns) || host == 0 ||
          host == host_bits)
        fail({"dhcp.static", "network.address"},
             quote(st.address) + " cannot be leased in " + s.address +
                 "; allowed: a host address in network.address other than the gateway and DNS addresses");
    }
  }
}

}  // namespace

// ------------------------------------------------------------- public

ConfigError::ConfigError(std::string file, uint32_t line, uint32_t column, std::string key, std::string message)
    : std::runtime_error(file + (line > 0 ? ":" + std::to_string(line) + ":" + std::to_string(column) : "") + ": " +
                         (key.empty() ? "" : key + ": ") + message),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      message_(std::move(message)) {}

const std::vector<Key>& keys() {
  static const std::vector<Key> kPublic = [] {
    std::vector<Key> out;
    for (const auto& k : schema()) out.push_back(Key{full_name(k), k.flag});
    return out;
  }();
  return kPublic;
}

Loaded parse(std::string_view text, const std::string& path, const Settings& base) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, e.source().begin.line, e.source().begin.column, "",
                      "TOML syntax error: " + std::string(e.description()));
  }
  Loaded out{base, {}};
  Positions where;
  std::vector<std::string_view> top = {"mode", "engine"};
  for (auto t : table_names()) top.push_back(t);

  auto read_key = [&](const KeyDef& def, const toml::node& value) {
    std::string name = full_name(def);
    def.read(value, Ctx{path, name}, out.settings);
    out.keys.insert(name);
    where[name] = value.source();
  };
  for (auto&& [k, v] : root) {
    std::string_view name = k.str();
    if (name == "mode" || name == "engine") {
      read_key(*find_key(name), v);
      continue;
    }
    auto tables = table_names();
    if (std::find(tables.begin(), tables.end(), name) == tables.end())
      throw ConfigError(path, k.source().begin.line, k.source().begin.column, key_text(name),
                        "unknown key; allowed: " + join(top));
    auto table = v.as_table();
    if (!table)
      throw ConfigError(path, v.source().begin.line, v.source().begin.column, std::string(name),
                        "expected a table, got " + describe(v) + "; allowed: [" + std::string(name) + "] with " +
                            join(keys_of(name)));
    for (auto&& [tk, tv] : *table) {
      std::string full = std::string(name) + "." + std::string(tk.str());
      const KeyDef* def = find_key(full);
      if (def == nullptr)
        throw ConfigError(path, tk.source().begin.line, tk.source().begin.column,
                          std::string(name) + "." + key_text(tk.str()), "unknown key; allowed: " + join(keys_of(name)));
      read_key(*def, tv);
    }
  }
  check_together(out.settings, where, path);
  return out;
}

Loaded load_file(const std::string& path, const Settings& base) {
  auto file = sys::read_regular_file(path, kMaxFileBytes);
  if (!file) throw ConfigError(path, 0, 0, "", "cannot read the configuration file: " + file.why());
  return parse(file.text, path, base);
}

void merge(Settings& into, const Loaded& file, const std::set<std::string>& given) {
  for (const auto& k : schema()) {
    auto name = full_name(k);
    if (file.keys.count(name) != 0 && given.count(name) == 0) k.copy(into, file.settings);
  }
}

bool differs(const Settings& a, const Settings& b, std::string_view name) {
  const KeyDef* k = find_key(name);
  return k != nullptr && !k->equal(a, b);
}

void check(const Settings& s, const std::string& origin) {
  auto value = [&](std::string_view key, std::string message) {
    if (!message.empty()) throw ConfigError(origin, 0, 0, std::string(key), std::move(message));
  };
  auto member = [](std::string_view v, const std::vector<std::string_view>& allowed) {
    if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return std::string();
    return quote(v) + " is not allowed; allowed: " + join(allowed);
  };
  value("mode", member(s.mode, kModes));
  value("engine", member(s.engine, kEngines));
  value("ipv6.prefix", check_cidr6(s.ipv6_prefix));
  value("ipv6.gateway", check_ipv6(s.ipv6_gateway));
  value("ipv6.dns", check_ipv6(s.ipv6_dns));
  value("mirrored.addresses", member(s.mirrored_addresses, {"loopback", "all"}));
  value("dns.hosts_file", check_hosts_file(s.dns_hosts));
  value("tftp.directory", check_tftp_dir(s.tftp_dir));
  value("tftp.boot_file", check_boot_file(s.boot_file));
  for (const auto& [name, addrs] : s.dns_names)
    for (const auto& a : addrs) value("dns.names." + key_text(name), check_name_address(a));
  check_together(s, {}, origin);
}

std::string to_toml(const Settings& s) {
  std::string out = "# slipway configuration: every setting with its value\n";
  out += "mode = " + quote(s.mode) + "\n";
  out += "engine = " + quote(s.engine) + "\n";
  for (auto table : table_names()) {
    out += "\n[" + std::string(table) + "]\n";
    for (const auto& k : schema())
      if (k.table == table && !(table == "dns" && k.name == "names") && !(table == "dhcp" && k.name == "static"))
        out += std::string(k.name) + " = " + k.print(s) + "\n";
    if (table == "dhcp") {
      for (const auto& st : s.dhcp_static) {
        out += "\n[[dhcp.static]]\nmac = " + quote(st.mac) + "\naddress = " + quote(st.address) + "\n";
        if (!st.name.empty()) out += "name = " + quote(st.name) + "\n";
      }
    }
    if (table == "dns") {
      out += "\n[dns.names]\n";
      for (const auto& [name, addrs] : s.dns_names)
        out += key_text(name) + " = " + (addrs.size() == 1 ? quote(addrs.front()) : strings_toml(addrs)) + "\n";
    }
  }
  return out;
}

}  // namespace slipway::config
