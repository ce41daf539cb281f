// slipway::portfwd::parse_rule: the docker/podman `-p` syntax, valid and
// invalid forms, error messages naming the bad part, and to_string()
// round trips.
#include <catch2/catch.hpp>
#include <string>

#include "portfwd/rule.h"

using slipway::portfwd::parse_rule;
using slipway::portfwd::Protocol;
using slipway::portfwd::Rule;

namespace {

Rule must_parse(const std::string& text) {
  std::string error;
  auto rule = parse_rule(text, &error);
  INFO(text << ": " << error);
  REQUIRE(rule.has_value());
  return *rule;
}

std::string must_fail(const std::string& text) {
  std::string error;
  auto rule = parse_rule(text, &error);
  INFO(text);
  REQUIRE_FALSE(rule.has_value());
  REQUIRE_FALSE(error.empty());
  return error;
}

}  // namespace

TEST_CASE("portfwd rule: HOSTPORT:GUESTPORT defaults to 127.0.0.1 and tcp", "[portfwd]") {
  Rule r = must_parse("8080:80");
  CHECK(r.host_addr == "127.0.0.1");
  CHECK(r.host_port_first == 8080);
  CHECK(r.host_port_last == 8080);
  CHECK(r.guest_port_first == 80);
  CHECK(r.guest_port_last == 80);
  CHECK(r.proto == Protocol::kTcp);
  CHECK(r.count() == 1);
  CHECK(r.to_string() == "127.0.0.1:8080:80/tcp");
}

TEST_CASE("portfwd rule: valid forms", "[portfwd]") {
  struct Case {
    const char* text;
    const char* addr;
    uint16_t hf, hl, gf, gl;
    Protocol proto;
    const char* canonical;
  };
  const Case cases[] = {
      {"0.0.0.0:8080:80", "0.0.0.0", 8080, 8080, 80, 80, Protocol::kTcp, "0.0.0.0:8080:80/tcp"},
      {"10.1.2.3:1:1/udp", "10.1.2.3", 1, 1, 1, 1, Protocol::kUdp, "10.1.2.3:1:1/udp"},
      {"53:53/udp", "127.0.0.1", 53, 53, 53, 53, Protocol::kUdp, "127.0.0.1:53:53/udp"},
      {"65535:65535/tcp", "127.0.0.1", 65535, 65535, 65535, 65535, Protocol::kTcp, "127.0.0.1:65535:65535/tcp"},
      {"8000-8010:9000-9010", "127.0.0.1", 8000, 8010, 9000, 9010, Protocol::kTcp, "127.0.0.1:8000-8010:9000-9010/tcp"},
      {"[::1]:8080:80", "::1", 8080, 8080, 80, 80, Protocol::kTcp, "[::1]:8080:80/tcp"},
      {"[::]:5000-5001:6000-6001/udp", "::", 5000, 5001, 6000, 6001, Protocol::kUdp, "[::]:5000-5001:6000-6001/udp"},
      {"[2001:DB8:0:0::1]:443:8443", "2001:db8::1", 443, 443, 8443, 8443, Protocol::kTcp, "[2001:db8::1]:443:8443/tcp"},
      {"[::ffff:127.0.0.1]:80:80", "::ffff:127.0.0.1", 80, 80, 80, 80, Protocol::kTcp, "[::ffff:127.0.0.1]:80:80/tcp"},
      {"007:08", "127.0.0.1", 7, 7, 8, 8, Protocol::kTcp, "127.0.0.1:7:8/tcp"},
      {"100-100:200-200", "127.0.0.1", 100, 100, 200, 200, Protocol::kTcp, "127.0.0.1:100:200/tcp"},
  };
  for (const Case& c : cases) {
    Rule r = must_parse(c.text);
    INFO(c.text);
    CHECK(r.host_addr == c.addr);
    CHECK(r.host_port_first == c.hf);
    CHECK(r.host_port_last == c.hl);
    CHECK(r.guest_port_first == c.gf);
    CHECK(r.guest_port_last == c.gl);
    CHECK(r.proto == c.proto);
    CHECK(r.to_string() == c.canonical);
    // The canonical form parses to the same rule.
    CHECK(must_parse(r.to_string()) == r);
  }
}

