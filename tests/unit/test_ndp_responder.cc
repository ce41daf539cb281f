// NDP responder scenarios: whole Ethernet frames in, whole frames out.
//
// The input frames and the expected replies below were checked with tshark
// (every ICMPv6 and UDP checksum "[correct]", every field decoded as
// intended). Guest MAC 52:54:00:12:34:56, guest link-local
// fe80::5054:ff:fe12:3456; gateway MAC 52:55:0a:00:02:02, gateway
// link-local fe80::5055:aff:fe00:202; search domains example.com and lan.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "hex.h"
#include "ipv6_frames.h"
#include "netstack/gateway/ndp_responder.h"
#include "netstack/wire/dhcpv6.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/udp.h"

using namespace slipway;
using namespace std::chrono_literals;
using gateway::Clock;
using gateway::NdpResponder;
using gateway::NdpResponderConfig;
using wire::Bytes;
using wire::Dhcpv6Message;
using wire::Icmpv6Message;
using wire::Ipv6Addr;
using wire::Ipv6Packet;
using wire::MacAddr;
namespace icmpv6type = wire::icmpv6type;
namespace dhcpv6msg = wire::dhcpv6msg;
namespace dhcpv6opt = wire::dhcpv6opt;
namespace dhcpv6status = wire::dhcpv6status;

