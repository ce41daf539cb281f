// EgressPolicy (--allow, --deny): parsing CIDR[:PORTS], matching, the
// built-in metadata rule, and what a guest gets for a denied TCP SYN, UDP
// datagram and ping through a real Stack: ICMP administratively prohibited
// at once, and no host socket (a listener on the denied port sees nothing).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "gateway_rig.h"
#include "netstack/engine/egress_policy.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"

using namespace slipway;
using engine::EgressPolicy;
using engine::EgressRule;
using engine::IpAddr;
using wire::Ipv4Addr;
using wire::Ipv6Addr;
using Proto = EgressPolicy::Proto;

namespace {

IpAddr v4(const char* s) { return IpAddr(*Ipv4Addr::parse(s)); }
IpAddr v6(const char* s) { return IpAddr(*Ipv6Addr::parse(s)); }

std::string parse_error(const char* text) {
  std::string err;
  CHECK_FALSE(EgressRule::parse(text, false, &err));
  return err;
}

}  // namespace

TEST_CASE("egress rules parse CIDR[:PORTS] and say why they refuse", "[egress]") {
  std::string err;
  auto r = EgressRule::parse("10.0.0.0/8:80,443,1000-2000", false, &err);
  REQUIRE(r);
  CHECK(r->network == v4("10.0.0.0"));
  CHECK(r->prefix == 8);
  REQUIRE(r->ports.size() == 3);
  CHECK(r->ports[2] == EgressRule::PortRange{1000, 2000});
  CHECK(r->to_string() == "10.0.0.0/8:80,443,1000-2000");
  r = EgressRule::parse("192.0.2.7", true, &err);
  REQUIRE(r);
  CHECK(r->prefix == 32);
  CHECK(r->ports.empty());
  CHECK(r->allow);
  r = EgressRule::parse("[2001:db8::/32]:443", false, &err);
  REQUIRE(r);
  CHECK(r->network.v6);
  CHECK(r->prefix == 32);
  CHECK(r->ports.front() == EgressRule::PortRange{443, 443});
  r = EgressRule::parse("fd00:ec2::254", false, &err);
  REQUIRE(r);
  CHECK(r->prefix == 128);
  r = EgressRule::parse("0.0.0.0/0", false, &err);
  REQUIRE(r);
  CHECK(r->prefix == 0);

  CHECK(parse_error("10.0.0.0/33").find("prefix length") != std::string::npos);
  CHECK(parse_error("10.0.0.300").find("not an IPv4 or IPv6 address") != std::string::npos);
  CHECK(parse_error("10.0.0.1:0").find("not a port") != std::string::npos);
  CHECK(parse_error("10.0.0.1:2000-1000").find("not a port") != std::string::npos);
  CHECK(parse_error("10.0.0.1:70000").find("not a port") != std::string::npos);
  CHECK(parse_error("10.0.0.1:").find("no ports") != std::string::npos);
  CHECK(parse_error("[2001:db8::").find("']'") != std::string::npos);
  CHECK(parse_error("[2001:db8::]443").find("':PORTS'") != std::string::npos);
  CHECK(parse_error("example.com").find("not an IPv4 or IPv6 address") != std::string::npos);
}

TEST_CASE("egress: metadata is denied unless allowed; allow wins over deny", "[egress]") {
  EgressPolicy p;
  CHECK_FALSE(p.allows(v4("169.254.169.254"), Proto::kTcp, 80));
  CHECK_FALSE(p.allows(v4("169.254.169.254"), Proto::kIcmp, 0));
  CHECK_FALSE(p.allows(v6("fd00:ec2::254"), Proto::kUdp, 53));
  CHECK(p.allows(v4("169.254.169.253"), Proto::kTcp, 80));
  CHECK(p.allows(v4("192.0.2.1"), Proto::kTcp, 80));

  p.add("169.254.169.254:80", true);  // only port 80
  CHECK(p.allows(v4("169.254.169.254"), Proto::kTcp, 80));
  CHECK_FALSE(p.allows(v4("169.254.169.254"), Proto::kTcp, 81));
  CHECK_FALSE(p.allows(v4("169.254.169.254"), Proto::kIcmp, 0));  // a rule with ports is TCP/UDP only

  EgressPolicy only10;
  only10.add("0.0.0.0/0", false);
  only10.add("::/0", false);
  only10.add("10.0.0.0/8", true);
  CHECK(only10.allows(v4("10.1.2.3"), Proto::kUdp, 53));
  CHECK_FALSE(only10.allows(v4("192.0.2.1"), Proto::kTcp, 443));
  CHECK_FALSE(only10.allows(v6("2001:db8::1"), Proto::kIcmp, 0));

  EgressPolicy ports;
  ports.add("127.0.0.1:25,8000-8080", false);
  CHECK_FALSE(ports.allows(v4("127.0.0.1"), Proto::kTcp, 25));
  CHECK_FALSE(ports.allows(v4("127.0.0.1"), Proto::kUdp, 8080));
  CHECK(ports.allows(v4("127.0.0.1"), Proto::kTcp, 8081));
  CHECK(ports.allows(v4("127.0.0.1"), Proto::kIcmp, 0));
  // The guest's address or the host address it maps to: 10.0.2.2 -> 127.0.0.1.
  CHECK_FALSE(ports.allows(v4("10.0.2.2"), v4("127.0.0.1"), Proto::kTcp, 25));
  EgressPolicy gw;
  gw.add("10.0.2.2", false);
  CHECK_FALSE(gw.allows(v4("10.0.2.2"), v4("127.0.0.1"), Proto::kTcp, 22));
  // An IPv4 rule never matches IPv6 and back.
  EgressPolicy fam;
  fam.add("0.0.0.0/0", false);
  CHECK(fam.allows(v6("2001:db8::1"), Proto::kTcp, 80));

  CHECK_THROWS_WITH(p.add("10.0.0.1/40", false), Catch::Contains("'10.0.0.1/40': prefix length"));
}

