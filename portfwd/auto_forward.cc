#include "portfwd/auto_forward.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

namespace slipway::portfwd {
namespace {

// Whether listeners on the two host addresses (canonical literals) would
// take the same port: the same address, or the wildcard of the same family
// and any address of it. "::" is bound IPv6-only, so it leaves IPv4 alone.
bool host_addresses_overlap(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const bool v6 = a.find(':') != std::string::npos;
  if (v6 != (b.find(':') != std::string::npos)) return false;
  const char* wildcard = v6 ? "::" : "0.0.0.0";
  return a == wildcard || b == wildcard;
}

}  // namespace

AutoForwarder::AutoForwarder(uv_loop_t* loop, PublishedPorts& ports, int sock_diag_fd,
                             std::set<uint16_t> excluded, HostAddresses hosts)
    : ports_(ports), fd_(sock_diag_fd), excluded_(std::move(excluded)), hosts_(hosts) {
  if (fd_ < 0) return;
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<AutoForwarder*>(t->data)->poll(); }, 0, kIntervalMs);
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

AutoForwarder::~AutoForwarder() {
  if (timer_ != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  if (fd_ >= 0) ::close(fd_);
  // Withdraw what we published.
  for (const auto& f : ports_.list())
    if (f.origin == PublishedPorts::Origin::kAuto) ports_.remove(f.rule);
}

void AutoForwarder::poll() {
  std::vector<Listener> listeners;
  try {
    listeners = list_listeners(fd_);
  } catch (const std::exception& e) {
    spdlog::warn("automatic forwarding: {}", e.what());
    return;
  }
  if (listeners == last_) return;
  last_ = listeners;
  update(listeners);
}

void AutoForwarder::update_from_agent(std::string_view line) {
  std::vector<Listener> listeners;
  try {
    auto j = nlohmann::json::parse(line);
    for (const auto& l : j.at("listeners")) {
      Listener x;
      auto proto = l.at("proto").get<std::string>();
      if (proto != "tcp" && proto != "udp") continue;
      x.proto = proto == "tcp" ? Protocol::kTcp : Protocol::kUdp;
      // Numbers only as integers: a guest's 1e300 is no int (converting
      // it would be undefined behaviour; UBSan under fuzz_portfwd).
      const auto& family = l.at("family");
      const auto& port_field = l.at("port");
      if (!family.is_number_integer() || !port_field.is_number_integer()) continue;
      x.family = family.get<int64_t>() == 6 ? AF_INET6 : AF_INET;
      x.address = l.at("address").get<std::string>();
      int64_t port = port_field.get<int64_t>();
      if (port <= 0 || port > 65535) continue;
      x.port = static_cast<uint16_t>(port);
      listeners.push_back(std::move(x));
      if (listeners.size() > 4096) break;
    }
  } catch (const std::exception& e) {
    spdlog::warn("portfwd-agent: ignoring a report that does not parse: {}", e.what());
    return;
  }
  std::sort(listeners.begin(), listeners.end());
  listeners.erase(std::unique(listeners.begin(), listeners.end()), listeners.end());
  if (listeners == last_) return;
  last_ = listeners;
  update(listeners);
}

void AutoForwarder::update(const std::vector<Listener>& listeners) {
  std::vector<uint16_t> excluded(excluded_.begin(), excluded_.end());
  const std::vector<Rule> wanted = forwards_for_listeners(listeners, excluded, hosts_);
  using Origin = PublishedPorts::Origin;
  auto current = ports_.list();
  for (const auto& f : current) {
    if (f.origin != Origin::kAuto) continue;
    if (std::find(wanted.begin(), wanted.end(), f.rule) == wanted.end()) {
      spdlog::info("automatic forward withdrawn: {}", f.rule.to_string());
      ports_.remove(f.rule);
    } else if (!f.error.empty()) {
      ports_.remove(f.rule);  // retry below
    }
  }
  current = ports_.list();
  for (const auto& rule : wanted) {
    bool held = std::any_of(current.begin(), current.end(), [&](const auto& f) {
      return f.rule.proto == rule.proto && host_addresses_overlap(f.rule.host_addr, rule.host_addr) &&
             rule.host_port_first <= f.rule.host_port_last && f.rule.host_port_first <= rule.host_port_last;
    });
    if (held) continue;
    if (ports_.add(rule, Origin::kAuto).empty()) spdlog::info("automatic forward: {}", rule.to_string());
  }
}

}  // namespace slipway::portfwd
