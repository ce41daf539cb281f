// The VXLAN header (wire/vxlan.h) as bytes: emit, parse, and every refusal.
#include <catch2/catch.hpp>
#include <vector>

#include "netstack/wire/vxlan.h"

using namespace slipway::wire;

namespace {
std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(std::byte(x));
  return out;
}
}  // namespace

TEST_CASE("a VXLAN header is the I flag and the VNI, nothing else", "[wire][vxlan]") {
  std::vector<std::byte> h(kVxlanHeaderLen);
  emit_vxlan(h, 0x123456);
  CHECK(h == bytes_of({0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0}));
  auto parsed = parse_vxlan(h);
  REQUIRE(parsed);
  CHECK(parsed->vni == 0x123456);
  emit_vxlan(h, kVxlanMaxVni);
  CHECK(parse_vxlan(h)->vni == kVxlanMaxVni);
  // Trailing bytes (the inner frame) are not the header's business.
  auto longer = bytes_of({0x08, 0, 0, 0, 0, 0, 42, 0, 0xff, 0xff});
  CHECK(parse_vxlan(longer)->vni == 42);
}

TEST_CASE("parse_vxlan refuses short headers, a missing I flag and reserved bits", "[wire][vxlan]") {
  VxlanError err{};
  CHECK_FALSE(parse_vxlan(bytes_of({0x08, 0, 0, 0, 0, 0, 1}), &err));
  CHECK(err == VxlanError::kTruncated);
  CHECK_FALSE(parse_vxlan(bytes_of({0x00, 0, 0, 0, 0, 0, 1, 0}), &err));  // no I
  CHECK(err == VxlanError::kBadFlags);
  CHECK_FALSE(parse_vxlan(bytes_of({0x88, 0, 0, 0, 0, 0, 1, 0}), &err));  // GBP's G bit
  CHECK(err == VxlanError::kBadFlags);
  CHECK_FALSE(parse_vxlan(bytes_of({0x0c, 0, 0, 0, 0, 0, 1, 0}), &err));  // GPE's P bit
  CHECK_FALSE(parse_vxlan(bytes_of({0x08, 0, 1, 0, 0, 0, 1, 0}), &err));  // reserved
  CHECK_FALSE(parse_vxlan(bytes_of({0x08, 0, 0, 0, 0, 0, 1, 1}), &err));  // reserved last byte
  CHECK(err == VxlanError::kBadFlags);
  CHECK(parse_vxlan(bytes_of({0x08, 0, 0, 0, 0, 0, 1, 0}), &err));
  CHECK(err == VxlanError::kNone);
}
