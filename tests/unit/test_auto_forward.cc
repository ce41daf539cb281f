// AutoForwarder fed the way portfwd-agent feeds it (JSON lines), on a real
// loop with real host listeners; and the forwards it opens on the host's
// IPv6 loopback carrying a real client's TCP and UDP to a guest on a memory
// link (the guest side is played by the test, frame by frame).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "netstack/stack/stack.h"
#include "portfwd/auto_forward.h"
#include "gateway_rig.h"
#include "netstack/link/memory_port.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

using namespace slipway;
using wire::Ipv4Addr;
using wire::MacAddr;

namespace {
uint16_t free_tcp_port(uv_loop_t* loop) {
  uv_tcp_t t;
  uv_tcp_init(loop, &t);
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&t, reinterpret_cast<const sockaddr*>(&a), 0);
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getsockname(&t, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

// A port free on both families (a dual-stack [::] bind), or 0 when the host
// has no IPv6.
uint16_t free_dual_port(int type) {
  int s = socket(AF_INET6, type, 0);
  if (s < 0) return 0;
  int zero = 0;
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  socklen_t l = sizeof a;
  uint16_t port = 0;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &l) == 0)
    port = ntohs(a.sin6_port);
  close(s);
  return port;
}


// A non-blocking client socket connecting to host:port.
int connect_nonblocking(int family, const char* host, uint16_t port, int type) {
  int s = socket(family, type | SOCK_NONBLOCK, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host, &a->sin_addr);
    len = sizeof *a;
  }
  connect(s, reinterpret_cast<sockaddr*>(&ss), len);
  return s;
}

std::string listener_json(const char* proto, int family, const char* address, uint16_t port) {
  return std::string(R"({"proto":")") + proto + R"(","family":)" + std::to_string(family) + R"(,"address":")" +
         address + R"(","port":)" + std::to_string(port) + "}";
}

std::vector<std::string> published_texts(stack::Stack& gw) {
  std::vector<std::string> r;
  for (const auto& f : gw.published().list()) {
    CHECK(f.error.empty());
    r.push_back(f.rule.to_string());
  }
  std::sort(r.begin(), r.end());
  return r;
}

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const Ipv4Addr kGuest{10, 0, 2, 15};
const Ipv4Addr kGw{10, 0, 2, 2};

// A guest on one end of a memory link, the gateway on the other; the guest
// has announced itself (an ARP request), so the gateway knows its MAC.
struct Rig : test::GatewayRig {
  Rig() : GatewayRig(config()) {
    wire::ArpPacket req{wire::ArpPacket::kRequest, kGuestMac, kGuest, MacAddr{}, kGw};
    send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
    received.clear();
  }
  static stack::StackConfig config() {
    stack::StackConfig c;
    c.dns = false;
    return c;
  }
  // The first IPv4 packet received for the guest with this protocol and
  // destination port, removed from `received`; the frame is kept in `held`
  // (valid until the next call).
  std::optional<wire::Ipv4Packet> take(uint8_t proto, uint16_t dst_port) {
    for (auto it = received.begin(); it != received.end(); ++it) {
      auto eth = wire::EthernetFrame::parse(*it);
      if (!eth) continue;
      auto ip = wire::Ipv4Packet::parse(eth->payload());
      if (!ip || ip->protocol() != proto || ip->payload().size() < 4) continue;
      uint16_t port = static_cast<uint16_t>((std::to_integer<unsigned>(ip->payload()[2]) << 8) |
                                            std::to_integer<unsigned>(ip->payload()[3]));
      if (port != dst_port) continue;
      held = std::move(*it);
      received.erase(it);
      return wire::Ipv4Packet::parse(wire::EthernetFrame::parse(held)->payload());
    }
    return std::nullopt;
  }
  // Runs the loop until take() finds such a packet (at most ~2 s).
  std::optional<wire::Ipv4Packet> wait_for(uint8_t proto, uint16_t dst_port) {
    std::optional<wire::Ipv4Packet> packet;
    run_until([&] {
      if (!packet) packet = take(proto, dst_port);
      return packet.has_value();
    });
    return packet;
  }
  std::vector<std::byte> held;
};

}  // namespace

