// The gateway's IPv6 side over an in-memory link, on a real libuv loop with
// real host sockets on ::1: router advertisements at start, neighbour
// discovery both ways, echo (answered, relayed to another host in a private
// network namespace, refused), UDP and TCP relayed to host IPv6 sockets, and
// what is refused.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "gateway_rig.h"
#include "netstack/link/memory_port.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
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

// The gateway with IPv6 (or without).
struct Rig : test::GatewayRig {
  explicit Rig(bool ipv6 = true) : GatewayRig(config(ipv6)) {}
  static stack::StackConfig config(bool ipv6) {
    stack::StackConfig c;
    c.gateway.nat.ipv6 = ipv6;
    return c;
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
  return wire::build_ipv6_tcp_frame(dst_mac, kGuestMac, src, dst, f, {});
}

// The ICMPv6 message of a received frame (which must be IPv6/ICMPv6).
wire::Icmpv6Message icmpv6_of(const std::vector<std::byte>& frame) {
  auto ip = wire::Ipv6Packet::parse(wire::EthernetFrame::parse(frame)->payload());
  return *wire::Icmpv6Message::parse(ip->upper_layer()->data);
}

std::vector<std::byte> echo_request(const Ipv6Addr& src, const Ipv6Addr& dst, uint32_t id_seq,
                                    const std::vector<std::byte>& payload, MacAddr gw_mac) {
  return wire::build_ipv6_icmpv6_frame(gw_mac, kGuestMac, src, dst, 64, wire::icmpv6type::kEchoRequest, 0, id_seq,
                                       payload);
}

// Runs body in a forked child inside a fresh network namespace (the test
// binary's own must not change: libuv's threadpool and later tests live
// there), after `setup` shell commands. Returns the child's failure message:
// empty on success, "skip: ..." when the namespace cannot be made. Inside
// the child, checks return a message instead of asserting.
constexpr const char* kSkip = "skip: ";
std::string in_private_netns(const char* setup, const std::function<std::string()>& body) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return "pipe2 failed";
  std::fflush(stdout);
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    alarm(60);
    std::string msg;
    if (unshare(CLONE_NEWNET) != 0) {
      msg = std::string(kSkip) + "unshare(CLONE_NEWNET): " + std::strerror(errno);
    } else if (std::system(setup) != 0) {
      msg = std::string(kSkip) + "'" + setup + "' failed";
    } else {
      try {
        msg = body();
      } catch (const std::exception& e) {
        msg = std::string("exception: ") + e.what();
      } catch (...) {
        msg = "a check failed in the child";
      }
    }
    for (size_t off = 0; off < msg.size();) {
      ssize_t n = write(fds[1], msg.data() + off, msg.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    _exit(msg.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (msg.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) msg = "the child failed";
  return msg;
}

#define EXPECT(cond)                                                                       \
  do {                                                                                     \
    if (!(cond)) return std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond; \
  } while (0)

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

TEST_CASE("gateway answers NS, and echo to its own address", "[gateway][ipv6]") {
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

  auto reply = r.icmpv6(wire::icmpv6type::kEchoReply);
  REQUIRE(reply);
  auto ip = wire::Ipv6Packet::parse(wire::EthernetFrame::parse(*reply)->payload());
  CHECK(ip->src() == kGw6);  // answered here, like IPv4's gateway address, not relayed to ::1
  CHECK(icmpv6_of(*reply).rest() == 0x12340001);
  CHECK(r.gw->stats().icmp_echo_relayed == 0);
}

TEST_CASE("ICMPv6 echo to a refused destination gets destination unreachable at once", "[gateway][ipv6][icmp]") {
  Rig r;
  r.run_until([&] { return !r.received.empty(); });  // the start-up RA
  std::vector<std::byte> payload{std::byte{7}, std::byte{8}};
  struct Case {
    Ipv6Addr src, dst;
    uint8_t code;
  };
  const Case cases[] = {
      // The guest's own prefix (NAT mode), not a host destination.
      {kGuest, Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0x99}), wire::icmpv6code::kAdminProhibited},
      // IPv4-mapped: would reach 127.0.0.1 through the back door.
      {kGuest, Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0xffff, 0x7f00, 1}), wire::icmpv6code::kAdminProhibited},
      // Another link-local address.
      {kGuest, Ipv6Addr::from_groups({0xfe80, 0, 0, 0, 0, 0, 0, 1}), wire::icmpv6code::kAdminProhibited},
      // Host loopback, directly.
      {kGuest, Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0, 1}), wire::icmpv6code::kAdminProhibited},
      // A link-local source may not leave the link.
      {kGuestLinkLocal, Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}), wire::icmpv6code::kBeyondScope},
  };
  for (const auto& c : cases) {
    INFO(c.src.to_string() << " -> " << c.dst.to_string());
    r.received.clear();
    r.send(echo_request(c.src, c.dst, 0x12340001, payload, r.gw_mac()));
    auto err = r.icmpv6(wire::icmpv6type::kDestUnreachable);
    REQUIRE(err);
    auto ip = wire::Ipv6Packet::parse(wire::EthernetFrame::parse(*err)->payload());
    CHECK(ip->src() == kGw6);
    CHECK(ip->dst() == c.src);
    auto m = icmpv6_of(*err);
    CHECK(m.code() == c.code);
    CHECK(m.checksum_ok(ip->src(), ip->dst()));
    auto quoted = wire::Ipv6Packet::parse(m.payload());  // the whole request fits
    REQUIRE(quoted);
    CHECK(quoted->dst() == c.dst);
  }
  CHECK(r.gw->stats().icmpv6_echo_refused == std::size(cases));
  CHECK(r.gw->stats().icmp_echo_relayed == 0);

  // A bad checksum is dropped, not answered.
  r.received.clear();
  auto corrupt = echo_request(kGuest, Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}), 0x12340001,
                              payload, r.gw_mac());
  corrupt.back() ^= std::byte{1};
  r.send(corrupt);
  CHECK(r.received.empty());
  CHECK(r.gw->stats().dropped_malformed == 1);
}

