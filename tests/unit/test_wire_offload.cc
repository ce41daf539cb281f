// Offload (wire/offload.h): the virtio-net header as bytes, partial
// checksums finished in software, and TCP segmentation of GSO frames, on
// frames built here byte by byte and checked with the wire/ views.
#include <catch2/catch.hpp>
#include <cstring>
#include <numeric>
#include <vector>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/offload.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

using namespace slipway::wire;

namespace {

const MacAddr kA{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
const MacAddr kB{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
const Ipv4Addr kSrc{10, 0, 2, 15};
const Ipv4Addr kDst{10, 0, 2, 2};
constexpr Ipv6Addr kSrc6 = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0x15});
constexpr Ipv6Addr kDst6 = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 2});

std::vector<std::byte> payload_of(size_t n) {
  std::vector<std::byte> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = std::byte((i * 7 + 3) & 0xff);
  return p;
}

std::vector<std::byte> tcp4_frame(size_t payload, uint8_t flags, uint32_t seq = 1000) {
  TcpHeaderFields f;
  f.src_port = 40000;
  f.dst_port = 80;
  f.seq = seq;
  f.ack = 77;
  f.flags = flags;
  f.window = 512;
  return build_ipv4_tcp_frame(kB, kA, kSrc, kDst, f, payload_of(payload));
}

// An IPv6 TCP frame with a 20-byte header and a complete checksum.
std::vector<std::byte> tcp6_frame(size_t payload, uint8_t flags, uint32_t seq = 5000) {
  std::vector<std::byte> frame(kEthernetHeaderLen + 40 + 20 + payload);
  MutBytes m(frame);
  emit_ethernet_header(m, kB, kA, ethertype::kIpv6);
  Ipv6Header h;
  h.src = kSrc6;
  h.dst = kDst6;
  h.next_header = 6;
  h.payload_len = static_cast<uint16_t>(20 + payload);
  h.emit(m.subspan(kEthernetHeaderLen));
  MutBytes tcp = m.subspan(kEthernetHeaderLen + 40);
  store16(tcp, 0, 40000);
  store16(tcp, 2, 80);
  store32(tcp, 4, seq);
  store32(tcp, 8, 9);
  store8(tcp, 12, 5 << 4);
  store8(tcp, 13, flags);
  store16(tcp, 14, 1024);
  auto p = payload_of(payload);
  std::memcpy(tcp.data() + 20, p.data(), payload);
  store16(tcp, 16, checksum_fold(checksum_add(tcp, pseudo_header_sum_v6(kSrc6, kDst6, 6, static_cast<uint32_t>(tcp.size())))));
  return frame;
}

bool tcp6_checksum_ok(Bytes l4) {
  return checksum_fold(checksum_add(l4, pseudo_header_sum_v6(kSrc6, kDst6, 6, static_cast<uint32_t>(l4.size())))) == 0;
}

}  // namespace

TEST_CASE("virtio-net header round-trips and refuses unknown GSO types", "[wire][offload]") {
  Offload o;
  o.flags = Offload::kNeedsCsum;
  o.gso = Offload::Gso::kTcpV6;
  o.gso_ecn = true;
  o.hdr_len = 74;
  o.gso_size = 1440;
  o.csum_start = 54;
  o.csum_offset = 16;
  std::vector<std::byte> b(kVirtioNetHdrLen);
  emit_virtio_net_hdr(b, o);
  // Little-endian fields at their virtio offsets.
  CHECK(b[0] == std::byte{1});
  CHECK(b[1] == std::byte{0x84});
  CHECK(b[4] == std::byte{0xa0});
  CHECK(b[5] == std::byte{0x05});
  auto back = parse_virtio_net_hdr(b);
  REQUIRE(back);
  CHECK(*back == o);

  OffloadError err{};
  b[1] = std::byte{2};  // no such GSO type
  CHECK_FALSE(parse_virtio_net_hdr(b, &err));
  CHECK(err == OffloadError::kUnsupportedGso);
  CHECK_FALSE(parse_virtio_net_hdr(Bytes(b).first(9), &err));
  CHECK(err == OffloadError::kTruncated);
}

