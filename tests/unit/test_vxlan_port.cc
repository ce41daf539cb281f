// VxlanPort (link/vxlan_port.h) on a real loop over real UDP sockets on
// loopback: two ports exchange frames; datagrams a plain UDP socket injects
// (another VNI, another source, truncated, oversized, bad flags) are dropped
// and counted; a GSO frame leaves as MTU-sized segments (in one UDP GSO
// send where the kernel has it), a partial checksum is finished; bad configs are
// refused; endpoints parse.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <vector>

#include "netstack/link/vxlan_port.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/offload.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/vxlan.h"
#include "sockets.h"

using slipway::link::Frame;
using slipway::link::VxlanConfig;
using slipway::link::VxlanEndpoint;
using slipway::link::VxlanPort;
namespace wire = slipway::wire;

namespace {

// A loop run in short steps until a condition holds or 5 s pass.
class TestLoop {
 public:
  TestLoop() { uv_loop_init(&loop_); }
  ~TestLoop() {
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }
  bool run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(200);
    }
    return true;
  }
  // Lets whatever is in flight arrive and be read.
  void settle() {
    for (int i = 0; i < 20; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(500);
    }
  }

 private:
  uv_loop_t loop_;
};

// A UDP port on loopback (127.0.0.1 or ::1) that was free a moment ago.
uint16_t free_udp_port(bool v6 = false) {
  int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t l = sizeof ss;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    bind(s, reinterpret_cast<sockaddr*>(a), sizeof *a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(a), sizeof *a);
  }
  getsockname(s, reinterpret_cast<sockaddr*>(&ss), &l);
  close(s);
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

VxlanEndpoint endpoint(const char* text) {
  auto e = VxlanEndpoint::parse(text);
  REQUIRE(e);
  return *e;
}

// Two ports on 127.0.0.1 pointing at each other, VNI 42.
struct Pair {
  std::unique_ptr<VxlanPort> a, b;
  Pair(uv_loop_t* loop, uint32_t vni = 42, size_t mtu = 1500) {
    uint16_t pa = free_udp_port(), pb = free_udp_port();
    VxlanConfig ca{.remote = {wire::Ipv4Addr(127, 0, 0, 1), pb}, .vni = vni,
                   .local = VxlanEndpoint{wire::Ipv4Addr(127, 0, 0, 1), pa}, .mtu = mtu};
    VxlanConfig cb{.remote = {wire::Ipv4Addr(127, 0, 0, 1), pa}, .vni = vni,
                   .local = VxlanEndpoint{wire::Ipv4Addr(127, 0, 0, 1), pb}, .mtu = mtu};
    a = VxlanPort::open(loop, ca);
    b = VxlanPort::open(loop, cb);
  }
};

// An Ethernet-looking frame of n bytes with random contents.
std::vector<std::byte> random_frame(std::mt19937& rng, size_t n) {
  std::vector<std::byte> f(n);
  for (auto& x : f) x = std::byte(rng() & 0xff);
  return f;
}

// FNV-1a over a sequence of frames, each preceded by its length.
struct FrameHash {
  uint64_t h = 1469598103934665603ull;
  size_t frames = 0;
  void add(Frame f) {
    auto mix = [&](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
    for (int i = 0; i < 4; ++i) mix(static_cast<uint8_t>(f.size() >> (8 * i)));
    for (std::byte b : f) mix(static_cast<uint8_t>(b));
    frames++;
  }
};

// Sends `payload` from 127.0.0.1 (or `from`) to 127.0.0.1:port.
void inject(uint16_t port, const std::vector<std::byte>& payload, wire::Ipv4Addr from = wire::Ipv4Addr(127, 0, 0, 1)) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(from.value);
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) ==
          static_cast<ssize_t>(payload.size()));
  close(s);
}

std::vector<std::byte> vxlan_datagram(uint32_t vni, size_t inner_len) {
  std::vector<std::byte> d(wire::kVxlanHeaderLen + inner_len, std::byte{0x5a});
  wire::emit_vxlan(d, vni);
  return d;
}

}  // namespace

