// IPv4 view and header emitter; see ipv4.h.
#include "netstack/wire/ipv4.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"

namespace slipway::wire {

std::optional<Ipv4Packet> Ipv4Packet::parse(Bytes packet) {
  auto quoted = parse_quoted(packet);
  if (!quoted || quoted->total_len() > packet.size()) return std::nullopt;
  if (checksum_fold(checksum_add(quoted->header())) != 0) return std::nullopt;
  return quoted;
}

std::optional<Ipv4Packet> Ipv4Packet::parse_quoted(Bytes quote) {
  if (quote.size() < kMinHeaderLen) return std::nullopt;
  uint8_t version_ihl = load8(quote, 0);
  if ((version_ihl >> 4) != 4) return std::nullopt;
  size_t ihl_bytes = size_t{version_ihl & 0x0fu} * 4;
  if (ihl_bytes < kMinHeaderLen || ihl_bytes > quote.size()) return std::nullopt;
  size_t total = load16(quote, 2);
  if (total < ihl_bytes) return std::nullopt;
  return Ipv4Packet{quote.first(std::min(total, quote.size()))};
}

void Ipv4Header::emit(MutBytes out) const {
  assert(out.size() >= kLen);
  assert(payload_len <= 0xffff - kLen);
  store8(out, 0, 0x45);
  store8(out, 1, tos);
  store16(out, 2, static_cast<uint16_t>(kLen + payload_len));
  store16(out, 4, id);
  store16(out, 6, dont_fragment ? 0x4000 : 0);
  store8(out, 8, ttl);
  store8(out, 9, protocol);
  store16(out, 10, 0);
  src.store(out, 12);
  dst.store(out, 16);
  store16(out, 10, checksum_fold(checksum_add(Bytes{out.first(kLen)})));
}

}  // namespace slipway::wire
