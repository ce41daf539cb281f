// SlirpEngine on a real loop and real host sockets: DNS at the DNS address
// answered by the resolver (never by libslirp), the NAT policy applied before
// libslirp (RST for a refused destination), a connection to the gateway
// reaching the host's loopback, and a host forward (slirp_add_hostxfwd)
// opening a connection to a guest the engine never heard from (slirp's ARP
// request answered by the engine).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "netstack/engine/slirp_engine.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"
#include "portfwd/published_ports.h"
#include "portfwd/rule.h"

using namespace slipway;
using wire::Ipv4Addr;

namespace {

constexpr Ipv4Addr kGuest{10, 0, 2, 15}, kGw{10, 0, 2, 2}, kDns{10, 0, 2, 3};

struct SlirpRig {
  uv_loop_t loop{};
  uv_idle_t keepalive{};
  std::unique_ptr<sys::LoopClock> clock;
  std::unique_ptr<engine::SlirpEngine> engine;
  std::vector<std::vector<std::byte>> out;  // IP packets to the guest

  SlirpRig() {
    uv_loop_init(&loop);
    // The engine's handles are unreferenced (a Stack's transport keeps the
    // loop alive); this one does here.
    uv_idle_init(&loop, &keepalive);
    uv_idle_start(&keepalive, [](uv_idle_t*) {});
    clock = std::make_unique<sys::LoopClock>(&loop);
    engine::EngineConfig c;
    engine = std::make_unique<engine::SlirpEngine>(&loop, *clock, c, [this](wire::MutBytes f, const wire::Offload&) {
      out.emplace_back(f.begin() + wire::kEthernetHeaderLen, f.end());
    });
  }
  ~SlirpRig() {
    engine.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&keepalive), nullptr);
    for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
  void input(const std::vector<std::byte>& frame) {
    auto ip = wire::Ipv4Packet::parse(wire::Bytes(frame).subspan(wire::kEthernetHeaderLen));
    REQUIRE(ip);
    engine->input(*ip);
  }
  // Runs the loop until `done` (at most 3 s).
  bool pump(const std::function<bool()>& done) {
    auto t0 = std::chrono::steady_clock::now();
    while (!done()) {
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(3)) return false;
      uv_run(&loop, UV_RUN_NOWAIT);
      usleep(1000);
    }
    return true;
  }
  // The first TCP segment to the guest with these flags, if any.
  std::optional<std::vector<std::byte>> tcp_out(uint8_t flags) const {
    for (const auto& p : out) {
      auto ip = wire::Ipv4Packet::parse(p);
      if (!ip || ip->protocol() != wire::ipproto::kTcp) continue;
      auto t = wire::TcpSegment::parse(ip->payload());
      if (t && (t->flags() & flags) == flags) return p;
    }
    return std::nullopt;
  }
};

int listen_tcp(uint16_t* port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(listen(s, 8) == 0);
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return s;
}

wire::TcpHeaderFields syn(uint16_t sport, uint16_t dport) {
  wire::TcpHeaderFields f;
  f.src_port = sport;
  f.dst_port = dport;
  f.seq = 1000;
  f.flags = wire::tcpflag::kSyn;
  f.window = 65535;
  return f;
}

}  // namespace

TEST_CASE("slirp engine: DNS at the DNS address goes to the resolver, not to libslirp", "[slirp]") {
  SlirpRig r;
  std::vector<std::byte> asked;
  r.engine->set_dns_resolver([&](wire::Bytes q, bool tcp, std::function<void(std::vector<std::byte>)> respond) {
    CHECK_FALSE(tcp);
    asked.assign(q.begin(), q.end());
    respond({std::byte{0xab}, std::byte{0xcd}});
    return true;
  });
  std::vector<std::byte> query = {std::byte{1}, std::byte{2}, std::byte{3}};
  r.input(wire::build_ipv4_udp_frame({}, {}, kGuest, 40000, kDns, 53, query));
  CHECK(asked == query);
  REQUIRE(r.out.size() == 1);
  auto ip = wire::Ipv4Packet::parse(r.out[0]);
  REQUIRE(ip);
  CHECK(ip->src() == kDns);
  CHECK(ip->dst() == kGuest);
  auto udp = wire::UdpDatagram::parse(ip->payload());
  REQUIRE(udp);
  CHECK(udp->src_port() == 53);
  CHECK(udp->dst_port() == 40000);
  CHECK(udp->payload().size() == 2);
  CHECK(r.engine->stats().dns_udp_queries == 1);
}

