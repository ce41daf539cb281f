// IPv6, ICMPv6/NDP and DHCPv6 wire formats against hand-checked bytes.
//
// The captured-style frames below were built by a separate script and their
// ICMPv6 and UDP checksums confirmed by tshark ("[Checksum Status: Good]").
// Guest MAC 52:54:00:12:34:56, guest link-local fe80::5054:ff:fe12:3456.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "hex.h"
#include "ipv6_frames.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/dhcpv6.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/udp.h"

using namespace slipway::wire;

namespace {


Ipv6Addr addr(std::string_view text) {
  auto a = Ipv6Addr::parse(text);
  REQUIRE(a);
  return *a;
}

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

using slipway::test::kEchoFrame;
using slipway::test::kInfoReqFrame;
using slipway::test::kNsFrame;
using slipway::test::kRsFrame;

// The same echo behind hop-by-hop (PadN) and destination options (16 bytes).
const auto kExtPacket = hex(
    "6000000000280040 fd00000000000000505400fffe123456 fd000000000000000000000000000002"
    "3c00010400000000 3a01010c000000000000000000000000"
    "80005e2a 12340001 6162636465666768");

// A non-first fragment: offset 1480, M set, id 0xdeadbeef, next header UDP.
const auto kFragPacket = hex(
    "6000000000102c40 fd00000000000000505400fffe123456 fd000000000000000000000000000002"
    "110005c9deadbeef 3132333435363738");

Bytes ip_of(const std::vector<std::byte>& frame) { return Bytes{frame}.subspan(kEthernetHeaderLen); }

}  // namespace

TEST_CASE("Ipv6Addr text forms follow RFC 5952", "[ipv6]") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"2001:db8::1", "2001:db8::1"},
      {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
      {"2001:DB8::ABCD", "2001:db8::abcd"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},  // first of two equal runs
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},              // the longest run
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // one zero group stays
      {"2001:db8::0:1", "2001:db8::1"},
      {"::", "::"},
      {"::1", "::1"},
      {"fe80::", "fe80::"},
      {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
      {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
      {"fd00::2", "fd00::2"},
      {"ff02::1:ff00:2", "ff02::1:ff00:2"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    auto a = Ipv6Addr::parse(c.in);
    REQUIRE(a);
    REQUIRE(a->to_string() == c.out);
    REQUIRE(Ipv6Addr::parse(a->to_string()) == a);
  }
  REQUIRE(addr("2001:db8::1").octets ==
          std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  for (const char* bad : {"", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::",
                          "1:2:3:4:5:6:7::8", ":1::", "1::2:", "1:2:3:4:5:6:7:8:", "::ffff:1.2.3.4", " ::1",
                          "fe80::1%eth0"}) {
    INFO(bad);
    REQUIRE_FALSE(Ipv6Addr::parse(bad));
  }
}

TEST_CASE("Ipv6Addr classifies and derives addresses", "[ipv6]") {
  REQUIRE(Ipv6Addr{}.is_unspecified());
  REQUIRE(addr("::1").is_loopback());
  REQUIRE_FALSE(addr("::2").is_loopback());
  REQUIRE(addr("ff02::1").is_multicast());
  REQUIRE(addr("fe80::1").is_link_local());
  REQUIRE(addr("febf::1").is_link_local());
  REQUIRE_FALSE(addr("fec0::1").is_link_local());
  REQUIRE(addr("fd00::2").is_unique_local());
  REQUIRE(addr("fc00::2").is_unique_local());
  REQUIRE_FALSE(addr("fe00::2").is_unique_local());

  Ipv6Addr a = addr("fd00::5054:ff:fe12:3456");
  REQUIRE(a.in_prefix(addr("fd00::"), 64));
  REQUIRE(a.in_prefix(addr("fc00::"), 7));
  REQUIRE(a.in_prefix(addr("::"), 0));
  REQUIRE(a.in_prefix(a, 128));
  REQUIRE_FALSE(a.in_prefix(addr("fd00:0:0:1::"), 64));
  REQUIRE_FALSE(a.in_prefix(addr("fd00::5054:ff:fe12:3457"), 128));
  REQUIRE(a.in_prefix(addr("fd00::5054:ff:fe12:3457"), 127));
  REQUIRE(addr("fe80::1").in_prefix(addr("fe80::"), 10));
  REQUIRE(addr("febf::1").in_prefix(addr("fe80::"), 10));
  REQUIRE_FALSE(addr("fec0::1").in_prefix(addr("fe80::"), 10));

  REQUIRE(addr("fd00::2").solicited_node_multicast() == addr("ff02::1:ff00:2"));
  REQUIRE(addr("fe80::5054:ff:fe12:3456").solicited_node_multicast() == addr("ff02::1:ff12:3456"));
  REQUIRE(addr("ff02::1:ff12:3456").multicast_mac() == MacAddr{{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}});
  REQUIRE(Ipv6Addr::all_nodes().multicast_mac() == MacAddr{{0x33, 0x33, 0, 0, 0, 1}});
  REQUIRE(Ipv6Addr::link_local_from_mac(kGuestMac) == addr("fe80::5054:ff:fe12:3456"));
  REQUIRE(Ipv6Addr::link_local_from_mac(MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}}) ==
          addr("fe80::5055:aff:fe00:202"));
  REQUIRE(Ipv6Addr::link_local_from_mac(MacAddr{{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}}) ==
          addr("fe80::211:22ff:fe33:4455"));
}

