#include "netstack/control/stack_api.h"

#include <stdexcept>

#include "portfwd/rule.h"

namespace slipway::control {
namespace {

using nlohmann::json;
using Origin = portfwd::PublishedPorts::Origin;

const char* origin_name(Origin o) {
  switch (o) {
    case Origin::kStatic:
      return "static";
    case Origin::kApi:
      return "api";
    case Origin::kAuto:
      return "auto";
  }
  return "?";
}

portfwd::Rule rule_of(const json& req) {
  if (!req.contains("rule") || !req["rule"].is_string()) throw std::runtime_error("\"rule\" (a string) is required");
  std::string err;
  auto rule = portfwd::parse_rule(req["rule"].get<std::string>(), &err);
  if (!rule) throw std::runtime_error(err);
  return *rule;
}

std::string endpoint(const engine::IpAddr& a, uint16_t port) { return a.endpoint(port); }

json ports_of(const vswitch::Switch& sw) {
  json list = json::array();
  for (const auto& p : sw.ports()) {
    const auto& o = p.options;
    json macs = json::array();
    for (const auto& m : p.macs) macs.push_back({{"mac", m.mac.to_string()}, {"vlan", m.vlan}});
    const auto& st = p.stats;
    json port = {{"name", o.name},
                 {"uplink", o.uplink},
                 {"isolated", o.isolated},
                 {"macs", macs},
                 {"rx_frames", st.rx_frames},
                 {"rx_bytes", st.rx_bytes},
                 {"tx_frames", st.tx_frames},
                 {"tx_bytes", st.tx_bytes},
                 {"tx_dropped", st.tx_dropped},
                 {"rx_dropped_mtu", st.rx_dropped_mtu},
                 {"tx_dropped_mtu", st.tx_dropped_mtu},
                 {"rx_dropped_vlan", st.rx_dropped_vlan},
                 {"rx_dropped_malformed", st.rx_dropped_malformed},
                 {"flooded", st.flooded}};
    // What the link itself refused before the switch saw it (a VXLAN
    // port's wrong VNI, say), and its own counters.
    if (const link::Port* lp = sw.port(p.id)) {
      port["rx_dropped"] = lp->stats().rx_dropped;
      json counters = json::object();
      for (const auto& [name, value] : lp->link_counters()) counters[name] = value;
      if (!counters.empty()) port["link"] = counters;
    }
    if (o.mode == vswitch::PortOptions::Mode::kAccess) port["vlan"] = o.vlan;
    if (o.mode == vswitch::PortOptions::Mode::kTrunk) port["trunk"] = o.trunk;
    list.push_back(port);
  }
  return list;
}

std::string string_field(const json& req, const char* key) {
  if (!req.contains(key) || !req[key].is_string())
    throw std::runtime_error(std::string("\"") + key + "\" (a string) is required");
  return req[key].get<std::string>();
}

using PortRemover = std::function<bool(const std::string&)>;

json switch_op(const std::string& op, const json& req, vswitch::Switch& sw, const PortOpener& open_port,
               const PortRemover& remove_port) {
  if (op == "list-ports") return json{{"ports", ports_of(sw)}};
  if (op == "add-port") {
    if (!open_port) throw std::runtime_error("ports cannot be added here");
    return json{{"port", open_port(string_field(req, "spec"))}};
  }
  auto name = string_field(req, "name");
  if (!remove_port || !remove_port(name)) throw std::runtime_error("no port named '" + name + "'");
  return json{{"removed", name}};
}

}  // namespace

ControlServer::Handler switch_handler(vswitch::Switch& sw, PortOpener open_port, PortRemover remove_port) {
  return [&sw, open_port, remove_port](const json& req) -> json {
    const std::string op = req.value("op", "");
    if (op == "list-ports" || op == "add-port" || op == "remove-port")
      return switch_op(op, req, sw, open_port, remove_port);
    throw std::runtime_error("unknown op '" + op + "'; allowed: list-ports, add-port, remove-port");
  };
}

ControlServer::Handler stack_handler(stack::Stack& stack, PortOpener open_port) {
  return [&stack, open_port](const json& req) -> json {
    const std::string op = req.value("op", "");
    if (op == "add-forward") {
      auto rule = rule_of(req);
      auto err = stack.published().add(rule, Origin::kApi);
      if (!err.empty()) throw std::runtime_error(err);
      return json{{"forward", {{"rule", rule.to_string()}, {"origin", "api"}, {"error", nullptr}}}};
    }
    if (op == "remove-forward") {
      if (!stack.published().remove(rule_of(req))) throw std::runtime_error("no such forward");
      return json::object();
    }
    if (op == "list-forwards") {
      json list = json::array();
      for (const auto& f : stack.published().list())
        list.push_back({{"rule", f.rule.to_string()},
                        {"origin", origin_name(f.origin)},
                        {"error", f.error.empty() ? json(nullptr) : json(f.error)}});
      return json{{"forwards", list}};
    }
    if (op == "list-flows") {
      json list = json::array();
      for (const auto& f : stack.engine().flows())
        list.push_back({{"proto", f.proto},
                        {"guest", endpoint(f.key.guest, f.key.guest_port)},
                        {"remote", f.key.remote_port == 0 ? json("*") : json(endpoint(f.key.remote, f.key.remote_port))},
                        {"direction", f.inbound ? "inbound" : "outbound"},
                        {"state", f.state},
                        {"bytes_to_host", f.bytes_to_host},
                        {"bytes_to_guest", f.bytes_to_guest}});
      return json{{"flows", list}};
    }
    if (op == "stats") {
      const auto& g = stack.gateway().stats();
      const auto& e = stack.engine().stats();
      json s = {{"frames_in", g.frames_in},
                {"frames_out", g.frames_out},
                {"dropped_malformed", g.dropped_malformed},
                {"dropped_bad_source", g.dropped_bad_source},
                {"dropped_unsupported", g.dropped_unsupported},
                {"dropped_no_neighbor", g.dropped_no_neighbor},
                {"arp_replies", g.arp_replies},
                {"icmp_echo_local", g.icmp_echo_local},
                {"icmp_echo_relayed", g.icmp_echo_relayed},
                {"tcp_flows", stack.engine().tcp_flow_count()},
                {"udp_flows", stack.engine().udp_flow_count()},
                {"tcp_connects", e.tcp_connects},
                {"tcp_inbound", e.tcp_inbound},
                {"tcp_refused", e.tcp_refused},
                {"tcp_unreachable", e.tcp_unreachable},
                {"tcp_limit", e.tcp_limit},
                {"tcp_rate_limited", e.tcp_rate_limited},
                {"guest_share_refused", e.guest_share_refused},
                {"tcp_no_fd", e.tcp_no_fd},
                {"tcp_handshake_resets", e.tcp_handshake_resets},
                {"udp_datagrams_out", e.udp_datagrams_out},
                {"udp_datagrams_in", e.udp_datagrams_in},
                {"udp_dropped", e.udp_dropped},
                {"udp_filtered", e.udp_filtered},
                {"udp_limit", e.udp_limit},
                {"udp_rate_limited", e.udp_rate_limited},
                {"udp_no_fd", e.udp_no_fd},
                {"dns_udp_queries", e.dns_udp_queries},
                {"dns_tcp_sessions", e.dns_tcp_sessions},
                {"dns_tcp_refused", e.dns_tcp_refused},
                {"buffered_bytes", e.buffered_bytes},
                {"buffer_waits", e.buffer_waits},
                {"link_waits", e.link_waits},
                {"memory_trims", e.memory_trims},
                {"tcp_recoveries", e.tcp_recoveries},
                {"tcp_recovery_retransmits", e.tcp_recovery_retransmits},
                {"tcp_loss_probes", e.tcp_loss_probes},
                {"tcp_timeouts", e.tcp_timeouts},
                {"egress_denied", e.egress_denied + g.icmp_echo_denied}};
      const auto& c = stack.config();
      s["limits"] = {{"max_tcp_flows", c.max_tcp_flows},
                     {"max_udp_flows", c.max_udp_flows},
                     {"max_icmp_flows", c.max_icmp_flows},
                     {"max_new_flows_per_second", c.max_new_flows_per_second},
                     {"max_buffered_bytes", c.max_buffered_bytes}};
      const auto& i = stack.icmp().stats();
      s["icmp"] = {{"requests", i.requests}, {"replies", i.replies}, {"errors", i.errors},
                   {"dropped", i.dropped},   {"no_fd", i.no_fd},     {"evicted", i.evicted},
                   {"sockets", i.sockets}};
      const auto& t = stack.transport().stats();
      s["link"] = {{"rx_frames", t.rx_frames},     {"tx_frames", t.tx_frames},
                   {"rx_dropped", t.rx_dropped},   {"tx_dropped", t.tx_dropped},
                   {"tx_finished", t.tx_finished}, {"tx_bad_offload", t.tx_bad_offload},
                   {"tx_queued", t.tx_queued},     {"tx_queue_full", t.tx_queue_full}};
      if (auto* f = stack.faults()) {
        auto dir = [](const link::FaultStats& x) {
          return json{{"frames", x.frames},         {"lost", x.lost},         {"corrupted", x.corrupted},
                      {"duplicated", x.duplicated}, {"reordered", x.reordered}, {"delayed", x.delayed}};
        };
        s["faults"] = {{"to_guest", dir(f->to_inner_stats())}, {"from_guest", dir(f->from_inner_stats())},
                       {"dropped_bad_checksum", g.dropped_bad_checksum}};
      }
      if (const auto* tftp = stack.gateway().tftp()) {
        const auto& ts = tftp->stats();
        s["tftp"] = {{"requests", ts.requests},       {"transfers", ts.transfers},
                     {"completed", ts.completed},     {"timed_out", ts.timed_out},
                     {"aborted", ts.aborted},         {"retransmits", ts.retransmits},
                     {"duplicate_acks", ts.duplicate_acks}, {"bytes_sent", ts.bytes_sent},
                     {"not_found", ts.not_found},     {"access_denied", ts.access_denied},
                     {"write_refused", ts.write_refused}, {"busy", ts.busy},
                     {"bad_requests", ts.bad_requests}, {"dropped", ts.dropped},
                     {"sessions", tftp->sessions()}};
      }
      if (const auto* d = stack.dns()) {
        const auto& ds = d->stats();
        s["dns"] = {{"queries", ds.queries}, {"cache_hits", ds.cache_hits}, {"upstream_queries", ds.upstream_queries},
                    {"servfail", ds.servfail}, {"formerr", ds.formerr}};
      }
      return json{{"stats", s}};
    }
    if (op == "list-leases") {
      json list = json::array();
      for (const auto& l : stack.gateway().dhcp().leases())
        list.push_back({{"mac", l.mac.to_string()},
                        {"address", l.address.to_string()},
                        {"name", l.name},
                        {"state", l.state},
                        {"expires_in", l.expires_in.count()}});
      return json{{"leases", list}};
    }
    if (op == "list-ports" || op == "add-port" || op == "remove-port") {
      auto* sw = stack.vswitch();
      if (sw == nullptr)
        throw std::runtime_error("this slipway serves one guest directly (no switch); serve several to have ports");
      return switch_op(op, req, *sw, open_port, [&stack](const std::string& name) {
        if (name == "gateway") throw std::runtime_error("the gateway's port cannot be removed");
        return stack.remove_guest(name);
      });
    }
    throw std::runtime_error("unknown op '" + op + "'");
  };
}

}  // namespace slipway::control
