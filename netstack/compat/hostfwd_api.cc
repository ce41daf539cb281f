// See hostfwd_api.h.
#include "netstack/compat/hostfwd_api.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>

namespace slipway::compat {
namespace {

using nlohmann::json;

std::string error_reply(std::string_view desc) {
  // {"error":{"desc":"..."}}, compact, as slirp4netns writes it.
  return json{{"error", json{{"desc", desc}}}}.dump();
}

// arguments.NAME, or null when absent (slirp4netns's dotget).
const json* argument(const json& request, const char* name) {
  auto args = request.find("arguments");
  if (args == request.end() || !args->is_object()) return nullptr;
  auto v = args->find(name);
  return v == args->end() ? nullptr : &*v;
}

// A string argument; "" when absent or not a string (as dotget_string's
// NULL, which slirp4netns treats like "").
std::string string_argument(const json& request, const char* name) {
  const json* v = argument(request, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// A number argument truncated to an integer (slirp4netns casts the double);
// 0 when absent or not a number.
long long int_argument(const json& request, const char* name) {
  const json* v = argument(request, name);
  if (v == nullptr || !v->is_number()) return 0;
  double d = v->get<double>();
  if (!std::isfinite(d) || d > 1e15 || d < -1e15) return 0;
  return static_cast<long long>(d);
}

std::optional<uint16_t> port_of(long long n) {
  if (n < 1 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

}  // namespace

std::string HostfwdApi::too_large() { return error_reply("bad request: too large message"); }

std::string HostfwdApi::answer(std::string_view request) {
  if (request.size() >= kMaxRequestBytes) return too_large();
  json j = json::parse(request, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return error_reply("bad request: cannot parse JSON");
  if (!j.is_object()) return error_reply("bad request: json_object() failed");
  auto execute = j.find("execute");
  if (execute == j.end() || !execute->is_string()) return error_reply("bad request: no execute found");
  const auto& what = execute->get_ref<const std::string&>();
  if (what == "add_hostfwd") return add_hostfwd(j);
  if (what == "list_hostfwd") return list_hostfwd();
  if (what == "remove_hostfwd") return remove_hostfwd(j);
  return error_reply("bad request: unknown execute");
}

std::string HostfwdApi::add_hostfwd(const json& request) {
  portfwd::Rule rule;
  const std::string proto = string_argument(request, "proto");
  if (proto == "tcp") {
    rule.proto = portfwd::Protocol::kTcp;
  } else if (proto == "udp") {
    rule.proto = portfwd::Protocol::kUdp;
  } else {
    return error_reply("bad request: add_hostfwd: bad arguments.proto");
  }
  std::string host_addr = string_argument(request, "host_addr");
  if (host_addr.empty()) host_addr = "0.0.0.0";
  auto host = wire::Ipv4Addr::parse(host_addr);
  if (!host) return error_reply("bad request: add_hostfwd: bad arguments.host_addr");
  auto host_port = port_of(int_argument(request, "host_port"));
  if (!host_port) return error_reply("bad request: add_hostfwd: bad arguments.host_port");
  std::string guest_addr = string_argument(request, "guest_addr");
  if (!guest_addr.empty()) {
    auto guest = wire::Ipv4Addr::parse(guest_addr);
    if (!guest) return error_reply("bad request: add_hostfwd: bad arguments.guest_addr");
    if (*guest != guest_)
      return error_reply("bad request: add_hostfwd: bad arguments.guest_addr (slipway forwards to the guest address " +
                         guest_.to_string() + " only)");
  }
  auto guest_port = port_of(int_argument(request, "guest_port"));
  if (!guest_port) return error_reply("bad request: add_hostfwd: bad arguments.guest_port");
  rule.host_addr = host->to_string();
  rule.host_port_first = rule.host_port_last = *host_port;
  rule.guest_port_first = rule.guest_port_last = *guest_port;
  std::string err = backend_.add(rule);
  if (!err.empty()) {
    spdlog::warn("add_hostfwd {}: {}", rule.to_string(), err);
    return error_reply("bad request: add_hostfwd: slirp_add_hostfwd failed");
  }
  const int id = next_id_++;
  entries_.push_back(Entry{id, rule});
  spdlog::info("add_hostfwd {}: id {}", rule.to_string(), id);
  return json{{"return", json{{"id", id}}}}.dump();
}

std::string HostfwdApi::list_hostfwd() const {
  // Keys in slirp4netns's order: an ordered_json keeps insertion order.
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const auto& e : entries_) {
    nlohmann::ordered_json entry;
    entry["id"] = e.id;
    entry["proto"] = std::string(portfwd::to_string(e.rule.proto));
    entry["host_addr"] = e.rule.host_addr;
    entry["host_port"] = e.rule.host_port_first;
    entry["guest_addr"] = guest_.to_string();
    entry["guest_port"] = e.rule.guest_port_first;
    entries.push_back(std::move(entry));
  }
  nlohmann::ordered_json reply;
  reply["entries"] = std::move(entries);
  return reply.dump();
}

std::string HostfwdApi::remove_hostfwd(const json& request) {
  const long long id = int_argument(request, "id");
  auto it = entries_.begin();
  while (it != entries_.end() && it->id != id) ++it;
  if (it == entries_.end()) return error_reply("bad request: remove_hostfwd: bad arguments.id");
  if (!backend_.remove(it->rule)) return error_reply("bad request: remove_hostfwd: slirp_remove_hostfwd failed");
  spdlog::info("remove_hostfwd {}: id {}", it->rule.to_string(), it->id);
  entries_.erase(it);
  return json{{"return", json::object()}}.dump();
}

}  // namespace slipway::compat
