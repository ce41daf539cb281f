// The transport protocols a forward can carry. Shared by rules, listeners
// and the relay.
#pragma once

#include <string_view>

namespace slipway::portfwd {

enum class Protocol { kTcp, kUdp };

// "tcp" or "udp".
constexpr std::string_view to_string(Protocol proto) { return proto == Protocol::kTcp ? "tcp" : "udp"; }

}  // namespace slipway::portfwd
