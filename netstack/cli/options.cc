// See options.h.
#include "netstack/cli/options.h"

#include <charconv>

#include "dns-proxy/upstreams.h"
#include "netstack/engine/guest_forward.h"
#include "portfwd/rule.h"

namespace slipway::cli {
namespace {

wire::Ipv4Addr parse_addr(const std::string& what, const std::string& text) {
  auto a = wire::Ipv4Addr::parse(text);
  if (!a) throw CLI::ValidationError(what, "'" + text + "' is not an IPv4 address");
  return *a;
}

wire::Ipv6Addr parse_addr6(const std::string& what, const std::string& text) {
  auto a = wire::Ipv6Addr::parse(text);
  if (!a) throw CLI::ValidationError(what, "'" + text + "' is not an IPv6 address");
  return *a;
}

std::pair<wire::Ipv4Addr, unsigned> parse_cidr(const std::string& what, const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) throw CLI::ValidationError(what, "'" + text + "' needs a prefix, as in 10.0.2.15/24");
  auto addr = parse_addr(what, text.substr(0, slash));
  unsigned prefix = 0;
  auto tail = text.substr(slash + 1);
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), prefix);
  if (ec != std::errc() || p != tail.data() + tail.size() || prefix < 8 || prefix > 30)
    throw CLI::ValidationError(what, "prefix length must be 8 to 30, not '" + tail + "'");
  return {addr, prefix};
}

// The flag that sets a configuration key, for messages about flags.
std::string flag_for(const std::string& key) {
  for (const auto& k : config::keys())
    if (k.name == key && !k.flag.empty()) return std::string(k.flag);
  return key;
}

}  // namespace

