// IPv4 (RFC 791): a checked view for received packets and a plain header
// value for the packets we build.
//
// Ipv4Packet::parse() accepts a packet only if: it holds at least 20 bytes,
// version is 4, IHL >= 5 and the header fits, total length covers the header
// and fits in the buffer, and the header checksum is valid. Bytes after total
// length (Ethernet padding) are excluded from every accessor. Options are
// kept inside header() and otherwise ignored. Fragments are reported, not
// reassembled.
//
// Ipv4Packet::parse_quoted() reads the packet an ICMP error quotes (RFC 792:
// the IP header and at least 8 bytes after it). It requires the whole
// header, version 4, IHL >= 5 and a total length that covers the header,
// but lets the quote end before total length (the quote is cut short by
// design: bytes() and payload() are then what was quoted) and does not
// check the header checksum (the error's own ICMP checksum covers the
// quote).
//
// Ipv4Header::emit() writes a 20-byte header without options; the caller
// places the payload after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

namespace ipproto {
constexpr uint8_t kIcmp = 1, kTcp = 6, kUdp = 17;
}

class Ipv4Packet {
 public:
  static constexpr size_t kMinHeaderLen = 20;

  static std::optional<Ipv4Packet> parse(Bytes packet);
  static std::optional<Ipv4Packet> parse_quoted(Bytes quote);

  size_t header_len() const { return size_t{load8(data_, 0) & 0x0fu} * 4; }
  uint8_t tos() const { return load8(data_, 1); }
  uint16_t total_len() const { return load16(data_, 2); }
  uint16_t id() const { return load16(data_, 4); }
  bool dont_fragment() const { return (load16(data_, 6) & 0x4000) != 0; }
  bool more_fragments() const { return (load16(data_, 6) & 0x2000) != 0; }
  // Offset of this fragment's data in the original datagram, in bytes.
  uint16_t fragment_offset() const { return static_cast<uint16_t>((load16(data_, 6) & 0x1fff) * 8); }
  bool is_fragment() const { return more_fragments() || fragment_offset() != 0; }
  uint8_t ttl() const { return load8(data_, 8); }
  uint8_t protocol() const { return load8(data_, 9); }
  uint16_t header_checksum() const { return load16(data_, 10); }
  Ipv4Addr src() const { return Ipv4Addr::load(data_, 12); }
  Ipv4Addr dst() const { return Ipv4Addr::load(data_, 16); }
  Bytes header() const { return data_.first(header_len()); }
  Bytes payload() const { return data_.subspan(header_len()); }
  // The whole packet, trimmed to total_len() (for a quoted packet, to what
  // was quoted).
  Bytes bytes() const { return data_; }

 private:
  explicit Ipv4Packet(Bytes data) : data_(data) {}
  Bytes data_;
};

struct Ipv4Header {
  static constexpr size_t kLen = 20;

  Ipv4Addr src, dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool dont_fragment = true;
  uint16_t payload_len = 0;  // total length = kLen + payload_len (<= 65515)

  // Writes kLen bytes, header checksum included (out.size() >= kLen).
  void emit(MutBytes out) const;
};

}  // namespace slipway::wire
