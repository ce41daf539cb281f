#include "netstack/cli/port_spec.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "netstack/link/tap_port.h"
#include "netstack/link/vm_transports.h"
#include "netstack/link/vxlan_port.h"

namespace slipway::cli {
namespace {

struct KindName {
  PortSpec::Kind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {PortSpec::Kind::kVhostUser, "vhost-user"}, {PortSpec::Kind::kStream, "stream"},
    {PortSpec::Kind::kDgram, "dgram"},          {PortSpec::Kind::kNetns, "netns"},
    {PortSpec::Kind::kVxlan, "vxlan"},          {PortSpec::Kind::kGateway, "gateway"},
};

std::string_view kind_name(PortSpec::Kind k) {
  for (const auto& n : kKinds)
    if (n.kind == k) return n.name;
  return "?";
}

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw std::invalid_argument("port '" + std::string(text) + "': " + why);
}

std::optional<uint32_t> number(std::string_view s, uint32_t max) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > max) return std::nullopt;
  return v;
}

uint16_t vlan_id(std::string_view text, std::string_view s) {
  auto v = number(s, 4094);
  if (!v || *v == 0) bad(text, "VLAN '" + std::string(s) + "' is not a number from 1 to 4094");
  return static_cast<uint16_t>(*v);
}

// A name a person would use for the port: the file name without its
// extension, an ip-netns name, "pidN".
std::string derived_name(const PortSpec& s) {
  switch (s.kind) {
    case PortSpec::Kind::kGateway:
      return "gateway";
    case PortSpec::Kind::kVxlan:
      return "vxlan" + std::to_string(s.vni);
    case PortSpec::Kind::kNetns:
      if (number(s.value, ~0u)) return "pid" + s.value;
      [[fallthrough]];
    default: {
      std::string v = s.value;
      while (v.size() > 1 && v.back() == '/') v.pop_back();
      auto slash = v.rfind('/');
      std::string base = slash == std::string::npos ? v : v.substr(slash + 1);
      if (s.kind != PortSpec::Kind::kNetns) {
        auto dot = base.find('.');
        if (dot != std::string::npos && dot > 0) base.resize(dot);
      }
      return base.empty() ? std::string(kind_name(s.kind)) : base;
    }
  }
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// /run/netns/NAME -> NAME, else "".
std::string ip_netns_name(const std::string& target) {
  constexpr std::string_view kDir = "/run/netns/";
  if (target.rfind(kDir, 0) != 0) return "";
  std::string name = target.substr(kDir.size());
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") return "";
  return name;
}

// The nameservers of `iface` in /etc/netns/NAME/resolv.conf, which `ip
// netns exec NAME` mounts over /etc/resolv.conf.
void write_netns_resolv_conf(const std::string& name, const ns::GuestInterface& iface) {
  const std::string dir = "/etc/netns/" + name;
  if (::mkdir("/etc/netns", 0755) != 0 && errno != EEXIST) return;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    spdlog::warn("netns {}: cannot create {}: {}", name, dir, std::strerror(errno));
    return;
  }
  std::ofstream out(dir + "/resolv.conf", std::ios::trunc);
  out << "# written by slipway for the namespace " << name << "\n";
  if (iface.dns != 0) out << "nameserver " << wire::Ipv4Addr(iface.dns).to_string() << "\n";
  for (const auto& n : iface.nameservers) out << "nameserver " << n << "\n";
  if (!iface.search.empty()) {
    out << "search";
    for (const auto& s : iface.search) out << ' ' << s;
    out << "\n";
  }
  if (!out) spdlog::warn("netns {}: cannot write {}/resolv.conf", name, dir);
}

// The remote and local endpoints of a vxlan spec, checked as VxlanPort::open
// would refuse them, so that a bad spec fails before anything is opened.
void check_vxlan(std::string_view text, const PortSpec& s) {
  auto remote = link::VxlanEndpoint::parse(s.value);
  if (!remote)
    bad(text, "vxlan remote '" + s.value + "' is not ADDR, ADDR:PORT, [V6ADDR] or [V6ADDR]:PORT (a numeric address)");
  if (remote->is_unspecified() || remote->is_multicast())
    bad(text, "vxlan remote '" + s.value + "' is not a unicast address (multicast groups are not supported)");
  if (remote->port == 0) bad(text, "vxlan remote '" + s.value + "': port 0");
  if (!s.local.empty()) {
    auto local = link::VxlanEndpoint::parse(s.local);
    if (!local) bad(text, "local '" + s.local + "' is not ADDR, ADDR:PORT, [V6ADDR] or [V6ADDR]:PORT");
    if (local->is_multicast()) bad(text, "local '" + s.local + "' is a multicast address");
    if (local->is_v6() != remote->is_v6())
      bad(text, "local '" + s.local + "' and remote '" + s.value + "' are of different address families");
  }
}

}  // namespace

