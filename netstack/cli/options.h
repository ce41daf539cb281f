// Command-line options shared by `slipway run`, `attach` and `serve`, the
// configuration file they may read (--config), and the configuration they
// produce.
//
// The settings themselves are config::Settings (one field per setting, with
// its default); NetworkOptions binds a flag to each and, with --config, fills
// the settings whose flags were not given from the file: flags override the
// file. It keeps what the command line said so that reloaded() can repeat
// the merge with a re-read file (SIGHUP).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "netstack/cli/port_spec.h"
#include "netstack/config/config_file.h"
#include "netstack/gateway/gateway.h"
#include "netstack/stack/stack.h"
#include "netstack/ns/host_network.h"
#include "netstack/ns/namespace.h"

namespace slipway::cli {

struct NetworkOptions : config::Settings {
  std::string config_file;  // --config: "" for none

  void add_to(CLI::App& app);
  // Adds the guest options of `serve` (--vhost-user, --stream, --dgram,
  // --netns, each repeatable, and --isolate). At least one guest must be
  // set, by flag or file (checked by guests()).
  void add_transport_to(CLI::App& app);
  // After parsing: reads --config, if given, and applies its settings to
  // every option `app` did not get. Throws config::ConfigError.
  void apply_config_file(const CLI::App& app);
  // The options with the configuration file read again (for SIGHUP); throws
  // config::ConfigError and leaves *this alone. Without --config, a copy.
  NetworkOptions reloaded() const;
  // `serve`'s guests as port specs (names made unique); throws
  // CLI::ValidationError for a bad one or none.
  std::vector<PortSpec> guests() const;

  // Mirrored mode: reads the host's primary interface (once; a reload keeps
  // it). Throws std::runtime_error when the host has no default route.
  // Does nothing in NAT mode.
  void read_host_network();
  std::optional<ns::HostNetwork> host;  // set by read_host_network()

  // Checks the values and builds the configurations; throws
  // CLI::ValidationError. In mirrored mode the addresses, routes, MTU and
  // DNS come from `host` (read_host_network() must have been called), and
  // the address flags are not used. See README "Mirrored mode".
  stack::StackConfig stack_config() const;
  gateway::GatewayConfig gateway_config() const;  // stack_config().gateway
  ns::GuestInterface guest_interface() const;

 private:
  config::Settings file_base() const;
  void mirror_host(gateway::GatewayConfig& c) const;

  config::Settings command_line_;  // the values before the file was applied
  std::set<std::string> given_;     // keys whose flags were on the command line
};

}  // namespace slipway::cli
