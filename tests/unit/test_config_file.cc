// slipway::config: the TOML configuration file. Every key is read, defaults
// stay when a key is absent, each kind of error names the file, line, column
// and key with what is allowed, flags override the file (merge), to_toml()
// reads back to the same settings, and the example files are valid.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "netstack/config/config_file.h"

using slipway::config::ConfigError;
using slipway::config::Loaded;
using slipway::config::Settings;
namespace config = slipway::config;

namespace {

Loaded must_parse(const std::string& text) {
  try {
    return config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    FAIL(e.what());
    throw;
  }
}

ConfigError must_fail(const std::string& text) {
  try {
    config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("no error for: " << text);
  throw std::logic_error("unreachable");
}

const char* kEveryKey = R"(mode = "mirrored"
engine = "lwip"
[network]
address = "192.168.7.10/16"
gateway = "192.168.0.1"
dns = "192.168.0.53"
mac = "02:00:00:00:00:01"
mtu = 9000
interface = "tap7"
host_loopback = false
restrict = true
configure = false
offload = false
search = ["example.com", "corp.example"]
[ipv6]
enabled = true
prefix = "fd42:1::/64"
gateway = "fd42:1::1"
dns = "fd42:1::35"
[dns]
upstreams = ["192.0.2.53", "[2001:db8::1]:5353"]
routes = ["corp.example=10.8.0.1:53"]
hosts_file = "/etc/hosts"
cache = false
[dns.names]
"printer.lan" = "192.168.1.9"
"db.lan" = ["10.0.2.50", "fd00::50"]
[forwarding]
forwards = ["8080:80", { host_addr = "::1", host_port = "9000-9001", guest_port = "90-91", protocol = "udp" }, { host_port = 8443, guest_port = 443 }]
guest_forwards = []  # mirrored mode takes none (test_guest_forward.cc)
auto = false
exclude = [22, 2049]
agent_port = 7000
source = "gateway"
[tftp]
directory = ""  # mirrored mode takes none (test_tftp_server.cc)
boot_file = ""
[limits]
max_tcp_flows = 100
max_udp_flows = 50
max_icmp_flows = 20
max_new_flows_per_second = 0
max_buffered_mib = 64
[egress]
allow = ["169.254.169.254:80"]
deny = ["0.0.0.0/0:25", "[2001:db8::/32]:443,8000-8080"]
[sandbox]
enabled = false
[faults]
link = "loss=1%,seed=3"
[log]
level = "debug"
pcap = "/tmp/guest.pcap"
[control]
socket = "/run/slipway.sock"
[[dhcp.static]]
mac = "52:54:00:00:00:10"
address = "192.168.7.20"
name = "db"
[[dhcp.static]]
mac = "52:54:00:00:00:11"
address = "192.168.7.21"
[serve]
stream = "/run/vm.sock"
vhost_user = ["/run/a.sock", "/run/b.sock,vlan=10"]
dgram = []
netns = "/run/netns/web"
vxlan = "192.0.2.7,vni=42,mtu=1450"
isolate = true
[mirrored]
addresses = "all"
)";

}  // namespace