TEST_CASE("Ipv6Packet parses a captured neighbor solicitation", "[ipv6]") {
  auto ip = Ipv6Packet::parse(ip_of(kNsFrame));
  REQUIRE(ip);
  REQUIRE(ip->traffic_class() == 0);
  REQUIRE(ip->flow_label() == 0);
  REQUIRE(ip->payload_len() == 32);
  REQUIRE(ip->next_header() == ipproto::kIcmpv6);
  REQUIRE(ip->hop_limit() == 255);
  REQUIRE(ip->src() == addr("fe80::5054:ff:fe12:3456"));
  REQUIRE(ip->dst() == addr("ff02::1:ff00:2"));
  REQUIRE(ip->header().size() == 40);
  REQUIRE(ip->payload().size() == 32);
  auto ul = ip->upper_layer();
  REQUIRE(ul);
  REQUIRE(ul->protocol == ipproto::kIcmpv6);
  REQUIRE(ul->offset == 40);
  REQUIRE(ul->data.size() == 32);
  REQUIRE_FALSE(ul->is_fragment);
}

TEST_CASE("Ipv6Packet excludes padding and refuses malformed headers", "[ipv6]") {
  auto padded = std::vector<std::byte>(ip_of(kEchoFrame).begin(), ip_of(kEchoFrame).end());
  padded.resize(padded.size() + 10, std::byte{0xee});
  auto ip = Ipv6Packet::parse(padded);
  REQUIRE(ip);
  REQUIRE(ip->bytes().size() == 56);
  REQUIRE(ip->payload().size() == 16);

  auto p = padded;
  REQUIRE_FALSE(Ipv6Packet::parse(Bytes{p}.first(39)));
  store8(p, 0, 0x45);  // version 4
  REQUIRE_FALSE(Ipv6Packet::parse(p));
  p = padded;
  store16(p, 4, 27);  // 40 + 27 > 66 bytes present
  REQUIRE_FALSE(Ipv6Packet::parse(p));
  store16(p, 4, 26);  // exactly the buffer, padding included
  REQUIRE(Ipv6Packet::parse(p));
  store16(p, 4, 0xffff);
  REQUIRE_FALSE(Ipv6Packet::parse(p));
}

TEST_CASE("Ipv6Packet::parse_quoted reads the start of a packet an ICMPv6 error quotes", "[ipv6]") {
  // The first fragment (offset 0, M set, id 0x12345678) of a 1448-byte echo
  // request from fd00::15 to 2001:db8::1, payload length 1408, quoted up to
  // 4 bytes into the echo data.
  const auto quote = hex(
      "6000000005802c40 fd000000000000000000000000000015 20010db8000000000000000000000001"
      "3a00000112345678 8000abcd 12340009 61626364");
  REQUIRE_FALSE(Ipv6Packet::parse(quote));  // 40 + 1408 > 60
  auto ip = Ipv6Packet::parse_quoted(quote);
  REQUIRE(ip);
  REQUIRE(ip->payload_len() == 1408);
  REQUIRE(ip->src() == addr("fd00::15"));
  REQUIRE(ip->dst() == addr("2001:db8::1"));
  REQUIRE(ip->bytes().size() == 60);
  auto ul = ip->upper_layer();
  REQUIRE(ul);
  REQUIRE(ul->protocol == ipproto::kIcmpv6);
  REQUIRE(ul->is_fragment);
  REQUIRE(ul->fragment_offset == 0);
  REQUIRE(ul->offset == 48);
  auto echo = Icmpv6Message::parse(ul->data);
  REQUIRE(echo);
  REQUIRE(echo->type() == icmpv6type::kEchoRequest);
  REQUIRE(echo->echo_id() == 0x1234);
  REQUIRE(echo->echo_seq() == 9);
  REQUIRE(echo->payload().size() == 4);

  // A whole packet parses as it does with parse(), padding excluded.
  auto padded = std::vector<std::byte>(ip_of(kEchoFrame).begin(), ip_of(kEchoFrame).end());
  padded.resize(padded.size() + 10, std::byte{0xee});
  ip = Ipv6Packet::parse_quoted(padded);
  REQUIRE(ip);
  REQUIRE(ip->bytes().size() == 56);

  // The fixed header must be whole and of version 6; an extension header
  // cut off by the quote fails the walk, not the parse.
  REQUIRE_FALSE(Ipv6Packet::parse_quoted(Bytes{quote}.first(39)));
  auto v4 = quote;
  store8(v4, 0, 0x45);
  REQUIRE_FALSE(Ipv6Packet::parse_quoted(v4));
  ip = Ipv6Packet::parse_quoted(Bytes{quote}.first(44));
  REQUIRE(ip);
  REQUIRE_FALSE(ip->upper_layer());
}