TEST_CASE("vxlan: two ports exchange frames of every size both ways, unchanged", "[vxlan]") {
  TestLoop loop;
  Pair p(loop.get());
  FrameHash sent_ab, sent_ba, got_ab, got_ba;
  p.b->set_sink([&](Frame f) { got_ab.add(f); });
  p.a->set_sink([&](Frame f) { got_ba.add(f); });
  std::mt19937 rng(7);
  // Sizes from the smallest (an Ethernet header) to the largest (a tagged
  // frame of the full MTU), sent in rounds small enough for the socket
  // buffers so that nothing is dropped.
  const size_t sizes[] = {14, 60, 64, 1000, 1514, 1518};
  for (int round = 0; round < 20; ++round) {
    for (size_t n : sizes) {
      auto f = random_frame(rng, n);
      REQUIRE(p.a->send(f));
      sent_ab.add(f);
      auto g = random_frame(rng, n);
      REQUIRE(p.b->send(g));
      sent_ba.add(g);
    }
    REQUIRE(loop.run_until([&] { return got_ab.frames == sent_ab.frames && got_ba.frames == sent_ba.frames; }));
  }
  CHECK(got_ab.h == sent_ab.h);
  CHECK(got_ba.h == sent_ba.h);
  CHECK(p.a->stats().tx_frames == 120);
  CHECK(p.b->stats().rx_frames == 120);
  CHECK(p.a->stats().rx_dropped == 0);
  CHECK(p.b->stats().rx_dropped == 0);
  // It finishes checksums and GSO frames itself (UDP GSO where it can).
  CHECK(p.a->capabilities() == slipway::link::Capabilities{.csum = true, .tso = true});
}

TEST_CASE("vxlan: frames on the wire carry the 8-byte header with the I flag and the VNI", "[vxlan]") {
  TestLoop loop;
  // A plain UDP socket plays the remote.
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t l = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &l);
  VxlanConfig c{.remote = {wire::Ipv4Addr(127, 0, 0, 1), ntohs(a.sin_port)}, .vni = 0xabcdef,
                .local = VxlanEndpoint{wire::Ipv4Addr(127, 0, 0, 1), 0}};
  auto port = VxlanPort::open(loop.get(), c);
  CHECK(port->local().port != 0);  // port 0 asked: the one bound is reported
  std::mt19937 rng(1);
  auto f = random_frame(rng, 100);
  REQUIRE(port->send(f));
  std::vector<std::byte> buf(2000);
  ssize_t n = -1;
  for (int i = 0; i < 100 && n < 0; ++i) {
    pollfd pfd{s, POLLIN, 0};
    poll(&pfd, 1, 20);
    n = recv(s, buf.data(), buf.size(), MSG_DONTWAIT);
  }
  REQUIRE(n == 108);
  const std::vector<std::byte> header{std::byte{0x08}, std::byte{0}, std::byte{0}, std::byte{0},
                                      std::byte{0xab}, std::byte{0xcd}, std::byte{0xef}, std::byte{0}};
  CHECK(std::vector<std::byte>(buf.begin(), buf.begin() + 8) == header);
  CHECK(std::vector<std::byte>(buf.begin() + 8, buf.begin() + 108) == f);
  close(s);
}

TEST_CASE("vxlan: hostile datagrams are dropped and counted, good ones still pass", "[vxlan]") {
  TestLoop loop;
  Pair p(loop.get());
  size_t delivered = 0;
  p.b->set_sink([&](Frame) { delivered++; });
  const uint16_t port_b = p.b->local().port;

  inject(port_b, vxlan_datagram(43, 60));  // another VNI
  inject(port_b, vxlan_datagram(42, 60), wire::Ipv4Addr(127, 0, 0, 2));  // another source
  inject(port_b, std::vector<std::byte>(5, std::byte{0x08}));  // shorter than the header
  auto flags = vxlan_datagram(42, 60);
  flags[0] = std::byte{0x0c};  // a reserved flag
  inject(port_b, flags);
  auto reserved = vxlan_datagram(42, 60);
  reserved[7] = std::byte{1};  // the reserved byte after the VNI
  inject(port_b, reserved);
  auto no_i = vxlan_datagram(42, 60);
  no_i[0] = std::byte{0};
  inject(port_b, no_i);
  inject(port_b, vxlan_datagram(42, 13));              // a runt inner frame
  inject(port_b, vxlan_datagram(42, 0));               // no inner frame at all
  inject(port_b, vxlan_datagram(42, 1500 + 18 + 1));   // one byte above the largest frame
  inject(port_b, vxlan_datagram(42, 9000));            // far above it
  inject(port_b, std::vector<std::byte>());            // empty
  loop.settle();
  // The largest frame and the smallest pass, from any source port of the
  // remote's address.
  inject(port_b, vxlan_datagram(42, 1518));
  inject(port_b, vxlan_datagram(42, 14));
  REQUIRE(loop.run_until([&] { return delivered == 2; }));
  loop.settle();
  CHECK(delivered == 2);
  const auto& v = p.b->vxlan_stats();
  CHECK(v.rx_bad_vni == 1);
  CHECK(v.rx_bad_source == 1);
  CHECK(v.rx_bad_header == 5);  // short, reserved flag, reserved byte, no I, empty
  CHECK(v.rx_runt == 2);
  CHECK(v.rx_oversize == 2);
  CHECK(p.b->stats().rx_dropped == 11);
  CHECK(p.b->stats().rx_frames == 2);
}

