// The gateway's IPv6 side over an in-memory link, on a real libuv loop with
// real host sockets on ::1: router advertisements at start, neighbour
// discovery both ways, echo, UDP and TCP relayed to host IPv6 sockets, and
// what is refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "netstack/link/memory_port.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

using namespace slipway;
using wire::Ipv6Addr;
using wire::MacAddr;

namespace {

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
constexpr Ipv6Addr kGuest = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456});
constexpr Ipv6Addr kGuestLinkLocal = Ipv6Addr::from_groups({0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456});
constexpr Ipv6Addr kGw6 = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 2});

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<gateway::Gateway> gw;
  std::unique_ptr<link::MemoryPort> guest, gw_end;
  std::vector<std::vector<std::byte>> received;

  explicit Rig(bool ipv6 = true) {
    uv_loop_init(&loop);
    gateway::GatewayConfig c;
    c.nat.ipv6 = ipv6;
    gw = std::make_unique<gateway::Gateway>(&loop, c);
    auto [a, b] = link::MemoryPort::make_pair();
    guest = std::move(a);
    gw_end = std::move(b);
    link::connect(*gw_end, *gw);
    guest->set_sink([this](link::Frame f) { received.emplace_back(f.begin(), f.end()); });
  }
  ~Rig() {
    gw.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);
  }
  MacAddr gw_mac() const { return gw->config().mac; }
  void send(const std::vector<std::byte>& frame) {
    guest->send(frame);
    gw_end->poll();
    guest->poll();
  }
  template <class Pred>
  bool run_until(Pred pred) {
    for (int i = 0; i < 400 && !pred(); ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      gw_end->poll();
      guest->poll();
      if (!pred()) usleep(5000);
    }
    return pred();
  }
  // The first received IPv6 frame carrying ICMPv6 of `type`, if any.
  std::optional<std::vector<std::byte>> icmpv6(uint8_t type) const {
    for (const auto& f : received) {
      auto eth = wire::EthernetFrame::parse(f);
      if (!eth || eth->ethertype() != wire::ethertype::kIpv6) continue;
      auto ip = wire::Ipv6Packet::parse(eth->payload());
      auto ul = ip ? ip->upper_layer() : std::nullopt;
      if (!ul || ul->protocol != wire::ipproto::kIcmpv6) continue;
      auto m = wire::Icmpv6Message::parse(ul->data);
      if (m && m->type() == type) return f;
    }
    return std::nullopt;
  }
};

bool have_ipv6_loopback() {
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  if (s < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

// A socket on [::1]:ephemeral; returns the fd and fills `port`.
int bind_loopback6(int type, uint16_t* port) {
  int s = socket(AF_INET6, type, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t l = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &l);
  *port = ntohs(a.sin6_port);
  return s;
}

std::vector<std::byte> tcp6_frame(MacAddr dst_mac, const Ipv6Addr& src, const Ipv6Addr& dst,
                                  const wire::TcpHeaderFields& f) {
  std::vector<std::byte> frame(wire::kEthernetHeaderLen + wire::Ipv6Header::kLen + 20);
  wire::emit_ethernet_header(frame, dst_mac, kGuestMac, wire::ethertype::kIpv6);
  wire::Ipv6Header h;
  h.src = src;
  h.dst = dst;
  h.next_header = wire::ipproto::kTcp;
  h.payload_len = 20;
  h.emit(wire::MutBytes(frame).subspan(wire::kEthernetHeaderLen));
  auto l4 = wire::MutBytes(frame).subspan(wire::kEthernetHeaderLen + wire::Ipv6Header::kLen);
  wire::emit_tcp(l4, {}, {}, f, {});
  wire::store16(l4, 16, 0);
  uint32_t sum = wire::pseudo_header_sum_v6(src, dst, wire::ipproto::kTcp, 20);
  wire::store16(l4, 16, static_cast<uint16_t>(~wire::checksum_fold(wire::checksum_add(l4, sum))));
  return frame;
}

}  // namespace

TEST_CASE("gateway advertises the IPv6 prefix at start", "[gateway][ipv6]") {
  Rig r;
  REQUIRE(r.run_until([&] { return r.icmpv6(wire::icmpv6type::kRouterAdvert).has_value(); }));
  auto f = *r.icmpv6(wire::icmpv6type::kRouterAdvert);
  auto eth = wire::EthernetFrame::parse(f);
  CHECK(eth->dst() == Ipv6Addr::all_nodes().multicast_mac());
  auto ip = wire::Ipv6Packet::parse(eth->payload());
  auto ra = wire::RouterAdvert::parse(*wire::Icmpv6Message::parse(ip->upper_layer()->data));
  REQUIRE(ra);
  REQUIRE(ra->options.prefixes.size() == 1);
  CHECK(ra->options.prefixes[0].prefix == Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(ra->options.mtu == 65520u);
  REQUIRE(ra->options.rdnss.size() == 1);
  CHECK(ra->options.rdnss[0].servers == std::vector<Ipv6Addr>{Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 3})});
}

