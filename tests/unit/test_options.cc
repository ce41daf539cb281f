// NetworkOptions: how the settings become the gateway's and the guest
// interface's configuration, NAT IPv6 and mirrored mode (with a host
// network given here rather than read from the machine).
#include <catch2/catch.hpp>

#include "netstack/cli/options.h"

using namespace slipway;
using wire::Ipv4Addr;
using wire::Ipv6Addr;

namespace {

Ipv6Addr v6(const char* text) { return Ipv6Addr::parse(text).value(); }

ns::HostNetwork host_network(const char* gateway6, std::vector<std::string> nameservers) {
  ns::HostNetwork h;
  h.interface = "uplink0";
  h.mtu = 1400;
  h.ipv4 = {{Ipv4Addr{192, 0, 2, 10}, 24}};
  h.gateway4 = Ipv4Addr{192, 0, 2, 1};
  h.ipv6 = {{v6("fd00::2"), 64}, {v6("2001:db8::10"), 64}};
  h.gateway6 = v6(gateway6);
  h.nameservers = std::move(nameservers);
  return h;
}

}  // namespace

TEST_CASE("options: NAT IPv6 settings reach the NAT policy and the guest", "[options]") {
  cli::NetworkOptions o;
  o.ipv6_prefix = "fd42:1::/64";
  o.ipv6_gateway = "fd42:1::1";
  o.ipv6_dns = "fd42:1::35";
  auto g = o.gateway_config();
  CHECK(g.nat.ipv6);
  CHECK(g.nat.prefix6 == v6("fd42:1::"));
  CHECK(g.nat.gateway6 == v6("fd42:1::1"));
  CHECK(g.nat.dns6 == v6("fd42:1::35"));
  CHECK(g.nat.refuse_prefix6);
  CHECK_FALSE(g.proxy_neighbors);
  auto i = o.guest_interface();
  CHECK(i.ipv6);
  CHECK(i.ipv6_slaac);
  CHECK(i.nameservers == std::vector<std::string>{"fd42:1::35"});

  o.ipv6 = false;
  CHECK_FALSE(o.gateway_config().nat.ipv6);
  CHECK_FALSE(o.guest_interface().ipv6);
}

TEST_CASE("options: mirrored mode copies the host's interface", "[options]") {
  cli::NetworkOptions o;
  o.mode = "mirrored";
  CHECK_THROWS_AS(o.gateway_config(), std::logic_error);  // read_host_network() first
  o.host = host_network("fe80::1", {"127.0.0.53"});
  auto g = o.gateway_config();
  CHECK(g.nat.guest == Ipv4Addr{192, 0, 2, 10});
  CHECK(g.nat.prefix == 24);
  CHECK(g.nat.gateway == Ipv4Addr{192, 0, 2, 1});
  CHECK(g.nat.dns == Ipv4Addr{192, 0, 2, 1});  // the proxy at the gateway address
  CHECK(g.mtu == 1400);
  CHECK(g.proxy_neighbors);
  CHECK(g.nat.prefix6 == v6("fd00::"));
  CHECK_FALSE(g.nat.refuse_prefix6);
  CHECK(g.link_local6 == v6("fe80::1"));
  // fd00::2 and fd00::3 are on the host's link: moved off it.
  CHECK(g.nat.gateway6 == v6("fdff::2"));
  CHECK(g.nat.dns6 == v6("fdff::3"));

  auto i = o.guest_interface();
  CHECK(i.address == 0xc000020a);
  CHECK(i.gateway == 0xc0000201);
  CHECK(i.mtu == 1400);
  CHECK(i.dns == 0xc0000201);  // a loopback resolver on the host: the proxy
  CHECK(i.nameservers.empty());
  CHECK_FALSE(i.ipv6_slaac);
  REQUIRE(i.ipv6_addresses.size() == 2);
  CHECK(i.ipv6_addresses[1].first == v6("2001:db8::10"));
  CHECK(i.ipv6_addresses[1].second == 64);
  CHECK(i.ipv6_gateway == v6("fe80::1"));
}

