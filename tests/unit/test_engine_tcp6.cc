// LwipEngine and TcpFlow over IPv6: the IPv6 gateway address maps to the
// host's ::1. The scripted guest (guest_tcp.h) plays fd00::15. (A closed
// port over IPv6 is a section of the IPv4 case in test_engine_tcp.cc.)
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <vector>

#include "engine_rig.h"
#include "guest_tcp.h"
#include "sockets.h"

using namespace slipway;
using namespace slipway::test;
using wire::Ipv6Addr;
namespace tcpflag = wire::tcpflag;

TEST_CASE("engine over IPv6: SYN-ACK only after the host connect to ::1, then data both ways intact",
          "[engine][tcp][ipv6]") {
  if (!have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  EngineRig rig(engine_config(true));
  HostListener listener(true);
  GuestTcp g(rig, kGuest6, 40600, kGateway6, listener.port());

  g.syn(6000);
  g.syn(6000);  // retransmitted before the host connect completed: dropped
  CHECK(rig.out.empty());
  CHECK(rig.stats().tcp_connects == 1);
  CHECK(rig.engine().tcp_flow_count() == 1);
  CHECK(tcp_flow_state(rig) == "connecting");

  HostConn host = await_established(rig, g, listener);
  CHECK(g.count(0xff, tcpflag::kSyn | tcpflag::kAck) == 1);
  CHECK(g.segments[0].ack == 6001);
  CHECK(g.peer_mss == 65520 - 60);  // the MTU less the IPv6 and TCP headers
  auto packets = rig.packets();
  REQUIRE(!packets.empty());
  CHECK(packets[0].src == IpAddr(kGateway6));
  CHECK(packets[0].dst == IpAddr(kGuest6));

  CHECK(peer_of(host.fd.get()).first == IpAddr(engine::NatPolicy::kHostLoopback6));
  exchange(rig, g, host, pattern(512 * 1024, 61), pattern(512 * 1024, 62));

  // And it ends cleanly both ways.
  g.fin();
  REQUIRE(converse(rig, g, &host, [&] { return host.eof; }));
  host.fd.reset();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin && rig.engine().tcp_flow_count() == 0; }));
  CHECK(g.count(tcpflag::kRst, tcpflag::kRst) == 0);
}

TEST_CASE("engine over IPv6: destinations the NAT policy refuses get RST at once", "[engine][tcp][ipv6]") {
  EngineRig rig(engine_config(true));
  struct Refused {
    Ipv6Addr dst;
    const char* why;
  };
  // Each gets an RST|ACK from the address tried, but ::, which gets
  // nothing (the case below).
  const Refused cases[] = {
      {Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0, 1}), "::1 addressed directly"},
      {Ipv6Addr{}, "::"},
      {Ipv6Addr::from_groups({0xfe80, 0, 0, 0, 0, 0, 0, 1}), "link-local"},
      {Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0xffff, 0x7f00, 1}), "IPv4-mapped 127.0.0.1"},
      {Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0x7f00, 1}), "IPv4-compatible 127.0.0.1"},
      {Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0x99}), "the guest's own prefix"},
      {Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 3}), "the DNS address (no resolver set)"},
  };
  uint16_t guest_port = 41600;
  uint32_t seq = 10;
  for (const auto& c : cases) {
    INFO(c.why);
    GuestTcp g(rig, kGuest6, guest_port++, c.dst, 53);
    size_t before = rig.out.size();
    g.syn(seq);
    if (c.dst.is_unspecified()) {  // dropped unanswered: see the case below
      CHECK(rig.out.size() == before);
      seq += 1000;
      continue;
    }
    REQUIRE(rig.out.size() == before + 1);  // answered inside input(), before the loop runs
    check_refusal(rig.packets(before)[0], c.dst, 53, kGuest6, g.guest_port(), seq + 1);
    seq += 1000;
  }
  CHECK(rig.stats().tcp_refused == std::size(cases));
  CHECK(rig.stats().tcp_connects == 0);
  CHECK(rig.engine().tcp_flow_count() == 0);
}

// As over IPv4 (test_engine_tcp.cc): a SYN to :: gets no answer.
TEST_CASE("engine over IPv6: a SYN to :: is dropped without an answer", "[engine][tcp][ipv6]") {
  EngineRig rig(engine_config(true));
  GuestTcp g(rig, kGuest6, 41700, Ipv6Addr{}, 80);
  g.syn(4000);
  CHECK(rig.out.empty());
  CHECK(rig.stats().tcp_refused == 1);
  CHECK(rig.stats().packets_dropped == 1);
  CHECK(rig.stats().tcp_connects == 0);
}