TEST_CASE("config: every key is read", "[config]") {
  auto l = must_parse(kEveryKey);
  const Settings& s = l.settings;
  CHECK(s.mode == "mirrored");
  CHECK(s.address == "192.168.7.10/16");
  CHECK(s.gateway == "192.168.0.1");
  CHECK(s.dns == "192.168.0.53");
  CHECK(s.mac == "02:00:00:00:00:01");
  CHECK(s.mtu == 9000);
  CHECK(s.interface == "tap7");
  CHECK(s.no_host_loopback);
  CHECK(s.restrict_guest);
  CHECK(s.no_configure);
  CHECK(s.no_offload);
  CHECK(s.search == std::vector<std::string>{"example.com", "corp.example"});
  CHECK(s.ipv6);
  CHECK(s.ipv6_prefix == "fd42:1::/64");
  CHECK(s.ipv6_gateway == "fd42:1::1");
  CHECK(s.ipv6_dns == "fd42:1::35");
  CHECK(s.dns_upstreams == std::vector<std::string>{"192.0.2.53", "[2001:db8::1]:5353"});
  CHECK(s.dns_routes == std::vector<std::string>{"corp.example=10.8.0.1:53"});
  CHECK(s.dns_hosts == "/etc/hosts");
  CHECK(s.no_dns_cache);
  CHECK(s.dns_names.at("printer.lan") == std::vector<std::string>{"192.168.1.9"});
  CHECK(s.dns_names.at("db.lan") == std::vector<std::string>{"10.0.2.50", "fd00::50"});
  CHECK(s.publish == std::vector<std::string>{"8080:80", "[::1]:9000-9001:90-91/udp", "127.0.0.1:8443:443/tcp"});
  CHECK_FALSE(s.forward_auto);
  CHECK(s.forward_exclude == std::vector<uint16_t>{22, 2049});
  CHECK(s.agent_port == 7000);
  CHECK(s.publish_source == "gateway");
  CHECK(s.max_tcp_flows == 100);
  CHECK(s.max_udp_flows == 50);
  CHECK(s.max_icmp_flows == 20);
  CHECK(s.max_new_flows_per_second == 0);
  CHECK(s.max_buffered_mib == 64);
  CHECK(s.egress_allow == std::vector<std::string>{"169.254.169.254:80"});
  CHECK(s.egress_deny == std::vector<std::string>{"0.0.0.0/0:25", "[2001:db8::/32]:443,8000-8080"});
  CHECK(s.no_sandbox);
  CHECK(s.link_faults == "loss=1%,seed=3");
  CHECK(s.log_level == "debug");
  CHECK(s.pcap == "/tmp/guest.pcap");
  CHECK(s.control == "/run/slipway.sock");
  CHECK(s.stream == std::vector<std::string>{"/run/vm.sock"});
  CHECK(s.vhost_user == std::vector<std::string>{"/run/a.sock", "/run/b.sock,vlan=10"});
  CHECK(s.dgram.empty());
  CHECK(s.netns == std::vector<std::string>{"/run/netns/web"});
  CHECK(s.vxlan == std::vector<std::string>{"192.0.2.7,vni=42,mtu=1450"});
  CHECK(s.isolate);
  REQUIRE(s.dhcp_static.size() == 2);
  CHECK(s.dhcp_static[0] == Settings::DhcpStatic{"52:54:00:00:00:10", "192.168.7.20", "db"});
  CHECK(s.dhcp_static[1] == Settings::DhcpStatic{"52:54:00:00:00:11", "192.168.7.21", ""});
  CHECK(s.mirrored_addresses == "all");
  // Every key of the schema was set.
  for (const auto& k : config::keys()) {
    INFO(k.name);
    CHECK(l.keys.count(k.name) == 1);
  }
}

TEST_CASE("config: an empty file keeps every default", "[config]") {
  auto l = must_parse("");
  CHECK(l.keys.empty());
  const Settings d;
  CHECK(config::to_toml(l.settings) == config::to_toml(d));
  CHECK(d.mode == "nat");
  CHECK(d.address == "10.0.2.15/24");
  CHECK(d.gateway == "10.0.2.2");
  CHECK(d.dns == "10.0.2.3");
  CHECK(d.mtu == 65520);
  CHECK(d.ipv6);
  CHECK(d.ipv6_prefix == "fd00::/64");
  CHECK(d.ipv6_gateway == "fd00::2");
  CHECK(d.ipv6_dns == "fd00::3");
  CHECK(d.mirrored_addresses == "loopback");
  CHECK(d.log_level == "warn");
  // A base's values stay where the file says nothing.
  Settings base;
  base.mtu = 1500;
  CHECK(config::parse("[log]\nlevel = \"info\"\n", "t.toml", base).settings.mtu == 1500);
}

TEST_CASE("config: to_toml prints every key and reads back the same", "[config]") {
  auto s = must_parse(kEveryKey).settings;
  auto text = config::to_toml(s);
  for (const auto& k : config::keys()) {
    auto dot = k.name.rfind('.');
    auto leaf = k.name.substr(dot == std::string::npos ? 0 : dot + 1);
    INFO(k.name);
    if (k.name == "dns.names") {
      CHECK(text.find("[dns.names]") != std::string::npos);
    } else if (k.name == "dhcp.static") {
      CHECK(text.find("[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\naddress = \"192.168.7.20\"\nname = \"db\"\n") !=
            std::string::npos);
    } else {
      CHECK(text.find("\n" + leaf + " = ") != std::string::npos);
    }
  }
  auto again = must_parse(text).settings;
  CHECK(config::to_toml(again) == text);
  for (const auto& k : config::keys()) {
    INFO(k.name);
    CHECK_FALSE(config::differs(s, again, k.name));
  }
}

