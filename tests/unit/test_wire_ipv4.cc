// IPv4 view and header emitter against hand-checked bytes.
#include <catch2/catch.hpp>

#include <vector>

#include "hex.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"

using namespace slipway::wire;

namespace {

// 10.0.2.15:12345 -> 10.0.2.3:53 "hello", id 0x1c46, DF, TTL 64. Header
// checksum 0x0675 and UDP checksum 0x7382 computed independently.
const auto kUdpPacket = hex(
    "4500 0021 1c46 4000 4011 0675 0a00020f 0a000203"
    "3039 0035 000d 7382 68656c6c6f");

void fix_checksum(std::vector<std::byte>& p) {
  size_t ihl = (static_cast<size_t>(p[0]) & 0xf) * 4;
  p[10] = p[11] = std::byte{0};
  uint16_t c = checksum_fold(checksum_add(Bytes{p}.first(ihl)));
  store16(p, 10, c);
}
}  // namespace

TEST_CASE("Ipv4Packet parses a UDP packet", "[wire]") {
  auto ip = Ipv4Packet::parse(kUdpPacket);
  REQUIRE(ip);
  REQUIRE(ip->header_len() == 20);
  REQUIRE(ip->tos() == 0);
  REQUIRE(ip->total_len() == 33);
  REQUIRE(ip->id() == 0x1c46);
  REQUIRE(ip->dont_fragment());
  REQUIRE_FALSE(ip->more_fragments());
  REQUIRE(ip->fragment_offset() == 0);
  REQUIRE_FALSE(ip->is_fragment());
  REQUIRE(ip->ttl() == 64);
  REQUIRE(ip->protocol() == ipproto::kUdp);
  REQUIRE(ip->src() == Ipv4Addr{10, 0, 2, 15});
  REQUIRE(ip->dst() == Ipv4Addr{10, 0, 2, 3});
  REQUIRE(ip->header().size() == 20);
  REQUIRE(ip->payload().size() == 13);
  REQUIRE(ip->bytes().size() == 33);
}

TEST_CASE("Ipv4Packet excludes link padding after total length", "[wire]") {
  auto padded = kUdpPacket;
  padded.resize(46, std::byte{0xee});
  auto ip = Ipv4Packet::parse(padded);
  REQUIRE(ip);
  REQUIRE(ip->bytes().size() == 33);
  REQUIRE(ip->payload().size() == 13);
}

TEST_CASE("Ipv4Packet reports fragments", "[wire]") {
  auto p = kUdpPacket;
  store16(p, 6, 0x2000 | 0);  // MF, offset 0
  fix_checksum(p);
  auto ip = Ipv4Packet::parse(p);
  REQUIRE(ip);
  REQUIRE(ip->more_fragments());
  REQUIRE_FALSE(ip->dont_fragment());
  REQUIRE(ip->is_fragment());
  store16(p, 6, 185);  // last fragment at 1480 bytes
  fix_checksum(p);
  ip = Ipv4Packet::parse(p);
  REQUIRE(ip);
  REQUIRE(ip->fragment_offset() == 1480);
  REQUIRE(ip->is_fragment());
}

TEST_CASE("Ipv4Packet with options", "[wire]") {
  // IHL 6: one word of options (NOP NOP NOP EOL) before the UDP payload.
  auto p = hex("4600 0025 0000 4000 4011 0000 0a00020f 0a000203 01010100"
               "3039 0035 000d 0000 68656c6c6f");
  fix_checksum(p);
  auto ip = Ipv4Packet::parse(p);
  REQUIRE(ip);
  REQUIRE(ip->header_len() == 24);
  REQUIRE(ip->payload().size() == 13);
  REQUIRE(static_cast<uint8_t>(ip->payload()[0]) == 0x30);
}

