// UDP, TCP and ICMPv4 views and emitters against hand-checked bytes.
#include <catch2/catch.hpp>

#include <string_view>
#include <vector>

#include "hex.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

using namespace slipway::wire;

namespace {
std::vector<std::byte> text(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(std::byte(c));
  return out;
}

const Ipv4Addr kGuest{10, 0, 2, 15};
const Ipv4Addr kDns{10, 0, 2, 3};

// 10.0.2.15:12345 -> 10.0.2.3:53 "hello"; checksum 0x7382 computed
// independently.
const auto kUdp = hex("3039 0035 000d 7382 68656c6c6f");

// A Linux-style SYN 10.0.2.15:40000 -> 93.184.216.34:80 with MSS 1460,
// SACK-permitted, timestamps, NOP, window scale 7; checksum 0x23a7.
const auto kSynPacket = hex(
    "4500 003c beef 4000 4006 39e3 0a00020f 5db8d822"
    "9c40 0050 12345678 00000000 a002 faf0 23a7 0000"
    "020405b4 0402 080a 0001e240 00000000 01 030307");
}  // namespace

TEST_CASE("UdpDatagram parses and checks the checksum", "[wire]") {
  auto udp = UdpDatagram::parse(kUdp);
  REQUIRE(udp);
  REQUIRE(udp->src_port() == 12345);
  REQUIRE(udp->dst_port() == 53);
  REQUIRE(udp->length() == 13);
  REQUIRE(udp->checksum() == 0x7382);
  REQUIRE(udp->payload().size() == 5);
  REQUIRE(udp_checksum_ok(kGuest, kDns, kUdp));
  REQUIRE_FALSE(udp_checksum_ok(kGuest, Ipv4Addr{10, 0, 2, 4}, kUdp));
  auto corrupt = kUdp;
  corrupt[9] ^= std::byte{0x20};
  REQUIRE_FALSE(udp_checksum_ok(kGuest, kDns, corrupt));
  auto none = kUdp;
  none[6] = none[7] = std::byte{0};
  REQUIRE(udp_checksum_ok(kGuest, kDns, none));
}

TEST_CASE("UdpDatagram trims to its length and rejects bad lengths", "[wire]") {
  auto padded = kUdp;
  padded.push_back(std::byte{0});
  auto udp = UdpDatagram::parse(padded);
  REQUIRE(udp);
  REQUIRE(udp->payload().size() == 5);
  REQUIRE(udp_checksum_ok(kGuest, kDns, padded));

  REQUIRE_FALSE(UdpDatagram::parse(Bytes{kUdp}.first(7)));
  REQUIRE_FALSE(UdpDatagram::parse(Bytes{kUdp}.first(12)));  // length 13 > 12
  auto short_len = kUdp;
  store16(short_len, 4, 7);
  REQUIRE_FALSE(UdpDatagram::parse(short_len));
  REQUIRE_FALSE(udp_checksum_ok(kGuest, kDns, short_len));
}

TEST_CASE("emit_udp writes the same bytes", "[wire]") {
  std::vector<std::byte> out(64);
  auto payload = text("hello");
  REQUIRE(emit_udp(out, kGuest, 12345, kDns, 53, payload) == 13);
  out.resize(13);
  REQUIRE(out == kUdp);
}

TEST_CASE("emit_udp sends a computed zero checksum as 0xffff", "[wire]") {
  // Find a payload whose checksum computes to 0: pick the last two bytes so
  // that the sum complements to zero.
  std::vector<std::byte> payload(2);
  std::vector<std::byte> out(10);
  for (unsigned v = 0; v <= 0xffff; ++v) {
    store16(payload, 0, static_cast<uint16_t>(v));
    emit_udp(out, kGuest, 1, kDns, 2, payload);
    if (load16(out, 6) == 0xffff) break;
  }
  REQUIRE(load16(out, 6) == 0xffff);
  REQUIRE(udp_checksum_ok(kGuest, kDns, out));
}

