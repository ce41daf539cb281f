// Gateway scenarios over an in-memory link, on a real libuv loop with real
// host sockets on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "gateway_rig.h"
#include "netstack/link/memory_port.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

using namespace slipway;
using wire::Ipv4Addr;
using wire::MacAddr;

namespace {

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const Ipv4Addr kGuest{10, 0, 2, 15};
const Ipv4Addr kGw{10, 0, 2, 2};

// The gateway with its defaults, or with host loopback off.
struct Rig : test::GatewayRig {
  explicit Rig(bool host_loopback = true) : GatewayRig(config(host_loopback)) {}
  static stack::StackConfig config(bool host_loopback) {
    stack::StackConfig c;
    c.gateway.nat.host_loopback = host_loopback;
    return c;
  }
};

using test::free_port;

std::vector<std::byte> syn_to(Ipv4Addr dst, uint16_t port, MacAddr gw_mac, uint32_t seq = 1000) {
  wire::TcpHeaderFields f;
  f.src_port = 40000;
  f.dst_port = port;
  f.seq = seq;
  f.flags = wire::tcpflag::kSyn;
  f.window = 65535;
  return wire::build_ipv4_tcp_frame(gw_mac, kGuestMac, kGuest, dst, f, {});
}

}  // namespace

TEST_CASE("gateway answers ARP for its own addresses only", "[gateway]") {
  Rig r;
  wire::ArpPacket req{wire::ArpPacket::kRequest, kGuestMac, kGuest, MacAddr{}, kGw};
  r.send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
  REQUIRE(r.received.size() == 1);
  auto eth = wire::EthernetFrame::parse(r.received[0]);
  REQUIRE(eth);
  CHECK(eth->dst() == kGuestMac);
  auto arp = wire::ArpPacket::parse(eth->payload());
  REQUIRE(arp);
  CHECK(arp->op == wire::ArpPacket::kReply);
  CHECK(arp->sender_ip == kGw);
  CHECK(arp->sender_mac == r.gw_mac());

  r.received.clear();
  req.target_ip = Ipv4Addr{10, 0, 2, 77};
  r.send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
  CHECK(r.received.empty());
}

TEST_CASE("gateway answers ARP for a guest forward's address", "[gateway][guestfwd]") {
  stack::StackConfig c;
  std::string err;
  c.gateway.nat.guest_forwards.push_back(*engine::parse_guest_forward("10.0.2.100:8080=unix:/x", &err));
  test::GatewayRig r(c);
  wire::ArpPacket req{wire::ArpPacket::kRequest, kGuestMac, kGuest, MacAddr{}, Ipv4Addr{10, 0, 2, 100}};
  r.send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
  REQUIRE(r.received.size() == 1);
  auto arp = wire::ArpPacket::parse(wire::EthernetFrame::parse(r.received[0])->payload());
  REQUIRE(arp);
  CHECK(arp->op == wire::ArpPacket::kReply);
  CHECK(arp->sender_ip == Ipv4Addr{10, 0, 2, 100});
  CHECK(arp->sender_mac == r.gw_mac());
  r.received.clear();
  req.target_ip = Ipv4Addr{10, 0, 2, 101};
  r.send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
  CHECK(r.received.empty());
}

TEST_CASE("gateway serves DHCP: a DISCOVER gets an OFFER of the guest address", "[gateway]") {
  Rig r;
  wire::DhcpMessage d;
  d.xid = 0x1234;
  d.chaddr = kGuestMac;
  d.message_type = wire::dhcpmsg::kDiscover;
  d.flags = wire::DhcpMessage::kFlagBroadcast;
  r.send(wire::build_ipv4_udp_frame(MacAddr::broadcast(), kGuestMac, Ipv4Addr{}, 68, Ipv4Addr{0xffffffffu}, 67,
                                    d.emit()));
  REQUIRE(r.received.size() == 1);
  auto eth = wire::EthernetFrame::parse(r.received[0]);
  auto ip = wire::Ipv4Packet::parse(eth->payload());
  REQUIRE(ip);
  CHECK(ip->src() == kGw);
  auto udp = wire::UdpDatagram::parse(ip->payload());
  REQUIRE(udp);
  CHECK(udp->dst_port() == 68);
  auto offer = wire::DhcpMessage::parse(udp->payload());
  REQUIRE(offer);
  CHECK(offer->message_type == wire::dhcpmsg::kOffer);
  CHECK(offer->yiaddr == kGuest);
  CHECK(offer->router == kGw);
  CHECK(offer->interface_mtu == 65520);
}

TEST_CASE("gateway answers ping to the gateway and DNS addresses", "[gateway]") {
  Rig r;
  std::vector<std::byte> payload(56, std::byte{0x5a});
  r.send(wire::build_ipv4_icmp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, wire::icmptype::kEchoRequest, 0,
                                     (0x77u << 16) | 3, payload));
  REQUIRE(r.received.size() == 1);
  auto ip = wire::Ipv4Packet::parse(wire::EthernetFrame::parse(r.received[0])->payload());
  REQUIRE(ip);
  CHECK(ip->src() == kGw);
  CHECK(ip->dst() == kGuest);
  auto icmp = wire::IcmpMessage::parse(ip->payload());
  REQUIRE(icmp);
  CHECK(icmp->checksum_ok());
  CHECK(icmp->type() == wire::icmptype::kEchoReply);
  CHECK(icmp->echo_id() == 0x77);
  CHECK(icmp->echo_seq() == 3);
  CHECK(std::equal(icmp->payload().begin(), icmp->payload().end(), payload.begin(), payload.end()));
}

