// Whole-frame builders: every layer parses back and checksums verify.
#include <catch2/catch.hpp>

#include <vector>

#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/udp.h"

using namespace slipway::wire;

namespace {
const MacAddr kGwMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const Ipv4Addr kGw{10, 0, 2, 2};
const Ipv4Addr kGuest{10, 0, 2, 15};

std::vector<std::byte> bytes_of(std::initializer_list<uint8_t> v) {
  std::vector<std::byte> out;
  for (uint8_t b : v) out.push_back(std::byte{b});
  return out;
}

// Parses Ethernet + IPv4, checking both.
Ipv4Packet ip_of(const std::vector<std::byte>& frame, MacAddr dst, MacAddr src) {
  auto eth = EthernetFrame::parse(frame);
  REQUIRE(eth);
  REQUIRE(eth->dst() == dst);
  REQUIRE(eth->src() == src);
  REQUIRE(eth->ethertype() == ethertype::kIpv4);
  auto ip = Ipv4Packet::parse(eth->payload());
  REQUIRE(ip);
  REQUIRE(ip->bytes().size() == eth->payload().size());
  return *ip;
}
}  // namespace

TEST_CASE("build_ipv4_udp_frame", "[wire]") {
  auto payload = bytes_of({1, 2, 3});
  auto frame = build_ipv4_udp_frame(kGuestMac, kGwMac, kGw, 67, kGuest, 68, payload, 32);
  REQUIRE(frame.size() == 14 + 20 + 8 + 3);
  auto ip = ip_of(frame, kGuestMac, kGwMac);
  REQUIRE(ip.protocol() == ipproto::kUdp);
  REQUIRE(ip.ttl() == 32);
  REQUIRE(ip.src() == kGw);
  REQUIRE(ip.dst() == kGuest);
  auto udp = UdpDatagram::parse(ip.payload());
  REQUIRE(udp);
  REQUIRE(udp->src_port() == 67);
  REQUIRE(udp->dst_port() == 68);
  REQUIRE(std::vector<std::byte>(udp->payload().begin(), udp->payload().end()) == payload);
  REQUIRE(udp->checksum() != 0);
  REQUIRE(udp_checksum_ok(kGw, kGuest, ip.payload()));
}

TEST_CASE("build_ipv4_icmp_frame echo reply", "[wire]") {
  auto payload = bytes_of({'p', 'i', 'n', 'g'});
  auto frame = build_ipv4_icmp_frame(kGuestMac, kGwMac, kGw, kGuest, icmptype::kEchoReply, 0, 0x00070003, payload);
  auto ip = ip_of(frame, kGuestMac, kGwMac);
  REQUIRE(ip.protocol() == ipproto::kIcmp);
  REQUIRE(ip.ttl() == 64);
  auto icmp = IcmpMessage::parse(ip.payload());
  REQUIRE(icmp);
  REQUIRE(icmp->checksum_ok());
  REQUIRE(icmp->type() == icmptype::kEchoReply);
  REQUIRE(icmp->echo_id() == 7);
  REQUIRE(icmp->echo_seq() == 3);
  REQUIRE(icmp->payload().size() == 4);
}

TEST_CASE("build_ipv4_tcp_frame", "[wire]") {
  TcpHeaderFields f{80, 40000, 1, 2, tcpflag::kRst, 0};
  auto frame = build_ipv4_tcp_frame(kGuestMac, kGwMac, Ipv4Addr{93, 184, 216, 34}, kGuest, f, {});
  auto ip = ip_of(frame, kGuestMac, kGwMac);
  REQUIRE(ip.protocol() == ipproto::kTcp);
  auto tcp = TcpSegment::parse(ip.payload());
  REQUIRE(tcp);
  REQUIRE(tcp->flags() == tcpflag::kRst);
  REQUIRE(tcp->seq() == 1);
  REQUIRE(tcp->ack() == 2);
  REQUIRE(tcp_checksum_ok(ip.src(), ip.dst(), ip.payload()));
}

