// Offload: the work a frame still needs before it is a plain Ethernet frame
// on a wire: a partial TCP/UDP checksum to finish, and TCP segmentation
// (GSO). The terms are the virtio-net header's (virtio 1.2 §5.1.6.2), which
// a TAP device with IFF_VNET_HDR and a vhost-user frontend speak as well:
//   - NEEDS_CSUM: the L4 checksum field at csum_start + csum_offset holds
//     the pseudo-header sum only; the checksum over [csum_start, end) is
//     still to be computed (Linux's CHECKSUM_PARTIAL);
//   - DATA_VALID: the checksums were verified (or need none): do not check;
//   - gso TCPV4/TCPV6 with gso_size: one large TCP segment that stands for
//     several of at most gso_size payload bytes each (the sender's MSS).
//
// Theory of operation
//   A link that can carry offloaded frames (TAP with IFF_VNET_HDR, a
//   vhost-user frontend that negotiated the features) passes the Offload
//   along in its own header; a link that cannot (the stream and dgram
//   sockets, a pcap file) first finishes the work here: complete_checksum()
//   folds the sum into the field, segment_tcp() cuts a GSO frame into
//   frames of at most gso_size payload bytes, each with complete IP and TCP
//   headers and checksums (IPv4 identification incremented per segment, FIN
//   and PSH on the last segment only, CWR on the first only), as Linux's
//   software GSO does.
//
// Frames are untrusted here (a guest chooses its own header): every offset
// is checked against the frame, and the reason for a refusal is returned.
// Limits: segment_tcp needs gso_size >= kMinGsoSize (88, Linux's smallest
// TCP MSS), so one frame yields at most 65535 / 88 = 745 segments; only TCP
// directly after the IPv4 header or the fixed IPv6 header is segmented (no
// IPv6 extension headers), as Linux's guests send it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

struct Offload {
  static constexpr uint8_t kNeedsCsum = 1, kDataValid = 2;
  enum class Gso : uint8_t { kNone = 0, kTcpV4 = 1, kUdp = 3, kTcpV6 = 4, kUdpL4 = 5 };

  uint8_t flags = 0;
  Gso gso = Gso::kNone;
  bool gso_ecn = false;      // the segments carry ECN (the header's 0x80 bit)
  uint16_t hdr_len = 0;      // a hint: Ethernet + IP + L4 header bytes
  uint16_t gso_size = 0;     // payload bytes per segment
  uint16_t csum_start = 0;   // from the start of the Ethernet frame
  uint16_t csum_offset = 0;  // of the checksum field, from csum_start

  bool needs_csum() const { return (flags & kNeedsCsum) != 0; }
  bool is_gso() const { return gso != Gso::kNone; }
  // Nothing left to do: a plain frame.
  bool plain() const { return !needs_csum() && !is_gso(); }
  friend bool operator==(const Offload&, const Offload&) = default;
};

enum class OffloadError : uint8_t {
  kNone,
  kTruncated,        // the frame or header is shorter than its headers say
  kBadChecksumRange, // csum_start/csum_offset outside the frame
  kUnsupportedGso,   // UFO, USO, an unknown type, or a type of the wrong family
  kBadGsoSize,       // below kMinGsoSize
  kNotTcp,           // a TCP GSO type on something that is not TCP over IPv4/IPv6
};
const char* to_string(OffloadError e);

// The virtio-net header: 10 bytes, 12 with num_buffers (MRG_RXBUF or
// VERSION_1), little-endian.
inline constexpr size_t kVirtioNetHdrLen = 10;
inline constexpr size_t kVirtioNetHdrMrgLen = 12;

// Reads the header at the start of `b` (at least kVirtioNetHdrLen bytes);
// nullopt and *error when it is truncated or names an unknown GSO type.
std::optional<Offload> parse_virtio_net_hdr(Bytes b, OffloadError* error = nullptr);
// Writes the header's first kVirtioNetHdrLen bytes; out.size() >= that.
void emit_virtio_net_hdr(MutBytes out, const Offload& o);

inline constexpr uint16_t kMinGsoSize = 88;

// Folds the checksum of a NEEDS_CSUM frame into its field. The frame is
// left as it was on error.
OffloadError complete_checksum(MutBytes frame, const Offload& o);

// Calls emit() with each segment of a TCP GSO frame (built in `scratch`,
// valid during the call), every one with complete checksums. A frame whose
// payload fits one segment is emitted once, checksums completed.
OffloadError segment_tcp(Bytes frame, const Offload& o, std::vector<std::byte>& scratch,
                         const std::function<void(Bytes)>& emit);

// Makes a frame whose TCP or UDP checksum is still to be computed: stores
// the pseudo-header sum in the checksum field and returns the Offload that
// says so (NEEDS_CSUM with csum_start/offset). With `mtu` (the link's IP
// MTU; 0: no GSO) and a TCP segment whose IP packet is longer than it, also
// the GSO type and gso_size = mtu - IP header - TCP header. Frames that are
// neither TCP nor UDP over IPv4/IPv6 (or IPv4 fragments) are returned plain,
// untouched.
Offload prepare_partial(MutBytes frame, uint16_t mtu);

}  // namespace slipway::wire
