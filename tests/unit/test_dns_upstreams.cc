// dns-proxy/upstreams: address and route parsing, resolv.conf and hosts
// files, and longest-suffix route selection.
#include <catch2/catch.hpp>

#include "dns-proxy/message.h"
#include "dns-proxy/upstreams.h"

using namespace slipway::dns;

TEST_CASE("dns upstreams: addresses with and without ports", "[dns]") {
  CHECK(parse_upstream("192.0.2.1") == Upstream{"192.0.2.1", 53});
  CHECK(parse_upstream("192.0.2.1:5353") == Upstream{"192.0.2.1", 5353});
  CHECK(parse_upstream("2001:db8::1") == Upstream{"2001:db8::1", 53});
  CHECK(parse_upstream("[2001:db8::1]:5353") == Upstream{"2001:db8::1", 5353});
  CHECK(parse_upstream("fe80::1%lo") == Upstream{"fe80::1%lo", 53});
  CHECK_FALSE(parse_upstream("dns.example"));
  CHECK_FALSE(parse_upstream("192.0.2.1:0"));
  CHECK_FALSE(parse_upstream("192.0.2.1:70000"));
  CHECK_FALSE(parse_upstream("[2001:db8::1"));
  CHECK_FALSE(parse_upstream(""));
}

TEST_CASE("dns upstreams: resolv.conf nameservers in order", "[dns]") {
  auto servers = parse_resolv_conf(
      "# generated\n"
      "search corp.example\n"
      "nameserver 192.0.2.53\n"
      "options edns0 timeout:1\n"
      "nameserver   2001:db8::53  \n"
      "nameserver bogus\n"
      "; comment\n"
      "nameserver 127.0.0.53\n");
  REQUIRE(servers.size() == 3);
  CHECK(servers[0] == Upstream{"192.0.2.53", 53});
  CHECK(servers[1] == Upstream{"2001:db8::53", 53});
  CHECK(servers[2] == Upstream{"127.0.0.53", 53});
  CHECK(parse_resolv_conf("").empty());
}

TEST_CASE("dns upstreams: hosts files", "[dns]") {
  auto hosts = parse_hosts(
      "127.0.0.1 localhost\n"
      "10.0.2.2  host.internal Gateway.Internal # the host\n"
      "fd00::2   host.internal\n"
      "# 1.2.3.4 commented.out\n"
      "not-an-address name\n");
  CHECK(hosts.at("host.internal") == std::vector<std::string>{"10.0.2.2", "fd00::2"});
  CHECK(hosts.at("gateway.internal") == std::vector<std::string>{"10.0.2.2"});
  CHECK(hosts.count("commented.out") == 0);
  CHECK(hosts.count("name") == 0);
}

TEST_CASE("dns upstreams: routes pick the longest suffix", "[dns]") {
  auto r = parse_route("corp.example=192.0.2.10:5353");
  REQUIRE(r);
  CHECK(r->suffix == "corp.example");
  CHECK(r->upstream == Upstream{"192.0.2.10", 5353});
  CHECK_FALSE(parse_route("corp.example"));
  CHECK_FALSE(parse_route("a..b=192.0.2.1"));

  UpstreamSet set({Upstream{"192.0.2.1", 53}},
                  {Route{"corp.example", {"192.0.2.10", 53}}, Route{"Lab.Corp.Example.", {"192.0.2.20", 53}},
                   Route{"corp.example", {"192.0.2.11", 53}}});
  auto pick = [&](const char* name) { return set.select(*name_from_text(name)); };
  REQUIRE(pick("www.example.org").size() == 1);
  CHECK(pick("www.example.org")[0].upstream.address == "192.0.2.1");
  REQUIRE(pick("git.corp.example").size() == 2);
  CHECK(pick("git.corp.example")[0].upstream.address == "192.0.2.10");
  CHECK(pick("git.corp.example")[1].upstream.address == "192.0.2.11");
  CHECK(pick("CORP.example")[0].upstream.address == "192.0.2.10");
  CHECK(pick("x.lab.corp.example")[0].upstream.address == "192.0.2.20");
  CHECK(pick("notcorp.example")[0].upstream.address == "192.0.2.1");
  CHECK_THROWS_AS(UpstreamSet({Upstream{"nonsense", 53}}, {}), std::runtime_error);
}