TEST_CASE("config: errors name file, line, column, key and what is allowed", "[config]") {
  SECTION("unknown key") {
    auto e = must_fail("[network]\nmtu = 1500\nadress = \"10.0.2.15/24\"\n");
    CHECK(std::string(e.what()) ==
          "t.toml:3:1: network.adress: unknown key; allowed: address, gateway, dns, mac, mtu, interface, "
          "host_loopback, restrict, configure, offload, search");
    CHECK(e.line() == 3);
    CHECK(e.column() == 1);
    CHECK(e.key() == "network.adress");
  }
  SECTION("unknown table") {
    auto e = must_fail("[netwrok]\nmtu = 1\n");
    CHECK(std::string(e.what()) ==
          "t.toml:1:2: netwrok: unknown key; allowed: mode, engine, network, ipv6, dns, forwarding, tftp, limits, egress, "
          "sandbox, faults, log, control, "
          "dhcp, serve, mirrored");
  }
  SECTION("a table that is not one") {
    auto e = must_fail("limits = 5\n");
    CHECK(std::string(e.what()) ==
          "t.toml:1:10: limits: expected a table, got 5; allowed: [limits] with max_tcp_flows, max_udp_flows, max_icmp_flows, max_new_flows_per_second, max_buffered_mib");
  }
  SECTION("wrong type") {
    CHECK(std::string(must_fail("[network]\nmtu = \"big\"\n").what()) ==
          "t.toml:2:7: network.mtu: expected an integer from 576 to 65520, got \"big\"");
    CHECK(std::string(must_fail("[network]\nhost_loopback = \"yes\"\n").what()) ==
          "t.toml:2:17: network.host_loopback: expected true or false, got \"yes\"");
    CHECK(std::string(must_fail("[dns]\nupstreams = \"192.0.2.1\"\n").what()) ==
          "t.toml:2:13: dns.upstreams: expected an array of ADDR[:PORT] strings, got \"192.0.2.1\"");
    CHECK(std::string(must_fail("[network]\ngateway = 10\n").what()) ==
          "t.toml:2:11: network.gateway: expected an IPv4 address string, got 10");
  }
  SECTION("out of range") {
    CHECK(std::string(must_fail("[network]\nmtu = 100000\n").what()) ==
          "t.toml:2:7: network.mtu: expected an integer from 576 to 65520, got 100000");
    CHECK(std::string(must_fail("[forwarding]\nexclude = [22, 0]\n").what()) ==
          "t.toml:2:16: forwarding.exclude[1]: expected an integer from 1 to 65535, got 0");
  }
  SECTION("bad values") {
    CHECK(std::string(must_fail("mode = \"bridge\"\n").what()) ==
          "t.toml:1:8: mode: \"bridge\" is not allowed; allowed: nat, mirrored");
    CHECK(std::string(must_fail("[dns]\nupstreams = [\"192.0.2.1\", \"1.2.3\"]\n").what()) ==
          "t.toml:2:27: dns.upstreams[1]: \"1.2.3\" is not ADDR[:PORT]");
    CHECK(std::string(must_fail("[dns]\nroutes = [\"corp\"]\n").what()) ==
          "t.toml:2:11: dns.routes[0]: \"corp\" is not SUFFIX=ADDR[:PORT]");
    CHECK(std::string(must_fail("[network]\naddress = \"10.0.2.15\"\n").what()) ==
          "t.toml:2:11: network.address: \"10.0.2.15\" is not ADDR/PREFIX with an IPv4 address and a prefix length "
          "from 8 to 30");
    CHECK(std::string(must_fail("[network]\nmac = \"01:00:5e:00:00:01\"\n").what()) ==
          "t.toml:2:7: network.mac: \"01:00:5e:00:00:01\" is not a unicast MAC address (52:54:00:12:34:56)");
    CHECK(std::string(must_fail("[log]\nlevel = \"loud\"\n").what()) ==
          "t.toml:2:9: log.level: \"loud\" is not allowed; allowed: trace, debug, info, warn, error, critical, off");
    CHECK(std::string(must_fail("[mirrored]\naddresses = \"some\"\n").what()) ==
          "t.toml:2:13: mirrored.addresses: \"some\" is not allowed; allowed: loopback, all");
    CHECK(std::string(must_fail("[ipv6]\nprefix = \"fd00::\"\n").what()) ==
          "t.toml:2:10: ipv6.prefix: \"fd00::\" is not ADDR/64 with an IPv6 address (SLAAC needs a prefix "
          "length of 64)");
    CHECK(std::string(must_fail("[ipv6]\nprefix = \"fd00::/48\"\n").what()) ==
          "t.toml:2:10: ipv6.prefix: \"fd00::/48\" is not ADDR/64 with an IPv6 address (SLAAC needs a prefix "
          "length of 64)");
    CHECK(std::string(must_fail("[ipv6]\ndns = \"10.0.2.3\"\n").what()) ==
          "t.toml:2:7: ipv6.dns: \"10.0.2.3\" is not an IPv6 address");
    CHECK(std::string(must_fail("[dns.names]\n\"a.lan\" = \"nope\"\n").what()) ==
          "t.toml:2:11: dns.names.\"a.lan\": \"nope\" is not an IPv4 or IPv6 address");
    CHECK(std::string(must_fail("[forwarding]\nsource = \"host\"\n").what()) ==
          "t.toml:2:10: forwarding.source: \"host\" is not allowed; allowed: client, gateway");
  }
  SECTION("forward rules") {
    auto e = std::string(must_fail("[forwarding]\nforwards = [\"8080:80\", \"70000:80\"]\n").what());
    CHECK(e.rfind("t.toml:2:24: forwarding.forwards[1]: \"70000:80\" is not a forward rule: ", 0) == 0);
    CHECK(e.find("70000") != std::string::npos);
    CHECK(e.find("; allowed: [HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp], or a table {host_addr, "
                 "host_port, guest_port, protocol}") != std::string::npos);
    CHECK(std::string(must_fail("[forwarding]\nforwards = [{ host_port = 1, guestport = 2 }]\n").what()) ==
          "t.toml:2:30: forwarding.forwards[0].guestport: unknown key; allowed: host_addr, host_port, guest_port, "
          "protocol");
    CHECK(std::string(must_fail("[forwarding]\nforwards = [{ host_port = 1 }]\n").what()) ==
          "t.toml:2:13: forwarding.forwards[0]: missing guest_port; a forward table needs host_port and guest_port");
    CHECK(
        std::string(
            must_fail("[forwarding]\nforwards = [{ host_port = 1, guest_port = 2, protocol = \"sctp\" }]\n").what()) ==
        "t.toml:2:57: forwarding.forwards[0].protocol: \"sctp\" is not allowed; allowed: tcp, udp");
    CHECK(std::string(must_fail("[forwarding]\nforwards = [80]\n").what()) ==
          "t.toml:2:13: forwarding.forwards[0]: expected a forward rule, got 80; allowed: "
          "[HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp], or a table {host_addr, host_port, guest_port, "
          "protocol}");
  }
  SECTION("keys that go together") {
    CHECK(std::string(must_fail("[network]\ngateway = \"10.9.0.2\"\n").what()) ==
          "t.toml:2:11: network.gateway: \"10.9.0.2\" is not in 10.0.2.15/24; allowed: an address in "
          "network.address");
    CHECK(std::string(must_fail("[ipv6]\ngateway = \"fd01::2\"\n").what()) ==
          "t.toml:2:11: ipv6.gateway: \"fd01::2\" is not in fd00::/64; allowed: an address in ipv6.prefix");
    CHECK(std::string(must_fail("[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\naddress = \"10.0.3.20\"\n").what()) ==
          "t.toml:1:1: dhcp.static: \"10.0.3.20\" cannot be leased in 10.0.2.15/24; allowed: a host address in "
          "network.address other than the gateway and DNS addresses");
    CHECK(std::string(must_fail("[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\naddress = \"10.0.2.20\"\n"
                                "[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\naddress = \"10.0.2.21\"\n")
                          .what()) == "t.toml:1:1: dhcp.static: \"52:54:00:00:00:10\" has two static leases; allowed: one per MAC");
    CHECK(std::string(must_fail("[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\n").what()) ==
          "t.toml:1:1: dhcp.static[0]: missing address; a static lease needs mac and address");
    CHECK(std::string(must_fail("[[dhcp.static]]\nmac = \"52:54:00:00:00:10\"\naddress = \"10.0.2.20\"\nname = \"a b\"\n")
                          .what()) == "t.toml:4:8: dhcp.static[0].name: \"a b\" is not a host name (1 to 63 letters, digits and '-')");
    // Several guests are fine.
    auto guests = must_parse("[serve]\nstream = \"a\"\ndgram = [\"b\", \"c\"]\n");
    CHECK(guests.settings.dgram == std::vector<std::string>{"b", "c"});
    // A consistent change of subnet is fine.
    auto s = must_parse("[network]\naddress = \"10.9.0.15/24\"\ngateway = \"10.9.0.2\"\ndns = \"10.9.0.3\"\n");
    CHECK(s.settings.gateway == "10.9.0.2");
  }
  SECTION("TOML syntax") {
    auto e = must_fail("[network]\nmtu = = 3\n");
    CHECK(e.line() == 2);
    CHECK(e.column() == 7);
    CHECK(std::string(e.what()).rfind("t.toml:2:7: TOML syntax error: ", 0) == 0);
  }
}