namespace {


Ipv6Addr addr(std::string_view text) { return *Ipv6Addr::parse(text); }

const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const MacAddr kGatewayMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
const Ipv6Addr kGuestLl = addr("fe80::5054:ff:fe12:3456");
const Ipv6Addr kGuestUla = addr("fd00::5054:ff:fe12:3456");
const Ipv6Addr kGatewayLl = addr("fe80::5055:aff:fe00:202");
const Ipv6Addr kGatewayUla = addr("fd00::2");
const Ipv6Addr kDns = addr("fd00::3");
const Clock::time_point t0 = Clock::time_point{} + 1000h;

// Inputs (ipv6_frames.h; test_wire_ipv6.cc dissects them).
using test::kEchoFrame;
using test::kInfoReqFrame;
using test::kNsFrame;
using test::kRsFrame;

// Expected replies.
const auto kNaReply = hex(
    "525400123456 52550a000202 86dd"
    "6000000000203aff fd000000000000000000000000000002 fe80000000000000505400fffe123456"
    "8800bb08 e0000000 fd000000000000000000000000000002 020152550a000202");
const std::string kRaBody =
    "86004691 40400708 00000000 00000000"
    " 010152550a000202"
    " 0501 0000 0000fff0"
    " 0304 40c0 00015180 00003840 00000000 fd000000000000000000000000000000"
    " 1903 0000 00000258 fd000000000000000000000000000003"
    " 1f04 0000 00000258 076578616d706c6503636f6d00 036c616e00 000000000000";
const auto kRaReply = hex(
    "525400123456 52550a000202 86dd"
    "6000000000783aff fe8000000000000050550afffe000202 fe80000000000000505400fffe123456" + kRaBody);
const auto kUnsolicitedRa = hex(
    "333300000001 52550a000202 86dd"
    "6000000000783aff fe8000000000000050550afffe000202 ff020000000000000000000000000001"
    "8600c9ca 40400708 00000000 00000000"
    " 010152550a000202"
    " 0501 0000 0000fff0"
    " 0304 40c0 00015180 00003840 00000000 fd000000000000000000000000000000"
    " 1903 0000 00000258 fd000000000000000000000000000003"
    " 1f04 0000 00000258 076578616d706c6503636f6d00 036c616e00 000000000000");
const auto kEchoReply = hex(
    "525400123456 52550a000202 86dd"
    "6000000000103a40 fd000000000000000000000000000002 fd00000000000000505400fffe123456"
    "81005d2a 12340001 6162636465666768");
const auto kInfoReply = hex(
    "525400123456 52550a000202 86dd"
    "6000000000521140 fe8000000000000050550afffe000202 fe80000000000000505400fffe123456"
    "02230222 0052bffb"
    "07abcdef 0001000a00030001525400123456 0002000a0003000152550a000202"
    " 00170010 fd000000000000000000000000000003"
    " 00180012 076578616d706c6503636f6d00 036c616e00");

NdpResponderConfig test_config() {
  NdpResponderConfig c;
  c.search_domains = {"example.com", "lan"};
  return c;
}

// An ICMPv6 or UDP checksum check written out here, independent of
// checksum.h: the ones-complement sum of the pseudo-header and message.
bool ref_l4_checksum_ok(const std::vector<std::byte>& frame) {
  auto u8 = [&](size_t i) { return static_cast<uint32_t>(frame.at(i)); };
  const size_t ip = 14;
  uint32_t len = (u8(ip + 4) << 8) | u8(ip + 5);
  uint64_t sum = 0;
  for (size_t i = ip + 8; i < ip + 40; i += 2) sum += (u8(i) << 8) | u8(i + 1);
  sum += len + u8(ip + 6);
  for (size_t i = 0; i < len; i += 2) {
    uint32_t hi = u8(ip + 40 + i);
    uint32_t lo = i + 1 < len ? u8(ip + 40 + i + 1) : 0;
    sum += (hi << 8) | lo;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

struct Parsed {
  wire::EthernetFrame eth;
  Ipv6Packet ip;
};
Parsed parse_frame(const std::vector<std::byte>& frame) {
  REQUIRE(ref_l4_checksum_ok(frame));
  auto eth = wire::EthernetFrame::parse(frame);
  REQUIRE(eth);
  REQUIRE(eth->ethertype() == wire::ethertype::kIpv6);
  REQUIRE(eth->src() == kGatewayMac);
  auto ip = Ipv6Packet::parse(eth->payload());
  REQUIRE(ip);
  return Parsed{*eth, *ip};
}

// A guest ICMPv6 frame around `message` (checksum filled in).
std::vector<std::byte> guest_icmp(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t hop_limit,
                                  const std::vector<std::byte>& message, MacAddr eth_dst = kGatewayMac) {
  return wire::build_ipv6_icmpv6_frame(eth_dst, kGuestMac, src, dst, hop_limit, message);
}

std::vector<std::byte> guest_dhcp(const Dhcpv6Message& m, const Ipv6Addr& dst = wire::kAllDhcpv6Servers) {
  return wire::build_ipv6_udp_frame(dst.multicast_mac(), kGuestMac, kGuestLl, wire::kDhcpv6ClientPort, dst,
                                    wire::kDhcpv6ServerPort, m.emit(), 1);
}

Dhcpv6Message parse_dhcp_reply(const std::vector<std::byte>& frame) {
  auto p = parse_frame(frame);
  REQUIRE(p.ip.next_header() == wire::ipproto::kUdp);
  auto udp = wire::UdpDatagram::parse(p.ip.payload());
  REQUIRE(udp);
  REQUIRE(udp->src_port() == wire::kDhcpv6ServerPort);
  REQUIRE(udp->dst_port() == wire::kDhcpv6ClientPort);
  auto m = Dhcpv6Message::parse(udp->payload());
  REQUIRE(m);
  return *m;
}

}  // namespace

TEST_CASE("NS for the gateway address gets a solicited NA", "[ndp]") {
  NdpResponder r(test_config());
  auto out = r.handle(kNsFrame, t0);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0] == kNaReply);
  auto p = parse_frame(out[0]);
  REQUIRE(p.eth.dst() == kGuestMac);
  REQUIRE(p.ip.hop_limit() == 255);
  REQUIRE(p.ip.src() == kGatewayUla);
  REQUIRE(p.ip.dst() == kGuestLl);
  auto na = wire::NeighborAdvert::parse(*Icmpv6Message::parse(p.ip.payload()));
  REQUIRE(na);
  REQUIRE(na->router);
  REQUIRE(na->solicited);
  REQUIRE(na->override_flag);
  REQUIRE(na->target == kGatewayUla);
  REQUIRE(na->options.target_link_addr == kGatewayMac);
  REQUIRE(r.stats().neighbor_solicits == 1);
  REQUIRE(r.stats().neighbor_adverts_sent == 1);
}

