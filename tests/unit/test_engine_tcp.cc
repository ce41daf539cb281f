// LwipEngine and TcpFlow scenarios over IPv4: a guest TCP played by hand
// (guest_tcp.h) against the engine on a real libuv loop, with real host
// sockets on 127.0.0.1 and time driven by the test's ManualClock.
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "lwip/opt.h"  // TCP_WND, TCP_SND_BUF: the bounds the backpressure tests assert
}

#include "engine_rig.h"
#include "guest_tcp.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"
#include "sockets.h"

using namespace slipway;
using namespace slipway::test;
using wire::Ipv4Addr;
namespace tcpflag = wire::tcpflag;

namespace {

constexpr uint8_t kSynAck = tcpflag::kSyn | tcpflag::kAck;

// A client connection to `listener` that completes at once and sits in its
// accept queue: with a backlog of 0 the queue is then full and the kernel
// drops further SYNs (the client retransmits after 1 s) until the test
// accepts this one.
Fd fill_accept_queue(HostListener& listener) {
  Fd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage a = loopback_address(false, listener.port());
  REQUIRE(connect(c.get(), reinterpret_cast<sockaddr*>(&a), sockaddr_len(a)) == 0);
  return c;
}

// A fixture (TEST_CASE_METHOD): a guest about to connect to a host
// listener whose accept queue is full, so that the engine's host connect
// stays under way until the test accepts `filler`.
struct StalledConnect {
  EngineRig rig;
  HostListener listener{false, 0};
  Fd filler = fill_accept_queue(listener);
  GuestTcp g{rig, kGuest4, 40000, kGateway4, listener.port()};
};

// After a guest RST: the host's read fails with ECONNRESET (not EOF) and
// the flow is gone.
void expect_host_reset(GuestConnection& c) {
  REQUIRE(c.rig.run_until([&] {
    c.host.read_some();
    return c.host.eof || c.host.error != 0;
  }));
  CHECK(c.host.error == ECONNRESET);
  CHECK_FALSE(c.host.eof);
  CHECK(c.rig.run_until([&] { return c.rig.engine().tcp_flow_count() == 0; }));
}

int int_sockopt(int fd, int level, int name) {
  int v = 0;
  socklen_t l = sizeof v;
  getsockopt(fd, level, name, &v, &l);
  return v;
}

// The largest value of a tcp_[rw]mem sysctl (its third number), or `fallback`.
uint64_t sysctl_max(const char* path, uint64_t fallback) {
  auto v = read_sysctl(path);
  return v.size() == 3 ? v[2] : fallback;
}

}  // namespace

TEST_CASE_METHOD(StalledConnect, "engine: a guest SYN gets its SYN-ACK only once the host accepted the connection",
                 "[engine][tcp]") {
  g.syn(7000);
  CHECK(rig.out.empty());  // nothing before the host connect completes
  CHECK(rig.stats().tcp_connects == 1);
  CHECK(rig.engine().tcp_flow_count() == 1);
  CHECK(tcp_flow_state(rig) == "connecting");

  // The host's accept queue is full: its kernel drops the engine's SYN, so
  // the guest hears nothing.
  rig.run_for(300, [&] { g.poll(); });
  CHECK(rig.out.empty());
  CHECK(tcp_flow_state(rig) == "connecting");

  // The guest retransmits its SYN: dropped, no second flow or connect.
  g.syn(7000);
  rig.run_for(50, [&] { g.poll(); });
  CHECK(rig.out.empty());
  CHECK(rig.stats().tcp_connects == 1);
  CHECK(rig.engine().tcp_flow_count() == 1);

  // Room in the queue: the kernel's retransmitted SYN gets through, the
  // host connect completes and only then does the guest get its SYN-ACK.
  Fd first = listener.accept();
  REQUIRE(first);
  HostConn host = await_established(rig, g, listener, 5000);
  CHECK(g.count(0xff, kSynAck) == 1);
  auto packets = rig.packets();
  REQUIRE(!packets.empty());
  const GuestPacket& synack = packets[0];
  CHECK(synack.src == IpAddr(kGateway4));
  CHECK(synack.dst == IpAddr(kGuest4));
  CHECK(g.segments[0].flags == kSynAck);
  CHECK(g.segments[0].ack == 7001);
  CHECK(g.peer_mss == 65520 - 40);  // the engine's MTU less the IPv4 and TCP headers
  CHECK(g.peer_wscale == TCP_RCV_SCALE);
  CHECK(g.bad_checksums == 0);
  CHECK(tcp_flow_state(rig) == "established");
  CHECK(rig.stats().tcp_connects == 1);

  // The host sees the connection from its loopback, and it carries data.
  CHECK(peer_of(host.fd.get()).first == IpAddr(engine::NatPolicy::kHostLoopback));
  exchange(rig, g, host, bytes_of("hello, host"), bytes_of("hello, guest"));
}

TEST_CASE("engine: a SYN to a closed host port gets RST|ACK from the address the guest tried", "[engine][tcp][ipv6]") {
  bool v6 = false;
  SECTION("IPv4: 10.0.2.2 -> 127.0.0.1") {}
  SECTION("IPv6: fd00::2 -> ::1") { v6 = true; }
  if (v6 && !have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  const IpAddr guest = v6 ? IpAddr(kGuest6) : IpAddr(kGuest4);
  const IpAddr gateway = v6 ? IpAddr(kGateway6) : IpAddr(kGateway4);
  EngineRig rig(engine_config(v6));
  uint16_t port = free_loopback_port(v6);
  GuestTcp g(rig, guest, 40001, gateway, port);
  g.syn(5000);
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_rst; }));
  REQUIRE(rig.out.size() == 1);  // the RST and nothing else
  check_refusal(rig.packets()[0], gateway, port, guest, 40001, 5001);
  CHECK(rig.stats().tcp_connects == 1);
  CHECK(rig.stats().tcp_refused == 1);
  CHECK(rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; }));
}

