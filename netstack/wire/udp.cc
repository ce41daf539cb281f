// UDP view, emitter and checksum check; see udp.h.
#include "netstack/wire/udp.h"

#include <algorithm>
#include <cassert>

#include "netstack/wire/checksum.h"
#include "netstack/wire/ipv4.h"

namespace slipway::wire {

std::optional<UdpDatagram> UdpDatagram::parse(Bytes l4) {
  if (l4.size() < kHeaderLen) return std::nullopt;
  size_t length = load16(l4, 4);
  if (length < kHeaderLen || length > l4.size()) return std::nullopt;
  return UdpDatagram{l4.first(length)};
}

size_t emit_udp_unchecksummed(MutBytes out, uint16_t src_port, uint16_t dst_port, Bytes payload) {
  size_t len = UdpDatagram::kHeaderLen + payload.size();
  assert(out.size() >= len);
  assert(len <= 0xffff);
  store16(out, 0, src_port);
  store16(out, 2, dst_port);
  store16(out, 4, static_cast<uint16_t>(len));
  store16(out, 6, 0);
  std::copy(payload.begin(), payload.end(), out.begin() + UdpDatagram::kHeaderLen);
  return len;
}

void set_udp_checksum(MutBytes datagram, uint32_t pseudo_header_sum) {
  uint16_t csum = checksum_fold(checksum_add(Bytes{datagram}, pseudo_header_sum));
  store16(datagram, 6, csum == 0 ? 0xffff : csum);
}

size_t emit_udp(MutBytes out, Ipv4Addr src, uint16_t src_port, Ipv4Addr dst, uint16_t dst_port,
                Bytes payload) {
  size_t len = emit_udp_unchecksummed(out, src_port, dst_port, payload);
  set_udp_checksum(out.first(len), pseudo_header_sum_v4(src, dst, ipproto::kUdp, static_cast<uint16_t>(len)));
  return len;
}

bool udp_checksum_ok(Ipv4Addr src, Ipv4Addr dst, Bytes l4) {
  auto udp = UdpDatagram::parse(l4);
  if (!udp) return false;
  if (udp->checksum() == 0) return true;
  uint32_t sum = pseudo_header_sum_v4(src, dst, ipproto::kUdp, udp->length());
  return checksum_fold(checksum_add(udp->bytes(), sum)) == 0;
}

}  // namespace slipway::wire