TEST_CASE("slirp engine: the reply to the first datagram of a new UDP mapping reaches the guest", "[slirp]") {
  // libslirp stamps a new UDP socket's expiry with its clock of the last
  // poll: a datagram that came before any poll got a socket that expired
  // at once, and the host's reply was lost with it.
  SlirpRig r;
  int echo = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(echo, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  getsockname(echo, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  std::vector<std::byte> hello = {std::byte{'h'}, std::byte{'i'}};
  r.input(wire::build_ipv4_udp_frame({}, {}, kGuest, 40001, kGw, port, hello));
  bool echoed = r.pump([&] {
    char buf[64];
    sockaddr_in from{};
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(echo, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n <= 0) return false;
    sendto(echo, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
    return true;
  });
  REQUIRE(echoed);
  auto reply = [&]() -> bool {
    for (const auto& p : r.out) {
      auto ip = wire::Ipv4Packet::parse(p);
      if (!ip || ip->protocol() != wire::ipproto::kUdp) continue;
      auto udp = wire::UdpDatagram::parse(ip->payload());
      if (udp && ip->src() == kGw && udp->src_port() == port && udp->dst_port() == 40001 && udp->payload().size() == 2)
        return true;
    }
    return false;
  };
  CHECK(r.pump(reply));
  close(echo);
}

TEST_CASE("slirp engine: a refused destination gets a RST before libslirp sees it", "[slirp]") {
  SlirpRig r;
  r.input(wire::build_ipv4_tcp_frame({}, {}, kGuest, Ipv4Addr{127, 0, 0, 1}, syn(40001, 80), {}));
  auto rst = r.tcp_out(wire::tcpflag::kRst | wire::tcpflag::kAck);
  REQUIRE(rst);
  auto ip = wire::Ipv4Packet::parse(*rst);
  auto t = wire::TcpSegment::parse(ip->payload());
  CHECK(t->ack() == 1001);
  CHECK(t->dst_port() == 40001);
  CHECK(r.engine->stats().tcp_refused == 1);
}

TEST_CASE("slirp engine: the gateway reaches the host's loopback", "[slirp]") {
  SlirpRig r;
  uint16_t port = 0;
  int ls = listen_tcp(&port);
  r.input(wire::build_ipv4_tcp_frame({}, {}, kGuest, kGw, syn(40002, port), {}));
  int accepted = -1;
  CHECK(r.pump([&] {
    if (accepted < 0) accepted = accept(ls, nullptr, nullptr);
    return accepted >= 0 && r.tcp_out(wire::tcpflag::kSyn | wire::tcpflag::kAck).has_value();
  }));
  auto sa = r.tcp_out(wire::tcpflag::kSyn | wire::tcpflag::kAck);
  REQUIRE(sa);
  auto ip = wire::Ipv4Packet::parse(*sa);
  CHECK(ip->src() == kGw);
  CHECK(wire::TcpSegment::parse(ip->payload())->ack() == 1001);
  if (accepted >= 0) close(accepted);
  close(ls);
}

TEST_CASE("slirp engine: a host forward opens a connection to a guest it never heard from", "[slirp]") {
  SlirpRig r;
  CHECK(r.engine->owns_host_listeners());
  uint16_t port = 0;
  int probe = listen_tcp(&port);  // a free port, released for the forward
  close(probe);
  sockaddr_in host{};
  host.sin_family = AF_INET;
  host.sin_port = htons(port);
  host.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(r.engine->add_host_forward(false, reinterpret_cast<sockaddr*>(&host), engine::IpAddr(kGuest), 8000) == "");
  sockaddr_in6 host6{};
  host6.sin6_family = AF_INET6;
  host6.sin6_port = htons(port);
  host6.sin6_addr = in6addr_loopback;
  CHECK(r.engine->add_host_forward(false, reinterpret_cast<sockaddr*>(&host6), engine::IpAddr(kGuest), 8000)
            .find("IPv6") != std::string::npos);
  int n = 0;
  r.pump([&] { return ++n > 20; });  // a few iterations: the engine polls the listener
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  connect(c, reinterpret_cast<sockaddr*>(&host), sizeof(host));
  CHECK(r.pump([&] { return r.tcp_out(wire::tcpflag::kSyn).has_value(); }));
  auto s = r.tcp_out(wire::tcpflag::kSyn);
  REQUIRE(s);
  auto ip = wire::Ipv4Packet::parse(*s);
  CHECK(ip->dst() == kGuest);
  CHECK(ip->src() == kGw);  // a loopback client appears as the gateway
  CHECK(wire::TcpSegment::parse(ip->payload())->dst_port() == 8000);
  close(c);
  r.engine->remove_host_forward(false, reinterpret_cast<sockaddr*>(&host));
}

TEST_CASE("slirp engine: a published port for a named guest follows the guest's lease", "[slirp]") {
  // libslirp forwards a host port to one fixed guest address: a rule naming
  // a guest with no lease yet opens its port when the lease comes, and the
  // port follows the lease when it moves (PublishedPorts::guests_changed).
  SlirpRig r;
  std::map<std::string, Ipv4Addr> leases;
  portfwd::PublishedPorts published(&r.loop, *r.engine, kGuest, false,
                                    [&](const std::string& name) -> std::optional<Ipv4Addr> {
                                      auto it = leases.find(name);
                                      if (it == leases.end()) return std::nullopt;
                                      return it->second;
                                    });
  uint16_t port = 0;
  close(listen_tcp(&port));  // a free port, released for the forward
  std::string error;
  auto rule = portfwd::parse_rule("127.0.0.1:" + std::to_string(port) + ":beta:8000", &error);
  REQUIRE(rule);
  REQUIRE(published.add(*rule) == "");  // no lease yet: waits for one
  sockaddr_in host{};
  host.sin_family = AF_INET;
  host.sin_port = htons(port);
  host.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto syn_to = [&](Ipv4Addr want) {
    r.out.clear();
    int n = 0;
    r.pump([&] { return ++n > 20; });  // the engine polls its listener
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(c, reinterpret_cast<sockaddr*>(&host), sizeof(host));
    bool got = r.pump([&] { return r.tcp_out(wire::tcpflag::kSyn).has_value(); });
    close(c);
    if (!got) return false;
    auto packet = r.tcp_out(wire::tcpflag::kSyn);
    auto ip = wire::Ipv4Packet::parse(*packet);
    return ip->dst() == want && wire::TcpSegment::parse(ip->payload())->dst_port() == 8000;
  };
  {
    // Nobody listens on the host port before beta has a lease.
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, reinterpret_cast<sockaddr*>(&host), sizeof(host)) != 0);
    close(c);
  }
  leases["beta"] = Ipv4Addr{10, 0, 2, 16};
  published.guests_changed();
  CHECK(syn_to(Ipv4Addr{10, 0, 2, 16}));
  leases["beta"] = Ipv4Addr{10, 0, 2, 17};
  published.guests_changed();
  CHECK(syn_to(Ipv4Addr{10, 0, 2, 17}));
  leases.clear();
  published.guests_changed();
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(c, reinterpret_cast<sockaddr*>(&host), sizeof(host)) != 0);
  close(c);
}
