// IPv6 (RFC 8200): the address value type, a checked view for received
// packets, a plain header value for the packets we build, and the
// pseudo-header sum that ICMPv6, UDP and TCP checksums cover.
//
// Ipv6Addr holds 16 bytes in network order. parse() accepts the RFC 4291
// §2.2 text forms with "::" compression (no embedded IPv4, no zone index);
// to_string() writes the RFC 5952 canonical form (lower case, no leading
// zeros, the longest run of two or more zero groups compressed, the first
// such run on a tie).
//
// Ipv6Packet::parse() accepts a packet only if: it holds at least 40 bytes,
// version is 6, and 40 + payload length fits in the buffer. Bytes after the
// payload length (Ethernet padding) are excluded from every accessor.
// Jumbograms (payload length 0 with a Jumbo Payload option) are not
// supported: such a packet parses with an empty payload and upper_layer()
// then fails its bounds checks.
//
// Ipv6Packet::parse_quoted() reads the packet an ICMPv6 error quotes
// (RFC 4443 §3: as much of it as fits in the minimum MTU). It requires the
// 40-byte header and version 6 but lets the quote end before 40 + payload
// length; every accessor then sees what was quoted, and upper_layer() walks
// the extension headers within it.
//
// upper_layer() walks the extension-header chain: hop-by-hop options (only
// directly after the fixed header), routing, destination options and
// fragment headers, each bounds-checked against the payload. The walk stops
// at the first other next-header value (the upper-layer protocol, including
// No Next Header 59) or at a fragment header: fragments are reported, not
// reassembled, so the protocol returned for a fragment is the fragment
// header's next header and the data is the fragment's. At most
// kMaxExtensionHeaders are walked; a longer chain is refused. Every header
// is at least 8 bytes and the offset only grows, so the walk cannot loop.
//
// Ipv6Header::emit() writes the 40-byte fixed header; the caller places any
// extension headers and the payload after it.
//
// UDP over IPv6 (RFC 8200 §8.1) differs from IPv4 only in the pseudo-header
// and in that the checksum is mandatory; its emitter and check live here so
// that udp.h stays IPv4-only.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

namespace ipproto {
constexpr uint8_t kHopByHop = 0, kIpv6Route = 43, kIpv6Frag = 44, kIcmpv6 = 58, kIpv6NoNext = 59,
                  kIpv6DstOpts = 60;
}

struct Ipv6Addr {
  std::array<uint8_t, 16> octets{};

  static Ipv6Addr load(Bytes b, size_t off) { return Ipv6Addr{load_octets<16>(b, off)}; }
  void store(MutBytes b, size_t off) const { store_octets(b, off, octets); }
  // From eight 16-bit groups, as written in text: {0xfe80, 0, 0, 0, ...}.
  static constexpr Ipv6Addr from_groups(std::array<uint16_t, 8> groups) {
    Ipv6Addr a;
    for (size_t i = 0; i < 8; ++i) {
      a.octets[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
      a.octets[2 * i + 1] = static_cast<uint8_t>(groups[i] & 0xff);
    }
    return a;
  }
  constexpr uint16_t group(size_t i) const {
    return static_cast<uint16_t>((unsigned{octets[2 * i]} << 8) | octets[2 * i + 1]);
  }
  // RFC 4291 text; nullopt on anything else (see the file comment).
  static std::optional<Ipv6Addr> parse(std::string_view text);
  // RFC 5952 canonical text.
  std::string to_string() const;

  constexpr bool is_unspecified() const { return *this == Ipv6Addr{}; }
  constexpr bool is_loopback() const { return *this == from_groups({0, 0, 0, 0, 0, 0, 0, 1}); }
  constexpr bool is_multicast() const { return octets[0] == 0xff; }
  constexpr bool is_link_local() const { return octets[0] == 0xfe && (octets[1] & 0xc0) == 0x80; }  // fe80::/10
  constexpr bool is_unique_local() const { return (octets[0] & 0xfe) == 0xfc; }                      // fc00::/7
  // True if the first `len` bits (0..128) equal those of `net`.
  constexpr bool in_prefix(Ipv6Addr net, unsigned len) const {
    if (len > 128) len = 128;
    size_t whole = len / 8;
    for (size_t i = 0; i < whole; ++i) {
      if (octets[i] != net.octets[i]) return false;
    }
    unsigned bits = len % 8;
    if (bits == 0) return true;
    auto mask = static_cast<uint8_t>(0xffu << (8 - bits));
    return (octets[whole] & mask) == (net.octets[whole] & mask);
  }
  // ff02::1:ffXX:XXXX with the low 24 bits of this address (RFC 4291 §2.7.1).
  constexpr Ipv6Addr solicited_node_multicast() const {
    Ipv6Addr a = from_groups({0xff02, 0, 0, 0, 0, 1, 0xff00, 0});
    a.octets[13] = octets[13];
    a.octets[14] = octets[14];
    a.octets[15] = octets[15];
    return a;
  }
  // 33:33 followed by the low 32 bits (RFC 2464 §7); meaningful for
  // multicast addresses.
  constexpr MacAddr multicast_mac() const {
    return MacAddr{{0x33, 0x33, octets[12], octets[13], octets[14], octets[15]}};
  }
  // fe80::/64 with the modified EUI-64 interface identifier of `mac`
  // (RFC 4291 appendix A): the universal/local bit flipped, ff:fe inserted.
  static constexpr Ipv6Addr link_local_from_mac(MacAddr mac) {
    Ipv6Addr a = from_groups({0xfe80, 0, 0, 0, 0, 0, 0, 0});
    const auto& m = mac.octets;
    a.octets[8] = static_cast<uint8_t>(m[0] ^ 0x02);
    a.octets[9] = m[1];
    a.octets[10] = m[2];
    a.octets[11] = 0xff;
    a.octets[12] = 0xfe;
    a.octets[13] = m[3];
    a.octets[14] = m[4];
    a.octets[15] = m[5];
    return a;
  }
  static constexpr Ipv6Addr all_nodes() { return from_groups({0xff02, 0, 0, 0, 0, 0, 0, 1}); }
  static constexpr Ipv6Addr all_routers() { return from_groups({0xff02, 0, 0, 0, 0, 0, 0, 2}); }

  friend constexpr bool operator==(const Ipv6Addr&, const Ipv6Addr&) = default;
  friend constexpr auto operator<=>(const Ipv6Addr&, const Ipv6Addr&) = default;
};

class Ipv6Packet {
 public:
  static constexpr size_t kHeaderLen = 40;
  static constexpr size_t kMaxExtensionHeaders = 8;

