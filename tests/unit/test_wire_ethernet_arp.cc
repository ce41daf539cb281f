// Ethernet header and ARP against a captured request.
#include <catch2/catch.hpp>

#include <vector>

#include "hex.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"

using namespace slipway::wire;

namespace {

// "Who has 24.166.173.159? Tell 24.166.172.1" (Wireshark sample arp-storm),
// with the 18 bytes of minimum-frame padding.
const auto kArpRequestFrame = hex(
    "ffffffffffff 00070daff454 0806"
    "0001 0800 06 04 0001 00070daff454 18a6ac01 000000000000 18a6ad9f"
    "000000000000000000000000000000000000");
}  // namespace

TEST_CASE("Ethernet parses a captured ARP frame", "[wire]") {
  auto eth = EthernetFrame::parse(kArpRequestFrame);
  REQUIRE(eth);
  REQUIRE(eth->dst() == MacAddr::broadcast());
  REQUIRE(eth->src() == *MacAddr::parse("00:07:0d:af:f4:54"));
  REQUIRE(eth->ethertype() == ethertype::kArp);
  REQUIRE(eth->payload().size() == kArpRequestFrame.size() - 14);
  REQUIRE(eth->bytes().size() == kArpRequestFrame.size());
}

TEST_CASE("Ethernet rejects a short frame and emits headers", "[wire]") {
  REQUIRE_FALSE(EthernetFrame::parse(Bytes{kArpRequestFrame}.first(13)));
  REQUIRE(EthernetFrame::parse(Bytes{kArpRequestFrame}.first(14))->payload().empty());
  std::vector<std::byte> out(14);
  emit_ethernet_header(out, MacAddr::broadcast(), *MacAddr::parse("00:07:0d:af:f4:54"), ethertype::kArp);
  REQUIRE(out == std::vector<std::byte>(kArpRequestFrame.begin(), kArpRequestFrame.begin() + 14));
}

TEST_CASE("ARP parses a captured request", "[wire]") {
  auto arp = ArpPacket::parse(Bytes{kArpRequestFrame}.subspan(14));
  REQUIRE(arp);
  REQUIRE(arp->op == ArpPacket::kRequest);
  REQUIRE(arp->sender_mac == *MacAddr::parse("00:07:0d:af:f4:54"));
  REQUIRE(arp->sender_ip == Ipv4Addr{24, 166, 172, 1});
  REQUIRE(arp->target_mac == MacAddr{});
  REQUIRE(arp->target_ip == Ipv4Addr{24, 166, 173, 159});

  std::vector<std::byte> out(ArpPacket::kLen);
  arp->emit(out);
  REQUIRE(out == std::vector<std::byte>(kArpRequestFrame.begin() + 14, kArpRequestFrame.begin() + 42));
}

TEST_CASE("ARP rejects truncated and non-Ethernet/IPv4 packets", "[wire]") {
  Bytes body = Bytes{kArpRequestFrame}.subspan(14, 28);
  REQUIRE(ArpPacket::parse(body));
  REQUIRE_FALSE(ArpPacket::parse(body.first(27)));
  REQUIRE_FALSE(ArpPacket::parse({}));
  for (size_t field : {1u, 2u, 4u, 5u}) {  // htype, ptype, hlen, plen
    auto bad = std::vector<std::byte>(body.begin(), body.end());
    bad[field] ^= std::byte{0x01};
    INFO(field);
    REQUIRE_FALSE(ArpPacket::parse(bad));
  }
}

TEST_CASE("build_arp_frame builds a reply", "[wire]") {
  MacAddr gw = *MacAddr::parse("52:55:0a:00:02:02");
  MacAddr guest = *MacAddr::parse("52:54:00:12:34:56");
  ArpPacket reply{ArpPacket::kReply, gw, Ipv4Addr{10, 0, 2, 2}, guest, Ipv4Addr{10, 0, 2, 15}};
  auto frame = build_arp_frame(guest, gw, reply);
  REQUIRE(frame == hex("525400123456 52550a000202 0806 0001 0800 0604 0002"
                       "52550a000202 0a000202 525400123456 0a00020f"));
  auto eth = EthernetFrame::parse(frame);
  REQUIRE(eth);
  REQUIRE(ArpPacket::parse(eth->payload()) == reply);
}