TEST_CASE("Ipv4Packet rejects malformed packets", "[wire]") {
  SECTION("truncated") {
    for (size_t n = 0; n < kUdpPacket.size(); ++n) {
      INFO(n);
      REQUIRE_FALSE(Ipv4Packet::parse(Bytes{kUdpPacket}.first(n)));
    }
  }
  SECTION("not version 4") {
    auto p = kUdpPacket;
    p[0] = std::byte{0x65};
    fix_checksum(p);
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
  SECTION("IHL below 5") {
    auto p = kUdpPacket;
    p[0] = std::byte{0x44};
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
  SECTION("IHL beyond the buffer") {
    auto p = kUdpPacket;
    p[0] = std::byte{0x4f};  // 60-byte header in a 33-byte packet
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
  SECTION("total length beyond the buffer") {
    auto p = kUdpPacket;
    store16(p, 2, 34);
    fix_checksum(p);
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
  SECTION("total length shorter than the header") {
    auto p = kUdpPacket;
    store16(p, 2, 19);
    fix_checksum(p);
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
  SECTION("bad header checksum") {
    auto p = kUdpPacket;
    p[11] ^= std::byte{1};
    REQUIRE_FALSE(Ipv4Packet::parse(p));
    p = kUdpPacket;
    p[8] = std::byte{63};  // TTL changed without fixing the checksum
    REQUIRE_FALSE(Ipv4Packet::parse(p));
  }
}

TEST_CASE("Ipv4Header emits the well-known header", "[wire]") {
  // Wikipedia's example: 192.168.0.1 -> 192.168.0.199, UDP, 115 bytes.
  Ipv4Header h;
  h.src = Ipv4Addr{192, 168, 0, 1};
  h.dst = Ipv4Addr{192, 168, 0, 199};
  h.protocol = ipproto::kUdp;
  h.payload_len = 115 - 20;
  std::vector<std::byte> out(20);
  h.emit(out);
  REQUIRE(out == hex("4500 0073 0000 4000 4011 b861 c0a80001 c0a800c7"));
}

TEST_CASE("Ipv4Header emit then parse round trip", "[wire]") {
  Ipv4Header h;
  h.src = Ipv4Addr{10, 0, 2, 2};
  h.dst = Ipv4Addr{10, 0, 2, 15};
  h.protocol = ipproto::kTcp;
  h.ttl = 7;
  h.tos = 0x10;
  h.id = 0xabcd;
  h.dont_fragment = false;
  h.payload_len = 4;
  std::vector<std::byte> out(24, std::byte{0x5a});
  h.emit(out);
  auto ip = Ipv4Packet::parse(out);
  REQUIRE(ip);
  REQUIRE(ip->src() == h.src);
  REQUIRE(ip->dst() == h.dst);
  REQUIRE(ip->protocol() == ipproto::kTcp);
  REQUIRE(ip->ttl() == 7);
  REQUIRE(ip->tos() == 0x10);
  REQUIRE(ip->id() == 0xabcd);
  REQUIRE_FALSE(ip->dont_fragment());
  REQUIRE(ip->total_len() == 24);
  REQUIRE(ip->payload().size() == 4);
}

TEST_CASE("Ipv4Packet::parse_quoted reads the start of a packet an ICMP error quotes", "[wire]") {
  // 10.0.2.15 -> 8.8.8.8 echo request of 84 bytes (header checksum 0x72bd),
  // quoted as RFC 792 asks: the header and the first 8 bytes after it.
  const auto quote = hex(
      "4500 0054 abcd 4000 4001 72bd 0a00020f 08080808"
      "0800 f7fa 1234 0001");
  REQUIRE_FALSE(Ipv4Packet::parse(quote));  // total length 84 > 28
  auto ip = Ipv4Packet::parse_quoted(quote);
  REQUIRE(ip);
  // The header reads as usual; the packet ends where the quote does.
  REQUIRE(ip->total_len() == 84);
  REQUIRE(ip->dst() == Ipv4Addr{8, 8, 8, 8});
  REQUIRE(ip->bytes().data() == quote.data());
  REQUIRE(ip->bytes().size() == quote.size());
  REQUIRE(hex("0800 f7fa 1234 0001") == std::vector<std::byte>(ip->payload().begin(), ip->payload().end()));

  // A whole packet parses as it does with parse(), padding excluded.
  auto padded = kUdpPacket;
  padded.resize(46, std::byte{0xee});
  ip = Ipv4Packet::parse_quoted(padded);
  REQUIRE(ip);
  REQUIRE(ip->bytes().size() == 33);
  REQUIRE(ip->payload().size() == 13);

  // The header checksum is not checked (the error's own checksum covers it).
  auto bad_checksum = quote;
  bad_checksum[11] ^= std::byte{1};
  REQUIRE(Ipv4Packet::parse_quoted(bad_checksum));

  // The header itself must be whole and sound.
  for (size_t n = 0; n < 20; ++n) REQUIRE_FALSE(Ipv4Packet::parse_quoted(Bytes{quote}.first(n)));
  auto p = quote;
  p[0] = std::byte{0x65};  // version 6
  REQUIRE_FALSE(Ipv4Packet::parse_quoted(p));
  p = quote;
  p[0] = std::byte{0x44};  // IHL 4
  REQUIRE_FALSE(Ipv4Packet::parse_quoted(p));
  p = quote;
  p[0] = std::byte{0x48};  // a 32-byte header in a 28-byte quote
  REQUIRE_FALSE(Ipv4Packet::parse_quoted(p));
  p = quote;
  store16(p, 2, 19);  // total length shorter than the header
  REQUIRE_FALSE(Ipv4Packet::parse_quoted(p));
}