TEST_CASE("engine: destinations the NAT policy refuses get RST at once and no host connection", "[engine][tcp]") {
  HostListener listener;  // would take a connection that leaked to the host's loopback
  uint16_t port = listener.port();
  struct Refused {
    Ipv4Addr dst;
    uint16_t port;
    const char* why;
  };
  // Each gets an RST|ACK from the address the guest tried, but 0.0.0.0,
  // which gets nothing (the case below).
  const Refused cases[] = {
      {Ipv4Addr{0, 0, 0, 0}, port, "0.0.0.0"},
      {Ipv4Addr{127, 0, 0, 1}, port, "the host's loopback, addressed directly"},
      {Ipv4Addr{127, 1, 2, 3}, port, "another 127/8 address"},
      {Ipv4Addr{10, 0, 2, 255}, port, "the guest subnet's broadcast"},
      {Ipv4Addr{224, 0, 0, 1}, port, "multicast"},
      {Ipv4Addr{240, 0, 0, 1}, port, "240/4"},
      {Ipv4Addr{10, 0, 2, 3}, 53, "the DNS address (no resolver set)"},
      {kGateway4, 0, "port 0"},
  };

  SECTION("with host loopback on") {
    EngineRig rig;
    uint16_t guest_port = 41000;
    uint32_t seq = 100;
    for (const auto& c : cases) {
      INFO(c.why);
      GuestTcp g(rig, kGuest4, guest_port++, c.dst, c.port);
      size_t before = rig.out.size();
      g.syn(seq);
      if (c.dst.is_unspecified()) {  // dropped unanswered: see the case below
        CHECK(rig.out.size() == before);
        seq += 1000;
        continue;
      }
      REQUIRE(rig.out.size() == before + 1);  // answered inside input(), before the loop runs
      check_refusal(rig.packets(before)[0], c.dst, c.port, kGuest4, g.guest_port(), seq + 1);
      seq += 1000;
    }
    CHECK(rig.stats().tcp_refused == std::size(cases));
    CHECK(rig.stats().tcp_connects == 0);
    CHECK(rig.engine().tcp_flow_count() == 0);
    rig.run_for(100, [] {});
    CHECK_FALSE(listener.accept());
  }
  SECTION("with host loopback off, the gateway address too") {
    auto config = engine_config();
    config.nat.host_loopback = false;
    EngineRig rig(config);
    GuestTcp g(rig, kGuest4, 41100, kGateway4, port);
    g.syn(900);
    REQUIRE(rig.out.size() == 1);
    check_refusal(rig.packets()[0], kGateway4, port, kGuest4, 41100, 901);
    CHECK(rig.stats().tcp_refused == 1);
    CHECK(rig.stats().tcp_connects == 0);
    rig.run_for(100, [] {});
    CHECK_FALSE(listener.accept());
  }
}

// No packet can come from 0.0.0.0: a SYN to it is refused without an
// answer (lwIP's tcp_rst would put the netif's address in the IP header
// under a checksum computed for 0.0.0.0), dropped and counted, and no host
// connection is made.
TEST_CASE("engine: a SYN to 0.0.0.0 is dropped without an answer", "[engine][tcp]") {
  EngineRig rig;
  GuestTcp g(rig, kGuest4, 41200, Ipv4Addr{0, 0, 0, 0}, 80);
  g.syn(4000);
  CHECK(rig.out.empty());
  CHECK(rig.stats().tcp_refused == 1);
  CHECK(rig.stats().packets_dropped == 1);
  CHECK(rig.stats().tcp_connects == 0);
  CHECK(rig.engine().tcp_flow_count() == 0);
}

namespace {

// What the unreachable scenario saw, collected on its own thread (Catch2
// assertions stay on the test's thread).
struct UnreachableRun {
  std::string skip;  // why it could not run
  std::vector<GuestPacket> packets;
  engine::EngineStats stats;
  size_t flows_after = 0;
  bool loop_closed = false;
};

// Brings up `lo` in the calling thread's network namespace: IPv6 then has
// a source address (::1), so that a connect without a route fails with
// ENETUNREACH rather than EADDRNOTAVAIL.
bool loopback_up() {
  Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (!s || ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0;
}

// Runs a guest SYN to `dst` on a thread moved into a new network namespace
// with only `lo` up and no routes, where the host connect fails at once
// with ENETUNREACH. Only that thread's sockets live there.
UnreachableRun syn_without_routes(const IpAddr& guest, const IpAddr& dst) {
  UnreachableRun r;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      r.skip = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    if (!loopback_up()) {
      r.skip = std::string("cannot bring lo up: ") + std::strerror(errno);
      return;
    }
    EngineRig rig(engine_config(guest.v6));
    GuestTcp g(rig, guest, 42000, dst, 80);
    g.syn(3000);
    rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; });
    r.packets = rig.packets();
    r.stats = rig.stats();
    r.flows_after = rig.engine().tcp_flow_count();
    r.loop_closed = rig.shutdown();
  });
  t.join();
  return r;
}

// The one packet the engine answered a SYN to `dst` with, where the host
// has no route, after checking that it comes from `gateway`, that the flow
// is gone and counted as unreachable; nullopt (with a warning) when the
// namespace cannot be made.
std::optional<GuestPacket> unreachable_answer(const IpAddr& guest, const IpAddr& dst, const IpAddr& gateway) {
  auto r = syn_without_routes(guest, dst);
  if (!r.skip.empty()) {
    WARN("skipping: " << r.skip);
    return std::nullopt;
  }
  CHECK(r.loop_closed);
  CHECK(r.flows_after == 0);
  CHECK(r.stats.tcp_unreachable == 1);
  CHECK(r.stats.tcp_refused == 0);
  REQUIRE(r.packets.size() == 1);
  CHECK(r.packets[0].src == gateway);
  CHECK(r.packets[0].dst == guest);
  return r.packets[0];
}

}  // namespace

