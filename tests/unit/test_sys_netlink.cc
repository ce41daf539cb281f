// sys::netlink: requests are the bytes the kernel's ABI says, received bytes
// are walked with every length checked (malformed and truncated byte vectors
// are refused with a reason, every prefix of a good datagram is handled), and
// against the real kernel, in a network namespace of the test's own: an
// acknowledged request adds addresses (and a duplicate is refused with the
// kernel's errno), a dump reads them all back, and each bound of a dump
// (datagrams, buffer size, per-datagram timeout, deadline) stops it with its
// own error; an abandoned dump's tail does not leak into the next dump.
//
// The kernel tests need root (see private_netns.h); elsewhere they WARN and
// return.
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "netstack/sys/netlink.h"
#include "netstack/sys/netns.h"
#include "private_netns.h"

namespace netlink = slipway::sys::netlink;
namespace sys = slipway::sys;
using netlink::Bytes;
using netlink::DumpError;
using netlink::ParseError;
using slipway::test::PrivateNetns;

namespace {

// Builders for expected and hand-made bytes, in host order like netlink.
struct ByteWriter {
  std::vector<std::byte> bytes;
  ByteWriter& u8(uint8_t v) {
    bytes.push_back(std::byte{v});
    return *this;
  }
  ByteWriter& u16(uint16_t v) { return raw(&v, sizeof v); }
  ByteWriter& u32(uint32_t v) { return raw(&v, sizeof v); }
  ByteWriter& raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  ByteWriter& zeros(size_t n) {
    bytes.insert(bytes.end(), n, std::byte{0});
    return *this;
  }
};

// One message: header (length `length`, or the real one) and payload,
// padded to 4 bytes.
void message(std::vector<std::byte>& out, uint16_t type, uint32_t seq, const std::vector<std::byte>& payload,
             uint16_t flags = 0, uint32_t length = 0, uint32_t port = 0) {
  ByteWriter w;
  w.u32(length != 0 ? length : static_cast<uint32_t>(16 + payload.size())).u16(type).u16(flags).u32(seq).u32(port);
  w.bytes.insert(w.bytes.end(), payload.begin(), payload.end());
  w.zeros(netlink::align4(w.bytes.size()) - w.bytes.size());
  out.insert(out.end(), w.bytes.begin(), w.bytes.end());
}

std::vector<std::byte> code_payload(int32_t code) {
  ByteWriter w;
  w.raw(&code, sizeof code);
  return w.bytes;
}

std::vector<std::byte> attribute(uint16_t type, const std::vector<std::byte>& data, uint16_t length = 0) {
  ByteWriter w;
  w.u16(length != 0 ? length : static_cast<uint16_t>(4 + data.size())).u16(type);
  w.bytes.insert(w.bytes.end(), data.begin(), data.end());
  w.zeros(netlink::align4(w.bytes.size()) - w.bytes.size());
  return w.bytes;
}

std::vector<std::byte> text(const char* s) {
  std::vector<std::byte> out;
  for (; *s != '\0'; ++s) out.push_back(static_cast<std::byte>(*s));
  return out;
}

// Counts the messages on_message sees.
struct Counter {
  int messages = 0;
  netlink::OnMessage on_message() {
    return [this](const netlink::Message&) {
      ++messages;
      return ParseError::kNone;
    };
  }
};

}  // namespace

TEST_CASE("netlink Request: header, fixed part and attributes at the ABI's offsets", "[sys][netlink]") {
  netlink::Request request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE);
  netlink::emit(request, netlink::IfAddrMsg{AF_INET6, 64, IFA_F_NODAD, RT_SCOPE_UNIVERSE, 7});
  std::array<std::byte, 16> address{};
  address[0] = std::byte{0x20};
  address[15] = std::byte{5};
  request.attribute(IFA_ADDRESS, address);
  request.attribute(IFA_LABEL, std::as_bytes(std::span("ab", 3)));  // 3 bytes: padded to 4
  request.set_seq(9);
  request.set_port(1234);
  REQUIRE(request.ok());

  ByteWriter want;
  want.u32(16 + 8 + 20 + 8).u16(RTM_NEWADDR).u16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE).u32(9).u32(1234);
  want.u8(AF_INET6).u8(64).u8(IFA_F_NODAD).u8(RT_SCOPE_UNIVERSE).u32(7);
  want.u16(20).u16(IFA_ADDRESS).raw(address.data(), address.size());
  want.u16(7).u16(IFA_LABEL).u8('a').u8('b').u8(0).u8(0);
  const auto got = request.bytes();
  CHECK(std::vector<std::byte>(got.begin(), got.end()) == want.bytes);
  CHECK(request.seq() == 9);
}