TEST_CASE("without IPv6 the gateway sends no RA and drops IPv6 frames", "[gateway][ipv6]") {
  Rig r(false);
  uv_run(&r.loop, UV_RUN_NOWAIT);
  r.guest->poll();
  CHECK(r.received.empty());
  wire::NeighborSolicit ns{kGw6, {}};
  ns.options.source_link_addr = kGuestMac;
  r.send(wire::build_ipv6_icmpv6_frame(kGw6.solicited_node_multicast().multicast_mac(), kGuestMac, kGuest,
                                       kGw6.solicited_node_multicast(), wire::kNdpHopLimit, ns.emit()));
  CHECK(r.received.empty());
  CHECK(r.gw->stats().dropped_unsupported == 1);
}

TEST_CASE("gateway answers NS, and echo to its address, and refuses echo elsewhere", "[gateway][ipv6]") {
  Rig r;
  r.run_until([&] { return !r.received.empty(); });  // the start-up RA
  r.received.clear();
  wire::NeighborSolicit ns{kGw6, {}};
  ns.options.source_link_addr = kGuestMac;
  r.send(wire::build_ipv6_icmpv6_frame(kGw6.solicited_node_multicast().multicast_mac(), kGuestMac, kGuest,
                                       kGw6.solicited_node_multicast(), wire::kNdpHopLimit, ns.emit()));
  auto na_frame = r.icmpv6(wire::icmpv6type::kNeighborAdvert);
  REQUIRE(na_frame);
  auto eth = wire::EthernetFrame::parse(*na_frame);
  CHECK(eth->dst() == kGuestMac);
  auto na = wire::NeighborAdvert::parse(
      *wire::Icmpv6Message::parse(wire::Ipv6Packet::parse(eth->payload())->upper_layer()->data));
  REQUIRE(na);
  CHECK(na->target == kGw6);
  CHECK(na->options.target_link_addr == r.gw_mac());

  r.received.clear();
  std::vector<std::byte> payload{std::byte{1}, std::byte{2}, std::byte{3}};
  r.send(wire::build_ipv6_icmpv6_frame(r.gw_mac(), kGuestMac, kGuest, kGw6, 64, wire::icmpv6type::kEchoRequest, 0,
                                       0x12340001, payload));
  CHECK(r.icmpv6(wire::icmpv6type::kEchoReply));

  r.received.clear();
  auto elsewhere = Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1});
  r.send(wire::build_ipv6_icmpv6_frame(r.gw_mac(), kGuestMac, kGuest, elsewhere, 64, wire::icmpv6type::kEchoRequest,
                                       0, 0x12340001, payload));
  auto err = r.icmpv6(wire::icmpv6type::kDestUnreachable);
  REQUIRE(err);
  auto ip = wire::Ipv6Packet::parse(wire::EthernetFrame::parse(*err)->payload());
  CHECK(ip->src() == kGw6);
  CHECK(ip->dst() == kGuest);
  CHECK(wire::Icmpv6Message::parse(ip->upper_layer()->data)->code() == wire::icmpv6code::kAdminProhibited);
  CHECK(r.gw->stats().icmpv6_echo_refused == 1);
}

