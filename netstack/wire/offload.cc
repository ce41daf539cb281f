// See offload.h.
#include "netstack/wire/offload.h"

#include <algorithm>
#include <cstring>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv6.h"

namespace slipway::wire {

namespace {

constexpr uint8_t kGsoEcnBit = 0x80;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
constexpr size_t kL3 = kEthernetHeaderLen;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kTcpMinHeader = 20;
constexpr size_t kUdpHeader = 8;
constexpr uint16_t kTcpChecksumOffset = 16, kUdpChecksumOffset = 6;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpCwr = 0x80;

// Where the IP and L4 headers of a frame are.
struct Layout {
  bool v6 = false;
  size_t ip_len = 0;   // IP header bytes
  uint8_t proto = 0;   // the L4 protocol
  size_t l4 = 0;       // offset of the L4 header in the frame
  size_t end = 0;      // end of the IP packet in the frame (by its length field)
  bool fragment = false;
};

std::optional<Layout> layout_of(Bytes frame) {
  if (frame.size() < kL3 + 20) return std::nullopt;
  uint16_t type = load16(frame, 12);
  Layout l;
  if (type == 0x0800) {
    uint8_t vihl = load8(frame, kL3);
    if ((vihl >> 4) != 4) return std::nullopt;
    l.ip_len = size_t{vihl & 0x0fu} * 4;
    size_t total = load16(frame, kL3 + 2);
    if (l.ip_len < 20 || total < l.ip_len || kL3 + total > frame.size()) return std::nullopt;
    l.proto = load8(frame, kL3 + 9);
    l.fragment = (load16(frame, kL3 + 6) & 0x3fff) != 0;
    l.end = kL3 + total;
  } else if (type == 0x86dd) {
    if (frame.size() < kL3 + kIpv6HeaderLen || (load8(frame, kL3) >> 4) != 6) return std::nullopt;
    l.v6 = true;
    l.ip_len = kIpv6HeaderLen;
    size_t payload = load16(frame, kL3 + 4);
    if (kL3 + kIpv6HeaderLen + payload > frame.size()) return std::nullopt;
    l.proto = load8(frame, kL3 + 6);  // only an L4 header directly after the fixed one
    l.end = kL3 + kIpv6HeaderLen + payload;
  } else {
    return std::nullopt;
  }
  l.l4 = kL3 + l.ip_len;
  return l;
}

uint32_t pseudo_sum(Bytes frame, const Layout& l, size_t l4_len) {
  if (l.v6) {
    return pseudo_header_sum_v6(Ipv6Addr::load(frame, kL3 + 8), Ipv6Addr::load(frame, kL3 + 24), l.proto,
                                static_cast<uint32_t>(l4_len));
  }
  return pseudo_header_sum_v4(Ipv4Addr::load(frame, kL3 + 12), Ipv4Addr::load(frame, kL3 + 16), l.proto,
                              static_cast<uint16_t>(l4_len));
}

void fill_ipv4_checksum(MutBytes frame, size_t ip_len) {
  store16(frame, kL3 + 10, 0);
  store16(frame, kL3 + 10, checksum_fold(checksum_add(Bytes(frame).subspan(kL3, ip_len))));
}

}  // namespace

const char* to_string(OffloadError e) {
  switch (e) {
    case OffloadError::kNone:
      return "none";
    case OffloadError::kTruncated:
      return "truncated";
    case OffloadError::kBadChecksumRange:
      return "checksum offsets outside the frame";
    case OffloadError::kUnsupportedGso:
      return "unsupported GSO type";
    case OffloadError::kBadGsoSize:
      return "GSO size too small";
    case OffloadError::kNotTcp:
      return "TCP GSO on a frame that is not TCP";
  }
  return "?";
}

std::optional<Offload> parse_virtio_net_hdr(Bytes b, OffloadError* error) {
  auto refuse = [error](OffloadError e) -> std::optional<Offload> {
    if (error != nullptr) *error = e;
    return std::nullopt;
  };
  if (b.size() < kVirtioNetHdrLen) return refuse(OffloadError::kTruncated);
  Offload o;
  o.flags = load8(b, 0) & (Offload::kNeedsCsum | Offload::kDataValid);
  uint8_t gso = load8(b, 1);
  o.gso_ecn = (gso & kGsoEcnBit) != 0;
  switch (gso & ~kGsoEcnBit) {
    case 0:
      o.gso = Offload::Gso::kNone;
      break;
    case 1:
      o.gso = Offload::Gso::kTcpV4;
      break;
    case 3:
      o.gso = Offload::Gso::kUdp;
      break;
    case 4:
      o.gso = Offload::Gso::kTcpV6;
      break;
    case 5:
      o.gso = Offload::Gso::kUdpL4;
      break;
    default:
      return refuse(OffloadError::kUnsupportedGso);
  }
  o.hdr_len = load_le16(b, 2);
  o.gso_size = load_le16(b, 4);
  o.csum_start = load_le16(b, 6);
  o.csum_offset = load_le16(b, 8);
  if (error != nullptr) *error = OffloadError::kNone;
  return o;
}

void emit_virtio_net_hdr(MutBytes out, const Offload& o) {
  store8(out, 0, o.flags);
  store8(out, 1, static_cast<uint8_t>(static_cast<uint8_t>(o.gso) | (o.gso_ecn ? kGsoEcnBit : 0)));
  store_le16(out, 2, o.hdr_len);
  store_le16(out, 4, o.gso_size);
  store_le16(out, 6, o.csum_start);
  store_le16(out, 8, o.csum_offset);
}

OffloadError complete_checksum(MutBytes frame, const Offload& o) {
  if (!o.needs_csum()) return OffloadError::kNone;
  size_t start = o.csum_start;
  size_t field = start + o.csum_offset;
  if (start > frame.size() || field + 2 > frame.size() || (o.csum_offset & 1) != 0)
    return OffloadError::kBadChecksumRange;
  // The field holds the pseudo-header sum; the sum over the rest of the IP
  // packet (not the frame's padding), folded and complemented, is the
  // checksum.
  auto l = layout_of(frame);
  size_t end = l && l->end >= field + 2 ? l->end : frame.size();
  uint16_t sum = checksum_fold(checksum_add(Bytes(frame).subspan(start, end - start)));
  // UDP sends an all-zero result as 0xffff (RFC 768); TCP's 0 stays 0.
  if (sum == 0 && l && l->proto == kProtoUdp && start == l->l4) sum = 0xffff;
  store16(frame, field, sum);
  return OffloadError::kNone;
}

OffloadError segment_tcp(Bytes frame, const Offload& o, std::vector<std::byte>& scratch,
                         const std::function<void(Bytes)>& emit) {
  if (o.gso != Offload::Gso::kTcpV4 && o.gso != Offload::Gso::kTcpV6) return OffloadError::kUnsupportedGso;
  if (o.gso_size < kMinGsoSize) return OffloadError::kBadGsoSize;
  auto l = layout_of(frame);
  if (!l) return OffloadError::kTruncated;
  if (l->v6 != (o.gso == Offload::Gso::kTcpV6)) return OffloadError::kUnsupportedGso;
  if (l->proto != kProtoTcp || l->fragment) return OffloadError::kNotTcp;
  if (l->l4 + kTcpMinHeader > l->end) return OffloadError::kTruncated;
  size_t tcp_len = static_cast<size_t>(load8(frame, l->l4 + 12) >> 4) * 4;
  if (tcp_len < kTcpMinHeader || l->l4 + tcp_len > l->end) return OffloadError::kTruncated;

  const size_t headers = l->l4 + tcp_len;
  const size_t payload = l->end - headers;
  const uint32_t seq = load32(frame, l->l4 + 4);
  const uint8_t flags = load8(frame, l->l4 + 13);
  const uint16_t id = l->v6 ? 0 : load16(frame, kL3 + 4);
  const size_t count = payload == 0 ? 1 : (payload + o.gso_size - 1) / o.gso_size;
  for (size_t i = 0; i < count; ++i) {
    const size_t off = i * o.gso_size;
    const size_t len = std::min<size_t>(o.gso_size, payload - std::min(payload, off));
    scratch.resize(headers + len);
    MutBytes seg(scratch);
    std::memcpy(seg.data(), frame.data(), headers);
    if (len > 0) std::memcpy(seg.data() + headers, frame.data() + headers + off, len);
    const size_t l4_len = tcp_len + len;
    if (l->v6) {
      store16(seg, kL3 + 4, static_cast<uint16_t>(l4_len));
    } else {
      store16(seg, kL3 + 2, static_cast<uint16_t>(l->ip_len + l4_len));
      store16(seg, kL3 + 4, static_cast<uint16_t>(id + i));
      fill_ipv4_checksum(seg, l->ip_len);
    }
    store32(seg, l->l4 + 4, static_cast<uint32_t>(seq + off));
    uint8_t f = flags;
    if (i + 1 < count) f = static_cast<uint8_t>(f & ~(kTcpFin | kTcpPsh));
    if (i > 0) f = static_cast<uint8_t>(f & ~kTcpCwr);
    store8(seg, l->l4 + 13, f);
    store16(seg, l->l4 + kTcpChecksumOffset, 0);
    uint32_t sum = checksum_add(Bytes(seg).subspan(l->l4), pseudo_sum(seg, *l, l4_len));
    store16(seg, l->l4 + kTcpChecksumOffset, checksum_fold(sum));
    emit(Bytes(seg));
  }
  return OffloadError::kNone;
}

Offload prepare_partial(MutBytes frame, uint16_t mtu) {
  Offload o;
  auto l = layout_of(frame);
  if (!l || l->fragment) return o;
  uint16_t field = 0;
  if (l->proto == kProtoTcp) {
    if (l->l4 + kTcpMinHeader > l->end) return o;
    field = kTcpChecksumOffset;
  } else if (l->proto == kProtoUdp) {
    if (l->l4 + kUdpHeader > l->end) return o;
    field = kUdpChecksumOffset;
  } else {
    return o;
  }
  const size_t l4_len = l->end - l->l4;
  store16(frame, l->l4 + field, 0);
  // The pseudo-header sum, not complemented (CHECKSUM_PARTIAL's convention).
  uint32_t sum = pseudo_sum(frame, *l, l4_len);
  store16(frame, l->l4 + field, static_cast<uint16_t>(~checksum_fold(sum) & 0xffff));
  o.flags = Offload::kNeedsCsum;
  o.csum_start = static_cast<uint16_t>(l->l4);
  o.csum_offset = field;
  if (l->proto == kProtoTcp && mtu > 0) {
    size_t tcp_len = static_cast<size_t>(load8(frame, l->l4 + 12) >> 4) * 4;
    size_t headers = l->ip_len + tcp_len;
    o.hdr_len = static_cast<uint16_t>(l->l4 + tcp_len);
    if (tcp_len >= kTcpMinHeader && l->l4 + tcp_len <= l->end && l->end - kL3 > mtu && mtu > headers) {
      o.gso = l->v6 ? Offload::Gso::kTcpV6 : Offload::Gso::kTcpV4;
      o.gso_size = static_cast<uint16_t>(mtu - headers);
    }
  }
  return o;
}

}  // namespace slipway::wire
