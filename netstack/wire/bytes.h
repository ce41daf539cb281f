// Byte-level helpers shared by every wire format and by every other folder
// that reads or writes bytes: explicit big-endian (network order) loads and
// stores over std::span<std::byte>, their little-endian twins for the
// formats that are not network order (virtio rings and vhost-user messages,
// pcap headers), and the address value types.
//
// Nothing here keeps state, and only grow() allocates (it extends the
// caller's vector). Callers check lengths before they load or store; the
// helpers assert nothing about the span beyond its size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// Little-endian: virtio 1.x rings and vhost-user messages, pcap headers.
inline uint16_t load_le16(Bytes b, size_t off) {
  return static_cast<uint16_t>(static_cast<unsigned>(b[off]) | (static_cast<unsigned>(b[off + 1]) << 8));
}
inline uint32_t load_le32(Bytes b, size_t off) {
  return uint32_t{load_le16(b, off)} | (uint32_t{load_le16(b, off + 2)} << 16);
}
inline uint64_t load_le64(Bytes b, size_t off) {
  return uint64_t{load_le32(b, off)} | (uint64_t{load_le32(b, off + 4)} << 32);
}
inline void store_le16(MutBytes b, size_t off, uint16_t v) {
  b[off] = std::byte(v & 0xff);
  b[off + 1] = std::byte(v >> 8);
}
inline void store_le32(MutBytes b, size_t off, uint32_t v) {
  store_le16(b, off, static_cast<uint16_t>(v & 0xffff));
  store_le16(b, off + 2, static_cast<uint16_t>(v >> 16));
}
inline void store_le64(MutBytes b, size_t off, uint64_t v) {
  store_le32(b, off, static_cast<uint32_t>(v & 0xffffffffu));
  store_le32(b, off + 4, static_cast<uint32_t>(v >> 32));
}

// N bytes as an array of octets and back, for the address types.
template <size_t N>
std::array<uint8_t, N> load_octets(Bytes b, size_t off) {
  std::array<uint8_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = load8(b, off + i);
  return a;
}
template <size_t N>
void store_octets(MutBytes b, size_t off, const std::array<uint8_t, N>& a) {
  for (size_t i = 0; i < N; ++i) store8(b, off + i, a[i]);
}

// For messages built front to back (DNS answers): appends n zero bytes to
// `out` and returns them for the stores above to fill. The span is valid
// until `out` grows again.
inline MutBytes grow(std::vector<std::byte>& out, size_t n) {
  out.resize(out.size() + n);
  return MutBytes{out}.last(n);
}

// The value of a hexadecimal digit (either case), or -1; for the address
// text parsers.
constexpr int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
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

  static MacAddr load(Bytes b, size_t off) { return MacAddr{load_octets<6>(b, off)}; }
  void store(MutBytes b, size_t off) const { store_octets(b, off, octets); }
  static std::optional<MacAddr> parse(std::string_view text);
  std::string to_string() const;
  static constexpr MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (octets[0] & 1) != 0; }
  constexpr bool is_zero() const { return *this == MacAddr{}; }
  friend constexpr bool operator==(const MacAddr&, const MacAddr&) = default;
};

}  // namespace slipway::wire
