// LwipEngine and UdpFlow scenarios: guest datagrams handed to the engine,
// real host UDP sockets on 127.0.0.1 / ::1, time driven by the test's
// ManualClock.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine_rig.h"
#include "netstack/wire/icmp.h"
#include "sockets.h"

using namespace slipway;
using namespace slipway::test;

namespace {

// A datagram the engine sent to the guest.
struct ToGuest {
  IpAddr src, dst;
  uint16_t src_port = 0, dst_port = 0;
  std::vector<std::byte> payload;
  bool checksum_ok = false;
};

std::vector<ToGuest> udp_to_guest(const EngineRig& rig) {
  std::vector<ToGuest> r;
  for (const auto& p : rig.packets()) {
    if (p.protocol != wire::ipproto::kUdp) continue;
    auto udp = wire::UdpDatagram::parse(p.l4());
    if (!udp) continue;
    ToGuest d{p.src,
              p.dst,
              udp->src_port(),
              udp->dst_port(),
              {udp->payload().begin(), udp->payload().end()},
              l4_checksum_ok(p.src, p.dst, wire::ipproto::kUdp, udp->bytes())};
    r.push_back(std::move(d));
  }
  return r;
}

// Waits for one datagram on `s`.
HostUdp::Datagram receive_one(EngineRig& rig, HostUdp& s) {
  std::optional<HostUdp::Datagram> d;
  REQUIRE(rig.run_until([&] {
    if (!d) d = s.receive();
    return d.has_value();
  }));
  return *d;
}

}  // namespace

TEST_CASE("engine: UDP maps a guest source port to one host port for every destination", "[engine][udp]") {
  EngineRig rig;
  HostUdp one, two;
  rig.input(guest_udp_packet(kGuest4, 5555, kGateway4, one.port(), bytes_of("to one")));
  rig.input(guest_udp_packet(kGuest4, 5555, kGateway4, two.port(), bytes_of("to two")));
  CHECK(rig.engine().udp_flow_count() == 1);
  CHECK(rig.stats().udp_datagrams_out == 2);

  // Both servers see the same peer: the host's loopback, one port.
  auto d1 = receive_one(rig, one);
  auto d2 = receive_one(rig, two);
  CHECK(d1.payload == bytes_of("to one"));
  CHECK(d2.payload == bytes_of("to two"));
  CHECK(d1.from == IpAddr(engine::NatPolicy::kHostLoopback));
  CHECK(d2.from == d1.from);
  CHECK(d2.from_port == d1.from_port);
  const uint16_t mapped = d1.from_port;

  // Replies come back to the guest's port, from the address and port it
  // addressed.
  REQUIRE(one.send_to(d1.from, mapped, bytes_of("reply one")));
  REQUIRE(two.send_to(d1.from, mapped, bytes_of("reply two")));
  REQUIRE(rig.run_until([&] { return udp_to_guest(rig).size() == 2; }));
  auto got = udp_to_guest(rig);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(got[i].src == IpAddr(kGateway4));
    CHECK(got[i].dst == IpAddr(kGuest4));
    CHECK(got[i].dst_port == 5555);
    CHECK(got[i].checksum_ok);
  }
  // The two replies may be read in either order.
  if (got[0].src_port != one.port()) std::swap(got[0], got[1]);
  CHECK(got[0].src_port == one.port());
  CHECK(got[0].payload == bytes_of("reply one"));
  CHECK(got[1].src_port == two.port());
  CHECK(got[1].payload == bytes_of("reply two"));
  CHECK(rig.stats().udp_datagrams_in == 2);

  // Another guest source port is another mapping, on another host port.
  rig.input(guest_udp_packet(kGuest4, 5556, kGateway4, one.port(), bytes_of("other source")));
  auto d3 = receive_one(rig, one);
  CHECK(d3.payload == bytes_of("other source"));
  CHECK(d3.from_port != mapped);
  CHECK(rig.engine().udp_flow_count() == 2);

  // A host address the guest never sent to cannot reach it through the
  // mapping.
  HostUdp stranger(false, "127.0.0.2");
  REQUIRE(stranger.send_to(IpAddr(engine::NatPolicy::kHostLoopback), mapped, bytes_of("injected")));
  REQUIRE(rig.run_until([&] { return rig.stats().udp_filtered == 1; }));
  rig.run_for(20, [] {});
  CHECK(udp_to_guest(rig).size() == 2);

  // Filtering is by address (udp_flow.h): another port of an address the
  // guest sent to gets through.
  HostUdp three;
  REQUIRE(three.send_to(IpAddr(engine::NatPolicy::kHostLoopback), mapped, bytes_of("from three")));
  REQUIRE(rig.run_until([&] { return udp_to_guest(rig).size() == 3; }));
  auto third = udp_to_guest(rig)[2];
  CHECK(third.src_port == three.port());
  CHECK(third.payload == bytes_of("from three"));
  CHECK(rig.stats().udp_filtered == 1);
}