TEST_CASE("TcpSegment parses a SYN with options", "[wire]") {
  auto ip = Ipv4Packet::parse(kSynPacket);
  REQUIRE(ip);
  auto tcp = TcpSegment::parse(ip->payload());
  REQUIRE(tcp);
  REQUIRE(tcp->src_port() == 40000);
  REQUIRE(tcp->dst_port() == 80);
  REQUIRE(tcp->seq() == 0x12345678);
  REQUIRE(tcp->ack() == 0);
  REQUIRE(tcp->flags() == tcpflag::kSyn);
  REQUIRE(tcp->window() == 64240);
  REQUIRE(tcp->header_len() == 40);
  REQUIRE(tcp->options().size() == 20);
  REQUIRE(tcp->options()[0] == std::byte{2});  // MSS
  REQUIRE(load16(tcp->options(), 2) == 1460);
  REQUIRE(tcp->payload().empty());
  REQUIRE(tcp_checksum_ok(ip->src(), ip->dst(), ip->payload()));
  REQUIRE_FALSE(tcp_checksum_ok(ip->src(), Ipv4Addr{93, 184, 216, 35}, ip->payload()));
}

TEST_CASE("TcpSegment rejects bad data offsets and short segments", "[wire]") {
  auto l4 = std::vector<std::byte>(kSynPacket.begin() + 20, kSynPacket.end());
  REQUIRE_FALSE(TcpSegment::parse(Bytes{l4}.first(19)));
  REQUIRE_FALSE(TcpSegment::parse(Bytes{l4}.first(39)));  // options cut off
  for (uint8_t doff : {0, 4}) {
    auto bad = l4;
    bad[12] = std::byte(doff << 4);
    INFO(int{doff});
    REQUIRE_FALSE(TcpSegment::parse(bad));
  }
  auto big = l4;
  big[12] = std::byte{0xf0};  // 60 bytes in a 40-byte segment
  REQUIRE_FALSE(TcpSegment::parse(big));
}

TEST_CASE("tcp_options_well_formed accepts whole options and refuses a missing or bad length", "[wire]") {
  auto ok = [](std::vector<uint8_t> v) {
    std::vector<std::byte> b;
    for (auto c : v) b.push_back(std::byte{c});
    return tcp_options_well_formed(b);
  };
  CHECK(ok({}));
  CHECK(ok({2, 4, 0x05, 0xb4, 1, 3, 3, 7}));         // MSS, NOP, window scale
  CHECK(ok({1, 1, 0, 0xb4}));                        // EOL: the rest is not read
  CHECK(ok({0xfe, 3, 5, 1}));                        // an unknown kind skipped by its length, then NOP
  CHECK_FALSE(ok({0xfe, 3, 5, 0xb4}));               // a kind whose length byte is missing (fuzz_frame)
  CHECK_FALSE(ok({2, 4, 0x05}));                     // running past the options
  CHECK_FALSE(ok({8, 0, 1, 1}));                     // length 0
  CHECK_FALSE(ok({8, 1, 1, 1}));                     // length 1
  CHECK_FALSE(ok({2}));
}

TEST_CASE("emit_tcp writes a RST that parses back", "[wire]") {
  TcpHeaderFields f;
  f.src_port = 80;
  f.dst_port = 40000;
  f.ack = 0x12345679;
  f.flags = tcpflag::kRst | tcpflag::kAck;
  std::vector<std::byte> out(20);
  Ipv4Addr gw{10, 0, 2, 2};
  REQUIRE(emit_tcp(out, gw, kGuest, f, {}) == 20);
  // Checksum 0x9282 computed independently.
  REQUIRE(out == hex("0050 9c40 00000000 12345679 5014 0000 9282 0000"));
  auto tcp = TcpSegment::parse(out);
  REQUIRE(tcp);
  REQUIRE(tcp->flags() == (tcpflag::kRst | tcpflag::kAck));
  REQUIRE(tcp_checksum_ok(gw, kGuest, out));

  std::vector<std::byte> with_data(25);
  f.flags = tcpflag::kPsh | tcpflag::kAck;
  REQUIRE(emit_tcp(with_data, gw, kGuest, f, text("hello")) == 25);
  tcp = TcpSegment::parse(with_data);
  REQUIRE(tcp);
  REQUIRE(tcp->payload().size() == 5);
  REQUIRE(tcp_checksum_ok(gw, kGuest, with_data));
}