TEST_CASE("engine: a destination the host has no route to gets ICMP unreachable", "[engine][tcp]") {
  SECTION("IPv4: net unreachable from the gateway, quoting the SYN") {
    const Ipv4Addr dst{203, 0, 113, 7};
    auto answer = unreachable_answer(kGuest4, dst, kGateway4);
    if (!answer) return;
    const GuestPacket& p = *answer;
    REQUIRE(p.protocol == wire::ipproto::kIcmp);
    auto icmp = wire::IcmpMessage::parse(p.l4());
    REQUIRE(icmp);
    CHECK(icmp->checksum_ok());
    CHECK(icmp->type() == wire::icmptype::kDestUnreachable);
    CHECK(icmp->code() == wire::icmpcode::kNetUnreachable);
    auto quoted = wire::Ipv4Packet::parse(icmp->payload());
    REQUIRE(quoted);
    CHECK(quoted->src() == kGuest4);
    CHECK(quoted->dst() == dst);
    auto seg = wire::TcpSegment::parse(quoted->payload());
    REQUIRE(seg);
    CHECK(seg->src_port() == 42000);
    CHECK(seg->dst_port() == 80);
    CHECK(seg->seq() == 3000);
    CHECK(seg->flags() == tcpflag::kSyn);
  }
  SECTION("IPv6: no route, from the IPv6 gateway") {
    const auto dst = wire::Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 7});
    auto answer = unreachable_answer(kGuest6, dst, kGateway6);
    if (!answer) return;
    const GuestPacket& p = *answer;
    REQUIRE(p.protocol == wire::ipproto::kIcmpv6);
    auto icmp = wire::Icmpv6Message::parse(p.l4());
    REQUIRE(icmp);
    CHECK(icmp->type() == wire::icmpv6type::kDestUnreachable);
    CHECK(icmp->code() == wire::icmpv6code::kNoRoute);
    CHECK(l4_checksum_ok(p.src, p.dst, wire::ipproto::kIcmpv6, p.l4()));
    auto quoted = wire::Ipv6Packet::parse(p.l4().subspan(8));
    REQUIRE(quoted);
    CHECK(quoted->src() == kGuest6);
    CHECK(quoted->dst() == dst);
  }
}

TEST_CASE_METHOD(GuestConnection, "engine: 1 MiB each way at once arrives intact", "[engine][tcp]") {
  open();
  const auto up = pattern(1 << 20, 1);
  const auto down = pattern(1 << 20, 2);
  exchange(rig, g, host, up, down);
  // lwIP acknowledges the last segment after its delayed-ACK timer.
  rig.advance(250);
  g.poll();
  CHECK(g.bytes_acked() == up.size());
  CHECK(g.count(tcpflag::kRst, tcpflag::kRst) == 0);
  auto flows = rig.engine().flows();
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].bytes_to_host == up.size());
  CHECK(flows[0].bytes_to_guest == down.size());
  CHECK(!host.eof);
  CHECK(host.error == 0);
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: while the guest's link is not ready the flow stops reading its host socket, then reads on",
                 "[engine][tcp]") {
  open();
  rig.engine().set_link_ready(false);
  const auto down = pattern(4 << 20, 3);
  size_t off = 0;
  // The host writes as much as its socket takes; the guest reads and acks
  // all it gets. The flow reads at most once after it found the link not
  // ready (one read buffer), whatever the guest acknowledges.
  rig.run_for(300, [&] {
    g.poll();
    host.write_some(down, &off);
  });
  auto flows = rig.engine().flows();
  REQUIRE(flows.size() == 1);
  INFO("host wrote " << off << ", the flow read " << flows[0].bytes_to_guest);
  CHECK(off > rig.engine().read_buffer().size());  // the host had more to give
  CHECK(flows[0].bytes_to_guest <= rig.engine().read_buffer().size());
  CHECK(g.received.size() == flows[0].bytes_to_guest);  // what was read still went out
  // Ready again: the flow reads on and every byte arrives, in order.
  rig.engine().set_link_ready(true);
  REQUIRE(rig.run_until(
      [&] {
        g.poll();
        host.write_some(down, &off);
        return g.received.size() == down.size();
      },
      5000));
  CHECK(first_difference(g.received, down) == kSame);
  CHECK(g.out_of_order == 0);
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: data the guest lost is retransmitted when the test's clock passes lwIP's timers",
                 "[engine][tcp]") {
  open();
  g.drop_data_segments = 1;
  const auto msg = pattern(1000, 7);
  size_t off = 0;
  host.write_some(msg, &off);
  REQUIRE(off == msg.size());
  REQUIRE(converse(rig, g, nullptr, [&] { return g.lost == 1; }));
  auto data_segments = [&] {
    return std::count_if(g.segments.begin(), g.segments.end(), [](const auto& s) { return s.len > 0; });
  };

  // Real time passes, the clock stands still: no retransmission.
  rig.run_for(300, [&] { g.poll(); });
  CHECK(g.received.empty());
  CHECK(data_segments() == 1);

  // lwIP's timers run on the test's clock: the lost (and last) segment is
  // resent by the loss probe, two 50 ms ticks without an ACK (patch 0004;
  // the RTO would follow 200 ms or more after the send).
  uint64_t waited = 0;
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (!g.received.empty()) return true;
    rig.advance(25);
    waited += 25;
    return false;
  }));
  INFO("retransmitted after " << waited << " ms");
  CHECK(waited >= 50);
  CHECK(waited <= 6000);
  CHECK(first_difference(g.received, msg) == kSame);
  REQUIRE(data_segments() == 2);
  CHECK(g.segments[g.segments.size() - 1].seq == g.irs + 1);
  CHECK(g.out_of_order == 0);
}