// In a private network namespace whose loopback also holds 2001:db8::1 (so
// that it is a host destination that is not loopback), through ping sockets
// and through the raw-socket fallback.
TEST_CASE("ICMPv6 echo to another host is relayed and answered from it", "[gateway][ipv6][icmp]") {
  if (geteuid() != 0) {
    WARN("not root: skipping (needs a private network namespace)");
    return;
  }
  for (const char* range : {"0 2147483647", "1 0"}) {
    const std::string setup = std::string("ip link set lo up && ip -6 addr add 2001:db8::1/128 dev lo nodad && ") +
                              "echo '" + range + "' > /proc/sys/net/ipv4/ping_group_range";
    auto msg = in_private_netns(setup.c_str(), []() -> std::string {
      const Ipv6Addr host = Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1});
      const Ipv6Addr no_route = Ipv6Addr::from_groups({0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1});
      Rig r;
      r.run_until([&] { return !r.received.empty(); });  // the start-up RA
      r.received.clear();
      std::vector<std::byte> payload(100);
      for (size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i);
      // As ping does, the guest sends again when no reply came: an echo is
      // best effort, and once in a few dozen runs under load the first
      // request through a fresh raw socket goes unanswered.
      bool answered = false;
      for (int attempt = 1; attempt <= 3 && !answered; ++attempt) {
        r.send(echo_request(kGuest, host, 0xbeef0007, payload, r.gw_mac()));
        EXPECT(r.gw->stats().icmp_echo_relayed == static_cast<uint64_t>(attempt));
        answered = r.run_until([&] { return r.icmpv6(wire::icmpv6type::kEchoReply).has_value(); });
      }
      EXPECT(answered);
      auto reply = *r.icmpv6(wire::icmpv6type::kEchoReply);
      auto eth = wire::EthernetFrame::parse(reply);
      EXPECT(eth->dst() == kGuestMac);
      auto ip = wire::Ipv6Packet::parse(eth->payload());
      EXPECT(ip->src() == host);
      EXPECT(ip->dst() == kGuest);
      auto m = icmpv6_of(reply);
      EXPECT(m.checksum_ok(ip->src(), ip->dst()));
      EXPECT(m.echo_id() == 0xbeef);  // the guest's id, whatever the host's socket used
      EXPECT(m.echo_seq() == 7);
      EXPECT(std::equal(m.payload().begin(), m.payload().end(), payload.begin(), payload.end()));

      // No route on the host: destination unreachable (no route) from the
      // gateway, quoting the guest's request.
      r.received.clear();
      r.send(echo_request(kGuest, no_route, 0xbeef0008, payload, r.gw_mac()));
      EXPECT(r.run_until([&] { return r.icmpv6(wire::icmpv6type::kDestUnreachable).has_value(); }));
      auto err = *r.icmpv6(wire::icmpv6type::kDestUnreachable);
      ip = wire::Ipv6Packet::parse(wire::EthernetFrame::parse(err)->payload());
      EXPECT(ip->src() == kGw6);
      EXPECT(ip->dst() == kGuest);
      m = icmpv6_of(err);
      EXPECT(m.code() == wire::icmpv6code::kNoRoute);
      EXPECT(m.checksum_ok(ip->src(), ip->dst()));
      auto quoted = wire::Ipv6Packet::parse(m.payload());
      EXPECT(quoted && quoted->src() == kGuest && quoted->dst() == no_route);
      auto qm = wire::Icmpv6Message::parse(quoted->payload());
      EXPECT(qm && qm->type() == wire::icmpv6type::kEchoRequest && qm->rest() == 0xbeef0008);
      EXPECT(r.gw->stats().icmp_echo_relayed == 2);
      EXPECT(r.gw->stats().icmp_echo_failed == 0);
      return {};
    });
    INFO("ping_group_range " << range << ": " << msg);
    if (msg.rfind(kSkip, 0) == 0) {
      WARN(msg);
      return;
    }
    CHECK(msg.empty());
  }
}

TEST_CASE("UDP over IPv6 to the gateway reaches host ::1 and the reply comes back", "[gateway][ipv6]") {
  if (!test::have_ipv6_loopback()) {
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
  if (!test::have_ipv6_loopback()) {
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
  CHECK(r.stack->engine().stats().udp_datagrams_out == 0);
}

TEST_CASE("gateway solicits an unknown IPv6 neighbour and delivers once it answers", "[gateway][ipv6]") {
  if (!test::have_ipv6_loopback()) {
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
