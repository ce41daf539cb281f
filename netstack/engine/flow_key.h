// FlowKey: a guest connection's 4-tuple, as the guest sees it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "netstack/engine/ip_addr.h"

namespace slipway::engine {

struct FlowKey {
  IpAddr guest;
  uint16_t guest_port = 0;
  IpAddr remote;  // the destination the guest addressed
  uint16_t remote_port = 0;

  friend bool operator==(const FlowKey&, const FlowKey&) = default;
  std::string to_string() const { return guest.endpoint(guest_port) + " -> " + remote.endpoint(remote_port); }
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const noexcept {
    uint64_t a = (uint64_t{k.guest.hash()} * 0x9e3779b97f4a7c15ull) ^ k.remote.hash();
    uint64_t b = (uint64_t{k.guest_port} << 16) | k.remote_port;
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

}  // namespace slipway::engine