TEST_CASE_METHOD(GuestConnection, "engine: a guest FIN half-closes, the host still sends, host close ends the flow",
                 "[engine][tcp]") {
  open();

  const auto request = bytes_of("GET /big HTTP/1.0\r\n\r\n");
  g.send(request);
  g.fin();
  REQUIRE(converse(rig, g, &host, [&] { return host.eof; }));
  CHECK(host.received == request);
  CHECK(host.error == 0);

  // The host's half is still open: its data reaches the guest.
  const auto reply = pattern(200 * 1024, 3);
  size_t off = 0;
  REQUIRE(rig.run_until([&] {
    g.poll();
    host.write_some(reply, &off);
    return g.received.size() >= reply.size();
  }));
  CHECK(first_difference(g.received, reply) == kSame);
  CHECK_FALSE(g.got_fin);
  CHECK(rig.engine().tcp_flow_count() == 1);

  // Host close: FIN to the guest after the last byte, acknowledging the
  // guest's FIN; the guest's ACK of it ends the flow.
  host.fd.reset();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin; }));
  const GuestTcp::Segment* fin = nullptr;
  for (const auto& s : g.segments)
    if (s.flags & tcpflag::kFin) fin = &s;
  REQUIRE(fin != nullptr);
  CHECK(fin->seq + fin->len == g.irs + 1 + reply.size());
  CHECK(fin->ack == g.snd_nxt);  // the guest's FIN is acknowledged
  CHECK(converse(rig, g, nullptr, [&] { return rig.engine().tcp_flow_count() == 0; }));
  CHECK(g.all_acked());
  CHECK(g.count(tcpflag::kRst, tcpflag::kRst) == 0);
  CHECK(g.bad_checksums == 0);
  // Nothing more: lwIP's pcb is gone after the last ACK.
  size_t before = rig.out.size();
  rig.advance(1000);
  CHECK(rig.out.size() == before);
}

TEST_CASE_METHOD(GuestConnection, "engine: host half-close sends FIN, the guest still sends, guest FIN ends the flow",
                 "[engine][tcp]") {
  open();

  const auto banner = bytes_of("220 ready\r\n");
  size_t off = 0;
  host.write_some(banner, &off);
  REQUIRE(shutdown(host.fd.get(), SHUT_WR) == 0);
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin; }));
  CHECK(g.received == banner);

  const auto upload = pattern(300 * 1024, 4);
  g.send(upload);
  REQUIRE(converse(rig, g, &host, [&] { return host.received.size() >= upload.size(); }));
  CHECK(first_difference(host.received, upload) == kSame);
  CHECK_FALSE(host.eof);
  CHECK(rig.engine().tcp_flow_count() == 1);

  g.fin();
  REQUIRE(converse(rig, g, &host, [&] { return host.eof; }));
  CHECK(host.error == 0);
  CHECK(converse(rig, g, nullptr, [&] { return rig.engine().tcp_flow_count() == 0 && g.all_acked(); }));
  CHECK(g.count(tcpflag::kRst, tcpflag::kRst) == 0);
}

// An HTTP server answering "Connection: close" writes and closes at once:
// the guest gets the last bytes and the FIN in one segment (so that it
// closes passively and keeps no TIME-WAIT). The engine's side then holds
// the TIME-WAIT: a retransmitted guest FIN is acknowledged again, and a new
// SYN on the same 4-tuple with a higher sequence number is a new connection
// at once (a busy client walks its port range in seconds).
TEST_CASE_METHOD(GuestConnection, "engine: after the host closes first, TIME-WAIT answers a FIN and yields to a new SYN",
                 "[engine][tcp][timewait]") {
  open();
  const auto reply = bytes_of("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye");
  size_t off = 0;
  host.write_some(reply, &off);
  REQUIRE(off == reply.size());
  host.fd.reset();  // close right behind the reply
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_fin; }));
  CHECK(g.received == reply);
  const auto* last = g.last_segment();
  REQUIRE(last != nullptr);
  CHECK((last->flags & tcpflag::kFin) != 0);
  CHECK(last->len == reply.size());  // the data rode with the FIN

  g.fin();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.all_acked() && rig.engine().tcp_flow_count() == 0; }));
  rig.run_for(20, [] {});  // the loop iteration's end: the TIME-WAIT leaves lwIP

  // The guest's FIN again (its ACK was "lost"): acknowledged with the same numbers.
  const size_t before = rig.out.size();
  wire::TcpHeaderFields f;
  f.src_port = 40000;
  f.dst_port = listener.port();
  f.seq = g.snd_nxt - 1;
  f.ack = g.rcv_nxt;
  f.flags = tcpflag::kFin | tcpflag::kAck;
  auto frame = wire::build_ipv4_tcp_frame({}, {}, kGuest4, kGateway4, f, {});
  rig.engine().input(*wire::Ipv4Packet::parse(wire::Bytes(frame).subspan(wire::kEthernetHeaderLen)));
  REQUIRE(rig.out.size() == before + 1);
  auto p = GuestPacket::parse(rig.out.back());
  REQUIRE(p);
  auto seg = wire::TcpSegment::parse(p->l4());
  REQUIRE(seg);
  CHECK(l4_checksum_ok(p->src, p->dst, wire::ipproto::kTcp, p->l4()));
  CHECK(seg->flags() == tcpflag::kAck);
  CHECK(seg->seq() == g.rcv_nxt - 1 + 1);  // after the engine's FIN
  CHECK(seg->ack() == g.snd_nxt);
  CHECK(rig.stats().tcp_connects == 1);

  // The same 4-tuple at once, with a newer initial sequence number: a new
  // connection, to a new host socket.
  GuestTcp again{rig, kGuest4, 40000, kGateway4, listener.port()};
  auto host2 = establish(rig, again, listener, g.snd_nxt + 100000);
  CHECK(rig.stats().tcp_connects == 2);
  exchange(rig, again, host2, bytes_of("second"), bytes_of("connection"));
}

