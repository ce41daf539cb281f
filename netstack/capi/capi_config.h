// The C API's configuration, checked and turned into a StackConfig.
//
// Theory of operation
//   The C struct is mapped onto the command line's cli::NetworkOptions, whose
//   gateway_config() and guest_interface() hold every check the `slipway`
//   program makes (addresses, prefix, gateway and DNS in the guest subnet,
//   unicast MAC, upstreams, publish rule syntax), so an embedded stack and
//   the program accept exactly the same networks. Checks the command line
//   makes in CLI11 validators (the MTU range, the log level) are made here.
//
//   Published ports are strict (StackConfig::publish_strict): the program
//   only logs a rule it cannot bind, while an embedder is told (the stack's
//   creation fails).
#pragma once

#include <stdexcept>
#include <vector>

#include "netstack/stack/stack.h"
#include "slipway.h"

namespace slipway::capi {

struct EmbeddedConfig {
  stack::StackConfig stack;         // publish_strict
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