TEST_CASE("netlink Request: the other fixed headers", "[sys][netlink]") {
  netlink::Request route(RTM_NEWROUTE, 0);
  netlink::RtMsg rt;
  rt.family = AF_INET6;
  rt.dst_len = 1;
  rt.src_len = 2;
  rt.tos = 3;
  rt.table = RT_TABLE_MAIN;
  rt.protocol = RTPROT_BOOT;
  rt.scope = RT_SCOPE_UNIVERSE;
  rt.type = RTN_UNICAST;
  rt.flags = 0x01020304;
  netlink::emit(route, rt);
  ByteWriter want_rt;
  want_rt.u8(AF_INET6).u8(1).u8(2).u8(3).u8(RT_TABLE_MAIN).u8(RTPROT_BOOT).u8(RT_SCOPE_UNIVERSE).u8(RTN_UNICAST);
  want_rt.u32(0x01020304);
  CHECK(std::vector<std::byte>(route.bytes().begin() + 16, route.bytes().end()) == want_rt.bytes);

  netlink::Request link(RTM_GETLINK, NLM_F_DUMP);
  netlink::emit(link, netlink::IfInfoMsg{AF_UNSPEC, 1, -1, 0x10, 0x20});
  ByteWriter want_link;
  want_link.u8(AF_UNSPEC).u8(0).u16(1).u32(0xffffffff).u32(0x10).u32(0x20);
  CHECK(std::vector<std::byte>(link.bytes().begin() + 16, link.bytes().end()) == want_link.bytes);

  netlink::Request diag(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP);
  netlink::InetDiagReqV2 req;
  req.family = AF_INET;
  req.protocol = IPPROTO_TCP;
  req.states = 1u << 10;
  netlink::emit(diag, req);
  CHECK(diag.bytes().size() == 16 + sizeof(inet_diag_req_v2));
  inet_diag_req_v2 kernel{};
  std::memcpy(&kernel, diag.bytes().data() + 16, sizeof kernel);  // checked against the kernel's own struct
  CHECK(kernel.sdiag_family == AF_INET);
  CHECK(kernel.sdiag_protocol == IPPROTO_TCP);
  CHECK(kernel.idiag_states == 1u << 10);
}

TEST_CASE("netlink Request: what does not fit is refused, never sent", "[sys][netlink]") {
  netlink::Request request(RTM_NEWADDR, NLM_F_ACK);
  std::array<std::byte, 100> data{};
  request.attribute(1, data);
  request.attribute(2, data);
  CHECK(request.ok());
  const size_t before = request.bytes().size();
  request.attribute(3, data);  // 3 x 104 + 16 > 256
  CHECK_FALSE(request.ok());
  CHECK(request.bytes().size() == before);
  request.u32(1);  // still refused, nothing added
  CHECK(request.bytes().size() == before);
  CHECK(netlink::request_ack(-1, request) == EMSGSIZE);

  std::vector<std::byte> huge(70000);
  netlink::Request too_long(RTM_NEWADDR, 0);
  too_long.attribute(1, huge);  // longer than an attribute's 16-bit length
  CHECK_FALSE(too_long.ok());
}

TEST_CASE("netlink MessageWalker: good messages, padding and unaligned lengths", "[sys][netlink]") {
  std::vector<std::byte> datagram;
  message(datagram, RTM_NEWLINK, 1, text("ab"), NLM_F_MULTI, 0, 77);  // length 18, padded to 20
  message(datagram, NLMSG_DONE, 1, code_payload(0));
  datagram.resize(datagram.size() + 7);  // fewer bytes than a header: padding
  netlink::MessageWalker walker(datagram);
  auto first = walker.next();
  REQUIRE(first);
  CHECK(first->type == RTM_NEWLINK);
  CHECK(first->flags == NLM_F_MULTI);
  CHECK(first->seq == 1);
  CHECK(first->port == 77);
  CHECK(first->payload.size() == 2);
  auto second = walker.next();
  REQUIRE(second);
  CHECK(second->type == NLMSG_DONE);
  CHECK(netlink::error_code(*second) == 0);
  CHECK_FALSE(walker.next());
  CHECK(walker.error().reason == ParseError::kNone);

  // The last message's padding may be missing.
  std::vector<std::byte> tight;
  message(tight, RTM_NEWLINK, 1, text("abc"));
  tight.resize(19);
  netlink::MessageWalker tight_walker(tight);
  REQUIRE(tight_walker.next());
  CHECK_FALSE(tight_walker.next());
  CHECK(tight_walker.error().reason == ParseError::kNone);
}