TEST_CASE_METHOD(GuestConnection, "engine: a guest RST resets the host socket", "[engine][tcp]") {
  open();
  g.send(bytes_of("partial"));
  REQUIRE(converse(rig, g, &host, [&] { return host.received.size() == 7; }));
  size_t before = rig.out.size();
  g.rst();
  expect_host_reset(*this);
  rig.run_for(50, [] {});
  CHECK(rig.out.size() == before);  // nothing back to the guest for its RST
}

TEST_CASE_METHOD(GuestConnection, "engine: guest data to a host that reset is answered with RST without touching a freed pcb",
                 "[engine][tcp]") {
  // The host write fails inside lwIP's receive callback, where the flow
  // aborts its pcb; the callback must say ERR_ABRT, or lwIP goes on using
  // the freed pcb (ASan: heap-use-after-free in tcp_output).
  open();
  linger lg{1, 0};
  REQUIRE(setsockopt(host.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  host.fd.reset();  // RST, before the engine has read it
  g.send(bytes_of("data for a host that is gone"));
  g.poll();  // straight into the engine: its host write fails
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_rst; }));
  CHECK(rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; }));
}

TEST_CASE_METHOD(GuestConnection, "engine: a host reset sends RST to the guest", "[engine][tcp]") {
  open();
  const auto data = bytes_of("some data first");
  size_t off = 0;
  host.write_some(data, &off);
  REQUIRE(converse(rig, g, nullptr, [&] { return g.received.size() == data.size(); }));
  linger lg{1, 0};
  REQUIRE(setsockopt(host.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  host.fd.reset();  // RST, not FIN
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_rst; }));
  CHECK_FALSE(g.got_fin);
  const auto* rst = g.last_segment();
  REQUIRE(rst != nullptr);
  CHECK((rst->flags & tcpflag::kRst) != 0);
  CHECK(rst->seq == g.rcv_nxt);  // acceptable to the guest: exactly its next expected byte
  CHECK(g.received == data);
  CHECK(rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; }));
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: backpressure guest->host: a host that does not read closes the guest's window",
                 "[engine][tcp]") {
  // A fixed receive buffer (no autotuning) on the host peer, inherited by
  // the accepted socket.
  int rcvbuf = 128 * 1024;
  REQUIRE(setsockopt(listener.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
  g.segment_size = 60000;
  open();
  const uint64_t host_rcvbuf = static_cast<uint64_t>(int_sockopt(host.fd.get(), SOL_SOCKET, SO_RCVBUF));

  // Enough data that the engine cannot take it all: more than lwIP's
  // window plus the largest socket buffers the kernel would give.
  const auto data = pattern(TCP_WND + sysctl_max("net/ipv4/tcp_wmem", 4 << 20) + host_rcvbuf + (2 << 20), 5);
  g.send(data);

  // The guest sends what the engine's window allows until the window is
  // closed and everything sent is acknowledged (lwIP's delayed ACK needs
  // its timer: advanced when nothing moves).
  int idle = 0;
  bool closed = rig.run_until(
      [&] {
        if (g.poll()) {
          idle = 0;
        } else if (++idle % 20 == 0) {
          rig.advance(250);
        }
        return g.peer_window == 0 && g.snd_una == g.snd_nxt && idle > 40;
      },
      8000);
  REQUIRE(closed);

  // Where the bytes the engine accepted can be: lwIP's window (TCP_WND:
  // bytes are given back to lwIP with tcp_recved only once the host socket
  // took them, so at most TCP_WND wait in write requests), the engine
  // socket's send buffer and the host socket's fixed receive buffer.
  // About 6.3 MiB here (2 MiB + at most tcp_wmem's 4 MiB + 256 KiB).
  const int engine_fd = engine_socket_of(host.fd.get());
  REQUIRE(engine_fd >= 0);
  const uint64_t engine_sndbuf = static_cast<uint64_t>(int_sockopt(engine_fd, SOL_SOCKET, SO_SNDBUF));
  const uint64_t bound = TCP_WND + engine_sndbuf + host_rcvbuf;
  const uint64_t accepted = g.bytes_acked();
  INFO("accepted " << accepted << " bytes, bound " << bound << ", engine socket's send buffer " << engine_sndbuf);
  CHECK(accepted < data.size());
  CHECK(accepted <= bound);
  CHECK(accepted < (16u << 20));
  CHECK(accepted >= TCP_WND / 2);  // the window closed because it was used, not at once
  CHECK(host.received.empty());
  const auto* last = g.last_segment();
  REQUIRE(last != nullptr);
  CHECK(last->window_field == 0);  // the engine's latest ACK: window closed
  // What the engine counts as held (EngineStats::buffered_bytes): the
  // guest bytes the host socket has not taken yet, within lwIP's window.
  CHECK(rig.stats().buffered_bytes <= TCP_WND);

  // The host reads: the window opens and every byte arrives, in order.
  idle = 0;
  REQUIRE(rig.run_until(
      [&] {
        bool moved = g.poll();
        moved |= host.read_some();
        if (moved) {
          idle = 0;
        } else if (++idle % 20 == 0) {
          rig.advance(250);
        }
        return host.received.size() >= data.size();
      },
      8000));
  CHECK(first_difference(host.received, data) == kSame);
  CHECK(g.out_of_order == 0);
  CHECK(g.bad_checksums == 0);
  // Everything delivered: the flow holds nothing (it used to count lwIP's
  // whole send buffer less 64 KiB, ~2 MiB per idle flow, as held).
  CHECK(rig.run_until([&] {
    g.poll();
    return rig.stats().buffered_bytes == 0;
  }));
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: backpressure host->guest: a guest that takes nothing more stops the host writer",
                 "[engine][tcp]") {
  bool window_closes = true;
  SECTION("the guest application stops reading: the guest's window closes") {
    g.rcv_capacity = 256 * 1024;
    g.app_reading = false;
  }
  SECTION("the guest stops acknowledging") { window_closes = false; }
  open();
  g.auto_ack = window_closes;
  int sndbuf = 128 * 1024;
  REQUIRE(setsockopt(host.fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
  const uint64_t host_sndbuf = static_cast<uint64_t>(int_sockopt(host.fd.get(), SOL_SOCKET, SO_SNDBUF));

  const auto data = pattern(20 << 20, 6);
  size_t off = 0;
  // The host writes until the socket refuses more for a while (the clock
  // stands still: lwIP neither retransmits nor probes the window).
  int idle = 0;
  REQUIRE(rig.run_until(
      [&] {
        bool moved = host.write_some(data, &off) > 0;
        moved |= g.poll();
        idle = moved ? 0 : idle + 1;
        return idle > 200;
      },
      8000));
  // Where the bytes the host could write sit: with the guest (what it
  // acknowledged), lwIP's send buffer (TCP_SND_BUF, unacknowledged bytes
  // included), one host read the flow could not hand to lwIP (at most the
  // engine's 256 KiB read buffer), the engine socket's receive queue (at
  // most its receive buffer) and the host's fixed send buffer. About
  // 3.7 MiB here.
  const int engine_fd = engine_socket_of(host.fd.get());
  REQUIRE(engine_fd >= 0);
  const uint64_t engine_rcvbuf = static_cast<uint64_t>(int_sockopt(engine_fd, SOL_SOCKET, SO_RCVBUF));
  const uint64_t acked = g.bytes_acknowledged_by_guest();
  const uint64_t bound = acked + TCP_SND_BUF + 256 * 1024 + engine_rcvbuf + host_sndbuf;
  INFO("host wrote " << off << " bytes, guest acknowledged " << acked << ", bound " << bound
                     << ", engine socket's receive buffer " << engine_rcvbuf);
  CHECK(off < data.size());
  CHECK(off <= bound);
  CHECK(off < (16u << 20));
  CHECK(g.beyond_window == 0);
  if (window_closes) {
    CHECK(g.received.size() <= g.rcv_capacity);
  } else {
    CHECK(acked == 0);
    CHECK(g.received.size() <= TCP_SND_BUF);  // sent, never acknowledged: all still in lwIP's buffer
  }

  // The guest takes data again and everything arrives in order, then the
  // host's FIN. With the window variant the host writes 4 MiB more once it
  // can and closes; with the other it closes at once, its EOF reaching the
  // engine while its bytes still wait in lwIP and the kernel.
  const size_t total = window_closes ? std::min(data.size(), off + (4u << 20)) : off;
  const wire::Bytes want = wire::Bytes(data).first(total);
  g.auto_ack = true;
  if (window_closes) {
    g.read_all(true);  // window update
  } else {
    g.ack();
  }
  bool closed_host = false;
  REQUIRE(rig.run_until(
      [&] {
        g.poll();
        if (off < total) {
          host.write_some(want, &off);
        } else if (!closed_host) {
          host.fd.reset();
          closed_host = true;
        }
        return g.got_fin;
      },
      8000));
  CHECK(g.received.size() == total);
  CHECK(first_difference(g.received, want) == kSame);
  CHECK(g.out_of_order == 0);
  CHECK(g.beyond_window == 0);
  CHECK(g.bad_checksums == 0);
}

// Opens the fixture's connection to a host that reads nothing yet (its
// receive buffer fixed at 128 KiB) and has the guest send `n` bytes of
// pattern `seed` (then FIN if `fin`), until the engine acknowledged it all.
// `n` is 1 MiB more than the kernel can hold (the engine socket's largest
// send buffer, tcp_wmem's max, and the host's receive buffer) but within
// lwIP's window beyond that: the flow then holds about 1 MiB in write
// requests. Returns the data; `window` gets the engine's last advertised
// window.
std::vector<std::byte> send_to_slow_host(GuestConnection& c, uint64_t seed, bool fin, uint64_t* window) {
  int rcvbuf = 64 * 1024;
  REQUIRE(setsockopt(c.listener.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
  c.open();
  const uint64_t host_rcvbuf = static_cast<uint64_t>(int_sockopt(c.host.fd.get(), SOL_SOCKET, SO_RCVBUF));
  auto data = pattern(sysctl_max("net/ipv4/tcp_wmem", 4 << 20) + host_rcvbuf + (1 << 20), seed);
  c.g.send(data);
  if (fin) c.g.fin();
  int idle = 0;
  bool acked = c.rig.run_until(
      [&] {
        if (c.g.poll()) {
          idle = 0;
        } else if (++idle % 20 == 0) {
          c.rig.advance(250);  // lwIP's delayed ACK
        }
        return c.g.all_acked();
      },
      5000);
  REQUIRE(acked);
  *window = c.g.peer_window;
  return data;
}

TEST_CASE_METHOD(GuestConnection, "engine: a guest FIN behind data queued for a slow host reaches it after every byte",
                 "[engine][tcp]") {
  uint64_t window = 0;
  const auto data = send_to_slow_host(*this, 8, true, &window);
  // The FIN arrived while writes were queued: lwIP's window was still
  // short of the bytes not yet written to the host.
  INFO("window after the FIN: " << window);
  CHECK(window < TCP_WND - 256 * 1024);
  CHECK(host.received.empty());

  REQUIRE(rig.run_until([&] {
    g.poll();
    host.read_some();
    return host.eof || host.error != 0;
  }));
  CHECK(host.eof);
  CHECK(first_difference(host.received, data) == kSame);

  host.fd.reset();
  CHECK(converse(rig, g, nullptr, [&] { return g.got_fin && rig.engine().tcp_flow_count() == 0; }));
  CHECK(g.count(tcpflag::kRst, tcpflag::kRst) == 0);
}

TEST_CASE_METHOD(GuestConnection, "engine: a guest RST while writes to a slow host are queued resets the host",
                 "[engine][tcp]") {
  uint64_t window = 0;
  const auto data = send_to_slow_host(*this, 9, false, &window);
  INFO("window before the RST: " << window);
  CHECK(window < TCP_WND - 256 * 1024);  // writes are queued
  g.rst();
  expect_host_reset(*this);
  // Whatever the host read before the reset is the guest's data, in order.
  CHECK(first_difference(host.received, wire::Bytes(data).first(std::min(host.received.size(), data.size()))) == kSame);
}

TEST_CASE_METHOD(GuestConnection, "engine: a SYN retransmitted after the SYN-ACK gets the SYN-ACK again",
                 "[engine][tcp]") {
  g.complete_handshake = false;
  g.syn(2000);
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (!host.fd) host.fd = listener.accept();
    return g.got_syn_ack && static_cast<bool>(host.fd);
  }));
  // The SYN-ACK was lost: the guest sends its SYN again and lwIP answers
  // at once, in the same flow.
  g.syn(2000);
  g.poll();
  CHECK(g.count(0xff, kSynAck) == 2);
  CHECK(g.segments.back().ack == 2001);
  CHECK(rig.stats().tcp_connects == 1);
  CHECK(rig.engine().tcp_flow_count() == 1);
  g.complete();
  exchange(rig, g, host, bytes_of("after all"), bytes_of("welcome"));
  CHECK(tcp_flow_state(rig) == "established");
}

TEST_CASE_METHOD(StalledConnect, "engine: a guest RST while the host connect is under way cancels the flow",
                 "[engine][tcp]") {
  g.syn(1000);
  rig.run_for(20, [&] { g.poll(); });
  REQUIRE(tcp_flow_state(rig) == "connecting");
  g.rst();
  CHECK(rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; }));
  CHECK(rig.out.empty());
  // A new SYN from the same port is a new flow.
  g.syn(5000);
  CHECK(rig.stats().tcp_connects == 2);
  CHECK(tcp_flow_state(rig) == "connecting");
}

TEST_CASE("engine: max_tcp_flows: a SYN beyond the limit gets RST", "[engine][tcp]") {
  auto config = engine_config();
  config.max_tcp_flows = 2;
  EngineRig rig(config);
  HostListener listener;
  GuestTcp a(rig, kGuest4, 40101, kGateway4, listener.port());
  GuestTcp b(rig, kGuest4, 40102, kGateway4, listener.port());
  GuestTcp c(rig, kGuest4, 40103, kGateway4, listener.port());
  HostConn ha = establish(rig, a, listener);
  HostConn hb = establish(rig, b, listener);
  CHECK(rig.engine().tcp_flow_count() == 2);

  size_t before = rig.out.size();
  c.syn(3000);
  REQUIRE(rig.out.size() == before + 1);  // at once, without a host connect
  check_refusal(rig.packets(before)[0], kGateway4, listener.port(), kGuest4, 40103, 3001);
  CHECK(rig.stats().tcp_limit == 1);
  CHECK(rig.stats().tcp_connects == 2);
  CHECK(rig.engine().tcp_flow_count() == 2);
  rig.run_for(50, [] {});
  CHECK_FALSE(listener.accept());

  // The limit counts live flows: once one ends, a new SYN gets through.
  a.rst();
  REQUIRE(rig.run_until([&] { return rig.engine().tcp_flow_count() == 1; }));
  GuestTcp d(rig, kGuest4, 40104, kGateway4, listener.port());
  HostConn hd = establish(rig, d, listener);
  CHECK(rig.stats().tcp_limit == 1);
  CHECK(rig.engine().tcp_flow_count() == 2);
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: a handshake the guest never completes is closed after tcp_connect_timeout_ms",
                 "[engine][tcp]") {
  const uint64_t timeout = rig.engine().config().tcp_connect_timeout_ms;
  g.complete_handshake = false;
  g.syn(1000);
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (!host.fd) host.fd = listener.accept();
    return g.got_syn_ack && static_cast<bool>(host.fd);
  }));
  CHECK(tcp_flow_state(rig) == "accepting");
  const uint64_t start = rig.clock.now_ms();

  rig.advance_in_steps(timeout - 1000);
  rig.engine().housekeeping(rig.clock.now_ms());
  rig.run_for(20, [&] { g.poll(); });
  CHECK(rig.engine().tcp_flow_count() == 1);
  // Meanwhile lwIP retransmitted its SYN-ACK on the test's clock (after
  // 3 s, then 6 s later; it drops the embryonic connection itself after
  // TCP_SYN_RCVD_TIMEOUT, 20 s).
  CHECK(g.count(0xff, kSynAck) >= 2);

  rig.advance_in_steps(2000);
  REQUIRE(rig.clock.now_ms() - start > timeout);
  rig.engine().housekeeping(rig.clock.now_ms());
  REQUIRE(converse(rig, g, &host, [&] { return rig.engine().tcp_flow_count() == 0 && (host.eof || host.error != 0); }));
  CHECK(host.eof);  // the host connection is closed (FIN)
  CHECK(host.received.empty());

  // A late ACK from the guest finds no connection: RST.
  g.complete();
  REQUIRE(converse(rig, g, nullptr, [&] { return g.got_rst; }));
  CHECK(rig.engine().tcp_flow_count() == 0);
}

