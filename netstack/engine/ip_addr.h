// IpAddr: an IPv4 or IPv6 address, for flows and NAT decisions that work the
// same way in both families.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::engine {

struct IpAddr {
  bool v6 = false;
  wire::Ipv4Addr v4;
  wire::Ipv6Addr v6addr;

  IpAddr() = default;
  IpAddr(wire::Ipv4Addr a) : v4(a) {}  // NOLINT: implicit on purpose
  IpAddr(const wire::Ipv6Addr& a) : v6(true), v6addr(a) {}  // NOLINT

  std::string to_string() const { return v6 ? v6addr.to_string() : v4.to_string(); }
  // "ADDR:PORT", with brackets for IPv6.
  std::string endpoint(uint16_t port) const {
    return (v6 ? "[" + v6addr.to_string() + "]" : v4.to_string()) + ":" + std::to_string(port);
  }
  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.v6 == b.v6 && (a.v6 ? a.v6addr == b.v6addr : a.v4 == b.v4);
  }
  size_t hash() const {
    if (!v6) return std::hash<uint32_t>{}(v4.value);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 16; ++i) h = (h ^ v6addr.octets[static_cast<size_t>(i)]) * 0x100000001b3ull;
    return static_cast<size_t>(h);
  }
};

// Host socket addresses.
inline sockaddr_storage to_sockaddr(const IpAddr& a, uint16_t port) {
  sockaddr_storage ss{};
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, a.v6addr.octets.data(), 16);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    s4->sin_addr.s_addr = htonl(a.v4.value);
  }
  return ss;
}

// false for families other than IPv4 and IPv6. An IPv4-mapped IPv6 address
// is returned as IPv4.
inline bool from_sockaddr(const sockaddr* sa, IpAddr* addr, uint16_t* port) {
  if (sa->sa_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
    *addr = IpAddr(wire::Ipv4Addr{ntohl(s4->sin_addr.s_addr)});
    *port = ntohs(s4->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    wire::Ipv6Addr v6;
    std::memcpy(v6.octets.data(), &s6->sin6_addr, 16);
    static constexpr auto kMapped = wire::Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0xffff, 0, 0});
    if (v6.in_prefix(kMapped, 96)) {
      *addr = IpAddr(wire::Ipv4Addr{v6.octets[12], v6.octets[13], v6.octets[14], v6.octets[15]});
    } else {
      *addr = IpAddr(v6);
    }
    *port = ntohs(s6->sin6_port);
    return true;
  }
  return false;
}

}  // namespace slipway::engine