TEST_CASE("netlink MessageWalker: lengths that lie are refused with the numbers", "[sys][netlink]") {
  SECTION("shorter than the header") {
    std::vector<std::byte> datagram;
    message(datagram, RTM_NEWLINK, 1, {}, 0, 8);
    netlink::MessageWalker walker(datagram);
    CHECK_FALSE(walker.next());
    CHECK(walker.error().reason == ParseError::kBadLength);
    CHECK(walker.error().length == 8);
    CHECK(walker.error().left == 16);
    CHECK_FALSE(walker.next());  // and it stays stopped
  }
  SECTION("longer than what is left, after a good one") {
    std::vector<std::byte> datagram;
    message(datagram, RTM_NEWLINK, 1, text("abcd"));
    message(datagram, RTM_NEWLINK, 1, text("abcd"), 0, 4096);
    netlink::MessageWalker walker(datagram);
    CHECK(walker.next());
    CHECK_FALSE(walker.next());
    CHECK(walker.error().reason == ParseError::kTruncated);
    CHECK(walker.error().length == 4096);
    CHECK(walker.error().left == 20);
  }
}

TEST_CASE("netlink AttributeWalker and attribute data", "[sys][netlink]") {
  std::vector<std::byte> bytes;
  for (const auto& a : {attribute(IFLA_IFNAME, text("eth0")), attribute(IFLA_MTU | NLA_F_NESTED, code_payload(1500)),
                        attribute(IFLA_ADDRESS, text("x"))}) {
    bytes.insert(bytes.end(), a.begin(), a.end());
  }
  netlink::AttributeWalker walker(bytes);
  auto name = walker.next();
  REQUIRE(name);
  CHECK(name->type == IFLA_IFNAME);
  CHECK(netlink::attr_string(name->data) == "eth0");
  auto mtu = walker.next();
  REQUIRE(mtu);
  CHECK(mtu->type == IFLA_MTU);  // NLA_F_NESTED masked off
  CHECK(netlink::attr_u32(mtu->data) == 1500u);
  auto odd = walker.next();
  REQUIRE(odd);
  CHECK(odd->data.size() == 1);
  CHECK_FALSE(netlink::attr_u32(odd->data));
  CHECK_FALSE(netlink::attr_4(odd->data));
  CHECK_FALSE(netlink::attr_16(mtu->data));
  CHECK(netlink::attr_4(mtu->data));
  CHECK_FALSE(walker.next());
  CHECK(walker.error().reason == ParseError::kNone);

  std::vector<std::byte> with_nul = text("lo");
  with_nul.push_back(std::byte{0});
  with_nul.push_back(std::byte{'z'});
  CHECK(netlink::attr_string(with_nul) == "lo");

  auto bad = attribute(IFLA_MTU, code_payload(1), 2);  // shorter than its header
  netlink::AttributeWalker bad_walker(bad);
  CHECK_FALSE(bad_walker.next());
  CHECK(bad_walker.error().reason == ParseError::kBadLength);

  auto cut = attribute(IFLA_MTU, code_payload(1), 64);  // runs past the end
  netlink::AttributeWalker cut_walker(cut);
  CHECK_FALSE(cut_walker.next());
  CHECK(cut_walker.error().reason == ParseError::kTruncated);

  // Attributes after a fixed header, even one longer than the payload.
  CHECK(netlink::attributes_after(bytes, netlink::IfInfoMsg::kSize).size() == bytes.size() - 16);
  CHECK(netlink::attributes_after(Bytes(bytes).first(5), netlink::IfInfoMsg::kSize).empty());
}