TEST_CASE("NS for each gateway address, multicast or unicast", "[ndp]") {
  NdpResponder r(test_config());
  REQUIRE(r.link_local() == kGatewayLl);
  for (const Ipv6Addr& target : {kGatewayLl, kGatewayUla, kDns}) {
    INFO(target.to_string());
    wire::NeighborSolicit ns;
    ns.target = target;
    ns.options.source_link_addr = kGuestMac;
    Ipv6Addr group = target.solicited_node_multicast();
    auto out = r.handle(guest_icmp(kGuestLl, group, 255, ns.emit(), group.multicast_mac()), t0);
    REQUIRE(out.size() == 1);
    auto p = parse_frame(out[0]);
    REQUIRE(p.ip.src() == target);
    auto na = wire::NeighborAdvert::parse(*Icmpv6Message::parse(p.ip.payload()));
    REQUIRE(na->target == target);

    // NUD: unicast, no link-layer address option; the reply goes to the
    // frame's source MAC.
    ns.options.source_link_addr.reset();
    out = r.handle(guest_icmp(kGuestUla, target, 255, ns.emit()), t0);
    REQUIRE(out.size() == 1);
    p = parse_frame(out[0]);
    REQUIRE(p.eth.dst() == kGuestMac);
    REQUIRE(p.ip.dst() == kGuestUla);
  }
  REQUIRE(r.stats().neighbor_adverts_sent == 6);
}

TEST_CASE("proxy_neighbors answers for other hosts on the link, not for the guest itself", "[ndp]") {
  auto c = test_config();
  auto other = addr("fd00::77");
  wire::NeighborSolicit ns;
  ns.target = other;
  ns.options.source_link_addr = kGuestMac;
  Ipv6Addr group = other.solicited_node_multicast();
  auto frame = guest_icmp(kGuestUla, group, 255, ns.emit(), group.multicast_mac());
  {
    NdpResponder plain(c);
    REQUIRE(plain.handle(frame, t0).empty());
  }
  c.proxy_neighbors = true;
  NdpResponder r(c);
  auto out = r.handle(frame, t0);
  REQUIRE(out.size() == 1);
  auto p = parse_frame(out[0]);
  REQUIRE(p.ip.src() == other);
  REQUIRE(p.ip.dst() == kGuestUla);
  auto na = wire::NeighborAdvert::parse(*Icmpv6Message::parse(p.ip.payload()));
  REQUIRE(na->target == other);
  REQUIRE_FALSE(na->router);
  REQUIRE(na->solicited);
  REQUIRE(na->options.target_link_addr == kGatewayMac);
  // Not for the sender's own address, a DAD probe, or a link-local target.
  ns.target = kGuestUla;
  group = kGuestUla.solicited_node_multicast();
  REQUIRE(r.handle(guest_icmp(kGuestUla, group, 255, ns.emit(), group.multicast_mac()), t0).empty());
  ns.options.source_link_addr.reset();
  REQUIRE(r.handle(guest_icmp(Ipv6Addr{}, group, 255, ns.emit(), group.multicast_mac()), t0).empty());
  ns.target = addr("fe80::77");
  ns.options.source_link_addr = kGuestMac;
  group = ns.target.solicited_node_multicast();
  REQUIRE(r.handle(guest_icmp(kGuestUla, group, 255, ns.emit(), group.multicast_mac()), t0).empty());
}