  static std::optional<Ipv6Packet> parse(Bytes packet);
  static std::optional<Ipv6Packet> parse_quoted(Bytes quote);

  uint8_t traffic_class() const { return static_cast<uint8_t>((load32(data_, 0) >> 20) & 0xff); }
  uint32_t flow_label() const { return load32(data_, 0) & 0xfffff; }
  uint16_t payload_len() const { return load16(data_, 4); }
  uint8_t next_header() const { return load8(data_, 6); }
  uint8_t hop_limit() const { return load8(data_, 7); }
  Ipv6Addr src() const { return Ipv6Addr::load(data_, 8); }
  Ipv6Addr dst() const { return Ipv6Addr::load(data_, 24); }
  Bytes header() const { return data_.first(kHeaderLen); }
  // Everything after the fixed header, extension headers included.
  Bytes payload() const { return data_.subspan(kHeaderLen); }
  // The whole packet, trimmed to 40 + payload_len() (for a quoted packet,
  // to what was quoted).
  Bytes bytes() const { return data_; }

  struct UpperLayer {
    uint8_t protocol = 0;  // the last next-header value (see the file comment)
    size_t offset = 0;     // of data, from the start of the packet
    Bytes data;            // the upper-layer message, or the fragment's data
    bool is_fragment = false;
    uint16_t fragment_offset = 0;  // in bytes
    bool more_fragments = false;
    uint32_t fragment_id = 0;
  };
  // nullopt if a header runs past the payload, hop-by-hop options appear
  // anywhere but first, or the chain is longer than kMaxExtensionHeaders.
  std::optional<UpperLayer> upper_layer() const;

 private:
  explicit Ipv6Packet(Bytes data) : data_(data) {}
  Bytes data_;
};

struct Ipv6Header {
  static constexpr size_t kLen = 40;

  Ipv6Addr src, dst;
  uint8_t next_header = 0;
  uint8_t hop_limit = 64;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;  // low 20 bits
  uint16_t payload_len = 0;

  // Writes kLen bytes (out.size() >= kLen).
  void emit(MutBytes out) const;
};

// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the
// 32-bit upper-layer length and the next header. Chains with checksum_add()
// and checksum_fold() like pseudo_header_sum_v4().
uint32_t pseudo_header_sum_v6(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t next_header, uint32_t length);

// Writes a UDP header, a copy of `payload` and the checksum (a computed 0 is
// sent as 0xffff) at the start of `out`; returns 8 + payload.size(). Needs
// out.size() >= 8 + payload.size() and a total of at most 65535 bytes.
size_t emit_udp_v6(MutBytes out, const Ipv6Addr& src, uint16_t src_port, const Ipv6Addr& dst, uint16_t dst_port,
                   Bytes payload);
// True if `l4` is a whole UDP datagram (length field within the buffer) whose
// checksum is valid. A zero checksum is invalid over IPv6.
bool udp_v6_checksum_ok(const Ipv6Addr& src, const Ipv6Addr& dst, Bytes l4);

}  // namespace slipway::wire