TEST_CASE("netlink fixed headers: explicit loads, short payloads refused", "[sys][netlink]") {
  inet_diag_msg kernel{};
  kernel.idiag_family = AF_INET;
  kernel.idiag_state = 10;
  kernel.id.idiag_sport = htons(8080);
  kernel.id.idiag_dport = htons(443);
  inet_pton(AF_INET, "127.0.0.1", &kernel.id.idiag_src);
  ByteWriter w;
  w.raw(&kernel, sizeof kernel);
  auto diag = netlink::parse_inet_diag_msg(w.bytes);
  REQUIRE(diag);
  CHECK(diag->family == AF_INET);
  CHECK(diag->state == 10);
  CHECK(diag->source_port == 8080);
  CHECK(diag->destination_port == 443);
  CHECK(diag->source[0] == std::byte{127});
  CHECK(diag->source[3] == std::byte{1});
  CHECK_FALSE(netlink::parse_inet_diag_msg(Bytes(w.bytes).first(71)));

  ByteWriter rt;
  rt.u8(AF_INET).u8(0).u8(0).u8(0).u8(RT_TABLE_MAIN).u8(RTPROT_BOOT).u8(RT_SCOPE_UNIVERSE).u8(RTN_UNICAST).u32(0);
  auto parsed = netlink::parse_rtmsg(rt.bytes);
  REQUIRE(parsed);
  CHECK(parsed->table == RT_TABLE_MAIN);
  CHECK(parsed->type == RTN_UNICAST);
  CHECK_FALSE(netlink::parse_rtmsg(Bytes(rt.bytes).first(11)));
  CHECK_FALSE(netlink::parse_ifaddrmsg(Bytes(rt.bytes).first(7)));
  CHECK_FALSE(netlink::parse_ifinfomsg(Bytes(rt.bytes)));  // 12 < 16
  // RTA_MULTIPATH: next hops with their attributes, one too short.
  ByteWriter hops;
  hops.u16(16).u8(RTNH_F_DEAD).u8(3).u32(7).raw(attribute(RTA_GATEWAY, code_payload(1)).data(), 8);
  hops.u16(6).u8(0).u8(0).u32(8);
  netlink::Walker<netlink::RtNextHop> walker(hops.bytes);
  auto hop = walker.next();
  REQUIRE(hop);
  CHECK(hop->flags == RTNH_F_DEAD);
  CHECK(hop->hops == 3);
  CHECK(hop->ifindex == 7);
  CHECK(hop->attributes.size() == 8);
  CHECK_FALSE(walker.next());
  CHECK(walker.error().reason == ParseError::kBadLength);
}

TEST_CASE("netlink read_dump_datagram: what ends, fails or is skipped", "[sys][netlink]") {
  // Each case: the messages of one datagram for dump 5 to port 9, and what
  // reading it gives.
  struct Case {
    const char* what;
    std::vector<std::byte> datagram;
    netlink::DumpStep step;
    DumpError error = DumpError::kNone;
    int code = 0;
    int messages = 0;
  };
  auto datagram = [](std::initializer_list<std::function<void(std::vector<std::byte>&)>> parts) {
    std::vector<std::byte> d;
    for (const auto& part : parts) part(d);
    return d;
  };
  auto msg = [](uint16_t type, uint32_t seq, std::vector<std::byte> payload, uint16_t flags = 0, uint32_t port = 9) {
    return [=](std::vector<std::byte>& d) { message(d, type, seq, payload, flags, 0, port); };
  };
  const std::vector<Case> cases{
      {"messages of the dump, DONE; another dump's tail, another port and NOOP skipped",
       datagram({msg(RTM_NEWLINK, 5, text("x")), msg(RTM_NEWLINK, 4, text("x")), msg(RTM_NEWLINK, 5, text("x"), 0, 8),
                 msg(NLMSG_NOOP, 5, {}), msg(RTM_NEWLINK, 5, text("x")), msg(NLMSG_DONE, 5, code_payload(0))}),
       netlink::DumpStep::kDone, DumpError::kNone, 0, 2},
      {"no DONE yet: more", datagram({msg(RTM_NEWLINK, 5, text("x"))}), netlink::DumpStep::kMore, DumpError::kNone, 0,
       1},
      {"DONE with a negative code fails", datagram({msg(NLMSG_DONE, 5, code_payload(-EINTR))}),
       netlink::DumpStep::kFailed, DumpError::kKernel, EINTR},
      {"DONE without a code is done", datagram({msg(NLMSG_DONE, 5, {})}), netlink::DumpStep::kDone},
      {"an acknowledgement is skipped, an error fails",
       datagram({msg(NLMSG_ERROR, 5, code_payload(0)), msg(NLMSG_ERROR, 5, code_payload(-EPERM))}),
       netlink::DumpStep::kFailed, DumpError::kKernel, EPERM},
      {"an error too short for its code is malformed", datagram({msg(NLMSG_ERROR, 5, text("ab"))}),
       netlink::DumpStep::kFailed, DumpError::kMalformed},
      {"a lying length after a good message: that one counts, then it fails",
       datagram({msg(RTM_NEWLINK, 5, text("abc")),
                 [](std::vector<std::byte>& d) { message(d, RTM_NEWLINK, 5, text("abc"), 0, 1000, 9); }}),
       netlink::DumpStep::kFailed, DumpError::kMalformed, 0, 1},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    netlink::DumpResult result;
    Counter counter;
    CHECK(netlink::read_dump_datagram(c.datagram, 5, 9, counter.on_message(), result) == c.step);
    CHECK(result.error == c.error);
    CHECK(result.code == c.code);
    CHECK(counter.messages == c.messages);
  }
}