TEST_CASE("Ipv6Packet walks extension headers", "[ipv6]") {
  auto ip = Ipv6Packet::parse(kExtPacket);
  REQUIRE(ip);
  auto ul = ip->upper_layer();
  REQUIRE(ul);
  REQUIRE(ul->protocol == ipproto::kIcmpv6);
  REQUIRE(ul->offset == 40 + 8 + 16);
  REQUIRE(ul->data.size() == 16);
  REQUIRE_FALSE(ul->is_fragment);
  auto icmp = Icmpv6Message::parse(ul->data);
  REQUIRE(icmp);
  REQUIRE(icmp->type() == icmpv6type::kEchoRequest);
  REQUIRE(icmp->checksum_ok(ip->src(), ip->dst()));

  auto frag = Ipv6Packet::parse(kFragPacket);
  REQUIRE(frag);
  ul = frag->upper_layer();
  REQUIRE(ul);
  REQUIRE(ul->protocol == ipproto::kUdp);
  REQUIRE(ul->is_fragment);
  REQUIRE(ul->fragment_offset == 1480);
  REQUIRE(ul->more_fragments);
  REQUIRE(ul->fragment_id == 0xdeadbeef);
  REQUIRE(ul->offset == 48);
  REQUIRE(ul->data.size() == 8);

  // An atomic fragment (offset 0, M clear) is whole.
  auto atomic = kFragPacket;
  store16(atomic, 42, 0);
  ul = Ipv6Packet::parse(atomic)->upper_layer();
  REQUIRE(ul);
  REQUIRE_FALSE(ul->is_fragment);

  // No Next Header ends the walk with no data.
  auto nonext = kExtPacket;
  store8(nonext, 48, ipproto::kIpv6NoNext);
  ul = Ipv6Packet::parse(nonext)->upper_layer();
  REQUIRE(ul);
  REQUIRE(ul->protocol == ipproto::kIpv6NoNext);
}

TEST_CASE("Ipv6Packet refuses malformed extension chains", "[ipv6]") {
  SECTION("an extension header longer than the payload") {
    auto p = kExtPacket;
    store8(p, 49, 4);  // destination options claim 40 bytes, 32 remain
    REQUIRE_FALSE(Ipv6Packet::parse(p)->upper_layer());
    store8(p, 49, 0xff);
    REQUIRE_FALSE(Ipv6Packet::parse(p)->upper_layer());
  }
  SECTION("a truncated extension header") {
    auto p = kExtPacket;
    p.resize(40 + 8 + 4);  // half of the destination options header
    store16(p, 4, 12);
    REQUIRE_FALSE(Ipv6Packet::parse(p)->upper_layer());
    auto frag = kFragPacket;
    frag.resize(44);
    store16(frag, 4, 4);
    REQUIRE_FALSE(Ipv6Packet::parse(frag)->upper_layer());
  }
  SECTION("hop-by-hop anywhere but first") {
    auto p = kExtPacket;
    store8(p, 48, ipproto::kHopByHop);  // destination options -> hop-by-hop
    REQUIRE_FALSE(Ipv6Packet::parse(p)->upper_layer());
  }
  SECTION("a chain longer than the limit") {
    // n destination-options headers, each 8 bytes, then No Next Header.
    auto chain = [](size_t n) {
      std::vector<std::byte> p(40 + 8 * n);
      Ipv6Header h;
      h.next_header = ipproto::kIpv6DstOpts;
      h.payload_len = static_cast<uint16_t>(8 * n);
      h.emit(p);
      for (size_t i = 0; i < n; ++i)
        store8(p, 40 + 8 * i, i + 1 == n ? ipproto::kIpv6NoNext : ipproto::kIpv6DstOpts);
      return p;
    };
    auto ok = chain(Ipv6Packet::kMaxExtensionHeaders);
    REQUIRE(Ipv6Packet::parse(ok)->upper_layer());
    auto too_long = chain(Ipv6Packet::kMaxExtensionHeaders + 1);
    REQUIRE_FALSE(Ipv6Packet::parse(too_long)->upper_layer());
  }
  SECTION("a zero payload length with a hop-by-hop header (jumbogram)") {
    auto p = kExtPacket;
    store16(p, 4, 0);
    REQUIRE_FALSE(Ipv6Packet::parse(p)->upper_layer());
  }
}