TEST_CASE("gateway drops malformed and spoofed frames and counts them", "[gateway]") {
  Rig r;
  r.send(std::vector<std::byte>(10));  // shorter than an Ethernet header
  auto good = wire::build_ipv4_icmp_frame(r.gw_mac(), kGuestMac, kGuest, kGw, wire::icmptype::kEchoRequest, 0, 1, {});
  auto bad_csum = good;
  bad_csum[wire::kEthernetHeaderLen + 10] ^= std::byte{0xff};
  r.send(bad_csum);
  auto bad_len = good;
  bad_len[wire::kEthernetHeaderLen + 2] = std::byte{0xff};  // total length beyond the frame
  r.send(bad_len);
  r.send(wire::build_ipv4_icmp_frame(r.gw_mac(), kGuestMac, Ipv4Addr{8, 8, 8, 8}, kGw, wire::icmptype::kEchoRequest,
                                     0, 1, {}));
  CHECK(r.received.empty());
  CHECK(r.gw->stats().dropped_malformed == 3);
  CHECK(r.gw->stats().dropped_bad_source == 1);
  r.send(good);  // and the gateway still works
  CHECK(r.received.size() == 1);
}

TEST_CASE("a SYN to a closed host port is answered with RST", "[gateway]") {
  Rig r;
  uint16_t port = free_port();
  r.send(syn_to(kGw, port, r.gw_mac(), 5000));
  REQUIRE(r.run_until([&] { return !r.received.empty(); }));
  auto ip = wire::Ipv4Packet::parse(wire::EthernetFrame::parse(r.received[0])->payload());
  REQUIRE(ip);
  auto tcp = wire::TcpSegment::parse(ip->payload());
  REQUIRE(tcp);
  CHECK(ip->src() == kGw);
  CHECK((tcp->flags() & wire::tcpflag::kRst) != 0);
  CHECK(tcp->ack() == 5001);
  CHECK(tcp->src_port() == port);
}

TEST_CASE("a SYN is answered only after the host accepted the connection", "[gateway]") {
  Rig r;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t l = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &l);
  REQUIRE(listen(ls, 4) == 0);
  r.send(syn_to(kGw, ntohs(a.sin_port), r.gw_mac(), 7000));
  CHECK(r.received.empty());  // nothing before the host connect completes
  REQUIRE(r.run_until([&] { return !r.received.empty(); }));
  auto ip = wire::Ipv4Packet::parse(wire::EthernetFrame::parse(r.received[0])->payload());
  auto tcp = wire::TcpSegment::parse(ip->payload());
  REQUIRE(tcp);
  CHECK(tcp->flags() == (wire::tcpflag::kSyn | wire::tcpflag::kAck));
  CHECK(tcp->ack() == 7001);
  int c = accept(ls, nullptr, nullptr);
  CHECK(c >= 0);
  if (c >= 0) close(c);
  close(ls);
}

TEST_CASE("with host loopback off the gateway address is refused at once", "[gateway]") {
  Rig r(false);
  r.send(syn_to(kGw, 80, r.gw_mac()));
  REQUIRE(r.received.size() == 1);
  auto ip = wire::Ipv4Packet::parse(wire::EthernetFrame::parse(r.received[0])->payload());
  auto tcp = wire::TcpSegment::parse(ip->payload());
  REQUIRE(tcp);
  CHECK((tcp->flags() & wire::tcpflag::kRst) != 0);
  CHECK(r.stack->engine().stats().tcp_refused == 1);
}

TEST_CASE("guest connections to host loopback addresses directly are refused", "[gateway]") {
  Rig r;
  r.send(syn_to(Ipv4Addr{127, 0, 0, 1}, 22, r.gw_mac()));
  r.send(syn_to(Ipv4Addr{0, 0, 0, 0}, 22, r.gw_mac()));
  // 127.0.0.1 gets an RST; 0.0.0.0 nothing (no packet can come from it).
  REQUIRE(r.received.size() == 1);
  CHECK(r.stack->engine().stats().tcp_refused == 2);
  CHECK(r.stack->engine().stats().tcp_connects == 0);
}

TEST_CASE("proxy_neighbors (mirrored mode) answers ARP for other hosts on the link only", "[gateway]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    stack::StackConfig c;
    c.gateway.proxy_neighbors = true;
    // Not a structured binding: clang 14 (the sanitizer build) cannot
    // capture one in a lambda.
    auto ends = link::MemoryPort::make_pair();
    auto& guest = ends.first;
    link::MemoryPort* gw_end = ends.second.get();
    stack::Stack st(&loop, std::move(ends.second), c);
    gateway::Gateway& gw = st.gateway();
    std::vector<std::vector<std::byte>> received;
    guest->set_sink([&](link::Frame f) { received.emplace_back(f.begin(), f.end()); });
    auto ask = [&](Ipv4Addr sender, Ipv4Addr target) {
      received.clear();
      wire::ArpPacket req{wire::ArpPacket::kRequest, kGuestMac, sender, MacAddr{}, target};
      guest->send(wire::build_arp_frame(MacAddr::broadcast(), kGuestMac, req));
      gw_end->poll();
      guest->poll();
      if (received.size() != 1) return false;
      auto arp = wire::ArpPacket::parse(wire::EthernetFrame::parse(received[0])->payload());
      return arp && arp->sender_ip == target && arp->sender_mac == gw.config().mac;
    };
    CHECK(ask(kGuest, Ipv4Addr{10, 0, 2, 77}));                  // another host on the link
    CHECK(ask(kGuest, kGw));                                     // the gateway, as always
    CHECK_FALSE(ask(kGuest, kGuest));                            // the guest's own address
    CHECK_FALSE(ask(Ipv4Addr{0, 0, 0, 0}, Ipv4Addr{10, 0, 2, 77}));  // a probe
    CHECK_FALSE(ask(kGuest, Ipv4Addr{192, 0, 2, 1}));            // off the link
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
}