void NetworkOptions::add_to(CLI::App& app) {
  app.add_option("--config", config_file,
                 "Read the settings from this TOML file first (examples/nat.toml); flags given here override it. "
                 "SIGHUP re-reads its forwards and DNS settings");
  app.add_option("--mode", mode,
                 "Networking mode: nat (a private guest network) or mirrored (the guest gets the host's addresses, "
                 "routes, MTU and DNS; the gateway address reaches the host's loopback)")
      ->check(CLI::IsMember({"nat", "mirrored"}))
      ->capture_default_str();
  app.add_option("--engine", engine,
                 "What terminates the guest's TCP and UDP: lwip (slipway's own, the default) or slirp (libslirp, "
                 "QEMU's user network; see README \"Engines\" for the differences)")
      ->check(CLI::IsMember({"lwip", "slirp"}))
      ->capture_default_str();
  app.add_option("--address", address, "Guest IPv4 address and prefix length")->capture_default_str();
  app.add_option("--gateway", gateway, "Gateway address; connections to it reach the host's loopback")
      ->capture_default_str();
  app.add_option("--dns", dns, "DNS address announced to the guest")->capture_default_str();
  app.add_option("--mac", mac, "Guest MAC address")->capture_default_str();
  app.add_option("--mtu", mtu, "MTU of the guest interface")->check(CLI::Range(576u, 65520u))->capture_default_str();
  app.add_option("--interface", interface, "Name of the guest interface")->capture_default_str();
  app.add_flag("--no-host-loopback", no_host_loopback,
               "Refuse connections to the gateway address instead of relaying them to the host's loopback");
  app.add_flag("--restrict", restrict_guest,
               "The guest reaches only the gateway's own services (DHCP, DNS, ping to the gateway) and answers "
               "within published ports: no outbound connection, the host's loopback included (QEMU's restrict=on)");
  app.add_flag("--no-configure", no_configure,
               "Only create the interface and bring it up (for a DHCP client in the guest)");
  app.add_flag("--no-offload", no_offload,
               "run/attach: plain frames on the TAP, without checksum and segmentation offload (IFF_VNET_HDR)");
  app.add_option("--search", search, "DNS search domain for the guest (repeatable)");
  app.add_option("--pcap", pcap, "Record every frame on the guest link to FILE (pcap format)");
  app.add_option("--max-tcp-flows", max_tcp_flows, "Most TCP connections at once")->capture_default_str();
  app.add_option("--max-udp-flows", max_udp_flows, "Most UDP mappings at once")->capture_default_str();
  app.add_option("--max-icmp-flows", max_icmp_flows, "Most ping sockets at once (the least recently used is closed)")
      ->capture_default_str();
  app.add_option("--max-new-flows-per-second", max_new_flows_per_second,
                 "Most new outbound TCP connections and UDP mappings a second (0: no limit)")
      ->check(CLI::Range(0u, 1u << 20))
      ->capture_default_str();
  app.add_option("--max-buffered-mib", max_buffered_mib,
                 "Most MiB of data held for all flows together before they wait (0: no limit)")
      ->check(CLI::Range(0u, 1u << 20))
      ->capture_default_str();
  app.add_option("--allow", egress_allow,
                 "Let the guest reach CIDR[:PORTS] (80, 1000-2000, 80,443; IPv6 with ports as [NET/LEN]:PORTS) "
                 "even where a --deny rule or the built-in metadata rule covers it (repeatable)")
      ->type_name("CIDR[:PORTS]");
  app.add_option("--deny", egress_deny,
                 "Refuse the guest's TCP, UDP and ping to CIDR[:PORTS] with ICMP administratively prohibited; "
                 "cloud metadata (169.254.169.254, fd00:ec2::254) is denied unless allowed (repeatable)")
      ->type_name("CIDR[:PORTS]");
  app.add_option("--link-faults", link_faults,
                 "Make the guest link unreliable, for testing stacks: loss=P%,dup=P%,reorder=P%,corrupt=P%,"
                 "delay=Nms,seed=N (any subset)")
      ->type_name("SPEC");
  app.add_flag("--no-sandbox", no_sandbox,
               "Do not confine the process after set-up (no seccomp filter, capabilities kept)");
  app.add_option("--dns-upstream", dns_upstreams,
                 "DNS server ADDR[:PORT] that answers the guest's queries (repeatable; default: the host's "
                 "/etc/resolv.conf)");
  app.add_option("--dns-route", dns_routes, "Split DNS: SUFFIX=ADDR[:PORT] answers names under SUFFIX (repeatable)");
  app.add_option("--dns-hosts", dns_hosts, "A hosts-style file of extra names answered at the DNS address");
  app.add_flag("--no-dns-cache", no_dns_cache, "Do not cache DNS answers");
  app.add_option("-p,--publish", publish,
                 "Publish a guest port on the host: [HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp] "
                 "(HOSTADDR defaults to 127.0.0.1; repeatable)");
  app.add_option("--guest-forward", guest_forwards,
                 "A virtual ADDR:PORT in the guest's subnet whose TCP connections reach a host target instead: "
                 "ADDR:PORT=tcp:HOSTADDR:PORT, ADDR:PORT=unix:PATH or ADDR:PORT=cmd:COMMAND (run by /bin/sh -c per "
                 "connection, its stdin/stdout/stderr the connection) (QEMU's guestfwd; also with --restrict; "
                 "repeatable)")
      ->type_name("ADDR:PORT=TARGET");
  app.add_option("--tftp", tftp_dir,
                 "Serve the files of DIR read-only over TFTP at the gateway address (UDP port 69; for network boot; "
                 "also with --restrict)")
      ->type_name("DIR");
  app.add_option("--boot-file", boot_file,
                 "DHCP tells the guest to boot NAME from the gateway (options 66/67, next-server and file): a file "
                 "in the --tftp directory, or a URL that iPXE fetches itself")
      ->type_name("NAME");
  app.add_option("--publish-source", publish_source,
                 "Source address the guest sees on published ports: the real client's (loopback clients appear "
                 "as the gateway) or always the gateway's")
      ->check(CLI::IsMember({"client", "gateway"}))
      ->capture_default_str();
  app.add_option("--control", control,
                 "Serve the JSON control API on this unix socket (mode 0600): forwards, flows, stats; "
                 "`portfwd --control PATH ...` is its command line");
  app.add_flag("--forward-auto,!--no-forward-auto", forward_auto,
               std::string("Publish the ports the guest listens on at the host's 127.0.0.1 automatically (default: ") +
                   (forward_auto ? "on)" : "off)"));
  app.add_option("--agent-port", agent_port,
                 "VM mode: the gateway port portfwd-agent reports the guest's listeners to (with --forward-auto)")
      ->capture_default_str();
  app.add_option("--forward-exclude", forward_exclude, "A guest port never forwarded automatically (repeatable)");
  app.add_flag("--ipv6,!--no-ipv6", ipv6,
               std::string("IPv6 for the guest: SLAAC in --ipv6-prefix, DNS at --ipv6-dns, the gateway reaching "
                           "the host's ::1 (default: ") +
                   (ipv6 ? "on)" : "off)"));
  app.add_option("--ipv6-prefix", ipv6_prefix, "Guest IPv6 prefix")->capture_default_str();
  app.add_option("--ipv6-gateway", ipv6_gateway, "IPv6 gateway address")->capture_default_str();
  app.add_option("--ipv6-dns", ipv6_dns, "IPv6 DNS address announced to the guest")->capture_default_str();
  app.add_option("--mirrored-addresses", mirrored_addresses,
                 "Mirrored mode: publish the guest's listeners on the host's loopback or on all its addresses")
      ->check(CLI::IsMember({"loopback", "all"}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
}

void NetworkOptions::add_transport_to(CLI::App& app) {
  auto* guests = app.add_option_group("guests", "At least one, each as often as wanted (or [serve] in --config)");
  guests->add_option("--vhost-user", vhost_user,
                     "Listen on PATH as a vhost-user-net backend (QEMU -netdev vhost-user, cloud-hypervisor)")
      ->type_name("PATH[,OPT=V]...");
  guests->add_option("--stream", stream,
                     "Listen on PATH for QEMU -netdev stream (4-byte big-endian length before each frame)")
      ->type_name("PATH[,OPT=V]...");
  guests->add_option("--dgram", dgram, "Bind PATH for QEMU -netdev dgram (one frame per datagram)")
      ->type_name("PATH[,OPT=V]...");
  guests->add_option("--netns", netns,
                     "A TAP device in that network namespace (/run/netns/NAME, /proc/PID/ns/net or a PID), "
                     "configured with the address the gateway leases to it")
      ->type_name("NS[,OPT=V]...");
  guests->add_option("--vxlan", vxlan,
                     "Another host's L2 segment in VXLAN over UDP (a Linux vxlan device, a vswitch): "
                     "REMOTE[:PORT],vni=N[,local=ADDR[:PORT]][,mtu=N] (port 4789 by default, inner MTU 1500; "
                     "give --mtu to match it)")
      ->type_name("REMOTE,vni=N[,OPT=V]...");
  app.add_flag("--isolate", isolate, "Several guests: each reaches the gateway but not the other guests");
}

void NetworkOptions::apply_config_file(const CLI::App& app) {
  if (config_file.empty()) return;
  for (const auto& k : config::keys()) {
    if (k.flag.empty()) continue;
    const CLI::Option* opt = app.get_option_no_throw(std::string(k.flag));
    if (opt != nullptr && opt->count() > 0) given_.insert(k.name);
  }
  // The guests are one list: a guest on the command line replaces the file's.
  if (given_.count("serve.vhost_user") + given_.count("serve.stream") + given_.count("serve.dgram") +
          given_.count("serve.netns") + given_.count("serve.vxlan") >
      0)
    given_.insert({"serve.vhost_user", "serve.stream", "serve.dgram", "serve.netns", "serve.vxlan"});
  command_line_ = *this;
  auto file = config::load_file(config_file, file_base());
  config::merge(*this, file, given_);
}

config::Settings NetworkOptions::file_base() const {
  // The file is checked over the command line's values (its gateway against
  // an --address, say), but the guests are one list: the file's is checked
  // alone (and a guest on the command line replaces it).
  config::Settings base = command_line_;
  base.vhost_user = base.stream = base.dgram = base.netns = base.vxlan = {};
  return base;
}

NetworkOptions NetworkOptions::reloaded() const {
  NetworkOptions n = *this;
  if (config_file.empty()) return n;
  auto file = config::load_file(config_file, file_base());
  static_cast<config::Settings&>(n) = command_line_;
  config::merge(n, file, given_);
  return n;
}

std::vector<PortSpec> NetworkOptions::guests() const {
  std::vector<PortSpec> out;
  auto add = [&](PortSpec::Kind kind, const std::vector<std::string>& values, const char* flag) {
    for (const auto& v : values) {
      try {
        out.push_back(parse_port_spec(kind, v));
      } catch (const std::invalid_argument& e) {
        throw CLI::ValidationError(flag, e.what());
      }
    }
  };
  add(PortSpec::Kind::kVhostUser, vhost_user, "--vhost-user");
  add(PortSpec::Kind::kStream, stream, "--stream");
  add(PortSpec::Kind::kDgram, dgram, "--dgram");
  add(PortSpec::Kind::kNetns, netns, "--netns");
  add(PortSpec::Kind::kVxlan, vxlan, "--vxlan");
  if (out.empty())
    throw CLI::ValidationError("guests", "at least one of --vhost-user, --stream, --dgram, --netns, --vxlan (or [serve] in "
                                         "--config) is needed");
  // Derived names that collide get a number: vm, vm-2, ...
  std::set<std::string> names;
  for (auto& g : out) {
    std::string base = g.options.name;
    for (int i = 2; !names.insert(g.options.name).second; ++i) g.options.name = base + "-" + std::to_string(i);
  }
  if (out.size() > 1 && mode == "mirrored")
    throw CLI::ValidationError("--mode", "mirrored mode serves one guest (it takes the host's own address)");
  return out;
}

void NetworkOptions::read_host_network() {
  if (mode == "mirrored" && !host) host = ns::read_host_network();
}

constexpr auto kMirroredGateway6 = wire::Ipv6Addr::from_groups({0xfdff, 0, 0, 0, 0, 0, 0, 2});
constexpr auto kMirroredDns6 = wire::Ipv6Addr::from_groups({0xfdff, 0, 0, 0, 0, 0, 0, 3});

// Mirrored mode, after the NAT settings are in `c`: the guest takes the
// host's primary interface's first IPv4 address, prefix, default gateway and
// MTU; the gateway address doubles as the DNS address (the proxy answers on
// port 53; every other port reaches the host's loopback). With IPv6, the
// host's global addresses are copied too (static, no SLAAC) and the gateway
// answers for the host's IPv6 default router (often fe80::1; a global router
// address becomes the IPv6 gateway address, mapped to ::1); the NAT ULA
// gateway and DNS addresses stay reachable through that route, moved to
// fdff::2 and fdff::3 when they fall in the host's prefix. The gateway
// answers ARP and NDP for the link's other hosts (proxy), which it reaches
// through host sockets like any other destination.
void NetworkOptions::mirror_host(gateway::GatewayConfig& c) const {
  if (!host) throw std::logic_error("mirrored mode: the host's network was not read");
  const auto& h = *host;
  if (!h.ipv4.empty()) {
    auto a = h.ipv4.front();
    if (!h.gateway4)
      throw CLI::ValidationError("--mode", "mirrored mode: the host's " + h.interface +
                                               " has no IPv4 default gateway to mirror");
    if (a.prefix < 8 || a.prefix > 30 || !h.gateway4->in_subnet(a.address, a.prefix) || *h.gateway4 == a.address)
      throw CLI::ValidationError("--mode", "mirrored mode: the host's " + a.address.to_string() + "/" +
                                               std::to_string(a.prefix) + " and gateway " +
                                               h.gateway4->to_string() +
                                               " cannot be mirrored (a prefix of 8 to 30 holding the gateway is "
                                               "needed)");
    c.nat.guest = a.address;
    c.nat.prefix = a.prefix;
    c.nat.gateway = *h.gateway4;
    c.nat.dns = *h.gateway4;
  }
  if (c.nat.ipv6 && !h.ipv6.empty()) {
    c.nat.prefix6 = h.ipv6.front().address;
    for (size_t i = 8; i < 16; ++i) c.nat.prefix6.octets[i] = 0;
    c.nat.refuse_prefix6 = false;
    // The NAT gateway and DNS addresses must not be hosts of the host's own
    // link (fd00::2 is the host itself on a fd00::/64 network): off-link
    // stand-ins then, reached through the default route.
    if (c.nat.gateway6.in_prefix(c.nat.prefix6, 64)) c.nat.gateway6 = kMirroredGateway6;
    if (c.nat.dns6.in_prefix(c.nat.prefix6, 64)) c.nat.dns6 = kMirroredDns6;
    if (h.gateway6 && h.gateway6->is_link_local()) {
      c.link_local6 = *h.gateway6;
    } else if (h.gateway6) {
      c.nat.gateway6 = *h.gateway6;  // the host's router; maps to ::1
    }
  }
  if (h.mtu >= 576) c.mtu = static_cast<uint16_t>(std::min<uint32_t>(h.mtu, 65520));
  c.proxy_neighbors = true;
}

gateway::GatewayConfig NetworkOptions::gateway_config() const { return stack_config().gateway; }

stack::StackConfig NetworkOptions::stack_config() const {
  stack::StackConfig sc;
  gateway::GatewayConfig& c = sc.gateway;
  sc.engine = engine == "slirp" ? stack::EngineKind::kSlirp : stack::EngineKind::kLwip;
  auto [guest, prefix] = parse_cidr("--address", address);
  c.nat.guest = guest;
  c.nat.prefix = prefix;
  c.nat.gateway = parse_addr("--gateway", gateway);
  c.nat.dns = parse_addr("--dns", dns);
  c.nat.host_loopback = !no_host_loopback;
  c.nat.restrict_outbound = restrict_guest;
  if (!c.nat.gateway.in_subnet(guest, prefix))
    throw CLI::ValidationError("--gateway", gateway + " is not in " + address);
  if (!c.nat.dns.in_subnet(guest, prefix)) throw CLI::ValidationError("--dns", dns + " is not in " + address);
  if (c.nat.gateway == guest || c.nat.dns == guest)
    throw CLI::ValidationError("--address", "the guest address must differ from the gateway and DNS addresses");
  c.mtu = static_cast<uint16_t>(mtu);
  c.search_domains = search;
  sc.max_tcp_flows = max_tcp_flows;
  sc.max_udp_flows = max_udp_flows;
  sc.max_icmp_flows = max_icmp_flows;
  sc.max_new_flows_per_second = max_new_flows_per_second;
  sc.max_buffered_bytes = uint64_t{max_buffered_mib} << 20;
  for (const auto& u : dns_upstreams) {
    auto up = dns::parse_upstream(u);
    if (!up) throw CLI::ValidationError("--dns-upstream", "'" + u + "' is not ADDR[:PORT]");
    sc.dns_config.upstreams.push_back(*up);
  }
  for (const auto& r : dns_routes) {
    auto route = dns::parse_route(r);
    if (!route) throw CLI::ValidationError("--dns-route", "'" + r + "' is not SUFFIX=ADDR[:PORT]");
    sc.dns_config.routes.push_back(*route);
  }
  for (const auto& st : dhcp_static) {
    auto m = wire::MacAddr::parse(st.mac);
    auto a = wire::Ipv4Addr::parse(st.address);
    if (!m || !a) throw CLI::ValidationError("dhcp.static", "'" + st.mac + "' = '" + st.address + "' is not MAC = IPv4");
    c.dhcp_statics.push_back({*m, *a, st.name});
  }
  sc.dns_config.hosts_file = dns_hosts;
  sc.dns_config.static_names = dns_names;
  sc.dns_config.cache = !no_dns_cache;
  for (const auto& p : publish) {
    std::string err;
    auto rule = portfwd::parse_rule(p, &err);
    if (!rule) throw CLI::ValidationError("--publish", "'" + p + "': " + err);
    if (engine == "slirp" && rule->host_addr.find(':') != std::string::npos)
      throw CLI::ValidationError("--publish", "'" + p + "': an IPv6 host address is not available with --engine slirp "
                                              "(libslirp cannot forward an IPv6 client to the guest's IPv4)");
    sc.publish.push_back(*rule);
  }
  for (const auto& g : guest_forwards) {
    std::string err;
    auto f = engine::parse_guest_forward(g, &err);
    if (!f) throw CLI::ValidationError("--guest-forward", "'" + g + "': " + err);
    c.nat.guest_forwards.push_back(*f);
  }
  c.tftp_root = tftp_dir;
  c.boot_file = boot_file;
  sc.publish_source_gateway = publish_source == "gateway";
  sc.pcap = pcap;
  for (const auto& r : egress_deny) {
    try {
      c.nat.egress.add(r, false);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--deny", e.what());
    }
  }
  for (const auto& r : egress_allow) {
    try {
      c.nat.egress.add(r, true);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--allow", e.what());
    }
  }
  {
    std::string err;
    auto faults = link::LinkFaults::parse(link_faults, &err);
    if (!faults) throw CLI::ValidationError("--link-faults", "'" + link_faults + "': " + err);
    sc.link_faults = *faults;
  }
  sc.forward_exclude = std::set<uint16_t>(forward_exclude.begin(), forward_exclude.end());
  // Mirrored mode with addresses = "all": on every host address, as WSL does.
  sc.forward_hosts = mode == "mirrored" && mirrored_addresses == "all" ? portfwd::HostAddresses::kAll
                                                                        : portfwd::HostAddresses::kLoopback;
  // What only the configuration module checks: mode, IPv6, mirrored, names.
  try {
    config::check(*this, "command line");
  } catch (const config::ConfigError& e) {
    throw CLI::ValidationError(flag_for(e.key()), e.message());
  }
  if (ipv6) {
    // config::check() has made sure these parse and fit together.
    auto slash = ipv6_prefix.find('/');
    c.nat.ipv6 = true;
    c.nat.prefix6 = parse_addr6("--ipv6-prefix", ipv6_prefix.substr(0, slash));
    for (size_t i = 8; i < 16; ++i) c.nat.prefix6.octets[i] = 0;  // a /64
    c.nat.gateway6 = parse_addr6("--ipv6-gateway", ipv6_gateway);
    c.nat.dns6 = parse_addr6("--ipv6-dns", ipv6_dns);
    if (c.nat.gateway6 == c.nat.dns6)
      throw CLI::ValidationError("--ipv6-dns", "the IPv6 gateway and DNS addresses must differ");
  }
  if (mode == "mirrored") mirror_host(c);
  // The gateway's MAC follows slirp's convention: 52:55 and the gateway address.
  uint32_t g = c.nat.gateway.value;
  c.mac = wire::MacAddr{{0x52, 0x55, static_cast<uint8_t>(g >> 24), static_cast<uint8_t>(g >> 16),
                         static_cast<uint8_t>(g >> 8), static_cast<uint8_t>(g)}};
  return sc;
}

ns::GuestInterface NetworkOptions::guest_interface() const {
  auto g = gateway_config();
  auto m = wire::MacAddr::parse(mac);
  if (!m || m->is_multicast() || m->is_zero())
    throw CLI::ValidationError("--mac", "'" + mac + "' is not a unicast MAC address");
  if (interface.empty() || interface.size() > 15)
    throw CLI::ValidationError("--interface", "a name of 1 to 15 characters is needed");
  ns::GuestInterface i;
  i.name = interface;
  i.mtu = g.mtu;
  i.mac = m->octets;
  i.configure = !no_configure;
  i.offload = !no_offload;
  i.address = g.nat.guest.value;
  i.prefix = g.nat.prefix;
  i.gateway = g.nat.gateway.value;
  i.dns = g.nat.dns.value;
  i.search = search;
  i.ipv6 = g.nat.ipv6;
  if (i.ipv6 && mode != "mirrored") i.nameservers.push_back(g.nat.dns6.to_string());
  if (mode == "mirrored") {
    // The host's resolvers when the guest can reach them itself; a loopback
    // resolver (127.0.0.53, a local dnsmasq) through the DNS proxy instead.
    bool direct = !host->nameservers.empty();
    for (const auto& n : host->nameservers) {
      auto v4 = wire::Ipv4Addr::parse(n);
      auto v6 = wire::Ipv6Addr::parse(n);
      if ((v4 && v4->is_loopback()) || (v6 && (v6->is_loopback() || v6->is_link_local())) || (!v4 && !v6))
        direct = false;
      if (v6 && !i.ipv6) direct = false;
    }
    if (direct) {
      i.dns = 0;
      i.nameservers = host->nameservers;
    }
    if (i.ipv6 && !host->ipv6.empty()) {
      i.ipv6_slaac = false;
      for (const auto& a : host->ipv6) i.ipv6_addresses.emplace_back(a.address, a.prefix);
      if (host->gateway6) i.ipv6_gateway = *host->gateway6;
    }
  }
  return i;
}

}  // namespace slipway::cli