TEST_CASE("Ipv6Header emits the fixed header", "[ipv6]") {
  Ipv6Header h;
  h.src = addr("fe80::5054:ff:fe12:3456");
  h.dst = addr("ff02::1:ff00:2");
  h.next_header = ipproto::kIcmpv6;
  h.hop_limit = 255;
  h.payload_len = 32;
  std::vector<std::byte> out(40);
  h.emit(out);
  REQUIRE(out == std::vector<std::byte>(ip_of(kNsFrame).begin(), ip_of(kNsFrame).begin() + 40));

  h.traffic_class = 0xb8;
  h.flow_label = 0xabcde;
  h.emit(out);
  REQUIRE(load32(out, 0) == 0x6b8abcde);
  auto ip = Ipv6Packet::parse(std::vector<std::byte>(out.begin(), out.end()));
  // payload_len 32 but no payload present: refused.
  REQUIRE_FALSE(ip);
}

TEST_CASE("pseudo_header_sum_v6 reproduces captured checksums", "[ipv6]") {
  for (const auto* frame : {&kNsFrame, &kRsFrame, &kEchoFrame}) {
    auto ip = Ipv6Packet::parse(ip_of(*frame));
    REQUIRE(ip);
    std::vector<std::byte> l4(ip->payload().begin(), ip->payload().end());
    uint16_t captured = load16(l4, 2);
    store16(l4, 2, 0);
    uint32_t sum = pseudo_header_sum_v6(ip->src(), ip->dst(), ipproto::kIcmpv6, static_cast<uint32_t>(l4.size()));
    REQUIRE(checksum_fold(checksum_add(l4, sum)) == captured);
  }
  auto ip = Ipv6Packet::parse(ip_of(kInfoReqFrame));
  REQUIRE(ip);
  REQUIRE(udp_v6_checksum_ok(ip->src(), ip->dst(), ip->payload()));
  auto bad = std::vector<std::byte>(ip->payload().begin(), ip->payload().end());
  store16(bad, 6, 0);  // no checksum: not allowed over IPv6
  REQUIRE_FALSE(udp_v6_checksum_ok(ip->src(), ip->dst(), bad));
  store16(bad, 6, 0x196c);
  REQUIRE_FALSE(udp_v6_checksum_ok(ip->src(), ip->dst(), bad));
  REQUIRE_FALSE(udp_v6_checksum_ok(ip->src(), ip->dst(), Bytes{bad}.first(7)));
}

TEST_CASE("Frame builders reproduce the captured frames", "[ipv6]") {
  Ipv6Addr ll = addr("fe80::5054:ff:fe12:3456");
  NeighborSolicit ns;
  ns.target = addr("fd00::2");
  ns.options.source_link_addr = kGuestMac;
  auto frame = build_ipv6_icmpv6_frame(addr("ff02::1:ff00:2").multicast_mac(), kGuestMac, ll,
                                       addr("ff02::1:ff00:2"), 255, ns.emit());
  REQUIRE(frame == kNsFrame);

  RouterSolicit rs;
  rs.options.source_link_addr = kGuestMac;
  frame = build_ipv6_icmpv6_frame(Ipv6Addr::all_routers().multicast_mac(), kGuestMac, ll, Ipv6Addr::all_routers(),
                                  255, rs.emit());
  REQUIRE(frame == kRsFrame);

  const std::string text = "abcdefgh";
  Bytes payload{reinterpret_cast<const std::byte*>(text.data()), text.size()};
  frame = build_ipv6_icmpv6_frame(MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}}, kGuestMac,
                                  addr("fd00::5054:ff:fe12:3456"), addr("fd00::2"), 64, icmpv6type::kEchoRequest,
                                  0, 0x12340001, payload);
  REQUIRE(frame == kEchoFrame);

  auto dhcp = Bytes{kInfoReqFrame}.subspan(kEthernetHeaderLen + 40 + 8);
  frame = build_ipv6_udp_frame(kAllDhcpv6Servers.multicast_mac(), kGuestMac, ll, kDhcpv6ClientPort,
                               kAllDhcpv6Servers, kDhcpv6ServerPort, dhcp, 1);
  REQUIRE(frame == kInfoReqFrame);
}