TEST_CASE("portfwd rule: invalid forms are rejected with a message", "[portfwd]") {
  const char* invalid[] = {
      "",
      "80",
      ":80",
      "80:",
      "0:80",
      "80:0",
      "65536:80",
      "80:99999",
      "123456:80",
      "-1:80",
      "+80:80",
      " 80:80",
      "80:80 ",
      "8080:80/sctp",
      "8080:80/TCP",
      "8080:80/",
      "8080:80/tcp/udp",
      "a:80",
      "80:b",
      "8000-7000:80-81",
      "8000-8001:80",
      "8000:80-81",
      "8000-8002:80-81",
      "8000-:80",
      "-8000:80",
      "8000--8001:80-81",
      "1.2.3:80:80",
      "1.2.3.4.5:80:80",
      "256.0.0.1:80:80",
      "localhost:80:80",
      ":80:80",
      "::1:8080:80",
      "[::1:8080:80",
      "[::1]8080:80",
      "[::1]:8080",
      "[zz::1]:80:80",
      "[1.2.3.4]:80:80",
      "[]:80:80",
      "1.2.3.4:80:80:90",
      "80:80:80",
  };
  for (const char* text : invalid) must_fail(text);
}

TEST_CASE("portfwd rule: error messages name the problem", "[portfwd]") {
  CHECK_THAT(must_fail("70000:80"), Catch::Contains("host port '70000'"));
  CHECK_THAT(must_fail("80:70000"), Catch::Contains("guest port '70000'"));
  CHECK_THAT(must_fail("8000-8001:80"), Catch::Contains("different lengths (2 and 1)"));
  CHECK_THAT(must_fail("80:80/sctp"), Catch::Contains("protocol 'sctp'"));
  CHECK_THAT(must_fail("::1:80:80"), Catch::Contains("brackets"));
  CHECK_THAT(must_fail("1.2.3.999:80:80"), Catch::Contains("host address '1.2.3.999'"));
  CHECK_THAT(must_fail("[::g]:80:80"), Catch::Contains("IPv6 address '::g'"));
  CHECK_THAT(must_fail("90-80:90-80"), Catch::Contains("ends before it starts"));
  CHECK_THAT(must_fail("80"), Catch::Contains("HOSTPORT:GUESTPORT"));
}

TEST_CASE("portfwd rule: a null error pointer is allowed", "[portfwd]") {
  CHECK_FALSE(parse_rule("nonsense", nullptr).has_value());
  CHECK(parse_rule("1:2", nullptr).has_value());
}

TEST_CASE("rules may name their guest by name or address", "[portfwd]") {
  std::string err;
  auto r = slipway::portfwd::parse_rule("8080:web:80", &err);
  REQUIRE(r);
  CHECK(r->host_addr == "127.0.0.1");
  CHECK(r->host_port_first == 8080);
  CHECK(r->guest == "web");
  CHECK(r->guest_port_first == 80);
  CHECK(r->to_string() == "127.0.0.1:8080:web:80/tcp");
  r = slipway::portfwd::parse_rule("0.0.0.0:8000-8001:10.0.2.16:80-81/udp", &err);
  REQUIRE(r);
  CHECK(r->host_addr == "0.0.0.0");
  CHECK(r->guest == "10.0.2.16");
  CHECK(r->proto == slipway::portfwd::Protocol::kUdp);
  CHECK(slipway::portfwd::parse_rule(r->to_string(), &err) == r);
  r = slipway::portfwd::parse_rule("[::1]:8080:db-2:5432", &err);
  REQUIRE(r);
  CHECK(r->host_addr == "::1");
  CHECK(r->guest == "db-2");
  // Without a guest, the rule is what it always was.
  r = slipway::portfwd::parse_rule("127.0.0.1:8080:80", &err);
  REQUIRE(r);
  CHECK(r->guest.empty());
  CHECK_FALSE(slipway::portfwd::parse_rule("8080:-bad:80", &err));
  CHECK(err.find("invalid guest '-bad'") != std::string::npos);
  CHECK_FALSE(slipway::portfwd::parse_rule("8080:under_score:80", &err));
  CHECK_FALSE(slipway::portfwd::parse_rule("1.2.3.4:8080:web:80:90", &err));
  CHECK(err.find("too many ':'") != std::string::npos);
}