std::string PortSpec::to_string() const {
  std::string s(kind_name(kind));
  if (!value.empty()) s += ":" + value;
  s += ",name=" + options.name;
  if (options.mode == vswitch::PortOptions::Mode::kAccess) s += ",vlan=" + std::to_string(options.vlan);
  if (options.mode == vswitch::PortOptions::Mode::kTrunk) {
    s += ",trunk=";
    for (size_t i = 0; i < options.trunk.size(); ++i) s += (i ? "+" : "") + std::to_string(options.trunk[i]);
  }
  if (kind == Kind::kVxlan) s += ",vni=" + std::to_string(vni) + (local.empty() ? "" : ",local=" + local);
  if (mtu != 0) s += ",mtu=" + std::to_string(mtu);
  return s;
}

PortSpec parse_port_spec(std::string_view text) {
  PortSpec s;
  auto comma = text.find(',');
  std::string_view head = text.substr(0, comma);
  auto colon = head.find(':');
  std::string_view kind = head.substr(0, colon);
  bool known = false;
  for (const auto& k : kKinds)
    if (k.name == kind) {
      s.kind = k.kind;
      known = true;
    }
  if (!known) bad(text, "unknown kind '" + std::string(kind) + "'; allowed: vhost-user, stream, dgram, netns, vxlan, gateway");
  if (colon != std::string_view::npos) s.value = std::string(head.substr(colon + 1));
  if (s.value.empty() && s.kind != PortSpec::Kind::kGateway)
    bad(text, std::string(kind) + " needs a value (" + std::string(kind) + ":...)");

  bool have_vni = false;
  while (comma != std::string_view::npos) {
    auto next = text.find(',', comma + 1);
    std::string_view opt = text.substr(comma + 1, next == std::string_view::npos ? next : next - comma - 1);
    comma = next;
    auto eq = opt.find('=');
    if (eq == std::string_view::npos) bad(text, "option '" + std::string(opt) + "' is not KEY=VALUE");
    std::string_view key = opt.substr(0, eq), val = opt.substr(eq + 1);
    if (key == "name") {
      if (!valid_name(val)) bad(text, "name '" + std::string(val) + "': 1 to 63 letters, digits, '-', '_' or '.'");
      s.options.name = std::string(val);
    } else if (key == "vlan") {
      if (s.options.mode != vswitch::PortOptions::Mode::kPlain) bad(text, "vlan= and trunk= exclude each other");
      s.options.mode = vswitch::PortOptions::Mode::kAccess;
      s.options.vlan = vlan_id(text, val);
    } else if (key == "trunk") {
      if (s.options.mode != vswitch::PortOptions::Mode::kPlain) bad(text, "vlan= and trunk= exclude each other");
      s.options.mode = vswitch::PortOptions::Mode::kTrunk;
      for (size_t start = 0;;) {
        auto plus = val.find('+', start);
        s.options.trunk.push_back(vlan_id(text, val.substr(start, plus == std::string_view::npos ? plus : plus - start)));
        if (plus == std::string_view::npos) break;
        start = plus + 1;
      }
    } else if (key == "ifname" && s.kind == PortSpec::Kind::kNetns) {
      if (val.empty() || val.size() > 15) bad(text, "ifname needs 1 to 15 characters");
      s.ifname = std::string(val);
    } else if (key == "mac" && s.kind == PortSpec::Kind::kNetns) {
      auto m = wire::MacAddr::parse(val);
      if (!m || m->is_multicast() || m->is_zero()) bad(text, "'" + std::string(val) + "' is not a unicast MAC address");
      s.mac = m;
    } else if (key == "vni" && s.kind == PortSpec::Kind::kVxlan) {
      auto v = number(val, 0xffffff);
      if (!v) bad(text, "vni '" + std::string(val) + "' is not a number from 0 to 16777215");
      s.vni = *v;
      have_vni = true;
    } else if (key == "local" && s.kind == PortSpec::Kind::kVxlan) {
      s.local = std::string(val);
    } else if (key == "mtu" && (s.kind == PortSpec::Kind::kVxlan || s.kind == PortSpec::Kind::kNetns)) {
      const uint32_t max = s.kind == PortSpec::Kind::kVxlan ? static_cast<uint32_t>(kVxlanMaxMtu) : 65520;
      auto v = number(val, max);
      if (!v || *v < 68) bad(text, "mtu '" + std::string(val) + "' is not a number from 68 to " + std::to_string(max));
      s.mtu = *v;
    } else {
      bad(text, "unknown option '" + std::string(key) + "' for " + std::string(kind));
    }
  }
  if (s.kind == PortSpec::Kind::kVxlan) {
    if (!have_vni) bad(text, "vxlan needs vni=N (0 to 16777215)");
    check_vxlan(text, s);
    s.options.uplink = true;  // a link to other hosts: isolated ports reach it
    // The switch drops (and counts) what the tunnel would not carry.
    s.options.mtu = s.mtu != 0 ? s.mtu : kVxlanDefaultMtu;
  }
  if (s.options.name.empty()) s.options.name = derived_name(s);
  if (!valid_name(s.options.name)) s.options.name = std::string(kind_name(s.kind));
  return s;
}

PortSpec parse_port_spec(PortSpec::Kind kind, std::string_view text) {
  return parse_port_spec(std::string(kind_name(kind)) + ":" + std::string(text));
}