TEST_CASE("Icmpv6Message and NDP messages parse captured bytes", "[ipv6]") {
  auto ip = Ipv6Packet::parse(ip_of(kNsFrame));
  auto icmp = Icmpv6Message::parse(ip->payload());
  REQUIRE(icmp);
  REQUIRE(icmp->type() == icmpv6type::kNeighborSolicit);
  REQUIRE(icmp->code() == 0);
  REQUIRE(icmp->checksum() == 0x73a0);
  REQUIRE(icmp->checksum_ok(ip->src(), ip->dst()));
  REQUIRE_FALSE(icmp->checksum_ok(ip->src(), addr("ff02::1:ff00:3")));
  auto ns = NeighborSolicit::parse(*icmp);
  REQUIRE(ns);
  REQUIRE(ns->target == addr("fd00::2"));
  REQUIRE(ns->options.source_link_addr == kGuestMac);
  REQUIRE_FALSE(ns->options.target_link_addr);
  REQUIRE_FALSE(NeighborAdvert::parse(*icmp));  // wrong type
  REQUIRE_FALSE(RouterSolicit::parse(*icmp));

  auto rs_ip = Ipv6Packet::parse(ip_of(kRsFrame));
  auto rs = RouterSolicit::parse(*Icmpv6Message::parse(rs_ip->payload()));
  REQUIRE(rs);
  REQUIRE(rs->options.source_link_addr == kGuestMac);

  auto echo_ip = Ipv6Packet::parse(ip_of(kEchoFrame));
  auto echo = Icmpv6Message::parse(echo_ip->payload());
  REQUIRE(echo->echo_id() == 0x1234);
  REQUIRE(echo->echo_seq() == 1);
  REQUIRE(echo->payload().size() == 8);

  REQUIRE_FALSE(Icmpv6Message::parse(Bytes{ip->payload()}.first(7)));
  // Below the NS minimum of 24 bytes.
  REQUIRE_FALSE(NeighborSolicit::parse(*Icmpv6Message::parse(ip->payload().first(23))));
  // A non-zero code.
  auto p = std::vector<std::byte>(ip->payload().begin(), ip->payload().end());
  store8(p, 1, 1);
  REQUIRE_FALSE(NeighborSolicit::parse(*Icmpv6Message::parse(p)));
}

TEST_CASE("NeighborAdvert round-trips its flags", "[ipv6]") {
  NeighborAdvert na;
  na.router = true;
  na.solicited = true;
  na.override_flag = true;
  na.target = addr("fd00::2");
  na.options.target_link_addr = MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  auto bytes = na.emit();
  REQUIRE(bytes == hex("88000000 e0000000 fd000000000000000000000000000002 020152550a000202"));
  auto back = NeighborAdvert::parse(*Icmpv6Message::parse(bytes));
  REQUIRE(back);
  REQUIRE(back->router);
  REQUIRE(back->solicited);
  REQUIRE(back->override_flag);
  REQUIRE(back->target == na.target);
  REQUIRE(back->options.target_link_addr == na.options.target_link_addr);
  store8(bytes, 4, 0x20);
  back = NeighborAdvert::parse(*Icmpv6Message::parse(bytes));
  REQUIRE_FALSE(back->router);
  REQUIRE_FALSE(back->solicited);
  REQUIRE(back->override_flag);
}