TEST_CASE("DAD for a gateway address is answered to all nodes", "[ndp]") {
  NdpResponder r(test_config());
  wire::NeighborSolicit ns;
  ns.target = kGatewayUla;
  Ipv6Addr group = kGatewayUla.solicited_node_multicast();
  auto out = r.handle(guest_icmp(Ipv6Addr{}, group, 255, ns.emit(), group.multicast_mac()), t0);
  REQUIRE(out.size() == 1);
  auto p = parse_frame(out[0]);
  REQUIRE(p.eth.dst() == MacAddr{{0x33, 0x33, 0, 0, 0, 1}});
  REQUIRE(p.ip.dst() == Ipv6Addr::all_nodes());
  auto na = wire::NeighborAdvert::parse(*Icmpv6Message::parse(p.ip.payload()));
  REQUIRE_FALSE(na->solicited);
  REQUIRE(na->override_flag);

  // RFC 4861 §7.1.1: a DAD probe carries no source link-layer address and
  // goes to the solicited-node group.
  ns.options.source_link_addr = kGuestMac;
  REQUIRE(r.handle(guest_icmp(Ipv6Addr{}, group, 255, ns.emit(), group.multicast_mac()), t0).empty());
  ns.options.source_link_addr.reset();
  REQUIRE(r.handle(guest_icmp(Ipv6Addr{}, Ipv6Addr::all_nodes(), 255, ns.emit(), group.multicast_mac()), t0)
              .empty());
  REQUIRE(r.stats().ndp_invalid == 2);

  // The guest's DAD for its own address is none of our business.
  ns.target = kGuestUla;
  group = kGuestUla.solicited_node_multicast();
  REQUIRE(r.handle(guest_icmp(Ipv6Addr{}, group, 255, ns.emit(), group.multicast_mac()), t0).empty());
  REQUIRE(r.stats().neighbor_adverts_sent == 1);
}

TEST_CASE("Invalid NDP messages are dropped and counted", "[ndp]") {
  NdpResponder r(test_config());
  SECTION("hop limit other than 255") {
    for (uint8_t hop : {254, 64, 1, 0}) {
      auto f = kNsFrame;
      wire::store8(f, 14 + 7, hop);  // not covered by the checksum
      REQUIRE(r.handle(f, t0).empty());
      auto rs = kRsFrame;
      wire::store8(rs, 14 + 7, hop);
      REQUIRE(r.handle(rs, t0).empty());
    }
    REQUIRE(r.stats().ndp_invalid == 8);
  }
  SECTION("bad checksum") {
    auto f = kNsFrame;
    wire::store16(f, 14 + 40 + 2, 0x73a1);
    REQUIRE(r.handle(f, t0).empty());
    REQUIRE(r.stats().bad_checksum == 1);
  }
  SECTION("non-zero code, short message, bad options, multicast target") {
    wire::NeighborSolicit ns;
    ns.target = kGatewayUla;
    Ipv6Addr group = kGatewayUla.solicited_node_multicast();
    auto msg = ns.emit();
    wire::store8(msg, 1, 1);
    REQUIRE(r.handle(guest_icmp(kGuestLl, group, 255, msg), t0).empty());
    msg = ns.emit();
    msg.resize(20);
    REQUIRE(r.handle(guest_icmp(kGuestLl, group, 255, msg), t0).empty());
    msg = ns.emit();
    for (auto b : hex("0100525400123456")) msg.push_back(b);  // option length 0
    REQUIRE(r.handle(guest_icmp(kGuestLl, group, 255, msg), t0).empty());
    msg = ns.emit();
    for (auto b : hex("0102525400123456")) msg.push_back(b);  // runs past the end
    REQUIRE(r.handle(guest_icmp(kGuestLl, group, 255, msg), t0).empty());
    ns.target = Ipv6Addr::all_nodes();
    REQUIRE(r.handle(guest_icmp(kGuestLl, group, 255, ns.emit()), t0).empty());
    REQUIRE(r.stats().ndp_invalid == 5);
  }
  SECTION("RS from :: with a link-layer address") {
    wire::RouterSolicit rs;
    rs.options.source_link_addr = kGuestMac;
    REQUIRE(r.handle(guest_icmp(Ipv6Addr{}, Ipv6Addr::all_routers(), 255, rs.emit()), t0).empty());
    REQUIRE(r.stats().ndp_invalid == 1);
  }
  REQUIRE(r.stats().neighbor_adverts_sent == 0);
  REQUIRE(r.stats().router_adverts_sent == 0);
}

