// slirp4netns 1.2's command line as slipway reads it (compat/
// slirp4netns_options.h): the exact argument lists Podman 4.3 and
// RootlessKit 1.1 pass, getopt_long's forms (abbreviations, attached
// values, combined short options), slirp4netns's own error words, what
// slipway refuses, the settings the options become (and that the program's
// option checks accept them), and SLIPWAY_CONFIG's merge.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "netstack/cli/options.h"
#include "netstack/compat/slirp4netns_options.h"

using slipway::compat::InvalidOption;
using slipway::compat::ParsedCommandLine;
using slipway::compat::UnsupportedOption;
using Action = ParsedCommandLine::Action;

namespace {

ParsedCommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "slipway-slirp4netns");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return slipway::compat::parse_command_line(static_cast<int>(args.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  auto p = parse(std::move(args));
  CHECK(p.action == Action::kError);
  return p.error;
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("slirp4netns options: Podman 4.3's command line", "[compat][slirp4netns]") {
  auto p = parse({"--disable-host-loopback", "--mtu=65520", "--enable-sandbox", "--enable-seccomp", "--enable-ipv6",
                  "-c", "-e", "3", "-r", "4", "--api-socket", "/tmp/x.net", "--netns-type=path", "/proc/self/ns/net",
                  "tap0"});
  REQUIRE(p.action == Action::kRun);
  const auto& o = p.options;
  CHECK(o.disable_host_loopback);
  CHECK(o.mtu == 65520);
  CHECK(o.enable_sandbox);
  CHECK(o.enable_seccomp);
  CHECK(o.enable_ipv6);
  CHECK(o.configure);
  CHECK(o.exit_fd == 3);
  CHECK(o.ready_fd == 4);
  CHECK(o.api_socket == "/tmp/x.net");
  CHECK(o.netns_type == "path");
  CHECK(o.target == "/proc/self/ns/net");
  CHECK(o.tapname == "tap0");
  CHECK(p.warnings.empty());
}

TEST_CASE("slirp4netns options: RootlessKit 1.1's command line", "[compat][slirp4netns]") {
  auto p = parse({"--mtu", "65520", "-r", "3", "--disable-host-loopback", "--api-socket", "/run/user/1/api.sock",
                  "--enable-sandbox", "4242", "tap0"});
  REQUIRE(p.action == Action::kRun);
  CHECK(p.options.mtu == 65520);
  CHECK(p.options.ready_fd == 3);
  CHECK(p.options.exit_fd == -1);
  CHECK_FALSE(p.options.configure);
  CHECK(p.options.netns_type == "pid");
  CHECK(p.options.target == "4242");
  CHECK(p.options.cidr == "10.0.2.0/24");
}

TEST_CASE("slirp4netns options: getopt_long's forms", "[compat][slirp4netns]") {
  auto p = parse({"-c6", "-m1500", "--conf", "1", "tapx", "--cidr=192.168.7.0/24", "-a/tmp/s"});
  REQUIRE(p.action == Action::kRun);
  CHECK(p.options.configure);
  CHECK(p.options.enable_ipv6);
  CHECK(p.options.mtu == 1500);
  CHECK(p.options.cidr == "192.168.7.0/24");
  CHECK(p.options.api_socket == "/tmp/s");
  CHECK(p.options.tapname == "tapx");
  // TAPNAME may be left out (slirp4netns requires it).
  auto q = parse({"77"});
  REQUIRE(q.action == Action::kRun);
  CHECK(q.options.tapname == "tap0");
  CHECK(q.options.mtu == 1500);
}

TEST_CASE("slirp4netns options: help, version, warnings", "[compat][slirp4netns]") {
  CHECK(parse({"-h"}).action == Action::kHelp);
  CHECK(parse({"--version"}).action == Action::kVersion);
  auto p = parse({"--no-host-loopback", "--create-sandbox", "1", "tap0", "extra"});
  REQUIRE(p.action == Action::kRun);
  CHECK(p.options.disable_host_loopback);
  CHECK(p.options.enable_sandbox);
  REQUIRE(p.warnings.size() == 3);
  CHECK(p.warnings[2] == "WARNING: too many arguments");
  // Podman and RootlessKit look for these in --help.
  auto help = slipway::compat::usage("slipway-slirp4netns");
  for (const char* flag : {"--netns-type", "--cidr", "--disable-host-loopback", "--api-socket", "--enable-sandbox",
                           "--enable-seccomp", "--mtu", "--outbound-addr", "--enable-ipv6", "--userns-path"})
    CHECK(help.find(flag) != std::string::npos);
  CHECK(slipway::compat::version_text().rfind("slirp4netns version 1.2.0", 0) == 0);
}

TEST_CASE("slirp4netns options: slirp4netns's errors", "[compat][slirp4netns]") {
  CHECK(error_of({"-m", "0", "1", "tap0"}) == "MTU must be a positive integer (< 65522)");
  CHECK(error_of({"--mtu=65522", "1", "tap0"}) == "MTU must be a positive integer (< 65522)");
  CHECK(error_of({"-e", "x", "1", "tap0"}) == "exit-fd must be a non-negative integer");
  CHECK(error_of({"-r", "-1", "1", "tap0"}) == "ready-fd must be a non-negative integer");
  CHECK(error_of({"notapid", "tap0"}) == "PID must be a positive integer");
  CHECK(error_of({"0", "tap0"}) == "PID must be a positive integer");
  CHECK(error_of({"--macaddress=52:54:00:00:00:01", "1", "tap0"}) ==
        "--macaddr cannot be specified when --configure or -c is not specified");
  CHECK(error_of({"--target-type=vde", "1", "tap0"}) == "--target-type must be either \"netns\" or \"bess\"");
  CHECK(error_of({"--userns-path=/nonexistent/userns", "1", "tap0"}) == "userns path doesn't exist: /nonexistent/userns");
  CHECK(error_of({"--netns-type=path", "/nonexistent/netns", "tap0"}) ==
        "existing path expected when --netns-type=path: /nonexistent/netns");
  CHECK(error_of({"--netns-type=other", "1", "tap0"}) == "--netns-type must be pid or path");
  CHECK(error_of({"--bogus", "1", "tap0"}) == "unrecognized option '--bogus'");
  CHECK(error_of({"-x", "1", "tap0"}) == "unrecognized option '-x'");
  CHECK(error_of({"1", "tap0", "--mtu"}) == "option '--mtu' requires an argument");
  CHECK(error_of({}) == "PID|PATH is required");
}

TEST_CASE("slirp4netns options: the settings slipway runs with", "[compat][slirp4netns]") {
  auto p = parse({"-c", "--mtu=65520", "--disable-host-loopback", "1234", "tap0"});
  REQUIRE(p.action == Action::kRun);
  auto s = slipway::compat::settings_of(p.options);
  CHECK(s.address == "10.0.2.100/24");
  CHECK(s.gateway == "10.0.2.2");
  CHECK(s.dns == "10.0.2.3");
  CHECK(s.mtu == 65520);
  CHECK(s.interface == "tap0");
  CHECK(s.no_host_loopback);
  CHECK_FALSE(s.no_configure);
  CHECK_FALSE(s.ipv6);
  CHECK_FALSE(s.forward_auto);
  // The program's own checks accept them.
  slipway::cli::NetworkOptions net;
  static_cast<slipway::config::Settings&>(net) = s;
  auto sc = net.stack_config();
  CHECK(sc.gateway.nat.guest == slipway::wire::Ipv4Addr(10, 0, 2, 100));
  CHECK(sc.gateway.nat.gateway == slipway::wire::Ipv4Addr(10, 0, 2, 2));
  CHECK_FALSE(sc.gateway.nat.host_loopback);
  CHECK(net.guest_interface().name == "tap0");

  auto q = parse({"-c", "-6", "--cidr=172.16.0.0/16", "--macaddress=2:0:0:a:bb:c", "1", "eth7"});
  REQUIRE(q.action == Action::kRun);
  auto t = slipway::compat::settings_of(q.options);
  CHECK(t.address == "172.16.0.100/16");
  CHECK(t.gateway == "172.16.0.2");
  CHECK(t.dns == "172.16.0.3");
  CHECK(t.mtu == 1500);
  CHECK(t.ipv6);
  CHECK(t.ipv6_prefix == "fd00::/64");
  CHECK(t.mac == "02:00:00:0a:bb:0c");
  auto a = slipway::compat::cidr_addresses("172.16.0.0/16");
  CHECK(a.dhcp_start == slipway::wire::Ipv4Addr(172, 16, 0, 15));
  CHECK(a.netmask == slipway::wire::Ipv4Addr(255, 255, 0, 0));
}

TEST_CASE("slirp4netns options: what slipway refuses", "[compat][slirp4netns]") {
  auto settings = [](std::vector<std::string> args) {
    auto p = parse(std::move(args));
    REQUIRE(p.action == Action::kRun);
    return message_of([&] { slipway::compat::settings_of(p.options); });
  };
  CHECK(settings({"--outbound-addr=192.0.2.1", "1", "tap0"}).find("--outbound-addr is not supported") == 0);
  CHECK(settings({"--outbound-addr6=2001:db8::1", "1", "tap0"}).find("--outbound-addr6 is not supported") == 0);
  CHECK(settings({"--target-type=bess", "/tmp/bess.sock"}).find("--target-type=bess is not supported") == 0);
  CHECK(settings({"--mtu=100", "1", "tap0"}) == "--mtu 100: slipway supports an MTU of 576 to 65520");
  CHECK(settings({"--mtu=65521", "1", "tap0"}) == "--mtu 65521: slipway supports an MTU of 576 to 65520");
  CHECK(settings({"-6", "--mtu=1000", "1", "tap0"}) ==
        "--mtu 1000: IPv6 (--enable-ipv6) needs an MTU of at least 1280");
  CHECK(settings({"--cidr=10.0.2.100/24", "1", "tap0"}) ==
        "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24");
  CHECK(settings({"--cidr=10.0.0.0/26", "1", "tap0"}) == "prefix length needs to be 1-25");
  CHECK(settings({"--cidr=16.0.0.0/4", "1", "tap0"}).find("slipway needs a prefix length of 8 to 25") !=
        std::string::npos);
  CHECK(settings({"--cidr=banana", "1", "tap0"}) == "invalid CIDR: banana");
  CHECK(settings({"-c", "--macaddress=52:54:00:00:00", "1", "tap0"}).find("is an invalid MAC address") !=
        std::string::npos);
  CHECK(settings({"1", "a/b"}).find("invalid TAPNAME") == 0);
}

TEST_CASE("slirp4netns options: SLIPWAY_CONFIG adds slipway's settings, never the command line's",
          "[compat][slirp4netns]") {
  char path[] = "/tmp/slipway-s4n-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "[network]\nmtu = 1500\nsearch = [\"example.test\"]\n"
         "[dns]\nupstreams = [\"192.0.2.53\"]\n"
         "[forwarding]\nauto = true\nforwards = [\"127.0.0.1:8080:80\"]\n"
         "[log]\nlevel = \"debug\"\n";
  }
  auto p = parse({"-c", "--mtu=65520", "1", "tap0"});
  REQUIRE(p.action == Action::kRun);
  auto s = slipway::compat::settings_of(p.options);
  auto ignored = slipway::compat::apply_config_file(s, path);
  CHECK(s.mtu == 65520);  // the command line's
  REQUIRE(ignored.size() == 1);
  CHECK(ignored[0].find("network.mtu is decided by the slirp4netns command line") != std::string::npos);
  CHECK(s.search == std::vector<std::string>{"example.test"});
  CHECK(s.dns_upstreams == std::vector<std::string>{"192.0.2.53"});
  CHECK(s.forward_auto);
  CHECK(s.publish == std::vector<std::string>{"127.0.0.1:8080:80"});
  CHECK(s.log_level == "debug");
  CHECK(s.address == "10.0.2.100/24");

  {
    std::ofstream f(path);
    f << "mode = \"mirrored\"\n";
  }
  auto again = slipway::compat::settings_of(p.options);
  CHECK_THROWS_AS(slipway::compat::apply_config_file(again, path), InvalidOption);
  {
    std::ofstream f(path);
    f << "[network]\nmtu = \"big\"\n";
  }
  CHECK_THROWS_AS(slipway::compat::apply_config_file(again, path), slipway::config::ConfigError);
  std::remove(path);
}