TEST_CASE("UDP over IPv6 to the gateway reaches host ::1 and the reply comes back", "[gateway][ipv6]") {
  if (!have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  Rig r;
  uint16_t port = 0;
  int s = bind_loopback6(SOCK_DGRAM, &port);
  std::vector<std::byte> hello{std::byte{'h'}, std::byte{'i'}};
  r.send(wire::build_ipv6_udp_frame(r.gw_mac(), kGuestMac, kGuest, 40000, kGw6, port, hello));
  r.run_until([&] {
    char b[16];
    return recv(s, b, sizeof b, MSG_PEEK | MSG_DONTWAIT) > 0;
  });
  char buf[16];
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  REQUIRE(recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl) == 2);
  CHECK(std::memcmp(buf, "hi", 2) == 0);
  REQUIRE(sendto(s, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), fl) == 4);
  r.received.clear();
  std::optional<std::vector<std::byte>> reply;
  REQUIRE(r.run_until([&] {
    for (const auto& f : r.received) {
      auto eth = wire::EthernetFrame::parse(f);
      if (eth && eth->ethertype() == wire::ethertype::kIpv6) {
        auto ip = wire::Ipv6Packet::parse(eth->payload());
        if (ip && ip->next_header() == wire::ipproto::kUdp) reply = f;
      }
    }
    return reply.has_value();
  }));
  auto eth = wire::EthernetFrame::parse(*reply);
  CHECK(eth->dst() == kGuestMac);  // learned from the guest's packet
  auto ip = wire::Ipv6Packet::parse(eth->payload());
  CHECK(ip->src() == kGw6);  // ::1 appears as the gateway
  CHECK(ip->dst() == kGuest);
  auto ul = ip->upper_layer();
  CHECK(wire::udp_v6_checksum_ok(ip->src(), ip->dst(), ul->data));
  auto udp = wire::UdpDatagram::parse(ul->data);
  REQUIRE(udp);
  CHECK(udp->src_port() == port);
  CHECK(udp->dst_port() == 40000);
  CHECK(udp->payload().size() == 4);
  close(s);
}

TEST_CASE("a TCP SYN over IPv6 to a closed host port gets RST; to a listener, SYN-ACK", "[gateway][ipv6]") {
  if (!have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  Rig r;
  uint16_t closed = 0;
  close(bind_loopback6(SOCK_STREAM, &closed));
  uint16_t open_port = 0;
  int listener = bind_loopback6(SOCK_STREAM, &open_port);
  REQUIRE(listen(listener, 4) == 0);

  auto tcp_reply = [&](uint16_t from_port) -> std::optional<uint8_t> {
    for (const auto& f : r.received) {
      auto eth = wire::EthernetFrame::parse(f);
      if (!eth || eth->ethertype() != wire::ethertype::kIpv6) continue;
      auto ip = wire::Ipv6Packet::parse(eth->payload());
      auto ul = ip ? ip->upper_layer() : std::nullopt;
      if (!ul || ul->protocol != wire::ipproto::kTcp) continue;
      auto seg = wire::TcpSegment::parse(ul->data);
      if (seg && seg->src_port() == from_port && ip->src() == kGw6 && ip->dst() == kGuest) return seg->flags();
    }
    return std::nullopt;
  };
  wire::TcpHeaderFields f;
  f.src_port = 40001;
  f.dst_port = closed;
  f.seq = 1000;
  f.flags = wire::tcpflag::kSyn;
  f.window = 65535;
  r.send(tcp6_frame(r.gw_mac(), kGuest, kGw6, f));
  REQUIRE(r.run_until([&] { return tcp_reply(closed).has_value(); }));
  CHECK((*tcp_reply(closed) & wire::tcpflag::kRst) != 0);

  f.src_port = 40002;
  f.dst_port = open_port;
  r.send(tcp6_frame(r.gw_mac(), kGuest, kGw6, f));
  REQUIRE(r.run_until([&] { return tcp_reply(open_port).has_value(); }));
  CHECK(*tcp_reply(open_port) == (wire::tcpflag::kSyn | wire::tcpflag::kAck));
  close(listener);
}

TEST_CASE("IPv6 from outside the prefix or from link-local is not relayed", "[gateway][ipv6]") {
  Rig r;
  std::vector<std::byte> hello{std::byte{'x'}};
  auto outside = Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 9});
  r.send(wire::build_ipv6_udp_frame(r.gw_mac(), kGuestMac, outside, 40000, kGw6, 9, hello));
  r.send(wire::build_ipv6_udp_frame(r.gw_mac(), kGuestMac, kGuestLinkLocal, 40000, kGw6, 9, hello));
  r.send(wire::build_ipv6_udp_frame(r.gw_mac(), kGuestMac, kGw6, 40000, kGw6, 9, hello));  // spoofing the gateway
  CHECK(r.gw->stats().dropped_bad_source == 3);
  CHECK(r.gw->engine().stats().udp_datagrams_out == 0);
}