TEST_CASE("RouterAdvert emits every field and option at its offset", "[ipv6]") {
  RouterAdvert ra;
  ra.cur_hop_limit = 64;
  ra.other = true;
  ra.router_lifetime = 1800;
  ra.reachable_time = 30000;
  ra.retrans_timer = 1000;
  ra.options.source_link_addr = MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  ra.options.mtu = 1500;
  ra.options.prefixes.push_back(PrefixInfo{addr("fd00::"), 64, true, true, 86400, 14400});
  ra.options.rdnss.push_back(RdnssOption{600, {addr("fd00::3"), addr("fd00::4")}});
  ra.options.dnssl.push_back(DnsslOption{600, {"example.com", "corp.example.com."}});
  auto b = ra.emit();

  // 16 fixed + SLLA 8 + MTU 8 + PIO 32 + RDNSS 40 + DNSSL 8 + 31 names padded to 32.
  REQUIRE(b.size() == 16 + 8 + 8 + 32 + 40 + 40);
  REQUIRE(load8(b, 0) == 134);
  REQUIRE(load8(b, 1) == 0);
  REQUIRE(load16(b, 2) == 0);  // the frame builder fills it
  REQUIRE(load8(b, 4) == 64);
  REQUIRE(load8(b, 5) == 0x40);  // M=0 O=1
  REQUIRE(load16(b, 6) == 1800);
  REQUIRE(load32(b, 8) == 30000);
  REQUIRE(load32(b, 12) == 1000);
  REQUIRE(std::vector<std::byte>(b.begin() + 16, b.begin() + 24) == hex("010152550a000202"));
  REQUIRE(std::vector<std::byte>(b.begin() + 24, b.begin() + 32) == hex("0501 0000 000005dc"));
  REQUIRE(std::vector<std::byte>(b.begin() + 32, b.begin() + 64) ==
          hex("0304 40 c0 00015180 00003840 00000000 fd000000000000000000000000000000"));
  REQUIRE(std::vector<std::byte>(b.begin() + 64, b.begin() + 104) ==
          hex("1905 0000 00000258 fd000000000000000000000000000003 fd000000000000000000000000000004"));
  REQUIRE(std::vector<std::byte>(b.begin() + 104, b.end()) ==
          hex("1f05 0000 00000258 076578616d706c6503636f6d00 04636f7270076578616d706c6503636f6d00 00"));

  auto back = RouterAdvert::parse(*Icmpv6Message::parse(b));
  REQUIRE(back);
  REQUIRE(back->cur_hop_limit == 64);
  REQUIRE_FALSE(back->managed);
  REQUIRE(back->other);
  REQUIRE(back->router_lifetime == 1800);
  REQUIRE(back->reachable_time == 30000);
  REQUIRE(back->retrans_timer == 1000);
  REQUIRE(back->options.source_link_addr == ra.options.source_link_addr);
  REQUIRE(back->options.mtu == 1500u);
  REQUIRE(back->options.prefixes == ra.options.prefixes);
  REQUIRE(back->options.rdnss == ra.options.rdnss);
  REQUIRE(back->options.dnssl.size() == 1);
  REQUIRE(back->options.dnssl[0].lifetime == 600);
  REQUIRE(back->options.dnssl[0].domains == std::vector<std::string>{"example.com", "corp.example.com"});
}

TEST_CASE("NdpOptions refuses malformed options", "[ipv6]") {
  auto opts = [](std::string_view h) { return NdpOptions::parse(hex(h)); };
  REQUIRE(opts(""));
  REQUIRE(opts("0101525400123456"));
  REQUIRE_FALSE(opts("0100525400123456"));          // length 0
  REQUIRE_FALSE(opts("0102525400123456"));          // runs past the end
  REQUIRE_FALSE(opts("01"));                        // a lone type byte
  REQUIRE_FALSE(opts("0102525400123456 0000000000000000"));  // Ethernet address of 16 bytes
  REQUIRE_FALSE(opts("0502000000000000 0000000000000000"));  // MTU of 16 bytes
  REQUIRE_FALSE(opts("0301 400000000000"));          // PIO of 8 bytes
  REQUIRE_FALSE(opts("0304 81c0 00015180 00003840 00000000 fd000000000000000000000000000000"));  // /129
  REQUIRE_FALSE(opts("1901 0000 00000258"));         // RDNSS with no address
  REQUIRE_FALSE(opts("1902 0000 00000258 0000000000000000"));  // RDNSS of even length
  REQUIRE_FALSE(opts("1f01 0000 00000258"));         // DNSSL with no name
  REQUIRE_FALSE(opts("1f02 0000 00000258 c000000000000000"));  // compression pointer
  REQUIRE_FALSE(opts("1f02 0000 00000258 0761626364656667"));  // name runs past the option
  // Unknown options are skipped; a nonce (14) before a valid address.
  auto o = opts("0e01 112233445566 0101525400123456");
  REQUIRE(o);
  REQUIRE(o->source_link_addr == kGuestMac);
}