TEST_CASE("netlink read_dump_datagram: the details of what it saw", "[sys][netlink]") {
  std::vector<std::byte> d;
  message(d, RTM_NEWLINK, 5, text("x"), NLM_F_DUMP_INTR, 0, 8);
  netlink::DumpResult result;
  Counter counter;
  // Port 0 takes any port; NLM_F_DUMP_INTR is reported.
  CHECK(netlink::read_dump_datagram(d, 5, 0, counter.on_message(), result) == netlink::DumpStep::kMore);
  CHECK(counter.messages == 1);
  CHECK(result.interrupted);

  std::vector<std::byte> lying;
  message(lying, RTM_NEWLINK, 5, text("abc"), 0, 1000);
  CHECK(netlink::read_dump_datagram(lying, 5, 0, counter.on_message(), result) == netlink::DumpStep::kFailed);
  CHECK(result.malformed.reason == ParseError::kTruncated);
  CHECK(result.malformed.length == 1000);

  std::vector<std::byte> short_error;
  message(short_error, NLMSG_ERROR, 5, text("ab"));
  CHECK(netlink::read_dump_datagram(short_error, 5, 0, counter.on_message(), result) == netlink::DumpStep::kFailed);
  CHECK(result.malformed.reason == ParseError::kShortPayload);
  CHECK(result.malformed.length == 2);

  // A message on_message refuses stops the dump there.
  std::vector<std::byte> two;
  message(two, RTM_NEWLINK, 5, text("abc"));
  message(two, RTM_NEWLINK, 5, text("abc"));
  int seen = 0;
  auto refuse = [&](const netlink::Message& m) {
    ++seen;
    return m.payload.size() < 16 ? ParseError::kShortPayload : ParseError::kNone;
  };
  netlink::DumpResult refused;
  CHECK(netlink::read_dump_datagram(two, 5, 0, refuse, refused) == netlink::DumpStep::kFailed);
  CHECK(seen == 1);
  CHECK(refused.error == DumpError::kMalformed);
  CHECK(refused.malformed.reason == ParseError::kShortPayload);
  CHECK(refused.malformed.length == 3);
}

TEST_CASE("netlink walkers: every prefix and random bytes end cleanly", "[sys][netlink]") {
  std::vector<std::byte> good;
  std::vector<std::byte> attrs = attribute(IFLA_IFNAME, text("eth0"));
  auto mtu = attribute(IFLA_MTU, code_payload(1500));
  attrs.insert(attrs.end(), mtu.begin(), mtu.end());
  std::vector<std::byte> payload(16);
  payload.insert(payload.end(), attrs.begin(), attrs.end());
  message(good, RTM_NEWLINK, 1, payload);
  message(good, RTM_NEWLINK, 1, payload);
  message(good, NLMSG_DONE, 1, code_payload(0));

  auto walk_all = [](Bytes bytes) {
    netlink::DumpResult result;
    int attributes = 0;
    auto on_message = [&](const netlink::Message& m) {
      netlink::AttributeWalker walker(netlink::attributes_after(m.payload, netlink::IfInfoMsg::kSize));
      while (walker.next()) ++attributes;
      return ParseError::kNone;
    };
    const auto step = netlink::read_dump_datagram(bytes, 1, 0, on_message, result);
    return std::pair(step, attributes);
  };
  CHECK(walk_all(good) == std::pair(netlink::DumpStep::kDone, 4));
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    const auto [step, attributes] = walk_all(Bytes(good).first(n));
    CHECK(step != netlink::DumpStep::kDone);  // DONE is the last message: never in a prefix
    CHECK(attributes <= 4);
  }
  std::mt19937 random(12345);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> bytes(random() % 200);
    for (auto& b : bytes) b = static_cast<std::byte>(random() % 8 == 0 ? 0 : random() & 0xff);
    // Small lengths now and then, so that the walk gets past the first header.
    if (bytes.size() >= 4 && random() % 2 == 0) {
      const uint32_t length = 16 + random() % 48;
      std::memcpy(bytes.data(), &length, sizeof length);
    }
    walk_all(bytes);  // must end, and not read out of bounds (ASan/valgrind builds)
  }
}