TEST_CASE("RS gets an RA with every option", "[ndp]") {
  NdpResponder r(test_config());
  auto out = r.handle(kRsFrame, t0);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0] == kRaReply);
  auto p = parse_frame(out[0]);
  REQUIRE(p.eth.dst() == kGuestMac);
  REQUIRE(p.ip.src() == kGatewayLl);
  REQUIRE(p.ip.dst() == kGuestLl);
  REQUIRE(p.ip.hop_limit() == 255);
  auto ra = wire::RouterAdvert::parse(*Icmpv6Message::parse(p.ip.payload()));
  REQUIRE(ra);
  REQUIRE(ra->cur_hop_limit == 64);
  REQUIRE_FALSE(ra->managed);
  REQUIRE(ra->other);
  REQUIRE(ra->router_lifetime == 1800);
  REQUIRE(ra->reachable_time == 0);
  REQUIRE(ra->retrans_timer == 0);
  REQUIRE(ra->options.source_link_addr == kGatewayMac);
  REQUIRE(ra->options.mtu == 65520u);
  REQUIRE(ra->options.prefixes.size() == 1);
  const auto& pi = ra->options.prefixes[0];
  REQUIRE(pi.prefix == addr("fd00::"));
  REQUIRE(pi.prefix_len == 64);
  REQUIRE(pi.on_link);
  REQUIRE(pi.autonomous);
  REQUIRE(pi.valid_lifetime == 86400);
  REQUIRE(pi.preferred_lifetime == 14400);
  REQUIRE(ra->options.rdnss.size() == 1);
  REQUIRE(ra->options.rdnss[0].lifetime == 600);
  REQUIRE(ra->options.rdnss[0].servers == std::vector<Ipv6Addr>{kDns});
  REQUIRE(ra->options.dnssl.size() == 1);
  REQUIRE(ra->options.dnssl[0].lifetime == 600);
  REQUIRE(ra->options.dnssl[0].domains == std::vector<std::string>{"example.com", "lan"});
  REQUIRE(r.stats().router_solicits == 1);
  REQUIRE(r.stats().router_adverts_sent == 1);

  // No search domains: no DNSSL.
  NdpResponder plain{NdpResponderConfig{}};
  out = plain.handle(kRsFrame, t0);
  ra = wire::RouterAdvert::parse(*Icmpv6Message::parse(parse_frame(out.at(0)).ip.payload()));
  REQUIRE(ra->options.dnssl.empty());
  REQUIRE(ra->options.rdnss.size() == 1);
}

TEST_CASE("RS from :: gets a rate-limited multicast RA", "[ndp]") {
  NdpResponder r(test_config());
  wire::RouterSolicit rs;
  auto frame = guest_icmp(Ipv6Addr{}, Ipv6Addr::all_routers(), 255, rs.emit(),
                          Ipv6Addr::all_routers().multicast_mac());
  auto out = r.handle(frame, t0);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0] == kUnsolicitedRa);
  REQUIRE(r.handle(frame, t0 + 2s).empty());
  REQUIRE(r.stats().rs_rate_limited == 1);
  REQUIRE(r.handle(frame, t0 + 3s).size() == 1);
  // Unicast answers are not limited.
  REQUIRE(r.handle(kRsFrame, t0 + 3s).size() == 1);
  REQUIRE(r.stats().router_adverts_sent == 3);
}

TEST_CASE("unsolicited_ra goes to all nodes from the link-local address", "[ndp]") {
  NdpResponder r(test_config());
  auto ra = r.unsolicited_ra();
  REQUIRE(ra == kUnsolicitedRa);
  auto p = parse_frame(ra);
  REQUIRE(p.eth.dst() == MacAddr{{0x33, 0x33, 0, 0, 0, 1}});
  REQUIRE(p.ip.src() == kGatewayLl);
  REQUIRE(p.ip.dst() == Ipv6Addr::all_nodes());
}