TEST_CASE("a partial TCP or UDP checksum is completed to the checksum a full computation gives", "[wire][offload]") {
  for (size_t n : {0u, 1u, 2u, 999u, 1460u}) {
    auto frame = tcp4_frame(n, tcpflag::kAck | tcpflag::kPsh);
    const auto reference = frame;
    auto o = prepare_partial(frame, 0);
    REQUIRE(o.needs_csum());
    CHECK_FALSE(o.is_gso());
    CHECK(o.csum_start == 34);
    CHECK(o.csum_offset == 16);
    CHECK(frame != reference);  // the field holds the pseudo-header sum now
    REQUIRE(complete_checksum(frame, o) == OffloadError::kNone);
    CHECK(frame == reference);
  }
  auto udp = build_ipv4_udp_frame(kB, kA, kSrc, 5353, kDst, 53, payload_of(33));
  const auto reference = udp;
  auto o = prepare_partial(udp, 1400);
  REQUIRE(o.needs_csum());
  CHECK_FALSE(o.is_gso());  // GSO is for TCP only
  CHECK(o.csum_offset == 6);
  REQUIRE(complete_checksum(udp, o) == OffloadError::kNone);
  CHECK(udp == reference);

  auto v6 = tcp6_frame(777, tcpflag::kAck);
  const auto reference6 = v6;
  o = prepare_partial(v6, 0);
  CHECK(o.csum_start == 54);
  REQUIRE(complete_checksum(v6, o) == OffloadError::kNone);
  CHECK(v6 == reference6);
}

TEST_CASE("complete_checksum refuses offsets outside the frame and leaves it alone", "[wire][offload]") {
  auto frame = tcp4_frame(100, tcpflag::kAck);
  const auto before = frame;
  Offload o;
  o.flags = Offload::kNeedsCsum;
  o.csum_start = static_cast<uint16_t>(frame.size() - 1);
  o.csum_offset = 16;
  CHECK(complete_checksum(frame, o) == OffloadError::kBadChecksumRange);
  o.csum_start = 0xffff;
  o.csum_offset = 0xfffe;
  CHECK(complete_checksum(frame, o) == OffloadError::kBadChecksumRange);
  o.csum_start = 34;
  o.csum_offset = 15;  // odd: not a 16-bit field
  CHECK(complete_checksum(frame, o) == OffloadError::kBadChecksumRange);
  CHECK(frame == before);
}

TEST_CASE("a TCP/IPv4 GSO frame is cut into MSS-sized segments with complete headers", "[wire][offload]") {
  const size_t mss = 1448, payload = 10 * 1448 + 100;
  auto frame = tcp4_frame(payload, tcpflag::kAck | tcpflag::kPsh | tcpflag::kFin | 0x80 /* CWR */, 0xfffff000);
  auto o = prepare_partial(frame, static_cast<uint16_t>(mss + 40));  // the IP MTU
  REQUIRE(o.gso == Offload::Gso::kTcpV4);
  REQUIRE(o.gso_size == mss);
  std::vector<std::byte> scratch, joined;
  std::vector<uint8_t> flags;
  std::vector<uint16_t> ids;
  uint32_t next_seq = 0xfffff000;
  REQUIRE(segment_tcp(frame, o, scratch, [&](Bytes seg) {
            auto eth = EthernetFrame::parse(seg);
            REQUIRE(eth);
            auto ip = Ipv4Packet::parse(eth->payload());
            REQUIRE(ip);  // parse() checks the header checksum
            CHECK(ip->bytes().size() <= 20 + 20 + mss);
            auto tcp = TcpSegment::parse(ip->payload());
            REQUIRE(tcp);
            CHECK(tcp_checksum_ok(ip->src(), ip->dst(), ip->payload()));
            CHECK(tcp->seq() == next_seq);  // wraps past 2^32
            next_seq += static_cast<uint32_t>(tcp->payload().size());
            flags.push_back(tcp->flags());
            ids.push_back(ip->id());
            joined.insert(joined.end(), tcp->payload().begin(), tcp->payload().end());
          }) == OffloadError::kNone);
  REQUIRE(flags.size() == 11);
  CHECK(joined == payload_of(payload));
  CHECK(flags.front() == (tcpflag::kAck | 0x80));  // CWR on the first only, FIN/PSH not yet
  for (size_t i = 1; i + 1 < flags.size(); ++i) CHECK(flags[i] == tcpflag::kAck);
  CHECK(flags.back() == (tcpflag::kAck | tcpflag::kPsh | tcpflag::kFin));
  for (size_t i = 1; i < ids.size(); ++i) CHECK(ids[i] == static_cast<uint16_t>(ids[0] + i));
}