namespace {

// A NETLINK_ROUTE socket inside `netns`, made there by sys::run_in_netns().
sys::Fd route_socket_in(const PrivateNetns& netns) {
  struct Report {
    int32_t error = 0;
  };
  constexpr sys::HelperNames names{"netlink test helper", "socket"};
  auto handoff = sys::run_in_netns<Report>(sys::open_netns(netns.path()), names, [](Report& report) {
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) report.error = errno;
    return fd;
  });
  INFO("socket(): " << std::strerror(handoff.report.error));
  REQUIRE(handoff.fd);
  return std::move(handoff.fd);
}

netlink::Request add_address(int n, uint16_t flags = NLM_F_CREATE | NLM_F_EXCL) {
  netlink::Request request(RTM_NEWADDR, static_cast<uint16_t>(NLM_F_ACK | flags));
  netlink::emit(request, netlink::IfAddrMsg{AF_INET6, 128, IFA_F_NODAD, RT_SCOPE_UNIVERSE, 1});  // lo is index 1
  std::array<std::byte, 16> address{};
  address[0] = std::byte{0x20};
  address[1] = std::byte{0x01};
  address[2] = std::byte{0x0d};
  address[3] = std::byte{0xb8};
  address[14] = std::byte(n >> 8);
  address[15] = std::byte(n & 0xff);
  request.attribute(IFA_LOCAL, address);
  request.attribute(IFA_ADDRESS, address);
  return request;
}

netlink::Request get_addresses() {
  netlink::Request request(RTM_GETADDR, NLM_F_DUMP);
  netlink::emit(request, netlink::IfAddrMsg{AF_INET6, 0, 0, 0, 0});
  return request;
}

// Counts the 2001:db8::/32 addresses in an RTM_GETADDR dump.
struct AddressCounter {
  int found = 0;
  netlink::OnMessage on_message() {
    return [this](const netlink::Message& m) {
      const auto ifa = netlink::parse_ifaddrmsg(m.payload);
      if (m.type != RTM_NEWADDR || !ifa) return ParseError::kNone;
      netlink::AttributeWalker walker(netlink::attributes_after(m.payload, netlink::IfAddrMsg::kSize));
      while (auto a = walker.next()) {
        auto address = netlink::attr_16(a->data);
        if (a->type == IFA_ADDRESS && address && (*address)[0] == std::byte{0x20} && (*address)[3] == std::byte{0xb8}) {
          ++found;
        }
      }
      return ParseError::kNone;
    };
  }
};

constexpr netlink::DumpLimits kRoomy{32 * 1024, std::chrono::seconds(5), std::chrono::seconds(30), 1024};
constexpr int kAddresses = 300;  // about 25 KiB of RTM_NEWADDR: several datagrams of 4 KiB

}  // namespace

TEST_CASE("netlink against the kernel: acknowledged requests, then a dump reads them back", "[sys][netlink]") {
  PrivateNetns netns;
  SKIP_WITHOUT_NETNS(netns);
  sys::Fd sock = route_socket_in(netns);
  for (int n = 1; n <= kAddresses; ++n) {
    INFO("address " << n);
    REQUIRE(netlink::request_ack(sock.get(), add_address(n)) == 0);
  }
  CHECK(netlink::request_ack(sock.get(), add_address(1)) == EEXIST);  // NLM_F_EXCL
  netlink::Request bad(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE);
  netlink::emit(bad, netlink::IfAddrMsg{AF_INET6, 128, 0, 0, 999});
  std::array<std::byte, 16> address{};
  address[0] = std::byte{0x20};
  bad.attribute(IFA_LOCAL, address);
  CHECK(netlink::request_ack(sock.get(), bad) == ENODEV);

  netlink::Dumper dumper(sock.get(), kRoomy);
  AddressCounter counter;
  const auto result = dumper.dump(get_addresses(), counter.on_message());
  INFO("error " << static_cast<int>(result.error) << " code " << result.code);
  CHECK(result.ok());
  CHECK(counter.found == kAddresses);

  // An NETLINK_ROUTE socket of our own (bound, its port id known) in the
  // test's namespace dumps that one, which has none of these addresses.
  sys::Fd own = netlink::open_socket(NETLINK_ROUTE);
  netlink::Dumper own_dumper(own.get(), kRoomy);
  AddressCounter own_counter;
  CHECK(own_dumper.dump(get_addresses(), own_counter.on_message()).ok());
  CHECK(own_counter.found == 0);
}

