// ICMPv4 (RFC 792): a checked view, an emitter, and when an error may be
// sent; and the header that ICMPv4 and ICMPv6 share.
//
// Both families' messages start with the same 8-byte header: type(0)
// code(1) checksum(2), then four bytes ("rest of header", 4) whose meaning
// depends on the type: echo id(4) and sequence(6) for echo, unused or
// next-hop MTU for destination unreachable, the MTU for ICMPv6 Packet Too
// Big. AnyIcmpMessage is the checked view of that header, for code that
// treats both families alike (the echo relay); IcmpMessage here and
// Icmpv6Message (icmpv6.h) add what differs, the checksum: ICMPv6's covers
// the IPv6 pseudo-header.
//
// parse() only requires the 8-byte header; the checksum is reported by
// checksum_ok() rather than enforced, so that callers can count bad
// checksums separately.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv4.h"

namespace slipway::wire {

namespace icmptype {
constexpr uint8_t kEchoReply = 0, kDestUnreachable = 3, kEchoRequest = 8, kTimeExceeded = 11;
}
namespace icmpcode {
constexpr uint8_t kNetUnreachable = 0, kHostUnreachable = 1, kProtoUnreachable = 2, kPortUnreachable = 3,
                  kFragNeeded = 4, kAdminProhibited = 13;
}

// An ICMPv4 or ICMPv6 message: the header both share, and the rest.
class AnyIcmpMessage {
 public:
  static constexpr size_t kHeaderLen = 8;

  static std::optional<AnyIcmpMessage> parse(Bytes l4);

  uint8_t type() const { return load8(data_, 0); }
  uint8_t code() const { return load8(data_, 1); }
  uint16_t checksum() const { return load16(data_, 2); }
  uint32_t rest() const { return load32(data_, 4); }
  uint16_t echo_id() const { return load16(data_, 4); }
  uint16_t echo_seq() const { return load16(data_, 6); }
  Bytes payload() const { return data_.subspan(kHeaderLen); }
  Bytes bytes() const { return data_; }

 protected:
  explicit AnyIcmpMessage(Bytes data) : data_(data) {}
  Bytes data_;
};

class IcmpMessage : public AnyIcmpMessage {
 public:
  static std::optional<IcmpMessage> parse(Bytes l4);

  bool checksum_ok() const;

 private:
  using AnyIcmpMessage::AnyIcmpMessage;
};

// Writes the header, a copy of `payload` and the checksum at the start of
// `out`; returns 8 + payload.size() (out.size() must be at least that).
size_t emit_icmp(MutBytes out, uint8_t type, uint8_t code, uint32_t rest, Bytes payload);
// The same with a zero checksum, for either family: emit_icmp() and
// emit_icmpv6() fill it in afterwards, and a kernel ICMPv6 socket fills it
// in itself (it alone knows the source address the pseudo-header needs).
size_t emit_icmp_unchecksummed(MutBytes out, uint8_t type, uint8_t code, uint32_t rest, Bytes payload);

// RFC 1122 §3.2.2: no ICMP error about an ICMP error (or an unparseable ICMP
// message), about a non-first fragment, about a packet sent to broadcast or
// multicast, or about a packet whose source is not a single host (0.0.0.0,
// broadcast, multicast, loopback). `link_broadcast` says whether the frame was
// sent to a link-layer broadcast or multicast address. Directed broadcasts of
// the local subnet are the caller's to check. The error itself is built by
// build_ipv4_icmp_error_frame() (frame.h).
bool icmp_error_allowed(const Ipv4Packet& offending, bool link_broadcast);

}  // namespace slipway::wire