namespace {

const wire::MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const Ipv4Addr kGuest{10, 0, 2, 15};
const Ipv4Addr kGw{10, 0, 2, 2};

// A non-blocking listener on 127.0.0.1.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
  bool accepted = false;
  // True once a connection was accepted (sticky: run_until() asks again).
  bool accepted_any() {
    int c = ::accept(fd, nullptr, nullptr);
    if (c >= 0) {
      ::close(c);
      accepted = true;
    }
    return accepted;
  }
};

struct Rig : test::GatewayRig {
  explicit Rig(uint16_t denied_port) : GatewayRig(config(denied_port)) {}
  static stack::StackConfig config(uint16_t denied_port) {
    stack::StackConfig c;
    c.gateway.nat.egress.add("127.0.0.1:" + std::to_string(denied_port), false);
    c.gateway.nat.egress.add("192.0.2.0/24", false);
    return c;
  }
  // The single frame received must be ICMP type 3 code 13 from the gateway
  // quoting a packet of `protocol`.
  void expect_prohibited(uint8_t protocol) {
    REQUIRE(received.size() == 1);
    auto eth = wire::EthernetFrame::parse(received[0]);
    REQUIRE(eth);
    auto ip = wire::Ipv4Packet::parse(eth->payload());
    REQUIRE(ip);
    CHECK(ip->src() == kGw);
    CHECK(ip->dst() == kGuest);
    auto icmp = wire::IcmpMessage::parse(ip->payload());
    REQUIRE(icmp);
    CHECK(icmp->type() == wire::icmptype::kDestUnreachable);
    CHECK(icmp->code() == wire::icmpcode::kAdminProhibited);
    auto quoted = wire::Ipv4Packet::parse_quoted(icmp->payload());
    REQUIRE(quoted);
    CHECK(quoted->protocol() == protocol);
    received.clear();
  }
};

}  // namespace

TEST_CASE("egress: a denied SYN, datagram and ping get ICMP administratively prohibited at once", "[egress]") {
  Listener host;  // a real listener on the denied port: it must see no connection
  Rig r(host.port);
  wire::TcpHeaderFields f;
  f.src_port = 40000;
  f.dst_port = host.port;
  f.seq = 1000;
  f.flags = wire::tcpflag::kSyn;
  f.window = 65535;
  r.send(wire::build_ipv4_tcp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, f, {}));
  r.expect_prohibited(6);
  CHECK(r.stack->engine().tcp_flow_count() == 0);
  CHECK(r.stack->engine().stats().egress_denied == 1);

  std::vector<std::byte> payload(8, std::byte{1});
  r.send(wire::build_ipv4_udp_frame(r.gw_mac(), kGuestMac, kGuest, 40001, kGw, host.port, payload));
  r.expect_prohibited(17);
  CHECK(r.stack->engine().udp_flow_count() == 0);

  r.send(wire::build_ipv4_icmp_frame(r.gw_mac(), kGuestMac, kGuest, Ipv4Addr{192, 0, 2, 9},
                                     wire::icmptype::kEchoRequest, 0, 0x00770001, payload));
  r.expect_prohibited(1);
  CHECK(r.gw->stats().icmp_echo_denied == 1);

  CHECK(r.stack->engine().stats().egress_denied == 2);
  for (int i = 0; i < 20; ++i) r.pump();
  CHECK_FALSE(host.accepted_any());

  // Another host port is not denied: that SYN becomes a flow.
  Listener other;
  f.dst_port = other.port;
  r.send(wire::build_ipv4_tcp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, f, {}));
  CHECK(r.stack->engine().tcp_flow_count() == 1);
  CHECK(r.run_until([&] { return other.accepted_any(); }));
}