TEST_CASE("engine: an idle UDP mapping expires after udp_idle_timeout_ms and its host socket closes", "[engine][udp]") {
  EngineRig rig;
  const uint64_t timeout = rig.engine().config().udp_idle_timeout_ms;
  HostUdp server;
  rig.input(guest_udp_packet(kGuest4, 6000, kGateway4, server.port(), bytes_of("hello")));
  const uint16_t mapped = receive_one(rig, server).from_port;
  const IpAddr host_lo(engine::NatPolicy::kHostLoopback);

  // Just before the timeout the mapping is still there; a reply then
  // counts as activity and keeps it for another full timeout.
  rig.advance(timeout - 1000);
  rig.engine().housekeeping(rig.clock.now_ms());
  rig.run_for(10, [] {});
  CHECK(rig.engine().udp_flow_count() == 1);
  REQUIRE(server.send_to(host_lo, mapped, bytes_of("still here")));
  REQUIRE(rig.run_until([&] { return udp_to_guest(rig).size() == 1; }));
  rig.advance(timeout - 1000);
  rig.engine().housekeeping(rig.clock.now_ms());
  rig.run_for(10, [] {});
  CHECK(rig.engine().udp_flow_count() == 1);

  // Idle beyond the timeout: the mapping and its host socket go.
  rig.advance(2000);
  rig.engine().housekeeping(rig.clock.now_ms());
  REQUIRE(rig.run_until([&] { return rig.engine().udp_flow_count() == 0; }));

  // The port is closed: the kernel refuses a datagram to it (ICMP port
  // unreachable, reported to a connected socket as ECONNREFUSED), and
  // nothing reaches the guest.
  sockaddr_storage to = engine::to_sockaddr(host_lo, mapped);
  REQUIRE(connect(server.fd.get(), reinterpret_cast<sockaddr*>(&to), sockaddr_len(to)) == 0);
  REQUIRE(send(server.fd.get(), "late", 4, 0) == 4);
  int err = 0;
  REQUIRE(rig.run_until([&] {
    std::byte b[16];
    if (recv(server.fd.get(), b, sizeof b, 0) < 0 && errno != EAGAIN) err = errno;
    return err != 0;
  }));
  CHECK(err == ECONNREFUSED);
  CHECK(udp_to_guest(rig).size() == 1);
  CHECK(rig.stats().udp_filtered == 0);

  // A new datagram from the guest opens a new mapping.
  rig.input(guest_udp_packet(kGuest4, 6000, kGateway4, server.port(), bytes_of("again")));
  CHECK(rig.engine().udp_flow_count() == 1);
}

TEST_CASE("engine: max_udp_flows: a datagram needing a mapping beyond the limit gets ICMP unreachable",
          "[engine][udp]") {
  auto config = engine_config();
  config.max_udp_flows = 1;
  EngineRig rig(config);
  HostUdp server;
  rig.input(guest_udp_packet(kGuest4, 7000, kGateway4, server.port(), bytes_of("first")));
  size_t before = rig.out.size();
  rig.input(guest_udp_packet(kGuest4, 7001, kGateway4, server.port(), bytes_of("second: no mapping")));
  // At once: destination unreachable, administratively prohibited, quoting
  // the datagram (it used to vanish without a word).
  REQUIRE(rig.out.size() == before + 1);
  const GuestPacket p = rig.packets(before)[0];
  REQUIRE(p.protocol == wire::ipproto::kIcmp);
  CHECK(p.src == IpAddr(kGateway4));
  CHECK(p.dst == IpAddr(kGuest4));
  auto icmp = wire::IcmpMessage::parse(p.l4());
  REQUIRE(icmp);
  CHECK(icmp->checksum_ok());
  CHECK(icmp->type() == wire::icmptype::kDestUnreachable);
  CHECK(icmp->code() == wire::icmpcode::kAdminProhibited);
  auto quoted = wire::Ipv4Packet::parse(icmp->payload());
  REQUIRE(quoted);
  auto qudp = wire::UdpDatagram::parse(quoted->payload());
  REQUIRE(qudp);
  CHECK(qudp->src_port() == 7001);
  CHECK(qudp->dst_port() == server.port());
  rig.input(guest_udp_packet(kGuest4, 7000, kGateway4, server.port(), bytes_of("third")));
  CHECK(rig.engine().udp_flow_count() == 1);
  CHECK(rig.stats().udp_dropped == 1);
  CHECK(rig.stats().udp_limit == 1);
  CHECK(rig.stats().udp_datagrams_out == 2);
  std::vector<std::vector<std::byte>> got;
  rig.run_for(100, [&] {
    while (auto d = server.receive()) got.push_back(d->payload);
  });
  REQUIRE(got.size() == 2);
  CHECK(got[0] == bytes_of("first"));
  CHECK(got[1] == bytes_of("third"));
}

