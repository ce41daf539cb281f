// See capi_config.h.
#include "netstack/capi/capi_config.h"

#include <string>

#include "netstack/cli/options.h"

namespace slipway::capi {
namespace {

constexpr unsigned kMinMtu = 576;
constexpr unsigned kMaxMtu = 65520;
constexpr size_t kMaxQueueFrames = 65536;
constexpr size_t kEthernetHeaderLen = 14;

std::string required(const char* field, const char* value) {
  if (value == nullptr) throw ConfigError(std::string(field) + " is NULL");
  return value;
}

std::vector<std::string> string_list(const char* field, const char* const* items, size_t count) {
  std::vector<std::string> out;
  if (count == 0) return out;
  if (items == nullptr) throw ConfigError(std::string(field) + " is NULL but its count is " + std::to_string(count));
  for (size_t i = 0; i < count; ++i) {
    if (items[i] == nullptr) throw ConfigError(std::string(field) + "[" + std::to_string(i) + "] is NULL");
    out.emplace_back(items[i]);
  }
  return out;
}

// The command line's messages name options ("--gateway: ..."); name the C
// struct's fields instead.
std::string field_message(const std::string& cli_message) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"--address", "address/prefix"}, {"--gateway", "gateway"}, {"--dns-upstream", "dns_upstreams"},
      {"--dns", "dns"},                {"--mac", "mac"},         {"--publish", "publish"}};
  for (const auto& [option, field] : kNames) {
    std::string prefix = std::string(option) + ":";
    if (cli_message.rfind(prefix, 0) == 0) return field + cli_message.substr(std::string(option).size());
  }
  return cli_message;
}

}  // namespace

EmbeddedConfig embedded_config_from(const slipway_config& c) {
  cli::NetworkOptions o;
  o.address = required("address", c.address) + "/" + std::to_string(c.prefix);
  o.gateway = required("gateway", c.gateway);
  o.dns = required("dns", c.dns);
  o.mac = required("mac", c.mac);
  if (c.mtu < kMinMtu || c.mtu > kMaxMtu)
    throw ConfigError("mtu must be " + std::to_string(kMinMtu) + " to " + std::to_string(kMaxMtu) + ", not " +
                      std::to_string(c.mtu));
  o.mtu = c.mtu;
  o.no_host_loopback = c.host_loopback == 0;
  // The C struct has no IPv6 settings yet: an embedded stack is IPv4-only
  // (no router advertisements appear on the embedder's link).
  o.ipv6 = false;
  o.dns_upstreams = string_list("dns_upstreams", c.dns_upstreams, c.dns_upstream_count);
  o.publish = string_list("publish", c.publish, c.publish_count);
  if (c.log_level < SLIPWAY_LOG_TRACE || c.log_level > SLIPWAY_LOG_OFF)
    throw ConfigError("log_level " + std::to_string(c.log_level) + " is not a slipway_log_level");
  if (c.queue_frames == 0 || c.queue_frames > kMaxQueueFrames)
    throw ConfigError("queue_frames must be 1 to " + std::to_string(kMaxQueueFrames) + ", not " +
                      std::to_string(c.queue_frames));

  EmbeddedConfig e;
  try {
    o.guest_interface();  // checks the MAC, and everything gateway_config() checks
    e.stack = o.stack_config();
  } catch (const CLI::Error& err) {
    throw ConfigError(field_message(err.what()));
  }
  e.stack.publish_strict = true;
  e.queue_frames = c.queue_frames;
  e.max_frame = size_t{c.mtu} + kEthernetHeaderLen;
  e.log_level = c.log_level;
  return e;
}

}  // namespace slipway::capi
