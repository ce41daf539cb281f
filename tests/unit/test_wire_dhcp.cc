// DHCPv4 message parse/emit and the RFC 3397 search-list codec.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "hex.h"
#include "netstack/wire/dhcp.h"

using namespace slipway::wire;

namespace {

// A DHCP message: the first 44 bytes (op .. chaddr) as written, zero sname and
// file, the cookie, then `options`.
std::vector<std::byte> message(std::string_view head44, std::string_view options) {
  auto out = hex(head44);
  REQUIRE(out.size() == 44);
  out.resize(236);
  auto cookie = hex("63825363");
  out.insert(out.end(), cookie.begin(), cookie.end());
  auto opts = hex(options);
  out.insert(out.end(), opts.begin(), opts.end());
  return out;
}

// dhclient-style DISCOVER from 52:54:00:12:34:56, xid 0x3903f326, broadcast
// flag, asking for 10.0.2.15.
constexpr std::string_view kDiscoverHead =
    "01 01 06 00 3903f326 0000 8000 00000000 00000000 00000000 00000000"
    "525400123456 00000000000000000000";
constexpr std::string_view kDiscoverOptions =
    "35 01 01"                          // message type DISCOVER
    "3d 07 01525400123456"              // client id: htype 1 + MAC
    "32 04 0a00020f"                    // requested 10.0.2.15
    "0c 05 6775657374"                  // hostname "guest"
    "37 07 0103060f771a2a"              // PRL 1 3 6 15 119 26 42
    "39 02 05dc"                        // max message size 1500
    "00 00"                             // pad
    "ff";

// The RFC 3397 §2 example: eng.apple.com and marketing.apple.com.
const auto kRfc3397Example = hex("03656e67 056170706c65 03636f6d 00 096d61726b6574696e67 c004");
}  // namespace

TEST_CASE("DhcpMessage parses a DISCOVER", "[wire][dhcp]") {
  auto bytes = message(kDiscoverHead, kDiscoverOptions);
  auto m = DhcpMessage::parse(bytes);
  REQUIRE(m);
  REQUIRE(m->op == DhcpMessage::kBootRequest);
  REQUIRE(m->htype == 1);
  REQUIRE(m->hlen == 6);
  REQUIRE(m->xid == 0x3903f326);
  REQUIRE(m->flags == DhcpMessage::kFlagBroadcast);
  REQUIRE(m->ciaddr.is_unspecified());
  REQUIRE(m->chaddr == *MacAddr::parse("52:54:00:12:34:56"));
  REQUIRE(m->message_type == dhcpmsg::kDiscover);
  REQUIRE(m->client_id == hex("01525400123456"));
  REQUIRE(m->requested_ip == Ipv4Addr{10, 0, 2, 15});
  REQUIRE_FALSE(m->server_id);
  REQUIRE(m->hostname == "guest");
  REQUIRE(m->parameter_request_list == std::vector<uint8_t>{1, 3, 6, 15, 119, 26, 42});
  REQUIRE(m->max_message_size == 1500);
}

TEST_CASE("DhcpMessage emits an ACK byte for byte", "[wire][dhcp]") {
  DhcpMessage m;
  m.op = DhcpMessage::kBootReply;
  m.xid = 0x3903f326;
  m.yiaddr = Ipv4Addr{10, 0, 2, 15};
  m.chaddr = *MacAddr::parse("52:54:00:12:34:56");
  m.message_type = dhcpmsg::kAck;
  m.server_id = Ipv4Addr{10, 0, 2, 2};
  m.lease_time = 86400;
  m.renewal_time = 43200;
  m.rebinding_time = 75600;
  m.subnet_mask = Ipv4Addr{255, 255, 255, 0};
  m.router = Ipv4Addr{10, 0, 2, 2};
  m.dns_servers = {Ipv4Addr{10, 0, 2, 3}};
  m.interface_mtu = 65520;
  auto expected = message(
      "02 01 06 00 3903f326 0000 0000 00000000 0a00020f 00000000 00000000"
      "525400123456 00000000000000000000",
      "35 01 05  36 04 0a000202  33 04 00015180  3a 04 0000a8c0  3b 04 00012750"
      "01 04 ffffff00  03 04 0a000202  06 04 0a000203  1a 02 fff0  ff");
  expected.resize(300);  // BOOTP minimum
  REQUIRE(m.emit() == expected);
}

