// The C API's configuration, checked and turned into a GatewayConfig.
//
// Theory of operation
//   The C struct is mapped onto the command line's cli::NetworkOptions, whose
//   gateway_config() and guest_interface() hold every check the `slipway`
//   program makes (addresses, prefix, gateway and DNS in the guest subnet,
//   unicast MAC, upstreams, publish rule syntax), so an embedded stack and
//   the program accept exactly the same networks. Checks the command line
//   makes in CLI11 validators (the MTU range, the log level) are made here.
//
//   Published ports are returned apart from the GatewayConfig: the Gateway
//   only logs a rule it cannot bind, while an embedder is told (the stack
//   adds them itself after building the gateway and fails if one fails).
#pragma once

#include <stdexcept>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "portfwd/rule.h"
#include "slipway.h"

namespace slipway::capi {

struct EmbeddedConfig {
  gateway::GatewayConfig gateway;   // with an empty publish list
  std::vector<portfwd::Rule> publish;
  size_t queue_frames = 1024;
  size_t max_frame = 65520 + 14;    // mtu plus the Ethernet header
  int log_level = SLIPWAY_LOG_WARN;
};

// A value of the C configuration is wrong; what() says which and why.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Throws ConfigError.
EmbeddedConfig embedded_config_from(const slipway_config& c);

}  // namespace slipway::capi