TEST_CASE("netlink against the kernel: each bound of a dump stops it", "[sys][netlink]") {
  PrivateNetns netns;
  SKIP_WITHOUT_NETNS(netns);
  sys::Fd sock = route_socket_in(netns);
  for (int n = 1; n <= kAddresses; ++n) REQUIRE(netlink::request_ack(sock.get(), add_address(n)) == 0);

  SECTION("at most max_datagrams; the abandoned tail does not reach the next dump") {
    netlink::Dumper small(sock.get(), {4096, std::chrono::seconds(5), std::chrono::seconds(30), 1});
    Counter counter;
    const auto result = small.dump(get_addresses(), counter.on_message());
    CHECK(result.error == DumpError::kTooLong);
    CHECK(counter.messages > 0);
    CHECK(counter.messages < kAddresses);

    // The kernel keeps the abandoned dump running on the socket and refuses
    // a new one (EBUSY) until its rest has been read. Each later dump reads
    // (and skips) some of that rest; within a few, one goes through, and it
    // sees each address once: nothing of the first dump's tail.
    netlink::Dumper roomy(sock.get(), kRoomy);
    netlink::DumpResult next;
    AddressCounter addresses;
    int attempts = 0;
    for (; attempts < 50; ++attempts) {
      addresses = AddressCounter{};
      next = roomy.dump(get_addresses(), addresses.on_message());
      if (!next.ok()) {
        INFO("attempt " << attempts);
        CHECK(next.error == DumpError::kKernel);
        CHECK(next.code == EBUSY);
        continue;
      }
      break;
    }
    CHECK(attempts >= 1);
    REQUIRE(next.ok());
    CHECK(addresses.found == kAddresses);
  }
  SECTION("a datagram larger than the buffer") {
    netlink::Dumper tiny(sock.get(), {256, std::chrono::seconds(5), std::chrono::seconds(30), 1024});
    Counter counter;
    CHECK(tiny.dump(get_addresses(), counter.on_message()).error == DumpError::kTruncated);
  }
  // NLMSG_NOOP without NLM_F_ACK: the kernel takes it and answers nothing.
  // Returns how the wait ended and how long it took.
  auto wait_for_silence = [&](std::chrono::milliseconds datagram_timeout, std::chrono::milliseconds deadline) {
    netlink::Dumper dumper(sock.get(), {4096, datagram_timeout, deadline, 1024});
    Counter counter;
    const auto start = std::chrono::steady_clock::now();
    const auto error = dumper.dump(netlink::Request(NLMSG_NOOP, 0), counter.on_message()).error;
    return std::pair(error, std::chrono::steady_clock::now() - start);
  };
  SECTION("no datagram within datagram_timeout") {
    const auto [error, took] = wait_for_silence(std::chrono::milliseconds(100), std::chrono::seconds(30));
    CHECK(error == DumpError::kTimeout);
    CHECK(took >= std::chrono::milliseconds(90));
    CHECK(took < std::chrono::seconds(3));
  }
  SECTION("the whole dump within deadline") {
    const auto [error, took] = wait_for_silence(std::chrono::seconds(5), std::chrono::milliseconds(150));
    CHECK(error == DumpError::kDeadline);
    CHECK(took >= std::chrono::milliseconds(140));
    CHECK(took < std::chrono::seconds(3));
  }
  SECTION("a closed descriptor") {
    netlink::Dumper dumper(-1, kRoomy);
    Counter counter;
    const auto result = dumper.dump(get_addresses(), counter.on_message());
    CHECK(result.error == DumpError::kSend);
    CHECK(result.code == EBADF);
  }
}