TEST_CASE("build_ipv4_icmp_error_frame quotes the offending packet", "[wire]") {
  // A UDP datagram from the guest to a closed port, 100 bytes of payload.
  std::vector<std::byte> payload(100, std::byte{0x42});
  auto offending_frame = build_ipv4_udp_frame(kGwMac, kGuestMac, kGuest, 5000, kGw, 9, payload);
  auto offending = Ipv4Packet::parse(Bytes{offending_frame}.subspan(14));
  REQUIRE(offending);

  auto frame = build_ipv4_icmp_error_frame(kGuestMac, kGwMac, kGw, icmptype::kDestUnreachable,
                                           icmpcode::kPortUnreachable, *offending);
  auto ip = ip_of(frame, kGuestMac, kGwMac);
  REQUIRE(ip.src() == kGw);
  REQUIRE(ip.dst() == kGuest);
  auto icmp = IcmpMessage::parse(ip.payload());
  REQUIRE(icmp);
  REQUIRE(icmp->checksum_ok());
  REQUIRE(icmp->type() == icmptype::kDestUnreachable);
  REQUIRE(icmp->code() == icmpcode::kPortUnreachable);
  REQUIRE(icmp->rest() == 0);
  // Small enough to quote whole.
  REQUIRE(icmp->payload().size() == offending->bytes().size());
  auto quoted = Ipv4Packet::parse(icmp->payload());
  REQUIRE(quoted);
  REQUIRE(quoted->src() == kGuest);
  auto quoted_udp = UdpDatagram::parse(quoted->payload());
  REQUIRE(quoted_udp);
  REQUIRE(quoted_udp->dst_port() == 9);
}

TEST_CASE("build_ipv4_icmp_error_frame stays within 576 bytes", "[wire]") {
  std::vector<std::byte> payload(1400, std::byte{0x42});
  auto offending_frame = build_ipv4_udp_frame(kGwMac, kGuestMac, kGuest, 5000, kGw, 9, payload);
  auto offending = Ipv4Packet::parse(Bytes{offending_frame}.subspan(14));
  REQUIRE(offending);
  auto frame = build_ipv4_icmp_error_frame(kGuestMac, kGwMac, kGw, icmptype::kDestUnreachable,
                                           icmpcode::kFragNeeded, *offending, 1280);
  auto ip = ip_of(frame, kGuestMac, kGwMac);
  REQUIRE(ip.total_len() == 576);
  auto icmp = IcmpMessage::parse(ip.payload());
  REQUIRE(icmp);
  REQUIRE(icmp->checksum_ok());
  REQUIRE(icmp->rest() == 1280);
  // The quote starts with the offending header and its first 8 bytes at least.
  REQUIRE(icmp->payload().size() >= 28);
  REQUIRE(std::equal(offending->bytes().begin(), offending->bytes().begin() + 28, icmp->payload().begin()));
}

TEST_CASE("icmp_error_allowed follows RFC 1122", "[wire]") {
  std::vector<std::byte> payload(8);
  auto udp_frame = build_ipv4_udp_frame(kGwMac, kGuestMac, kGuest, 5000, kGw, 9, payload);
  auto udp = Ipv4Packet::parse(Bytes{udp_frame}.subspan(14));
  REQUIRE(udp);
  REQUIRE(icmp_error_allowed(*udp, false));
  REQUIRE_FALSE(icmp_error_allowed(*udp, true));

  auto bcast_frame = build_ipv4_udp_frame(kGwMac, kGuestMac, kGuest, 5000, Ipv4Addr{0xffffffffu}, 9, payload);
  REQUIRE_FALSE(icmp_error_allowed(*Ipv4Packet::parse(Bytes{bcast_frame}.subspan(14)), false));
  auto zero_src = build_ipv4_udp_frame(kGwMac, kGuestMac, Ipv4Addr{}, 68, kGw, 67, payload);
  REQUIRE_FALSE(icmp_error_allowed(*Ipv4Packet::parse(Bytes{zero_src}.subspan(14)), false));

  auto echo = build_ipv4_icmp_frame(kGwMac, kGuestMac, kGuest, kGw, icmptype::kEchoRequest, 0, 0, payload);
  REQUIRE(icmp_error_allowed(*Ipv4Packet::parse(Bytes{echo}.subspan(14)), false));
  auto unreach = build_ipv4_icmp_frame(kGwMac, kGuestMac, kGuest, kGw, icmptype::kDestUnreachable, 3, 0, payload);
  REQUIRE_FALSE(icmp_error_allowed(*Ipv4Packet::parse(Bytes{unreach}.subspan(14)), false));
}