TEST_CASE_METHOD(GuestConnection,
                 "engine: a guest RST answering the SYN-ACK resets the host connection at once (SYN flood)",
                 "[engine][tcp]") {
  g.complete_handshake = false;
  g.syn(1000);
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (!host.fd) host.fd = listener.accept();
    return g.got_syn_ack && static_cast<bool>(host.fd);
  }));
  REQUIRE(tcp_flow_state(rig) == "accepting");
  // What a guest kernel sends for a SYN-ACK it does not expect (a spoofed
  // or aborted SYN): RST with the sequence number the SYN-ACK acknowledged.
  g.rst();
  // The flow and its host connection go at once, not after the connect
  // timeout (30 s of host connections held by a SYN flood).
  REQUIRE(rig.run_until([&] {
    host.read_some();
    return rig.engine().tcp_flow_count() == 0 && (host.eof || host.error != 0);
  }));
  CHECK(host.error == ECONNRESET);
  CHECK(rig.stats().tcp_handshake_resets == 1);
  // A RST with another sequence number is ignored (RFC 5961): the flow stays.
  GuestTcp h(rig, kGuest4, 40001, kGateway4, listener.port());
  h.complete_handshake = false;
  h.syn(5000);
  Fd second;
  REQUIRE(rig.run_until([&] {
    h.poll();
    if (!second) second = listener.accept();
    return h.got_syn_ack && static_cast<bool>(second);
  }));
  h.snd_nxt += 1000;
  h.rst();
  rig.run_for(50, [&] { h.poll(); });
  CHECK(rig.engine().tcp_flow_count() == 1);
  CHECK(rig.stats().tcp_handshake_resets == 1);
}

