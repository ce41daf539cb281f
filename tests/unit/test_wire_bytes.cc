// Byte-order loads and stores, address text forms and the Internet checksum.
#include <catch2/catch.hpp>

#include <vector>

#include "hex.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/checksum.h"

using namespace slipway::wire;

TEST_CASE("loads and stores put the most or least significant byte first", "[wire]") {
  const auto b = hex("01 02 03 04 05 06 07 08");
  REQUIRE(load8(b, 7) == 0x08);
  REQUIRE(load16(b, 0) == 0x0102);
  REQUIRE(load32(b, 1) == 0x02030405u);
  REQUIRE(load_le16(b, 0) == 0x0201);
  REQUIRE(load_le32(b, 1) == 0x05040302u);
  REQUIRE(load_le64(b, 0) == 0x0807060504030201ull);

  std::vector<std::byte> out(8);
  store16(out, 0, 0x0102);
  store32(out, 2, 0x03040506u);
  store8(out, 6, 0x07);
  REQUIRE(out == hex("01 02 03 04 05 06 07 00"));
  store_le16(out, 0, 0x0102);
  store_le32(out, 2, 0x03040506u);
  REQUIRE(out == hex("02 01 06 05 04 03 07 00"));
  store_le64(out, 0, 0x8877665544332211ull);
  REQUIRE(out == hex("11 22 33 44 55 66 77 88"));
  REQUIRE(load_le64(out, 0) == 0x8877665544332211ull);
}

TEST_CASE("octet arrays and grow", "[wire]") {
  const auto b = hex("aa 52 54 00 12 34 56 bb");
  REQUIRE(load_octets<6>(b, 1) == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
  REQUIRE(MacAddr::load(b, 1) == MacAddr{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}});
  std::vector<std::byte> out(2);
  store_octets(out, 0, std::array<uint8_t, 2>{0xde, 0xad});
  MacAddr::broadcast().store(grow(out, 6), 0);
  store16(grow(out, 2), 0, 0xbeef);
  REQUIRE(out == hex("de ad ff ff ff ff ff ff be ef"));
  REQUIRE(grow(out, 0).empty());
  REQUIRE(out.size() == 10);
}

TEST_CASE("hex_digit", "[wire]") {
  REQUIRE(hex_digit('0') == 0);
  REQUIRE(hex_digit('9') == 9);
  REQUIRE(hex_digit('a') == 10);
  REQUIRE(hex_digit('F') == 15);
  for (char c : {'g', 'G', ':', '/', ' ', '\0'}) REQUIRE(hex_digit(c) == -1);
}

TEST_CASE("Ipv4Addr parses and prints dotted quads", "[wire]") {
  REQUIRE(Ipv4Addr::parse("10.0.2.15") == Ipv4Addr{10, 0, 2, 15});
  REQUIRE(Ipv4Addr::parse("10.0.2.15")->value == 0x0a00020fu);
  REQUIRE(Ipv4Addr::parse("0.0.0.0") == Ipv4Addr{});
  REQUIRE(Ipv4Addr::parse("255.255.255.255") == Ipv4Addr{0xffffffffu});
  REQUIRE(Ipv4Addr{192, 168, 100, 1}.to_string() == "192.168.100.1");
  REQUIRE(Ipv4Addr{}.to_string() == "0.0.0.0");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "a.b.c.d",
                          "1.2.3.1000", "01.2.3.4", "1.2.3.-4", "1.2.3.4."}) {
    INFO(bad);
    REQUIRE_FALSE(Ipv4Addr::parse(bad));
  }
}

TEST_CASE("MacAddr parses and prints colon form", "[wire]") {
  auto mac = MacAddr::parse("52:54:00:AB:cd:0F");
  REQUIRE(mac);
  REQUIRE(mac->octets == std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f});
  REQUIRE(mac->to_string() == "52:54:00:ab:cd:0f");
  REQUIRE(MacAddr::broadcast().to_string() == "ff:ff:ff:ff:ff:ff");
  for (const char* bad : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:0f:", "52-54-00-ab-cd-0f", "52:54:00:ab:cd:0g",
                          "5:254:00:ab:cd:0f", "52:54:00:ab:cd:0f0"}) {
    INFO(bad);
    REQUIRE_FALSE(MacAddr::parse(bad));
  }
}

TEST_CASE("checksum of the RFC 1071 example and of an IPv4 header", "[wire]") {
  // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (complement 0x220d).
  auto data = hex("0001f203f4f5f6f7");
  REQUIRE(checksum_add(data) == 0xddf2);
  REQUIRE(checksum_fold(checksum_add(data)) == 0x220d);
  // Chaining even-length pieces gives the same sum.
  REQUIRE(checksum_add(Bytes{data}.subspan(4), checksum_add(Bytes{data}.first(4))) == 0xddf2);
  // Odd length: the last byte is the high half of a word.
  REQUIRE(checksum_add(hex("0001f2")) == 0xf201);
  // Well-known header (Wikipedia "IPv4 header checksum"): checksum b861.
  auto header = hex("45000073000040004011 0000 c0a80001c0a800c7");
  REQUIRE(checksum_fold(checksum_add(header)) == 0xb861);
  header[10] = std::byte{0xb8};
  header[11] = std::byte{0x61};
  REQUIRE(checksum_fold(checksum_add(header)) == 0);
}

TEST_CASE("checksum_add does not overflow on long input", "[wire]") {
  std::vector<std::byte> ones(200000, std::byte{0xff});
  REQUIRE(checksum_fold(checksum_add(ones)) == 0);
  REQUIRE(checksum_fold(checksum_add(ones, checksum_add(ones))) == 0);
}

TEST_CASE("pseudo header sum", "[wire]") {
  // 10.0.2.15 -> 10.0.2.3, UDP, length 13: 0a00+020f+0a00+0203+0011+000d
  REQUIRE(pseudo_header_sum_v4(Ipv4Addr{10, 0, 2, 15}, Ipv4Addr{10, 0, 2, 3}, 17, 13) ==
          0x0a00 + 0x020f + 0x0a00 + 0x0203 + 0x11 + 0x0d);
}