TEST_CASE("engine: with several guests, one guest holds at most half of max_udp_flows", "[engine][udp]") {
  auto config = engine_config();
  config.max_udp_flows = 4;
  EngineRig rig(config);
  uint32_t port = 1;
  rig.engine().set_guest_identity([&] { return port; });
  HostUdp server;
  rig.input(guest_udp_packet(kGuest4, 7100, kGateway4, server.port(), bytes_of("a")));
  rig.input(guest_udp_packet(kGuest4, 7101, kGateway4, server.port(), bytes_of("b")));
  size_t before = rig.out.size();
  rig.input(guest_udp_packet(kGuest4, 7102, kGateway4, server.port(), bytes_of("c: over its share")));
  REQUIRE(rig.out.size() == before + 1);
  CHECK(rig.packets(before)[0].protocol == wire::ipproto::kIcmp);
  CHECK(rig.stats().udp_limit == 1);
  CHECK(rig.stats().guest_share_refused == 1);
  port = 2;  // another guest still gets mappings
  const wire::Ipv4Addr other{10, 0, 2, 16};
  rig.input(guest_udp_packet(other, 7100, kGateway4, server.port(), bytes_of("d")));
  rig.input(guest_udp_packet(other, 7101, kGateway4, server.port(), bytes_of("e")));
  CHECK(rig.engine().udp_flow_count() == 4);
  CHECK(rig.stats().guest_share_refused == 1);
  std::vector<std::vector<std::byte>> got;
  rig.run_for(100, [&] {
    while (auto d = server.receive()) got.push_back(d->payload);
  });
  CHECK(got.size() == 4);
}

TEST_CASE("engine: UDP over IPv6 reaches ::1 through the IPv6 gateway and the reply comes back",
          "[engine][udp][ipv6]") {
  if (!have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  EngineRig rig(engine_config(true));
  HostUdp server(true);
  rig.input(guest_udp_packet(kGuest6, 5353, kGateway6, server.port(), bytes_of("over six")));
  auto d = receive_one(rig, server);
  CHECK(d.payload == bytes_of("over six"));
  CHECK(d.from == IpAddr(engine::NatPolicy::kHostLoopback6));
  REQUIRE(server.send_to(d.from, d.from_port, bytes_of("back over six")));
  REQUIRE(rig.run_until([&] { return udp_to_guest(rig).size() == 1; }));
  auto r = udp_to_guest(rig)[0];
  CHECK(r.src == IpAddr(kGateway6));
  CHECK(r.dst == IpAddr(kGuest6));
  CHECK(r.src_port == server.port());
  CHECK(r.dst_port == 5353);
  CHECK(r.checksum_ok);
  CHECK(r.payload == bytes_of("back over six"));
}

TEST_CASE("engine: max_new_flows_per_second: new mappings past the rate get ICMP unreachable, old ones go on",
          "[engine][udp]") {
  auto config = engine_config();
  config.max_new_flows_per_second = 3;
  EngineRig rig(config);
  HostUdp server;
  for (uint16_t port = 7100; port < 7105; port++)
    rig.input(guest_udp_packet(kGuest4, port, kGateway4, server.port(), bytes_of("x")));
  CHECK(rig.engine().udp_flow_count() == 3);
  CHECK(rig.stats().udp_rate_limited == 2);
  CHECK(rig.out.size() == 2);  // two ICMP errors
  // A mapping that exists needs no token.
  rig.input(guest_udp_packet(kGuest4, 7100, kGateway4, server.port(), bytes_of("y")));
  CHECK(rig.stats().udp_datagrams_out == 4);
  // A second later the bucket is full again.
  rig.advance(1000);
  rig.input(guest_udp_packet(kGuest4, 7103, kGateway4, server.port(), bytes_of("z")));
  CHECK(rig.engine().udp_flow_count() == 4);
  CHECK(rig.stats().udp_rate_limited == 2);
}
