// UDP (RFC 768): a checked view, an emitter and a checksum check.
//
// UdpDatagram::parse() requires the 8-byte header and a length field between
// 8 and the buffer size; payload() is trimmed to the length field. The
// checksum is not checked by parse() because it needs the IP addresses: call
// udp_checksum_ok().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

class UdpDatagram {
 public:
  static constexpr size_t kHeaderLen = 8;

  static std::optional<UdpDatagram> parse(Bytes l4);

  uint16_t src_port() const { return load16(data_, 0); }
  uint16_t dst_port() const { return load16(data_, 2); }
  uint16_t length() const { return load16(data_, 4); }
  uint16_t checksum() const { return load16(data_, 6); }
  Bytes payload() const { return data_.subspan(kHeaderLen); }
  // Header and payload, trimmed to length().
  Bytes bytes() const { return data_; }

 private:
  explicit UdpDatagram(Bytes data) : data_(data) {}
  Bytes data_;
};

// Writes header, a copy of `payload` and the checksum (a computed 0 is sent as
// 0xffff) at the start of `out`; returns 8 + payload.size(). Needs
// out.size() >= 8 + payload.size() and a total of at most 65535 bytes.
size_t emit_udp(MutBytes out, Ipv4Addr src, uint16_t src_port, Ipv4Addr dst, uint16_t dst_port,
                Bytes payload);

// The two steps of emit_udp(), which UDP over IPv4 and IPv6 (emit_udp_v6 in
// ipv6.h) share: the header and payload with a zero checksum (returns the
// datagram length), then the checksum from a pseudo-header sum.
size_t emit_udp_unchecksummed(MutBytes out, uint16_t src_port, uint16_t dst_port, Bytes payload);
void set_udp_checksum(MutBytes datagram, uint32_t pseudo_header_sum);

// True if the checksum of `l4` (a whole UDP datagram) is valid or absent (0).
// False if the datagram is malformed.
bool udp_checksum_ok(Ipv4Addr src, Ipv4Addr dst, Bytes l4);

}  // namespace slipway::wire
