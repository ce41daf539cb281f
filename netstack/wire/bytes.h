// Byte-level helpers shared by every wire format: explicit big-endian loads
// and stores over std::span<std::byte>, and the address value types.
//
// Nothing here allocates or keeps state. Callers check lengths before they
// load or store; the helpers assert nothing about the span beyond its size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace slipway::wire {

using Bytes = std::span<const std::byte>;
using MutBytes = std::span<std::byte>;

inline uint8_t load8(Bytes b, size_t off) { return static_cast<uint8_t>(b[off]); }
inline uint16_t load16(Bytes b, size_t off) {
  return static_cast<uint16_t>((static_cast<unsigned>(b[off]) << 8) | static_cast<unsigned>(b[off + 1]));
}
inline uint32_t load32(Bytes b, size_t off) {
  return (static_cast<uint32_t>(b[off]) << 24) | (static_cast<uint32_t>(b[off + 1]) << 16) |
         (static_cast<uint32_t>(b[off + 2]) << 8) | static_cast<uint32_t>(b[off + 3]);
}
inline void store8(MutBytes b, size_t off, uint8_t v) { b[off] = std::byte{v}; }
inline void store16(MutBytes b, size_t off, uint16_t v) {
  b[off] = std::byte(v >> 8);
  b[off + 1] = std::byte(v & 0xff);
}
inline void store32(MutBytes b, size_t off, uint32_t v) {
  b[off] = std::byte(v >> 24);
  b[off + 1] = std::byte((v >> 16) & 0xff);
  b[off + 2] = std::byte((v >> 8) & 0xff);
  b[off + 3] = std::byte(v & 0xff);
}

// An IPv4 address as a host-order integer (10.0.2.15 == 0x0a00020f).
struct Ipv4Addr {
  uint32_t value = 0;

  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(uint32_t v) : value(v) {}
  constexpr Ipv4Addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
      : value((uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d) {}

  static Ipv4Addr load(Bytes b, size_t off) { return Ipv4Addr{load32(b, off)}; }
  void store(MutBytes b, size_t off) const { store32(b, off, value); }
  // Parses dotted-quad text; nullopt on anything else.
  static std::optional<Ipv4Addr> parse(std::string_view text);
  std::string to_string() const;

  constexpr bool is_unspecified() const { return value == 0; }
  constexpr bool is_broadcast() const { return value == 0xffffffffu; }
  constexpr bool is_multicast() const { return (value >> 28) == 0xe; }
  constexpr bool is_loopback() const { return (value >> 24) == 127; }
  constexpr bool in_subnet(Ipv4Addr net, unsigned prefix) const {
    uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    return (value & mask) == (net.value & mask);
  }
  friend constexpr bool operator==(Ipv4Addr, Ipv4Addr) = default;
  friend constexpr auto operator<=>(Ipv4Addr, Ipv4Addr) = default;
};

constexpr uint32_t prefix_to_mask(unsigned prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

struct MacAddr {
  std::array<uint8_t, 6> octets{};

  static MacAddr load(Bytes b, size_t off) {
    MacAddr m;
    for (size_t i = 0; i < 6; ++i) m.octets[i] = load8(b, off + i);
    return m;
  }
  void store(MutBytes b, size_t off) const {
    for (size_t i = 0; i < 6; ++i) store8(b, off + i, octets[i]);
  }
  static std::optional<MacAddr> parse(std::string_view text);
  std::string to_string() const;
  static constexpr MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (octets[0] & 1) != 0; }
  constexpr bool is_zero() const { return *this == MacAddr{}; }
  friend constexpr bool operator==(const MacAddr&, const MacAddr&) = default;
};

}  // namespace slipway::wire