TEST_CASE("engine: with several guests, one guest holds at most half of max_tcp_flows", "[engine][tcp]") {
  // The switch port a packet came in on names its guest (set_guest_identity):
  // guest 1 fills its half, its next SYN gets RST; guest 2 still connects.
  auto config = engine_config();
  config.max_tcp_flows = 4;
  EngineRig rig(config);
  uint32_t port = 1;
  rig.engine().set_guest_identity([&] { return port; });
  HostListener listener;
  GuestTcp a(rig, kGuest4, 40301, kGateway4, listener.port());
  GuestTcp b(rig, kGuest4, 40302, kGateway4, listener.port());
  GuestTcp c(rig, kGuest4, 40303, kGateway4, listener.port());
  HostConn ha = establish(rig, a, listener);
  HostConn hb = establish(rig, b, listener);
  size_t before = rig.out.size();
  c.syn(3000);
  REQUIRE(rig.out.size() == before + 1);  // RST at once, no host connect
  check_refusal(rig.packets(before)[0], kGateway4, listener.port(), kGuest4, 40303, 3001);
  CHECK(rig.stats().tcp_limit == 1);
  CHECK(rig.stats().guest_share_refused == 1);

  port = 2;  // another guest (its own address, as a second lease would be)
  const Ipv4Addr other{10, 0, 2, 16};
  GuestTcp d(rig, other, 40304, kGateway4, listener.port());
  HostConn hd = establish(rig, d, listener);
  CHECK(rig.engine().tcp_flow_count() == 3);

  // Guest 1's share frees as its flows end.
  port = 1;
  a.rst();
  REQUIRE(rig.run_until([&] { return rig.engine().tcp_flow_count() == 2; }));
  GuestTcp e(rig, kGuest4, 40305, kGateway4, listener.port());
  HostConn he = establish(rig, e, listener);
  CHECK(rig.stats().guest_share_refused == 1);
}