TEST_CASE("options: mirrored mode with a global router and reachable resolvers", "[options]") {
  cli::NetworkOptions o;
  o.mode = "mirrored";
  o.host = host_network("fd00::1", {"192.0.2.53", "fd00::53"});
  auto g = o.gateway_config();
  CHECK_FALSE(g.link_local6);
  CHECK(g.nat.gateway6 == v6("fd00::1"));  // the router's address reaches the host's ::1
  auto i = o.guest_interface();
  CHECK(i.dns == 0);
  CHECK(i.nameservers == std::vector<std::string>{"192.0.2.53", "fd00::53"});
  // Without IPv6 in the guest an IPv6 resolver is useless: the proxy instead.
  o.ipv6 = false;
  i = o.guest_interface();
  CHECK(i.dns == 0xc0000201);
  CHECK(i.ipv6_addresses.empty());
}

TEST_CASE("options: mirrored mode refuses a host network it cannot copy", "[options]") {
  cli::NetworkOptions o;
  o.mode = "mirrored";
  auto h = host_network("fe80::1", {});
  h.gateway4.reset();
  o.host = h;
  CHECK_THROWS_WITH(o.gateway_config(), Catch::Contains("no IPv4 default gateway"));
  h = host_network("fe80::1", {});
  h.ipv4 = {{Ipv4Addr{192, 0, 2, 10}, 32}};
  o.host = h;
  CHECK_THROWS_WITH(o.gateway_config(), Catch::Contains("cannot be mirrored"));
  // A host without IPv4: the guest keeps NAT IPv4.
  h = host_network("fe80::1", {});
  h.ipv4.clear();
  h.gateway4.reset();
  o.host = h;
  CHECK(o.gateway_config().nat.guest == Ipv4Addr{10, 0, 2, 15});
}

TEST_CASE("options: --engine slirp reaches the stack; what it cannot do is refused naming the option", "[options]") {
  cli::NetworkOptions o;
  CHECK(o.stack_config().engine == stack::EngineKind::kLwip);
  o.engine = "slirp";
  CHECK(o.stack_config().engine == stack::EngineKind::kSlirp);
  auto refused = [&](const char* flag) {
    try {
      o.stack_config();
    } catch (const CLI::ValidationError& e) {
      std::string what = e.what();
      INFO(what);
      CHECK(what.find(flag) != std::string::npos);
      CHECK(what.find("slirp") != std::string::npos);
      return true;
    }
    return false;
  };
  o.publish = {"[::1]:8080:80"};
  CHECK(refused("--publish"));
  o.publish = {"127.0.0.1:8080:80"};
  CHECK_NOTHROW(o.stack_config());
  o.publish_source = "gateway";
  CHECK(refused("--publish-source"));
  o.publish_source = "client";
  o.max_tcp_flows = 10;
  CHECK(refused("--max-tcp-flows"));
  o.max_tcp_flows = cli::NetworkOptions{}.max_tcp_flows;
  o.mode = "mirrored";
  o.host = host_network("fe80::1", {"127.0.0.53"});
  CHECK(refused("--mode"));
}

TEST_CASE("options: --restrict refuses every destination in the NAT policy", "[options]") {
  cli::NetworkOptions o;
  auto open = o.gateway_config().nat;
  CHECK(open.host_destination(Ipv4Addr{192, 0, 2, 1}).has_value());
  CHECK(open.host_destination(open.gateway).has_value());  // the host's loopback
  o.restrict_guest = true;
  auto nat = o.gateway_config().nat;
  CHECK(nat.restrict_outbound);
  CHECK_FALSE(nat.host_destination(Ipv4Addr{192, 0, 2, 1}).has_value());
  CHECK_FALSE(nat.host_destination(nat.gateway).has_value());
  CHECK_FALSE(nat.host_destination(v6("2001:db8::1")).has_value());
  CHECK_FALSE(nat.host_destination(nat.gateway6).has_value());
}