TEST_CASE("Echo requests to gateway addresses are answered", "[ndp]") {
  NdpResponder r(test_config());
  auto out = r.handle(kEchoFrame, t0);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0] == kEchoReply);

  const std::vector<std::byte> data(100, std::byte{0x5a});
  for (const Ipv6Addr& dst : {kDns, kGatewayLl}) {
    auto req = wire::build_ipv6_icmpv6_frame(kGatewayMac, kGuestMac, kGuestUla, dst, 64, icmpv6type::kEchoRequest,
                                             0, 0xbeef0007, data);
    out = r.handle(req, t0);
    REQUIRE(out.size() == 1);
    auto p = parse_frame(out[0]);
    REQUIRE(p.ip.src() == dst);
    REQUIRE(p.ip.dst() == kGuestUla);
    auto icmp = Icmpv6Message::parse(p.ip.payload());
    REQUIRE(icmp->type() == icmpv6type::kEchoReply);
    REQUIRE(icmp->echo_id() == 0xbeef);
    REQUIRE(icmp->echo_seq() == 7);
    REQUIRE(std::equal(icmp->payload().begin(), icmp->payload().end(), data.begin(), data.end()));
  }
  // Not to other hosts or to all nodes; never with a bad checksum.
  auto other = wire::build_ipv6_icmpv6_frame(kGatewayMac, kGuestMac, kGuestUla, addr("2001:db8::1"), 64,
                                             icmpv6type::kEchoRequest, 0, 1, data);
  REQUIRE(r.handle(other, t0).empty());
  auto multi = wire::build_ipv6_icmpv6_frame(Ipv6Addr::all_nodes().multicast_mac(), kGuestMac, kGuestUla,
                                             Ipv6Addr::all_nodes(), 64, icmpv6type::kEchoRequest, 0, 1, data);
  REQUIRE(r.handle(multi, t0).empty());
  auto bad = kEchoFrame;
  wire::store8(bad, bad.size() - 1, 0x69);
  REQUIRE(r.handle(bad, t0).empty());
  REQUIRE(r.stats().echo_requests == 3);
  REQUIRE(r.stats().bad_checksum == 1);
  REQUIRE(r.stats().ignored == 2);
}

TEST_CASE("DHCPv6 INFORMATION-REQUEST gets DNS and the search list", "[ndp]") {
  NdpResponder r(test_config());
  auto out = r.handle(kInfoReqFrame, t0);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0] == kInfoReply);
  auto p = parse_frame(out[0]);
  REQUIRE(p.eth.dst() == kGuestMac);
  REQUIRE(p.ip.src() == kGatewayLl);
  REQUIRE(p.ip.dst() == kGuestLl);
  auto m = parse_dhcp_reply(out[0]);
  REQUIRE(m.msg_type == dhcpv6msg::kReply);
  REQUIRE(m.transaction_id == 0xabcdef);
  REQUIRE(m.client_id == wire::duid_ll(kGuestMac));
  REQUIRE(m.server_id == hex("00030001 52550a000202"));
  REQUIRE(m.dns_servers == std::vector<Ipv6Addr>{kDns});
  REQUIRE(m.domain_list == std::vector<std::string>{"example.com", "lan"});
  REQUIRE_FALSE(m.status);
  REQUIRE(r.stats().dhcpv6_requests == 1);
  REQUIRE(r.stats().dhcpv6_replies == 1);

  // Sent to the gateway's link-local address, answered from it; without a
  // client id, answered without one.
  Dhcpv6Message req;
  req.msg_type = dhcpv6msg::kInformationRequest;
  req.transaction_id = 0x000102;
  out = r.handle(wire::build_ipv6_udp_frame(kGatewayMac, kGuestMac, kGuestLl, 546, kGatewayLl, 547, req.emit()),
                 t0);
  REQUIRE(out.size() == 1);
  m = parse_dhcp_reply(out[0]);
  REQUIRE(m.transaction_id == 0x000102);
  REQUIRE(m.client_id.empty());
  REQUIRE(parse_frame(out[0]).ip.src() == kGatewayLl);
}