TEST_CASE("IcmpMessage parses an echo request", "[wire]") {
  // Echo request id 0x1234 seq 1 "abcdefgh"; checksum 0x5435.
  auto msg = hex("0800 5435 1234 0001 6162636465666768");
  auto icmp = IcmpMessage::parse(msg);
  REQUIRE(icmp);
  REQUIRE(icmp->type() == icmptype::kEchoRequest);
  REQUIRE(icmp->code() == 0);
  REQUIRE(icmp->checksum() == 0x5435);
  REQUIRE(icmp->checksum_ok());
  REQUIRE(icmp->echo_id() == 0x1234);
  REQUIRE(icmp->echo_seq() == 1);
  REQUIRE(icmp->rest() == 0x12340001);
  REQUIRE(icmp->payload().size() == 8);

  msg[15] ^= std::byte{1};
  REQUIRE_FALSE(IcmpMessage::parse(msg)->checksum_ok());
  REQUIRE_FALSE(IcmpMessage::parse(Bytes{msg}.first(7)));
}

TEST_CASE("emit_icmp writes the same echo request", "[wire]") {
  std::vector<std::byte> out(16);
  REQUIRE(emit_icmp(out, icmptype::kEchoRequest, 0, 0x12340001, text("abcdefgh")) == 16);
  REQUIRE(out == hex("0800 5435 1234 0001 6162636465666768"));
}

TEST_CASE("AnyIcmpMessage reads the header ICMPv4 and ICMPv6 share", "[wire]") {
  // ICMPv6 echo reply id 0x1234 seq 7 "hi" (checksum as sent, unchecked).
  auto msg = hex("8100 abcd 1234 0007 6869");
  auto icmp = AnyIcmpMessage::parse(msg);
  REQUIRE(icmp);
  REQUIRE(icmp->type() == 129);
  REQUIRE(icmp->checksum() == 0xabcd);
  REQUIRE(icmp->rest() == 0x12340007);
  REQUIRE((icmp->echo_id() == 0x1234 && icmp->echo_seq() == 7));
  REQUIRE(icmp->payload().data() == msg.data() + 8);
  REQUIRE(icmp->bytes().size() == 10);
  REQUIRE(AnyIcmpMessage::parse(Bytes{msg}.first(8)));
  REQUIRE_FALSE(AnyIcmpMessage::parse(Bytes{msg}.first(7)));

  // An IcmpMessage is one too.
  auto v4 = hex("0800 5435 1234 0001 6162636465666768");
  auto echo = IcmpMessage::parse(v4);
  REQUIRE(echo);
  const AnyIcmpMessage& any = *echo;
  REQUIRE(any.echo_seq() == 1);
}

TEST_CASE("emit_icmp_unchecksummed leaves the checksum zero", "[wire]") {
  std::vector<std::byte> out(16, std::byte{0xee});
  REQUIRE(emit_icmp_unchecksummed(out, 128, 0, 0x12340001, text("abcdefgh")) == 16);
  REQUIRE(out == hex("8000 0000 1234 0001 6162636465666768"));
  REQUIRE(emit_icmp_unchecksummed(out, icmptype::kEchoRequest, 0, 0x12340001, text("abcdefgh")) == 16);
  REQUIRE(out == hex("0800 0000 1234 0001 6162636465666768"));
}
