// Internet checksum. The partial sum is kept folded to 16 bits between calls
// so that any number of pieces can be chained without overflowing 32 bits.
#include "netstack/wire/checksum.h"

namespace slipway::wire {

namespace {
uint32_t fold16(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint32_t>(acc);
}
}  // namespace

uint32_t checksum_add(Bytes data, uint32_t sum) {
  uint64_t acc = sum;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) acc += load16(data, i);
  if (i < data.size()) acc += uint64_t{load8(data, i)} << 8;
  return fold16(acc);
}

uint16_t checksum_fold(uint32_t sum) { return static_cast<uint16_t>(~fold16(sum) & 0xffff); }

uint32_t pseudo_header_sum_v4(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t l4_length) {
  uint64_t acc = (src.value >> 16) + (src.value & 0xffff) + (dst.value >> 16) + (dst.value & 0xffff) +
                 protocol + l4_length;
  return fold16(acc);
}

}  // namespace slipway::wire