TEST_CASE("a TCP/IPv6 GSO frame is cut the same way", "[wire][offload]") {
  const size_t mss = 1220, payload = 3 * 1220;
  auto frame = tcp6_frame(payload, tcpflag::kAck);
  auto o = prepare_partial(frame, 1280);  // IPv6's minimum MTU: 1280 - 40 - 20 = 1220
  REQUIRE(o.gso == Offload::Gso::kTcpV6);
  CHECK(o.gso_size == mss);
  std::vector<std::byte> scratch, joined;
  int n = 0;
  REQUIRE(segment_tcp(frame, o, scratch, [&](Bytes seg) {
            auto ip = Ipv6Packet::parse(EthernetFrame::parse(seg)->payload());
            REQUIRE(ip);
            CHECK(ip->payload_len() == 20 + mss);
            CHECK(tcp6_checksum_ok(ip->payload()));
            auto tcp = TcpSegment::parse(ip->payload());
            joined.insert(joined.end(), tcp->payload().begin(), tcp->payload().end());
            ++n;
          }) == OffloadError::kNone);
  CHECK(n == 3);
  CHECK(joined == payload_of(payload));
}

TEST_CASE("segment_tcp refuses what it cannot cut safely", "[wire][offload]") {
  std::vector<std::byte> scratch;
  int emitted = 0;
  auto count = [&](Bytes) { ++emitted; };
  auto frame = tcp4_frame(4000, tcpflag::kAck);
  Offload o;
  o.gso = Offload::Gso::kTcpV4;
  o.gso_size = 87;  // below Linux's smallest MSS: a frame would become 46 segments of 87 bytes
  CHECK(segment_tcp(frame, o, scratch, count) == OffloadError::kBadGsoSize);
  o.gso_size = 1000;
  o.gso = Offload::Gso::kTcpV6;  // the wrong family
  CHECK(segment_tcp(frame, o, scratch, count) == OffloadError::kUnsupportedGso);
  o.gso = Offload::Gso::kUdpL4;
  CHECK(segment_tcp(frame, o, scratch, count) == OffloadError::kUnsupportedGso);
  o.gso = Offload::Gso::kTcpV4;
  auto udp = build_ipv4_udp_frame(kB, kA, kSrc, 1, kDst, 2, payload_of(3000));
  CHECK(segment_tcp(udp, o, scratch, count) == OffloadError::kNotTcp);
  auto cut = frame;
  cut.resize(cut.size() - 1);  // shorter than the IP total length says
  CHECK(segment_tcp(cut, o, scratch, count) == OffloadError::kTruncated);
  auto bad_doff = frame;
  bad_doff[kEthernetHeaderLen + 20 + 12] = std::byte{0x30};  // a 12-byte TCP header
  CHECK(segment_tcp(bad_doff, o, scratch, count) == OffloadError::kTruncated);
  CHECK(emitted == 0);
}
