// TCP view, emitter and checksum check; see tcp.h.
#include "netstack/wire/tcp.h"

#include "netstack/wire/ipv6.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"

namespace slipway::wire {

std::optional<TcpSegment> TcpSegment::parse(Bytes l4) {
  if (l4.size() < kMinHeaderLen) return std::nullopt;
  size_t header_len = static_cast<size_t>(load8(l4, 12) >> 4) * 4;
  if (header_len < kMinHeaderLen || header_len > l4.size()) return std::nullopt;
  return TcpSegment{l4};
}

bool tcp_options_well_formed(Bytes options) {
  constexpr uint8_t kEol = 0, kNop = 1;
  size_t i = 0;
  while (i < options.size()) {
    uint8_t kind = load8(options, i);
    if (kind == kEol) return true;
    if (kind == kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) return false;
    uint8_t len = load8(options, i + 1);
    if (len < 2 || i + len > options.size()) return false;
    i += len;
  }
  return true;
}

namespace {

// The header and payload with a zero checksum; returns their length.
size_t emit_tcp_fields(MutBytes out, const TcpHeaderFields& fields, Bytes payload) {
  size_t len = TcpSegment::kMinHeaderLen + payload.size();
  assert(out.size() >= len);
  assert(len <= 0xffff);
  store16(out, 0, fields.src_port);
  store16(out, 2, fields.dst_port);
  store32(out, 4, fields.seq);
  store32(out, 8, fields.ack);
  store8(out, 12, 5 << 4);
  store8(out, 13, fields.flags);
  store16(out, 14, fields.window);
  store16(out, 16, 0);
  store16(out, 18, 0);
  std::copy(payload.begin(), payload.end(), out.begin() + TcpSegment::kMinHeaderLen);
  return len;
}

}  // namespace

size_t emit_tcp(MutBytes out, Ipv4Addr src, Ipv4Addr dst, const TcpHeaderFields& fields, Bytes payload) {
  size_t len = emit_tcp_fields(out, fields, payload);
  uint32_t sum = pseudo_header_sum_v4(src, dst, ipproto::kTcp, static_cast<uint16_t>(len));
  store16(out, 16, checksum_fold(checksum_add(Bytes{out.first(len)}, sum)));
  return len;
}

size_t emit_tcp(MutBytes out, const Ipv6Addr& src, const Ipv6Addr& dst, const TcpHeaderFields& fields,
                Bytes payload) {
  size_t len = emit_tcp_fields(out, fields, payload);
  uint32_t sum = pseudo_header_sum_v6(src, dst, ipproto::kTcp, static_cast<uint32_t>(len));
  store16(out, 16, checksum_fold(checksum_add(Bytes{out.first(len)}, sum)));
  return len;
}

bool tcp_checksum_ok(Ipv4Addr src, Ipv4Addr dst, Bytes l4) {
  if (l4.size() < TcpSegment::kMinHeaderLen || l4.size() > 0xffff) return false;
  uint32_t sum = pseudo_header_sum_v4(src, dst, ipproto::kTcp, static_cast<uint16_t>(l4.size()));
  return checksum_fold(checksum_add(l4, sum)) == 0;
}

}  // namespace slipway::wire