wire::MacAddr netns_mac(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  // 02: locally administered, unicast.
  return wire::MacAddr{{0x02, static_cast<uint8_t>(h >> 32), static_cast<uint8_t>(h >> 24),
                        static_cast<uint8_t>(h >> 16), static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h)}};
}

std::unique_ptr<link::Port> open_vm_port(uv_loop_t* loop, const PortSpec& spec, size_t mtu) {
  switch (spec.kind) {
    case PortSpec::Kind::kVhostUser:
      return link::listen_vhost_user(loop, spec.value, mtu);
    case PortSpec::Kind::kStream:
      return link::listen_stream(loop, spec.value, mtu);
    case PortSpec::Kind::kDgram:
      return link::bind_dgram(loop, spec.value, mtu);
    default:
      throw std::logic_error("open_vm_port: not a VM port: " + spec.to_string());
  }
}

std::unique_ptr<link::Port> open_netns_port(uv_loop_t* loop, const PortSpec& spec, ns::GuestInterface iface,
                                            stack::Stack* stack) {
  iface.name = spec.ifname;
  if (spec.mtu != 0) iface.mtu = static_cast<uint32_t>(spec.mtu);
  iface.mac = (spec.mac ? *spec.mac : netns_mac(spec.options.name)).octets;
  if (stack != nullptr) {
    auto lease = stack->gateway().bind_lease(wire::MacAddr{iface.mac}, spec.options.name);
    if (!lease)
      throw std::runtime_error("netns " + spec.value + ": no address left in the DHCP pool for " +
                               wire::MacAddr{iface.mac}.to_string());
    iface.address = lease->value;
  } else {
    iface.configure = false;
  }
  int fd = ns::open_tap_in_namespace(spec.value, iface);
  if (stack != nullptr && iface.configure) {
    std::string name = ip_netns_name(spec.value);
    if (!name.empty()) write_netns_resolv_conf(name, iface);
  }
  spdlog::info("port {}: {} in namespace {}{}", spec.options.name, iface.name, spec.value,
               stack != nullptr && iface.configure ? " as " + wire::Ipv4Addr(iface.address).to_string() : "");
  return std::make_unique<link::TapPort>(loop, fd, iface.mtu + 14, iface.offload);
}

std::unique_ptr<link::Port> open_vxlan_port(uv_loop_t* loop, const PortSpec& spec) {
  if (spec.kind != PortSpec::Kind::kVxlan) throw std::logic_error("open_vxlan_port: not a vxlan port: " + spec.to_string());
  check_vxlan(spec.to_string(), spec);
  link::VxlanConfig config;
  config.remote = *link::VxlanEndpoint::parse(spec.value);
  config.vni = spec.vni;
  if (!spec.local.empty()) config.local = link::VxlanEndpoint::parse(spec.local);
  config.mtu = spec.mtu != 0 ? spec.mtu : kVxlanDefaultMtu;
  auto port = link::VxlanPort::open(loop, config);
  spdlog::info("port {}: VXLAN VNI {} from {} to {}, inner MTU {}", spec.options.name, spec.vni,
               port->local().to_string(), config.remote.to_string(), config.mtu);
  return port;
}

void warn_vxlan_mtu(const PortSpec& spec, size_t gateway_mtu) {
  const size_t inner = spec.mtu != 0 ? spec.mtu : kVxlanDefaultMtu;
  if (spec.kind == PortSpec::Kind::kVxlan && gateway_mtu > inner)
    spdlog::warn("port {}: the gateway tells guests MTU {} but the tunnel carries {}: give --mtu {} (or the port "
                 "a larger ,mtu=, up to {})",
                 spec.options.name, gateway_mtu, inner, inner, kVxlanMaxMtu);
}

vswitch::Switch::PortId add_port(uv_loop_t* loop, stack::Stack& stack, PortSpec spec,
                                 const ns::GuestInterface& iface) {
  if (stack.vswitch() == nullptr) throw std::logic_error("add_port: the stack has no switch");
  if (stack.vswitch()->find(spec.options.name))
    throw std::invalid_argument("a port named '" + spec.options.name + "' exists");
  std::unique_ptr<link::Port> port;
  if (spec.kind == PortSpec::Kind::kNetns) {
    port = open_netns_port(loop, spec, iface, &stack);
  } else if (spec.kind == PortSpec::Kind::kVhostUser || spec.kind == PortSpec::Kind::kStream ||
             spec.kind == PortSpec::Kind::kDgram) {
    port = open_vm_port(loop, spec, iface.mtu);
  } else if (spec.kind == PortSpec::Kind::kVxlan) {
    warn_vxlan_mtu(spec, stack.config().gateway.mtu);
    port = open_vxlan_port(loop, spec);
  } else {
    throw std::invalid_argument("port '" + spec.to_string() + "': only vhost-user, stream, dgram, netns and vxlan "
                                "ports can be added here");
  }
  return stack.add_guest(std::move(port), spec.options);
}

}  // namespace slipway::cli
