// Command-line options shared by `slipway run` and `slipway attach`, and the
// configuration they produce.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "netstack/gateway/gateway.h"
#include "netstack/ns/namespace.h"

namespace slipway::cli {

struct NetworkOptions {
  std::string address = "10.0.2.15/24";
  std::string gateway = "10.0.2.2";
  std::string dns = "10.0.2.3";
  std::string mac = "52:54:00:12:34:56";
  uint32_t mtu = 65520;
  std::string interface = "eth0";
  bool no_host_loopback = false;
  bool no_configure = false;
  std::vector<std::string> search;
  std::string pcap;
  std::string log_level = "warn";
  size_t max_tcp_flows = 16384;
  size_t max_udp_flows = 4096;
  std::vector<std::string> dns_upstreams;
  std::vector<std::string> dns_routes;
  std::string dns_hosts;
  bool no_dns_cache = false;
  std::vector<std::string> publish;
  std::string publish_source = "client";
  std::string control;
  bool forward_auto = false;  // `run` and `serve` turn it on by default
  uint16_t agent_port = 7777;
  std::vector<uint16_t> forward_exclude;

  void add_to(CLI::App& app);
  // Checks the values and builds the configurations; throws CLI::ValidationError.
  gateway::GatewayConfig gateway_config() const;
  ns::GuestInterface guest_interface() const;
};

}  // namespace slipway::cli