TEST_CASE("DhcpMessage round trip keeps every field", "[wire][dhcp]") {
  DhcpMessage m;
  m.op = DhcpMessage::kBootReply;
  m.hops = 1;
  m.xid = 0xdeadbeef;
  m.secs = 3;
  m.flags = DhcpMessage::kFlagBroadcast;
  m.ciaddr = Ipv4Addr{1, 2, 3, 4};
  m.yiaddr = Ipv4Addr{5, 6, 7, 8};
  m.siaddr = Ipv4Addr{9, 10, 11, 12};
  m.giaddr = Ipv4Addr{13, 14, 15, 16};
  m.chaddr = *MacAddr::parse("02:00:00:00:00:01");
  m.message_type = dhcpmsg::kOffer;
  m.requested_ip = Ipv4Addr{10, 0, 2, 99};
  m.server_id = Ipv4Addr{10, 0, 2, 2};
  m.parameter_request_list = {1, 3, 6};
  m.client_id = hex("ff00000001000100");
  m.hostname = "vm";
  m.max_message_size = 1400;
  m.subnet_mask = Ipv4Addr{255, 255, 0, 0};
  m.router = Ipv4Addr{10, 0, 0, 1};
  m.dns_servers = {Ipv4Addr{10, 0, 2, 3}, Ipv4Addr{1, 1, 1, 1}};
  m.lease_time = 3600;
  m.renewal_time = 1800;
  m.rebinding_time = 3150;
  m.interface_mtu = 1500;
  m.domain_name = "example.org";
  m.domain_search = {"eng.apple.com", "marketing.apple.com", "example.org"};
  m.message = "hello";

  auto bytes = m.emit();
  auto p = DhcpMessage::parse(bytes);
  REQUIRE(p);
  REQUIRE(p->op == m.op);
  REQUIRE(p->hops == 1);
  REQUIRE(p->xid == m.xid);
  REQUIRE(p->secs == 3);
  REQUIRE(p->flags == m.flags);
  REQUIRE(p->ciaddr == m.ciaddr);
  REQUIRE(p->yiaddr == m.yiaddr);
  REQUIRE(p->siaddr == m.siaddr);
  REQUIRE(p->giaddr == m.giaddr);
  REQUIRE(p->chaddr == m.chaddr);
  REQUIRE(p->message_type == m.message_type);
  REQUIRE(p->requested_ip == m.requested_ip);
  REQUIRE(p->server_id == m.server_id);
  REQUIRE(p->parameter_request_list == m.parameter_request_list);
  REQUIRE(p->client_id == m.client_id);
  REQUIRE(p->hostname == m.hostname);
  REQUIRE(p->max_message_size == m.max_message_size);
  REQUIRE(p->subnet_mask == m.subnet_mask);
  REQUIRE(p->router == m.router);
  REQUIRE(p->dns_servers == m.dns_servers);
  REQUIRE(p->lease_time == m.lease_time);
  REQUIRE(p->renewal_time == m.renewal_time);
  REQUIRE(p->rebinding_time == m.rebinding_time);
  REQUIRE(p->interface_mtu == m.interface_mtu);
  REQUIRE(p->domain_name == m.domain_name);
  REQUIRE(p->domain_search == m.domain_search);
  REQUIRE(p->message == m.message);
}

TEST_CASE("DhcpMessage splits and joins long options (RFC 3396)", "[wire][dhcp]") {
  DhcpMessage m;
  m.message_type = dhcpmsg::kAck;
  for (int i = 0; i < 12; ++i) m.domain_search.push_back("a-rather-long-label-number-" + std::to_string(i) + ".zone" + std::to_string(i));
  auto bytes = m.emit();
  // Find the option-119 instances.
  int instances = 0;
  for (size_t i = DhcpMessage::kOptionsOffset; i < bytes.size();) {
    uint8_t code = static_cast<uint8_t>(bytes[i]);
    if (code == 255) break;
    if (code == 0) { ++i; continue; }
    if (code == 119) ++instances;
    i += 2 + static_cast<uint8_t>(bytes[i + 1]);
  }
  REQUIRE(instances == 2);
  auto p = DhcpMessage::parse(bytes);
  REQUIRE(p);
  REQUIRE(p->domain_search == m.domain_search);
}