TEST_CASE("config: an unreadable file is an error naming it", "[config]") {
  try {
    config::load_file("/nonexistent/slipway.toml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "/nonexistent/slipway.toml: cannot read the configuration file: No such file or directory");
  }
}

TEST_CASE("config: only a regular file is read, within its bound", "[config]") {
  char dir[] = "/tmp/slipway-config.XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string d = dir;
  auto error_of = [](const std::string& path) -> std::string {
    try {
      config::load_file(path);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  // A directory used to read as an empty file: every default, exit 0.
  CHECK(error_of(d) == d + ": cannot read the configuration file: not a regular file (a directory)");
  CHECK(error_of("/dev/zero") == "/dev/zero: cannot read the configuration file: not a regular file (a character device)");
  // A FIFO is refused at once instead of blocking until a writer comes.
  REQUIRE(mkfifo((d + "/fifo").c_str(), 0600) == 0);
  CHECK(error_of(d + "/fifo") == d + "/fifo: cannot read the configuration file: not a regular file (a FIFO)");
  {
    std::ofstream big(d + "/big.toml");
    big << std::string(config::kMaxFileBytes + 1, '#');
  }
  CHECK(error_of(d + "/big.toml") == d + "/big.toml: cannot read the configuration file: larger than " +
                                         std::to_string(config::kMaxFileBytes) + " bytes");
  std::remove((d + "/fifo").c_str());
  std::remove((d + "/big.toml").c_str());
  rmdir(dir);
}

TEST_CASE("config: hosts_file must name a readable regular file", "[config]") {
  auto e = must_fail("[dns]\nhosts_file = \"/dev/zero\"\n");
  CHECK(e.key() == "dns.hosts_file");
  CHECK(std::string(e.what()) == "t.toml:2:14: dns.hosts_file: cannot read the hosts file \"/dev/zero\": not a regular "
                                 "file (a character device)");
  auto dir = must_fail("[dns]\nhosts_file = \"/tmp\"\n");
  CHECK(dir.message() == "cannot read the hosts file \"/tmp\": not a regular file (a directory)");
  auto missing = must_fail("[dns]\nhosts_file = \"/nonexistent/hosts\"\n");
  CHECK(missing.message() == "cannot read the hosts file \"/nonexistent/hosts\": No such file or directory");
  CHECK(must_parse("[dns]\nhosts_file = \"/etc/hosts\"\n").settings.dns_hosts == "/etc/hosts");
  CHECK(must_parse("[dns]\nhosts_file = \"\"\n").settings.dns_hosts.empty());
  // The command line's --dns-hosts is checked the same way.
  Settings s;
  s.dns_hosts = "/dev/urandom";
  CHECK_THROWS_WITH(config::check(s, "command line"),
                    "command line: dns.hosts_file: cannot read the hosts file \"/dev/urandom\": not a regular file (a "
                    "character device)");
}

TEST_CASE("config: flags override the file", "[config]") {
  // The command line gave --mtu 1500 and --log-level debug; the file sets mtu,
  // the forwards and the log level.
  Settings cli;
  cli.mtu = 1500;
  cli.log_level = "debug";
  cli.forward_auto = true;
  auto file = config::parse("[network]\nmtu = 9000\n[forwarding]\nforwards = [\"8080:80\"]\n[log]\nlevel = \"info\"\n",
                            "t.toml", cli);
  Settings merged = cli;
  config::merge(merged, file, {"network.mtu", "log.level"});
  CHECK(merged.mtu == 1500);
  CHECK(merged.log_level == "debug");
  CHECK(merged.publish == std::vector<std::string>{"8080:80"});
  CHECK(merged.forward_auto);  // not in the file: the command line's value
  // Without flags, the file wins.
  Settings plain = cli;
  config::merge(plain, file, {});
  CHECK(plain.mtu == 9000);
  CHECK(plain.log_level == "info");
  // Every key has a flag except the static names and leases.
  for (const auto& k : config::keys()) {
    INFO(k.name);
    CHECK((k.flag.empty() == (k.name == "dns.names" || k.name == "dhcp.static")));
  }
}

TEST_CASE("config: check() validates settings from the command line", "[config]") {
  Settings s;
  CHECK_NOTHROW(config::check(s, "command line"));
  s.ipv6_gateway = "fd01::1";
  try {
    config::check(s, "command line");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "ipv6.gateway");
    CHECK(std::string(e.what()) ==
          "command line: ipv6.gateway: \"fd01::1\" is not in fd00::/64; allowed: an address in ipv6.prefix");
  }
  s = Settings{};
  s.mode = "bridge";
  CHECK_THROWS_AS(config::check(s, "command line"), ConfigError);
}

TEST_CASE("config: the example files are valid", "[config]") {
  for (const char* name : {"nat.toml", "mirrored.toml"}) {
    // This file is tests/unit/ in the source tree (the build names it by its full path).
    std::string here = __FILE__;
    std::string path = here.substr(0, here.rfind("tests/unit/")) + "examples/" + name;
    INFO(path);
    auto l = config::load_file(path);
    CHECK(l.settings.mode == (std::string(name) == "nat.toml" ? "nat" : "mirrored"));
  }
}

TEST_CASE("config: engine, and what the slirp engine refuses", "[config]") {
  CHECK(Settings{}.engine == "lwip");
  CHECK(must_parse("engine = \"slirp\"\n").settings.engine == "slirp");
  auto e = must_fail("engine = \"qemu\"\n");
  CHECK(e.key() == "engine");
  INFO(e.what());
  CHECK(std::string(e.what()).find("lwip") != std::string::npos);
  CHECK(std::string(e.what()).find("slirp") != std::string::npos);
  // Each refusal points at the option's key and names the engine.
  e = must_fail("engine = \"slirp\"\nmode = \"mirrored\"\n");
  CHECK(e.key() == "mode");
  CHECK(e.line() == 2);
  CHECK(e.message().find("engine \"slirp\"") != std::string::npos);
  e = must_fail("engine = \"slirp\"\n[limits]\nmax_tcp_flows = 100\n");
  CHECK(e.key() == "limits.max_tcp_flows");
  CHECK(e.message().find("engine \"slirp\"") != std::string::npos);
  e = must_fail("engine = \"slirp\"\n[limits]\nmax_udp_flows = 100\n");
  CHECK(e.key() == "limits.max_udp_flows");
  e = must_fail("engine = \"slirp\"\n[limits]\nmax_new_flows_per_second = 5\n");
  CHECK(e.key() == "limits.max_new_flows_per_second");
  e = must_fail("engine = \"slirp\"\n[limits]\nmax_buffered_mib = 5\n");
  CHECK(e.key() == "limits.max_buffered_mib");
  e = must_fail("engine = \"slirp\"\n[forwarding]\nsource = \"gateway\"\n");
  CHECK(e.key() == "forwarding.source");
  // The same settings are fine on lwIP.
  CHECK_NOTHROW(must_parse("mode = \"mirrored\"\n[limits]\nmax_tcp_flows = 100\n"));
}

TEST_CASE("config: [egress] rules and [faults] link are checked where they are written", "[config]") {
  try {
    config::parse("[egress]\ndeny = [\"10.0.0.0/8\", \"10.0.0.1:0\"]\n", "t.toml");
    FAIL("a bad rule was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("t.toml:2:") == 0);
    CHECK(std::string(e.what()).find("egress.deny") != std::string::npos);
    CHECK(std::string(e.what()).find("not a port") != std::string::npos);
  }
  try {
    config::parse("[faults]\nlink = \"loss=200%\"\n", "t.toml");
    FAIL("a bad fault spec was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("t.toml:2:8: faults.link") == 0);
  }
  auto l = config::parse("[egress]\nallow = [\"[fd00:ec2::254]:80\"]\n", "t.toml");
  CHECK(l.settings.egress_allow == std::vector<std::string>{"[fd00:ec2::254]:80"});
}