TEST_CASE("gateway solicits an unknown IPv6 neighbour and delivers once it answers", "[gateway][ipv6]") {
  if (!have_ipv6_loopback()) {
    WARN("skipping: no IPv6 loopback here");
    return;
  }
  Rig r;
  uint16_t port = 0;
  int s = bind_loopback6(SOCK_DGRAM, &port);
  r.send(wire::build_ipv6_udp_frame(r.gw_mac(), kGuestMac, kGuest, 40000, kGw6, port,
                                    std::vector<std::byte>{std::byte{'a'}}));
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  char b[4];
  bool got = false;  // recvfrom consumes: remember that it succeeded
  REQUIRE(r.run_until([&] {
    got = got || recvfrom(s, b, sizeof b, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl) > 0;
    return got;
  }));
  // Other guests' solicitations fill the neighbour table (256 entries) and
  // push the first guest out of it.
  for (uint16_t i = 1; i <= 256; ++i) {
    auto addr = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 1, i});
    MacAddr mac{{0x52, 0x54, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}};
    wire::NeighborSolicit ns{kGw6, {}};
    ns.options.source_link_addr = mac;
    r.send(wire::build_ipv6_icmpv6_frame(kGw6.solicited_node_multicast().multicast_mac(), mac, addr,
                                         kGw6.solicited_node_multicast(), wire::kNdpHopLimit, ns.emit()));
  }
  r.received.clear();
  REQUIRE(sendto(s, "b", 1, 0, reinterpret_cast<sockaddr*>(&from), fl) == 1);
  REQUIRE(r.run_until([&] { return r.icmpv6(wire::icmpv6type::kNeighborSolicit).has_value(); }));
  auto ns_frame = *r.icmpv6(wire::icmpv6type::kNeighborSolicit);
  auto eth = wire::EthernetFrame::parse(ns_frame);
  CHECK(eth->dst() == kGuest.solicited_node_multicast().multicast_mac());
  auto ip = wire::Ipv6Packet::parse(eth->payload());
  CHECK(ip->dst() == kGuest.solicited_node_multicast());
  CHECK(ip->hop_limit() == 255);
  auto ns = wire::NeighborSolicit::parse(*wire::Icmpv6Message::parse(ip->upper_layer()->data));
  REQUIRE(ns);
  CHECK(ns->target == kGuest);
  CHECK(ns->options.source_link_addr == r.gw_mac());
  CHECK(r.gw->stats().neighbor_solicits_sent == 1);

  // The guest answers; the held UDP reply follows to its MAC.
  wire::NeighborAdvert na;
  na.solicited = true;
  na.target = kGuest;
  na.options.target_link_addr = kGuestMac;
  r.received.clear();
  r.send(wire::build_ipv6_icmpv6_frame(r.gw_mac(), kGuestMac, kGuest, ip->src(), wire::kNdpHopLimit, na.emit()));
  bool delivered = false;
  for (const auto& f : r.received) {
    auto e = wire::EthernetFrame::parse(f);
    auto p = e ? wire::Ipv6Packet::parse(e->payload()) : std::nullopt;
    if (p && e->dst() == kGuestMac && p->next_header() == wire::ipproto::kUdp && p->dst() == kGuest) delivered = true;
  }
  CHECK(delivered);
  close(s);
}