TEST_CASE("DHCPv6 address requests get NoAddrsAvail and DNS", "[ndp]") {
  NdpResponder r(test_config());
  Dhcpv6Message solicit;
  solicit.msg_type = dhcpv6msg::kSolicit;
  solicit.transaction_id = 0x111111;
  solicit.client_id = wire::duid_ll(kGuestMac);
  solicit.ia_na.push_back(wire::Dhcpv6IaNa{0x0a0b0c0d, 3600, 5400, std::nullopt});
  solicit.oro = {dhcpv6opt::kDnsServers};

  SECTION("SOLICIT with rapid commit") {
    solicit.rapid_commit = true;
    auto out = r.handle(guest_dhcp(solicit), t0);
    REQUIRE(out.size() == 1);
    auto m = parse_dhcp_reply(out[0]);
    REQUIRE(m.msg_type == dhcpv6msg::kReply);
    REQUIRE(m.rapid_commit);
    REQUIRE(m.transaction_id == 0x111111);
    REQUIRE(m.client_id == solicit.client_id);
    REQUIRE(m.server_id == wire::duid_ll(kGatewayMac));
    REQUIRE(m.status->code == dhcpv6status::kNoAddrsAvail);
    REQUIRE(m.dns_servers == std::vector<Ipv6Addr>{kDns});
  }
  SECTION("SOLICIT without rapid commit") {
    auto out = r.handle(guest_dhcp(solicit), t0);
    REQUIRE(out.size() == 1);
    auto m = parse_dhcp_reply(out[0]);
    REQUIRE(m.msg_type == dhcpv6msg::kAdvertise);
    REQUIRE_FALSE(m.rapid_commit);
    REQUIRE(m.status->code == dhcpv6status::kNoAddrsAvail);
    REQUIRE(m.ia_na.empty());
  }
  SECTION("REQUEST for our server") {
    Dhcpv6Message req = solicit;
    req.msg_type = dhcpv6msg::kRequest;
    req.server_id = wire::duid_ll(kGatewayMac);
    auto out = r.handle(guest_dhcp(req), t0);
    REQUIRE(out.size() == 1);
    auto m = parse_dhcp_reply(out[0]);
    REQUIRE(m.msg_type == dhcpv6msg::kReply);
    REQUIRE(m.ia_na.size() == 1);
    REQUIRE(m.ia_na[0].iaid == 0x0a0b0c0d);
    REQUIRE(m.ia_na[0].t1 == 0);
    REQUIRE(m.ia_na[0].status->code == dhcpv6status::kNoAddrsAvail);
    REQUIRE(m.dns_servers == std::vector<Ipv6Addr>{kDns});

    // For another server: not ours to answer.
    req.server_id = wire::duid_ll(MacAddr{{2, 0, 0, 0, 0, 1}});
    REQUIRE(r.handle(guest_dhcp(req), t0).empty());
  }
  SECTION("RENEW and RELEASE") {
    Dhcpv6Message renew = solicit;
    renew.msg_type = dhcpv6msg::kRenew;
    renew.server_id = wire::duid_ll(kGatewayMac);
    auto m = parse_dhcp_reply(r.handle(guest_dhcp(renew), t0).at(0));
    REQUIRE(m.ia_na.at(0).status->code == dhcpv6status::kNoBinding);
    renew.msg_type = dhcpv6msg::kRelease;
    m = parse_dhcp_reply(r.handle(guest_dhcp(renew), t0).at(0));
    REQUIRE(m.status->code == dhcpv6status::kSuccess);
  }
  SECTION("messages that break RFC 8415 §16") {
    Dhcpv6Message bad = solicit;
    bad.client_id.clear();  // SOLICIT without a client id
    REQUIRE(r.handle(guest_dhcp(bad), t0).empty());
    bad = solicit;
    bad.server_id = wire::duid_ll(kGatewayMac);  // SOLICIT naming a server
    REQUIRE(r.handle(guest_dhcp(bad), t0).empty());
    bad = solicit;
    bad.msg_type = dhcpv6msg::kInformationRequest;  // with an IA_NA
    REQUIRE(r.handle(guest_dhcp(bad), t0).empty());
    bad.msg_type = dhcpv6msg::kReply;  // a server's message
    REQUIRE(r.handle(guest_dhcp(bad), t0).empty());
    REQUIRE(r.stats().dhcpv6_invalid == 4);
  }
}

