// TCP (RFC 9293) segments: a checked view, a minimal emitter and a checksum
// check. The TCP state machine lives elsewhere (the engine); this file only
// reads and writes headers.
//
// TcpSegment::parse() requires 20 bytes and a data offset between 5 words and
// the buffer size; options() are returned raw. The checksum is not checked by
// parse(): call tcp_checksum_ok() with the IP addresses. emit_tcp() writes a
// 20-byte header without options (enough for RST and simple ACKs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::wire {

namespace tcpflag {
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20;
}

class TcpSegment {
 public:
  static constexpr size_t kMinHeaderLen = 20;

  static std::optional<TcpSegment> parse(Bytes l4);

  uint16_t src_port() const { return load16(data_, 0); }
  uint16_t dst_port() const { return load16(data_, 2); }
  uint32_t seq() const { return load32(data_, 4); }
  uint32_t ack() const { return load32(data_, 8); }
  // Byte 13: the six classic flags plus ECE (0x40) and CWR (0x80).
  uint8_t flags() const { return load8(data_, 13); }
  uint16_t window() const { return load16(data_, 14); }
  uint16_t checksum() const { return load16(data_, 16); }
  uint16_t urgent_pointer() const { return load16(data_, 18); }
  size_t header_len() const { return static_cast<size_t>(load8(data_, 12) >> 4) * 4; }
  Bytes options() const { return data_.subspan(kMinHeaderLen, header_len() - kMinHeaderLen); }
  Bytes payload() const { return data_.subspan(header_len()); }
  Bytes bytes() const { return data_; }

 private:
  explicit TcpSegment(Bytes data) : data_(data) {}
  Bytes data_;
};

// True if every option in `options` (a header's option bytes) is whole:
// EOL ends the list, NOP is one byte, any other kind has a length byte of
// at least 2 that keeps it within the options. A list that is not is
// dropped before lwIP sees it (lwIP 2.1.3's tcp_parseopt reads one byte past
// the header for a kind whose length byte is missing).
bool tcp_options_well_formed(Bytes options);

struct TcpHeaderFields {
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
};

// Writes a 20-byte header, a copy of `payload` and the checksum at the start
// of `out`; returns 20 + payload.size(). Needs out.size() >= that and a total
// of at most 65535 bytes.
size_t emit_tcp(MutBytes out, Ipv4Addr src, Ipv4Addr dst, const TcpHeaderFields& fields, Bytes payload);
// The same over IPv6 (the checksum covers IPv6's pseudo-header).
size_t emit_tcp(MutBytes out, const Ipv6Addr& src, const Ipv6Addr& dst, const TcpHeaderFields& fields,
                Bytes payload);

// True if `l4` (a whole TCP segment, as delimited by the IP total length) has
// a valid checksum.
bool tcp_checksum_ok(Ipv4Addr src, Ipv4Addr dst, Bytes l4);

}  // namespace slipway::wire