TEST_CASE("agent reports publish and withdraw automatic forwards", "[autofwd]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    stack::StackConfig c;
    c.dns = false;
    auto [guest, end] = link::MemoryPort::make_pair();
    stack::Stack gw(&loop, std::move(end), c);
    uint16_t p = free_tcp_port(&loop);
    uint16_t excluded = free_tcp_port(&loop);
    portfwd::AutoForwarder af(&loop, gw.published(), -1, {excluded});
    auto port = std::to_string(p);
    af.update_from_agent(R"({"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":)" + port +
                         R"(},{"proto":"tcp","family":4,"address":"10.0.2.15","port":9},)" +
                         R"({"proto":"tcp","family":4,"address":"127.0.0.1","port":)" + std::to_string(excluded) +
                         "}]}");
    auto list = gw.published().list();
    REQUIRE(list.size() == 1);  // the specific-address bind and the excluded port are not forwarded
    CHECK(list[0].rule.to_string() == "127.0.0.1:" + port + ":" + port + "/tcp");
    CHECK(list[0].origin == portfwd::PublishedPorts::Origin::kAuto);
    CHECK(list[0].error.empty());

    af.update_from_agent("{not json");  // ignored, nothing changes
    CHECK(gw.published().list().size() == 1);
    af.update_from_agent(R"({"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":70000}]})");
    CHECK(gw.published().list().empty());  // an out-of-range port is skipped; the old forward is withdrawn
    // Numbers that are no int (a guest's 6.2e64, 1.5) are skipped, the rest
    // of the report taken (converting them was undefined behaviour).
    af.update_from_agent(R"({"listeners":[{"proto":"tcp","family":4,"address":"0.0.0.0","port":62e63},)"
                         R"({"proto":"tcp","family":4.5,"address":"0.0.0.0","port":)" + port + "}," +
                         R"({"proto":"tcp","family":4,"address":"0.0.0.0","port":)" + port + "}]}");
    REQUIRE(gw.published().list().size() == 1);
    CHECK(gw.published().list()[0].rule.to_string() == "127.0.0.1:" + port + ":" + port + "/tcp");
    af.update_from_agent(R"({"listeners":[]})");
    CHECK(gw.published().list().empty());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
}

TEST_CASE("guest listeners on [::] and [::1] are published on the host's 127.0.0.1 and ::1", "[autofwd]") {
  if (!test::have_ipv6_loopback()) {
    WARN("skipped: the host has no ::1");
    return;
  }
  Rig r;
  const uint16_t any = free_dual_port(SOCK_STREAM), v6 = free_dual_port(SOCK_STREAM), udp = free_dual_port(SOCK_DGRAM);
  REQUIRE(any != 0);
  REQUIRE(v6 != 0);
  REQUIRE(udp != 0);
  {
    portfwd::AutoForwarder af(&r.loop, r.stack->published(), -1, {});
    af.update_from_agent(R"({"listeners":[)" + listener_json("tcp", 6, "::", any) + "," +
                         listener_json("tcp", 6, "::1", v6) + "," + listener_json("udp", 6, "::1", udp) + "]}");
    auto s = [](uint16_t p) { return std::to_string(p); };
    std::vector<std::string> want{"127.0.0.1:" + s(any) + ":" + s(any) + "/tcp",
                                  "[::1]:" + s(any) + ":" + s(any) + "/tcp",
                                  "[::1]:" + s(v6) + ":" + s(v6) + "/tcp",
                                  "[::1]:" + s(udp) + ":" + s(udp) + "/udp"};
    std::sort(want.begin(), want.end());
    CHECK(published_texts(*r.stack) == want);

    // A real TCP client on ::1 reaches the guest's port, from the gateway
    // (the IPv4 guest cannot be shown an IPv6 source). The guest accepts and
    // sends a greeting, which the client reads.
    for (auto [family, host] : {std::pair{AF_INET6, "::1"}, std::pair{AF_INET, "127.0.0.1"}}) {
      INFO("client on " << host);
      int c = connect_nonblocking(family, host, any, SOCK_STREAM);
      REQUIRE(c >= 0);
      auto syn = r.wait_for(wire::ipproto::kTcp, any);
      REQUIRE(syn);
      CHECK(syn->src() == kGw);
      CHECK(syn->dst() == kGuest);
      auto seg = wire::TcpSegment::parse(syn->payload());
      REQUIRE(seg);
      CHECK(seg->flags() == wire::tcpflag::kSyn);
      const uint16_t gw_port = seg->src_port();
      const uint32_t their_seq = seg->seq();
      wire::TcpHeaderFields f;
      f.src_port = any;
      f.dst_port = gw_port;
      f.seq = 5000;
      f.ack = their_seq + 1;
      f.flags = wire::tcpflag::kSyn | wire::tcpflag::kAck;
      f.window = 65535;
      r.send(wire::build_ipv4_tcp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, f, {}));
      const std::string hello = std::string("hello from the guest to ") + host;
      f.seq = 5001;
      f.flags = wire::tcpflag::kAck | wire::tcpflag::kPsh;
      r.send(wire::build_ipv4_tcp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, f,
                                        wire::Bytes(reinterpret_cast<const std::byte*>(hello.data()), hello.size())));
      std::string got;
      REQUIRE(r.run_until([&] {
        char buf[256];
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
        return got.size() >= hello.size();
      }));
      CHECK(got == hello);
      close(c);
      r.received.clear();
    }

    // The [::1]-only guest listener is reached from a client on ::1.
    int c = connect_nonblocking(AF_INET6, "::1", v6, SOCK_STREAM);
    auto syn = r.wait_for(wire::ipproto::kTcp, v6);
    REQUIRE(syn);
    CHECK(syn->src() == kGw);
    close(c);

    // UDP from a client on ::1: the guest sees the gateway, and its reply
    // goes back to that client.
    int u = connect_nonblocking(AF_INET6, "::1", udp, SOCK_DGRAM);
    REQUIRE(send(u, "ping6", 5, 0) == 5);
    auto dgram = r.wait_for(wire::ipproto::kUdp, udp);
    REQUIRE(dgram);
    CHECK(dgram->src() == kGw);
    auto d = wire::UdpDatagram::parse(dgram->payload());
    REQUIRE(d);
    CHECK(std::string(reinterpret_cast<const char*>(d->payload().data()), d->payload().size()) == "ping6");
    const std::string pong = "pong6";
    r.send(wire::build_ipv4_udp_frame(r.gw_mac(), kGuestMac, kGuest, udp, kGw, d->src_port(),
                                      wire::Bytes(reinterpret_cast<const std::byte*>(pong.data()), pong.size())));
    std::string reply;
    REQUIRE(r.run_until([&] {
      char buf[64];
      ssize_t n = recv(u, buf, sizeof buf, 0);
      if (n > 0) reply.assign(buf, static_cast<size_t>(n));
      return !reply.empty();
    }));
    CHECK(reply == pong);
    close(u);

    af.update_from_agent(R"({"listeners":[]})");
    CHECK(r.stack->published().list().empty());
  }
}