TEST_CASE("DhcpMessage option area edge cases", "[wire][dhcp]") {
  SECTION("options after End are ignored, even malformed ones") {
    auto p = DhcpMessage::parse(message(kDiscoverHead, "35 01 03 ff 35 09 01"));
    REQUIRE(p);
    REQUIRE(p->message_type == dhcpmsg::kRequest);
  }
  SECTION("missing End is tolerated when the last option is complete") {
    auto p = DhcpMessage::parse(message(kDiscoverHead, "00 35 01 08"));
    REQUIRE(p);
    REQUIRE(p->message_type == dhcpmsg::kInform);
  }
  SECTION("no options at all is plain BOOTP") {
    auto p = DhcpMessage::parse(message(kDiscoverHead, ""));
    REQUIRE(p);
    REQUIRE(p->message_type == 0);
  }
  SECTION("unknown options are skipped") {
    auto p = DhcpMessage::parse(message(kDiscoverHead, "fa 03 010203 35 01 01 ff"));
    REQUIRE(p);
    REQUIRE(p->message_type == dhcpmsg::kDiscover);
  }
  SECTION("hostname with a C terminator") {
    auto p = DhcpMessage::parse(message(kDiscoverHead, "0c 03 766d00 ff"));
    REQUIRE(p);
    REQUIRE(p->hostname == "vm");
  }
}

TEST_CASE("DhcpMessage rejects malformed messages", "[wire][dhcp]") {
  auto good = message(kDiscoverHead, kDiscoverOptions);
  REQUIRE(DhcpMessage::parse(good));

  SECTION("shorter than the fixed part and cookie") {
    REQUIRE_FALSE(DhcpMessage::parse(Bytes{good}.first(239)));
    REQUIRE_FALSE(DhcpMessage::parse({}));
  }
  SECTION("bad op") {
    good[0] = std::byte{3};
    REQUIRE_FALSE(DhcpMessage::parse(good));
  }
  SECTION("hlen above 16") {
    good[2] = std::byte{17};
    REQUIRE_FALSE(DhcpMessage::parse(good));
  }
  SECTION("bad magic cookie") {
    good[239] = std::byte{0x64};
    REQUIRE_FALSE(DhcpMessage::parse(good));
  }
  SECTION("truncated anywhere inside the options") {
    // Cutting the message inside any option (but not between options) fails.
    auto opts = hex(kDiscoverOptions);
    std::vector<size_t> boundaries;
    for (size_t i = 0; i < opts.size();) {
      boundaries.push_back(i);
      uint8_t code = static_cast<uint8_t>(opts[i]);
      i += (code == 0 || code == 255) ? 1 : 2 + static_cast<uint8_t>(opts[i + 1]);
    }
    for (size_t cut = 0; cut < opts.size(); ++cut) {
      bool at_boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
      INFO(cut);
      REQUIRE(DhcpMessage::parse(Bytes{good}.first(240 + cut)).has_value() == at_boundary);
    }
  }
  SECTION("option length running past the end") {
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 0c 10 6162")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 0c")));
  }
  SECTION("fixed-size options with the wrong length") {
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 00 ff")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 02 0101 ff")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 32 03 0a0002 ff")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 36 05 0a00020200 ff")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 06 05 0a00020300 ff")));
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 39 01 05 ff")));
    // Two message types concatenate to two bytes.
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 01 35 01 03 ff")));
  }
  SECTION("bad domain search encoding") {
    REQUIRE_FALSE(DhcpMessage::parse(message(kDiscoverHead, "35 01 05 77 02 c000 ff")));
  }
}

