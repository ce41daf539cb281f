// IPv6 address text forms, packet view, header emitter and UDP-over-IPv6;
// see ipv6.h.
//
// Extension header layout (RFC 8200 §4): hop-by-hop, routing and
// destination options all start with next header (1 byte) and a length in
// 8-byte units not counting the first 8; the fragment header is 8 bytes:
// next header, reserved, offset (13 bits, in 8-byte units) | res | M, id.
#include "netstack/wire/ipv6.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace slipway::wire {

namespace {

// Appends the colon-separated groups of `part` (no "::" inside) to `groups`;
// false on an empty or over-long group, a non-hex digit, or more than eight
// groups in all. An empty part has no groups.
bool parse_groups(std::string_view part, std::array<uint16_t, 8>& groups, size_t& count) {
  if (part.empty()) return true;
  size_t start = 0;
  while (true) {
    size_t colon = part.find(':', start);
    std::string_view g = part.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    if (g.empty() || g.size() > 4 || count == 8) return false;
    unsigned v = 0;
    for (char c : g) {
      int d = hex_digit(c);
      if (d < 0) return false;
      v = v * 16 + static_cast<unsigned>(d);
    }
    groups[count++] = static_cast<uint16_t>(v);
    if (colon == std::string_view::npos) return true;
    start = colon + 1;
  }
}

}  // namespace

std::optional<Ipv6Addr> Ipv6Addr::parse(std::string_view text) {
  if (text.empty() || text.size() > 39) return std::nullopt;
  size_t gap = text.find("::");
  std::array<uint16_t, 8> head{}, tail{};
  size_t nhead = 0, ntail = 0;
  if (gap == std::string_view::npos) {
    if (!parse_groups(text, head, nhead) || nhead != 8) return std::nullopt;
    return from_groups(head);
  }
  if (text.find("::", gap + 1) != std::string_view::npos) return std::nullopt;  // two gaps, or ":::"
  if (!parse_groups(text.substr(0, gap), head, nhead) || !parse_groups(text.substr(gap + 2), tail, ntail))
    return std::nullopt;
  if (nhead + ntail > 7) return std::nullopt;  // "::" stands for at least one group
  std::array<uint16_t, 8> groups{};
  std::copy_n(head.begin(), nhead, groups.begin());
  std::copy_n(tail.begin(), ntail, groups.begin() + static_cast<std::ptrdiff_t>(8 - ntail));
  return from_groups(groups);
}

std::string Ipv6Addr::to_string() const {
  // RFC 5952 §4.2: compress the longest run of at least two zero groups,
  // the first one if two runs are equally long.
  size_t best_start = 8, best_len = 0;
  for (size_t i = 0; i < 8;) {
    if (group(i) != 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < 8 && group(j) == 0) ++j;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_start = 8;

  std::string out;
  char buf[8];
  for (size_t i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", unsigned{group(i)});
    out += buf;
  }
  return out;
}

std::optional<Ipv6Packet> Ipv6Packet::parse(Bytes packet) {
  auto quoted = parse_quoted(packet);
  if (!quoted || kHeaderLen + quoted->payload_len() > packet.size()) return std::nullopt;
  return quoted;
}

std::optional<Ipv6Packet> Ipv6Packet::parse_quoted(Bytes quote) {
  if (quote.size() < kHeaderLen) return std::nullopt;
  if ((load8(quote, 0) >> 4) != 6) return std::nullopt;
  size_t total = kHeaderLen + load16(quote, 4);
  return Ipv6Packet{quote.first(std::min(total, quote.size()))};
}

std::optional<Ipv6Packet::UpperLayer> Ipv6Packet::upper_layer() const {
  UpperLayer ul;
  size_t off = kHeaderLen;
  uint8_t next = next_header();
  for (size_t walked = 0;; ++walked) {
    switch (next) {
      case ipproto::kHopByHop:
        if (walked != 0) return std::nullopt;  // RFC 8200 §4.1: only right after the fixed header
        [[fallthrough]];
      case ipproto::kIpv6Route:
      case ipproto::kIpv6DstOpts: {
        if (walked == kMaxExtensionHeaders) return std::nullopt;
        if (off + 8 > data_.size()) return std::nullopt;
        size_t len = (size_t{load8(data_, off + 1)} + 1) * 8;
        if (off + len > data_.size()) return std::nullopt;
        next = load8(data_, off);
        off += len;
        continue;
      }
      case ipproto::kIpv6Frag: {
        if (walked == kMaxExtensionHeaders) return std::nullopt;
        if (off + 8 > data_.size()) return std::nullopt;
        uint16_t frag = load16(data_, off + 2);
        ul.protocol = load8(data_, off);
        ul.fragment_offset = static_cast<uint16_t>(frag & 0xfff8);
        ul.more_fragments = (frag & 1) != 0;
        // An atomic fragment (offset 0, M clear) is a whole packet (RFC 6946).
        ul.is_fragment = ul.fragment_offset != 0 || ul.more_fragments;
        ul.fragment_id = load32(data_, off + 4);
        ul.offset = off + 8;
        ul.data = data_.subspan(ul.offset);
        return ul;
      }
      default:
        ul.protocol = next;
        ul.offset = off;
        ul.data = data_.subspan(off);
        return ul;
    }
  }
}

void Ipv6Header::emit(MutBytes out) const {
  assert(out.size() >= kLen);
  store32(out, 0, (uint32_t{6} << 28) | (uint32_t{traffic_class} << 20) | (flow_label & 0xfffff));
  store16(out, 4, payload_len);
  store8(out, 6, next_header);
  store8(out, 7, hop_limit);
  src.store(out, 8);
  dst.store(out, 24);
}

uint32_t pseudo_header_sum_v6(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t next_header, uint32_t length) {
  uint64_t acc = 0;
  for (size_t i = 0; i < 8; ++i) acc += uint64_t{src.group(i)} + dst.group(i);
  acc += (length >> 16) + (length & 0xffff) + next_header;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint32_t>(acc);
}

size_t emit_udp_v6(MutBytes out, const Ipv6Addr& src, uint16_t src_port, const Ipv6Addr& dst, uint16_t dst_port,
                   Bytes payload) {
  size_t len = emit_udp_unchecksummed(out, src_port, dst_port, payload);
  set_udp_checksum(out.first(len), pseudo_header_sum_v6(src, dst, ipproto::kUdp, static_cast<uint32_t>(len)));
  return len;
}

bool udp_v6_checksum_ok(const Ipv6Addr& src, const Ipv6Addr& dst, Bytes l4) {
  auto udp = UdpDatagram::parse(l4);
  if (!udp || udp->checksum() == 0) return false;
  uint32_t sum = pseudo_header_sum_v6(src, dst, ipproto::kUdp, udp->length());
  return checksum_fold(checksum_add(udp->bytes(), sum)) == 0;
}

}  // namespace slipway::wire