TEST_CASE("with all host addresses a guest [::] listener is published on 0.0.0.0 and [::]", "[autofwd]") {
  if (!test::have_ipv6_loopback()) {
    WARN("skipped: the host has no IPv6");
    return;
  }
  Rig r;
  const uint16_t p = free_dual_port(SOCK_STREAM), lo = free_dual_port(SOCK_STREAM);
  REQUIRE(p != 0);
  REQUIRE(lo != 0);
  portfwd::AutoForwarder af(&r.loop, r.stack->published(), -1, {}, portfwd::HostAddresses::kAll);
  af.update_from_agent(R"({"listeners":[)" + listener_json("tcp", 6, "::", p) + "," +
                       listener_json("tcp", 4, "127.0.0.1", lo) + "]}");
  auto s = [](uint16_t x) { return std::to_string(x); };
  std::vector<std::string> want{"0.0.0.0:" + s(p) + ":" + s(p) + "/tcp", "[::]:" + s(p) + ":" + s(p) + "/tcp",
                                "127.0.0.1:" + s(lo) + ":" + s(lo) + "/tcp"};
  std::sort(want.begin(), want.end());
  CHECK(published_texts(*r.stack) == want);  // "::" and "0.0.0.0" coexist (the IPv6 one is V6ONLY)
  for (auto [family, host] : {std::pair{AF_INET6, "::1"}, std::pair{AF_INET, "127.0.0.1"}}) {
    INFO("client on " << host);
    int c = connect_nonblocking(family, host, p, SOCK_STREAM);
    auto syn = r.wait_for(wire::ipproto::kTcp, p);
    REQUIRE(syn);
    CHECK(syn->src() == kGw);
    close(c);
    r.received.clear();
  }
}

TEST_CASE("automatic forwards leave a port held by a static forward alone", "[autofwd]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    stack::StackConfig c;
    c.dns = false;
    auto [guest, end] = link::MemoryPort::make_pair();
    stack::Stack gw(&loop, std::move(end), c);
    uint16_t p = free_tcp_port(&loop);
    auto port = std::to_string(p);
    portfwd::Rule rule;
    rule.host_addr = "127.0.0.1";
    rule.host_port_first = rule.host_port_last = p;
    rule.guest_port_first = rule.guest_port_last = 80;
    REQUIRE(gw.published().add(rule).empty());
    // In "all" mode the guest's 0.0.0.0 listener would want the host's
    // 0.0.0.0, which the static 127.0.0.1 forward holds in part.
    portfwd::AutoForwarder af(&loop, gw.published(), -1, {}, portfwd::HostAddresses::kAll);
    af.update_from_agent(R"({"listeners":[)" + listener_json("tcp", 4, "0.0.0.0", p) + "]}");
    auto list = gw.published().list();
    REQUIRE(list.size() == 1);
    CHECK(list[0].origin == portfwd::PublishedPorts::Origin::kStatic);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
}