TEST_CASE("DNS name lists use the uncompressed wire form", "[ipv6]") {
  std::vector<std::string> names{"example.com", "a.b.", "bad..name", "example.com"};
  auto enc = encode_dns_name_list(names);
  REQUIRE(enc == hex("076578616d706c6503636f6d00 01610162 00 076578616d706c6503636f6d00"));
  auto dec = decode_dns_name_list(enc, false);
  REQUIRE(dec);
  REQUIRE(*dec == std::vector<std::string>{"example.com", "a.b", "example.com"});
  auto padded = enc;
  padded.resize(padded.size() + 5);
  dec = decode_dns_name_list(padded, true);
  REQUIRE(dec);
  REQUIRE(dec->size() == 3);
  REQUIRE_FALSE(decode_dns_name_list(hex("0361"), false));
  REQUIRE(decode_dns_name_list(hex("0361626300"), false));
  REQUIRE_FALSE(decode_dns_name_list(hex("03616263"), false));  // no terminator
  REQUIRE_FALSE(decode_dns_name_list(hex("4061"), false));      // reserved label type
  std::vector<std::byte> long_name;
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(std::byte{63});
    long_name.insert(long_name.end(), 63, std::byte{'x'});
  }
  long_name.push_back(std::byte{0});
  REQUIRE_FALSE(decode_dns_name_list(long_name, false));  // 321 bytes > 255
}

TEST_CASE("ICMPv6 errors quote up to the minimum MTU", "[ipv6]") {
  std::vector<std::byte> big(40 + 1400);
  Ipv6Header h;
  h.src = addr("fd00::5054:ff:fe12:3456");
  h.dst = addr("2001:db8::1");
  h.next_header = ipproto::kUdp;
  h.payload_len = 1400;
  h.emit(big);
  auto offending = Ipv6Packet::parse(big);
  REQUIRE(offending);
  MacAddr gw{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  auto frame = build_ipv6_icmpv6_error_frame(kGuestMac, gw, addr("fd00::2"), icmpv6type::kDestUnreachable,
                                             icmpv6code::kPortUnreachable, *offending);
  REQUIRE(frame.size() == kEthernetHeaderLen + kIpv6MinMtu);
  auto ip = Ipv6Packet::parse(ip_of(frame));
  REQUIRE(ip);
  REQUIRE(ip->dst() == h.src);
  auto icmp = Icmpv6Message::parse(ip->payload());
  REQUIRE(icmp->type() == icmpv6type::kDestUnreachable);
  REQUIRE(icmp->code() == 4);
  REQUIRE(icmp->checksum_ok(ip->src(), ip->dst()));
  REQUIRE(std::equal(icmp->payload().begin(), icmp->payload().end(), big.begin()));

  frame = build_ipv6_icmpv6_error_frame(kGuestMac, gw, addr("fd00::2"), icmpv6type::kPacketTooBig, 0, *offending,
                                        1280);
  REQUIRE(Icmpv6Message::parse(Ipv6Packet::parse(ip_of(frame))->payload())->mtu() == 1280);

  REQUIRE(icmpv6_error_allowed(*offending, false, icmpv6type::kDestUnreachable));
  REQUIRE_FALSE(icmpv6_error_allowed(*offending, true, icmpv6type::kDestUnreachable));
  REQUIRE(icmpv6_error_allowed(*offending, true, icmpv6type::kPacketTooBig));
  // Not about an ICMPv6 error; yes about an echo request.
  auto echo = Ipv6Packet::parse(ip_of(kEchoFrame));
  REQUIRE(icmpv6_error_allowed(*echo, false, icmpv6type::kDestUnreachable));
  auto err = Ipv6Packet::parse(ip_of(frame));
  REQUIRE_FALSE(icmpv6_error_allowed(*err, false, icmpv6type::kDestUnreachable));
  // Not about packets to multicast or from ::.
  auto ns = Ipv6Packet::parse(ip_of(kNsFrame));
  REQUIRE_FALSE(icmpv6_error_allowed(*ns, false, icmpv6type::kDestUnreachable));
  auto from_unspecified = big;
  Ipv6Addr{}.store(from_unspecified, 8);
  REQUIRE_FALSE(icmpv6_error_allowed(*Ipv6Packet::parse(from_unspecified), false, icmpv6type::kDestUnreachable));
}

TEST_CASE("Dhcpv6Message parses a captured INFORMATION-REQUEST", "[ipv6]") {
  auto payload = Bytes{kInfoReqFrame}.subspan(kEthernetHeaderLen + 48);
  auto m = Dhcpv6Message::parse(payload);
  REQUIRE(m);
  REQUIRE(m->msg_type == dhcpv6msg::kInformationRequest);
  REQUIRE(m->transaction_id == 0xabcdef);
  REQUIRE(m->client_id == duid_ll(kGuestMac));
  REQUIRE(m->server_id.empty());
  REQUIRE(m->oro == std::vector<uint16_t>{dhcpv6opt::kDnsServers, dhcpv6opt::kDomainList});
  REQUIRE(m->elapsed_time == 0);
  REQUIRE_FALSE(m->rapid_commit);
  REQUIRE(m->emit() == std::vector<std::byte>(payload.begin(), payload.end()));
}

TEST_CASE("Dhcpv6Message round-trips a server reply", "[ipv6]") {
  Dhcpv6Message m;
  m.msg_type = dhcpv6msg::kReply;
  m.transaction_id = 0x123456;
  m.client_id = duid_ll(kGuestMac);
  m.server_id = duid_ll(MacAddr{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}});
  m.ia_na.push_back(Dhcpv6IaNa{7, 0, 0, Dhcpv6Status{dhcpv6status::kNoAddrsAvail, "none"}});
  m.status = Dhcpv6Status{dhcpv6status::kSuccess, ""};
  m.rapid_commit = true;
  m.dns_servers = {addr("fd00::3")};
  m.domain_list = {"example.com"};
  auto b = m.emit();
  REQUIRE(std::vector<std::byte>(b.begin(), b.begin() + 4) == hex("07123456"));
  REQUIRE(std::vector<std::byte>(b.begin() + 32, b.begin() + 58) ==
          hex("0003 0016 00000007 00000000 00000000 000d 0006 0002 6e6f6e65"));
  auto back = Dhcpv6Message::parse(b);
  REQUIRE(back);
  REQUIRE(back->msg_type == m.msg_type);
  REQUIRE(back->transaction_id == m.transaction_id);
  REQUIRE(back->client_id == m.client_id);
  REQUIRE(back->server_id == m.server_id);
  REQUIRE(back->ia_na == m.ia_na);
  REQUIRE(back->status == m.status);
  REQUIRE(back->rapid_commit);
  REQUIRE(back->dns_servers == m.dns_servers);
  REQUIRE(back->domain_list == m.domain_list);
}