TEST_CASE("Garbage is dropped and counted", "[ndp]") {
  NdpResponder r(test_config());
  auto s = [&] { return r.stats(); };

  REQUIRE(r.handle({}, t0).empty());
  REQUIRE(r.handle(Bytes{kNsFrame}.first(10), t0).empty());
  REQUIRE(s().malformed == 2);
  REQUIRE(r.handle(Bytes{kNsFrame}.first(14 + 39), t0).empty());  // IPv6 header cut short
  REQUIRE(r.handle(Bytes{kNsFrame}.first(kNsFrame.size() - 1), t0).empty());  // payload length past the end
  REQUIRE(s().malformed == 4);

  auto v4 = kNsFrame;
  wire::store16(v4, 12, wire::ethertype::kIpv4);
  REQUIRE(r.handle(v4, t0).empty());
  auto other_mac = kEchoFrame;
  wire::store8(other_mac, 5, 0x99);
  REQUIRE(r.handle(other_mac, t0).empty());
  REQUIRE(s().ignored == 2);

  // Extension header running past the payload.
  auto ext = wire::build_ipv6_icmpv6_frame(kGatewayMac, kGuestMac, kGuestUla, kGatewayUla, 64,
                                           icmpv6type::kEchoRequest, 0, 1, {});
  wire::store8(ext, 14 + 6, wire::ipproto::kIpv6DstOpts);
  wire::store8(ext, 14 + 40 + 1, 1);  // 16 bytes claimed, 8 present
  REQUIRE(r.handle(ext, t0).empty());
  REQUIRE(s().malformed == 5);

  // A DHCPv6 payload that does not parse, and a UDP checksum that is wrong.
  auto dhcp = kInfoReqFrame;
  wire::store16(dhcp, dhcp.size() - 4, 0x0009);  // ELAPSED_TIME claims 9 bytes
  auto ip = Ipv6Packet::parse(Bytes{dhcp}.subspan(14));
  std::vector<std::byte> udp(ip->payload().begin(), ip->payload().end());
  wire::emit_udp_v6(udp, ip->src(), 546, ip->dst(), 547, Bytes{udp}.subspan(8));
  std::copy(udp.begin(), udp.end(), dhcp.begin() + 14 + 40);
  REQUIRE(r.handle(dhcp, t0).empty());
  REQUIRE(s().dhcpv6_invalid == 1);
  auto bad_sum = kInfoReqFrame;
  wire::store16(bad_sum, 14 + 40 + 6, 0x196c);
  REQUIRE(r.handle(bad_sum, t0).empty());
  REQUIRE(s().bad_checksum == 1);

  // Random corruption of every valid input never crashes and never answers
  // more than once per frame.
  std::mt19937 rng(12345);
  for (const auto* base : {&kNsFrame, &kRsFrame, &kEchoFrame, &kInfoReqFrame}) {
    for (int i = 0; i < 500; ++i) {
      auto f = *base;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) f[14 + rng() % (f.size() - 14)] = std::byte(rng() & 0xff);
      f.resize(14 + rng() % (f.size() - 13));
      REQUIRE(r.handle(f, t0 + std::chrono::seconds(i)).size() <= 1);
    }
  }
}

TEST_CASE("NdpResponderConfig validation", "[ndp]") {
  REQUIRE(gateway::validate(NdpResponderConfig{}).empty());
  REQUIRE(gateway::validate(test_config()).empty());
  auto c = NdpResponderConfig{};
  c.prefix_len = 48;
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.dns = addr("fe80::3");
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.dns = c.address;
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.dns = addr("fd01::3");  // outside the prefix: mirrored mode
  REQUIRE(gateway::validate(c).empty());
  c = {};
  c.address = addr("ff02::2");
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.link_local = addr("fd00::1");
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.mtu = 1000;
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.preferred_lifetime = c.valid_lifetime + std::chrono::seconds{1};
  REQUIRE_FALSE(gateway::validate(c).empty());
  c = {};
  c.search_domains = {"bad..domain"};
  REQUIRE_FALSE(gateway::validate(c).empty());
}