TEST_CASE("vxlan: a GSO frame leaves as MTU-sized segments with valid checksums", "[vxlan]") {
  TestLoop loop;
  Pair p(loop.get(), 7, 1500);
  std::vector<std::vector<std::byte>> got;
  p.b->set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  const size_t mss = 1460, payload_len = 20 * mss + 321;
  std::vector<std::byte> payload(payload_len);
  for (size_t i = 0; i < payload_len; ++i) payload[i] = std::byte((i * 13 + 5) & 0xff);
  wire::TcpHeaderFields f;
  f.src_port = 40000;
  f.dst_port = 5201;
  f.seq = 1;
  f.ack = 1;
  f.flags = wire::tcpflag::kAck | wire::tcpflag::kPsh;
  f.window = 1024;
  const wire::MacAddr ma{{0x02, 0, 0, 0, 0, 0xa}}, mb{{0x02, 0, 0, 0, 0, 0xb}};
  const wire::Ipv4Addr ia(192, 168, 50, 1), ib(192, 168, 50, 2);
  auto frame = wire::build_ipv4_tcp_frame(mb, ma, ia, ib, f, payload);
  auto offload = wire::prepare_partial(frame, 1500);
  REQUIRE(offload.gso == wire::Offload::Gso::kTcpV4);
  REQUIRE(p.a->send(frame, offload));
  REQUIRE(loop.run_until([&] { return got.size() == 21; }));
  // Cut by the port itself, not by Port::send: 21 datagrams, 20 of one size
  // in one UDP GSO send and the shorter last one (or one by one where the
  // kernel has no UDP GSO).
  CHECK(p.a->stats().tx_finished == 0);
  CHECK(p.a->stats().tx_frames == 21);
  CHECK(p.a->vxlan_stats().tx_gso_sends == 1);  // Linux 4.18 and later
  std::vector<std::byte> joined;
  for (const auto& seg : got) {
    CHECK(seg.size() <= 1514);
    auto eth = wire::EthernetFrame::parse(seg);
    REQUIRE(eth);
    auto ip = wire::Ipv4Packet::parse(eth->payload());
    REQUIRE(ip);  // checks the header checksum
    CHECK(ip->bytes().size() <= 1500);
    auto tcp = wire::TcpSegment::parse(ip->payload());
    REQUIRE(tcp);
    CHECK(wire::tcp_checksum_ok(ip->src(), ip->dst(), ip->payload()));
    joined.insert(joined.end(), tcp->payload().begin(), tcp->payload().end());
  }
  CHECK(joined == payload);

  // A single segment with a partial checksum: finished, one datagram.
  got.clear();
  std::vector<std::byte> small(payload.begin(), payload.begin() + 100);
  auto one = wire::build_ipv4_tcp_frame(mb, ma, ia, ib, f, small);
  auto partial = wire::prepare_partial(one, 1500);
  REQUIRE(partial.needs_csum());
  REQUIRE_FALSE(partial.is_gso());
  REQUIRE(p.a->send(one, partial));
  REQUIRE(loop.run_until([&] { return got.size() == 1; }));
  auto ip = wire::Ipv4Packet::parse(wire::EthernetFrame::parse(got[0])->payload());
  REQUIRE(ip);
  CHECK(wire::tcp_checksum_ok(ip->src(), ip->dst(), ip->payload()));
}

