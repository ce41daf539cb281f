// The Internet checksum (RFC 1071): a ones-complement sum of 16-bit
// big-endian words, computed in pieces and folded at the end.
//
// checksum_add() returns a partial sum that may be passed back in to add the
// next piece. Pieces chain correctly only when every piece but the last has
// even length (an odd piece is padded with a zero byte, as RFC 1071 says for
// the end of the data). checksum_fold() folds the carries and complements the
// result, so it is ready to store; over data that already holds a valid
// checksum it returns 0.
#pragma once

#include <cstdint>

#include "netstack/wire/bytes.h"

namespace slipway::wire {

uint32_t checksum_add(Bytes data, uint32_t sum = 0);
uint16_t checksum_fold(uint32_t sum);
// Sum of the IPv4 pseudo-header that TCP and UDP checksums cover (RFC 793,
// RFC 768): source, destination, zero, protocol, L4 length.
uint32_t pseudo_header_sum_v4(Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t l4_length);

}  // namespace slipway::wire