TEST_CASE("engine: max_new_flows_per_second: SYNs past the rate get RST at once", "[engine][tcp]") {
  auto config = engine_config();
  config.max_new_flows_per_second = 2;
  EngineRig rig(config);
  HostListener listener;
  GuestTcp a(rig, kGuest4, 40201, kGateway4, listener.port());
  GuestTcp b(rig, kGuest4, 40202, kGateway4, listener.port());
  GuestTcp c(rig, kGuest4, 40203, kGateway4, listener.port());
  a.syn(100);
  b.syn(200);
  size_t before = rig.out.size();
  c.syn(300);
  REQUIRE(rig.out.size() == before + 1);
  check_refusal(rig.packets(before)[0], kGateway4, listener.port(), kGuest4, 40203, 301);
  CHECK(rig.stats().tcp_rate_limited == 1);
  CHECK(rig.stats().tcp_connects == 2);
  rig.advance(1000);
  GuestTcp d(rig, kGuest4, 40204, kGateway4, listener.port());
  HostConn hd = establish(rig, d, listener);
  CHECK(rig.stats().tcp_connects == 3);
}

TEST_CASE_METHOD(StalledConnect, "engine: a host connect that never completes is closed after tcp_connect_timeout_ms",
                 "[engine][tcp]") {
  const uint64_t timeout = rig.engine().config().tcp_connect_timeout_ms;
  g.syn(1000);
  rig.run_for(50, [&] { g.poll(); });
  CHECK(tcp_flow_state(rig) == "connecting");

  rig.advance(timeout + 1);
  rig.engine().housekeeping(rig.clock.now_ms());
  REQUIRE(rig.run_until([&] { return rig.engine().tcp_flow_count() == 0; }));
  CHECK(rig.out.empty());  // the guest is told nothing (its own SYN timer decides)

  // The abandoned host socket is really gone: once the queue has room, no
  // retransmitted SYN of it completes a connection.
  Fd first = listener.accept();
  REQUIRE(first);
  rig.run_for(1500, [] {});
  CHECK_FALSE(listener.accept());
}