TEST_CASE("vxlan: IPv6 underlay", "[vxlan]") {
  if (!slipway::test::have_ipv6_loopback()) {
    WARN("skipped: the host has no ::1");
    return;
  }
  TestLoop loop;
  const auto loopback6 = wire::Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0, 1});
  uint16_t pa = free_udp_port(true), pb = free_udp_port(true);
  auto a = VxlanPort::open(loop.get(), {.remote = {loopback6, pb}, .vni = 5, .local = VxlanEndpoint{loopback6, pa}});
  auto b = VxlanPort::open(loop.get(), {.remote = {loopback6, pa}, .vni = 5, .local = VxlanEndpoint{loopback6, pb}});
  std::vector<std::byte> at_a, at_b;
  a->set_sink([&](Frame f) { at_a.assign(f.begin(), f.end()); });
  b->set_sink([&](Frame f) { at_b.assign(f.begin(), f.end()); });
  std::mt19937 rng(3);
  auto fa = random_frame(rng, 300), fb = random_frame(rng, 1514);
  REQUIRE(a->send(fa));
  REQUIRE(b->send(fb));
  REQUIRE(loop.run_until([&] { return !at_a.empty() && !at_b.empty(); }));
  CHECK(at_b == fa);
  CHECK(at_a == fb);
}

TEST_CASE("vxlan: frames the link cannot carry are refused and counted", "[vxlan]") {
  TestLoop loop;
  Pair p(loop.get(), 42, 1500);
  std::mt19937 rng(5);
  CHECK_FALSE(p.a->send(random_frame(rng, 1519)));
  CHECK_FALSE(p.a->send(random_frame(rng, 13)));
  CHECK(p.a->vxlan_stats().tx_bad_length == 2);
  CHECK(p.a->stats().tx_dropped == 2);
}

TEST_CASE("vxlan: configs that make no sense are refused at open", "[vxlan]") {
  TestLoop loop;
  VxlanConfig c{.remote = endpoint("127.0.0.1:4790"), .vni = 1 << 24, .local = endpoint("127.0.0.1:0")};
  CHECK_THROWS_AS(VxlanPort::open(loop.get(), c), std::invalid_argument);
  c.vni = 0xffffff;
  CHECK_NOTHROW(VxlanPort::open(loop.get(), c));
  c.remote = endpoint("239.1.1.1");
  CHECK_THROWS_AS(VxlanPort::open(loop.get(), c), std::invalid_argument);
  c.remote = endpoint("0.0.0.0");
  CHECK_THROWS_AS(VxlanPort::open(loop.get(), c), std::invalid_argument);
  c.remote = endpoint("::1");
  CHECK_THROWS_AS(VxlanPort::open(loop.get(), c), std::invalid_argument);  // v4 local, v6 remote
  c.remote = endpoint("127.0.0.1:4790");
  c.mtu = 20;
  CHECK_THROWS_AS(VxlanPort::open(loop.get(), c), std::invalid_argument);
  // A local port in use: the reason names the address.
  c.mtu = 1500;
  auto first = VxlanPort::open(loop.get(), c);
  c.local = first->local();
  try {
    VxlanPort::open(loop.get(), c);
    FAIL("bound twice");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(first->local().to_string()));
  }
  loop.settle();
}

TEST_CASE("vxlan: endpoints parse from text", "[vxlan]") {
  auto e = VxlanEndpoint::parse("192.0.2.1");
  REQUIRE(e);
  CHECK_FALSE(e->is_v6());
  CHECK(e->port == 4789);
  CHECK(e->to_string() == "192.0.2.1:4789");
  e = VxlanEndpoint::parse("192.0.2.1:8472");
  REQUIRE(e);
  CHECK(e->port == 8472);
  e = VxlanEndpoint::parse("2001:db8::1");
  REQUIRE(e);
  CHECK(e->is_v6());
  CHECK(e->to_string() == "[2001:db8::1]:4789");
  e = VxlanEndpoint::parse("[2001:db8::1]:4790");
  REQUIRE(e);
  CHECK(e->to_string() == "[2001:db8::1]:4790");
  CHECK(VxlanEndpoint::parse("[::]", 0)->port == 0);
  CHECK(VxlanEndpoint::parse("0.0.0.0:0")->port == 0);  // a local endpoint: any port
  for (const char* bad : {"", "host.example", "192.0.2.1:", "192.0.2.1:65536", "192.0.2.1:x",
                          "[2001:db8::1", "[2001:db8::1]x", "[192.0.2.1]:1", "1.2.3.4.5", "::g"}) {
    INFO(bad);
    CHECK_FALSE(VxlanEndpoint::parse(bad));
  }
}