TEST_CASE("Dhcpv6Message checks every option length", "[ipv6]") {
  auto msg = [](std::string_view options) {
    auto b = hex("0b000001");
    auto o = hex(options);
    b.insert(b.end(), o.begin(), o.end());
    return Dhcpv6Message::parse(b);
  };
  REQUIRE(msg(""));
  REQUIRE_FALSE(Dhcpv6Message::parse(hex("0b0000")));
  REQUIRE_FALSE(msg("0001"));                        // truncated option header
  REQUIRE_FALSE(msg("0001 0004 0003"));              // runs past the end
  REQUIRE_FALSE(msg("0001 0001 00"));                // DUID too short
  REQUIRE_FALSE(msg("0001 0002 0003 0001 0002 0003"));  // two CLIENTIDs
  REQUIRE_FALSE(msg("0006 0003 001700"));            // odd ORO
  REQUIRE_FALSE(msg("0008 0001 00"));                // ELAPSED_TIME of 1
  REQUIRE_FALSE(msg("000e 0001 00"));                // RAPID_COMMIT with data
  REQUIRE_FALSE(msg("000d 0001 00"));                // STATUS_CODE of 1
  REQUIRE_FALSE(msg("0017 0004 fd000000"));          // DNS_SERVERS of 4
  REQUIRE_FALSE(msg("0018 0002 0361"));              // DOMAIN_LIST label past the end
  REQUIRE_FALSE(msg("0003 0008 0000000100000000"));  // IA_NA shorter than 12
  REQUIRE_FALSE(msg("0003 0010 00000001 00000000 00000000 000d0004"));  // IA sub-option past the end
  REQUIRE(msg("0003 000c 00000001 00000000 00000000"));
  REQUIRE(msg("1234 0002 abcd"));  // unknown: skipped
  auto long_duid = hex("0b000001 0001 0083");  // a 131-byte DUID
  long_duid.resize(long_duid.size() + 131);
  REQUIRE_FALSE(Dhcpv6Message::parse(long_duid));
  REQUIRE_FALSE(Dhcpv6Message::parse(hex("0c000000")));  // RELAY-FORW has another layout
}