TEST_CASE("RFC 3397 search-list encoding", "[wire][dhcp]") {
  std::vector<std::string> domains{"eng.apple.com", "marketing.apple.com"};
  REQUIRE(encode_domain_search(domains) == kRfc3397Example);
  REQUIRE(decode_domain_search(kRfc3397Example) == domains);

  // A trailing dot means the same name; identical names become one pointer.
  std::vector<std::string> again{"eng.apple.com.", "eng.apple.com"};
  REQUIRE(encode_domain_search(again) == hex("03656e67 056170706c65 03636f6d 00 c000"));
  // Invalid names are skipped.
  std::vector<std::string> invalid{"", "a..b", std::string(64, 'x') + ".com", "ok"};
  REQUIRE(encode_domain_search(invalid) == hex("026f6b 00"));
  REQUIRE(encode_domain_search(std::vector<std::string>{}).empty());
}

TEST_CASE("RFC 3397 decoding rejects malformed lists", "[wire][dhcp]") {
  REQUIRE(decode_domain_search({}) == std::vector<std::string>{});
  REQUIRE_FALSE(decode_domain_search(hex("03656e67")));          // no terminator
  REQUIRE_FALSE(decode_domain_search(hex("05656e67 00")));       // label past the end
  REQUIRE_FALSE(decode_domain_search(hex("c000")));              // points at itself
  REQUIRE_FALSE(decode_domain_search(hex("00 c002")));           // points forward/at itself
  REQUIRE_FALSE(decode_domain_search(hex("0161 c0")));           // pointer cut off
  REQUIRE_FALSE(decode_domain_search(hex("4161 00")));           // reserved label type
  // A loop through two pointers: name 2 is "b" then a pointer to name 1's
  // pointer, which points back into name 2 -> rejected (must go backwards).
  REQUIRE_FALSE(decode_domain_search(hex("0161 c004 0162 c002")));
  // A name longer than 255 bytes on the wire.
  std::vector<std::byte> longname;
  for (int i = 0; i < 5; ++i) {
    longname.push_back(std::byte{63});
    longname.insert(longname.end(), 63, std::byte{'a'});
  }
  longname.push_back(std::byte{0});
  REQUIRE_FALSE(decode_domain_search(longname));
}

TEST_CASE("read_dns_name reads one name and says where it ends", "[wire][dhcp]") {
  // "eng.apple.com" at 0, then "marketing" + a pointer to "apple.com" at 4.
  const auto data = hex("03656e67 056170706c65 03636f6d 00 096d61726b6574696e67 c004 ff");
  auto first = read_dns_name(data, 0, true);
  REQUIRE(first);
  REQUIRE(first->text == "eng.apple.com");
  REQUIRE(first->end == 15);
  auto second = read_dns_name(data, 15, true);
  REQUIRE(second);
  REQUIRE(second->text == "marketing.apple.com");
  REQUIRE(second->end == 27);  // after the pointer, not after what it points to
  REQUIRE_FALSE(read_dns_name(data, 15, false));  // a pointer where none may be
  REQUIRE(read_dns_name(data, 14, false)->text.empty());  // the root
  REQUIRE_FALSE(read_dns_name(data, 27, true));            // 0xff: a pointer cut off
  REQUIRE_FALSE(read_dns_name(data, 28, true));            // past the end
}

TEST_CASE("DhcpMessage::parse survives random corruption", "[wire][dhcp]") {
  // A cheap in-test fuzzer: flip bytes in a rich message; parse must either
  // fail or return a message that emits and parses again.
  DhcpMessage m;
  m.message_type = dhcpmsg::kAck;
  m.server_id = Ipv4Addr{10, 0, 2, 2};
  m.dns_servers = {Ipv4Addr{10, 0, 2, 3}};
  m.hostname = "vm";
  m.domain_search = {"eng.apple.com", "marketing.apple.com"};
  auto good = m.emit();
  uint32_t rng = 12345;
  auto next = [&] { return rng = rng * 1103515245u + 12345u; };
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = good;
    int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = 236 + next() % (bytes.size() - 236);
      bytes[at] = std::byte(next() >> 24);
    }
    bytes.resize(240 + next() % (bytes.size() - 240));
    if (auto p = DhcpMessage::parse(bytes)) REQUIRE(DhcpMessage::parse(p->emit()));
  }
}
