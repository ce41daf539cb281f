// See stack.h.
#include "netstack/stack/stack.h"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>

#include "netstack/engine/lwip_engine.h"
#include "netstack/engine/slirp_engine.h"
#include "netstack/link/patch_port.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/udp.h"

namespace slipway::stack {

namespace {

engine::EngineConfig engine_config_for(const StackConfig& c) {
  engine::EngineConfig e;
  e.nat = c.gateway.nat;
  e.mtu = c.gateway.mtu;
  e.max_tcp_flows = c.max_tcp_flows;
  e.max_udp_flows = c.max_udp_flows;
  e.max_new_flows_per_second = c.max_new_flows_per_second;
  e.max_buffered_bytes = c.max_buffered_bytes;
  return e;
}

// Every flow holds a host socket: a descriptor limit below the flow limits
// means flows are refused (RST, ICMP) before the limits are reached. Said
// once, at start, so that the rate-limited "out of descriptors" warnings
// later have an explanation.
void check_descriptor_limit(const StackConfig& c) {
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return;
  const uint64_t wanted = uint64_t{c.max_tcp_flows} + c.max_udp_flows + c.max_icmp_flows + 64;
  if (nofile.rlim_cur < wanted)
    spdlog::info("the descriptor limit ({}) is below the flow limits (TCP {} + UDP {} + ICMP {}): past about {} "
                 "flows, new ones are refused (RST or ICMP unreachable)",
                 static_cast<uint64_t>(nofile.rlim_cur), c.max_tcp_flows, c.max_udp_flows, c.max_icmp_flows,
                 static_cast<uint64_t>(nofile.rlim_cur));
}

}  // namespace

Stack::Stack(uv_loop_t* loop, std::unique_ptr<link::Port> transport, StackConfig config,
             std::unique_ptr<sys::Clock> clock)
    : loop_(loop),
      config_(std::move(config)),
      clock_(clock ? std::move(clock) : std::make_unique<sys::LoopClock>(loop)) {
  build(std::move(transport));
}

Stack::Stack(uv_loop_t* loop, StackConfig config, std::unique_ptr<sys::Clock> clock)
    : loop_(loop),
      config_(std::move(config)),
      clock_(clock ? std::move(clock) : std::make_unique<sys::LoopClock>(loop)) {
  switch_ = std::make_unique<vswitch::Switch>(*clock_);
  auto [gateway_end, switch_end] = link::PatchPort::make_pair();
  switch_end_ = std::move(switch_end);
  vswitch::PortOptions o;
  o.name = "gateway";
  o.uplink = true;
  switch_->attach(*switch_end_, o);
  build(std::move(gateway_end));
}

vswitch::Switch::PortId Stack::add_guest(std::unique_ptr<link::Port> port, vswitch::PortOptions options) {
  if (!switch_) throw std::logic_error("this stack serves one guest directly: it has no switch");
  if (switch_->find(options.name)) throw std::invalid_argument("a port named '" + options.name + "' exists");
  auto id = switch_->attach(*port, std::move(options));
  guest_ports_.push_back(std::move(port));
  return id;
}

bool Stack::remove_guest(const std::string& name) {
  if (!switch_) return false;
  auto id = switch_->find(name);
  if (!id || name == "gateway") return false;
  link::Port* port = switch_->port(*id);
  switch_->detach(*id);
  std::erase_if(guest_ports_, [port](const auto& p) { return p.get() == port; });
  return true;
}

void Stack::build(std::unique_ptr<link::Port> transport) {
  check_descriptor_limit(config_);
  transport_ = std::move(transport);
  link::Port* guest_side = transport_.get();
  if (config_.link_faults.any()) {
    // The gateway must catch what the faults corrupt (fault_port.h).
    faults_ = std::make_unique<link::FaultPort>(loop_, *guest_side, config_.link_faults);
    guest_side = faults_.get();
    if (config_.link_faults.corrupt > 0) config_.gateway.verify_checksums = true;
    spdlog::warn("link faults on the guest link: {}", config_.link_faults.to_string());
  }
  if (!config_.pcap.empty()) {
    pcap_ = std::make_unique<link::PcapPort>(*guest_side, link::PcapWriter::open(config_.pcap));
    guest_side = pcap_.get();
  }
  icmp_ = std::make_unique<engine::IcmpEchoRelay>(
      loop_, [this](const engine::IcmpEchoReply& r) { gateway_->echo_reply(r); },
      [this](const engine::IcmpError& e) { gateway_->echo_error(e); }, engine::IcmpEchoRelay::Mode::kAuto,
      config_.max_icmp_flows);
  auto to_gateway = [this](wire::MutBytes frame, const wire::Offload& offload) { gateway_->to_guest(frame, offload); };
  if (config_.engine == EngineKind::kSlirp)
    engine_ = std::make_unique<engine::SlirpEngine>(loop_, *clock_, engine_config_for(config_), to_gateway);
  else
    engine_ = std::make_unique<engine::LwipEngine>(loop_, *clock_, engine_config_for(config_), to_gateway);
  gateway_ = std::make_unique<gateway::Gateway>(loop_, *clock_, config_.gateway, *engine_, icmp_.get());
  link::connect(*guest_side, *gateway_);
  // The engine leaves to the link what the link can do (checksums, TSO),
  // now and whenever that changes (a new VM frontend).
  auto offloads = [this, guest_side] {
    auto c = guest_side->capabilities();
    engine_->set_link_offloads(c.csum, c.tso);
  };
  offloads();
  guest_side->set_capabilities_listener(offloads);
  // Backpressure: while frames for the guest pile up in the transport's
  // queue, the engine stops reading host sockets (link/port.h). With a
  // switch (several guests) the gateway's side is a patch port, always
  // ready: one slow guest must not stall the others.
  // Several guests: each switch port is one guest for the engine's limits
  // (no one guest holds more than half of a flow limit).
  if (switch_) engine_->set_guest_identity([this] { return switch_->ingress(); });
  engine_->set_link_ready(guest_side->tx_ready());
  guest_side->set_tx_ready_listener([this](bool ready) { engine_->set_link_ready(ready); });

  if (config_.dns) {
    dns_ = std::make_unique<dns::Proxy>(loop_, with_builtin_names(config_.dns_config), clock_.get());
    // A UDP answer must fit one datagram on the guest link (IPv6's header
    // is the larger).
    size_t max_udp = config_.gateway.mtu - wire::Ipv6Header::kLen - wire::UdpDatagram::kHeaderLen;
    engine_->set_dns_resolver([this, max_udp](wire::Bytes query, bool over_tcp,
                                              std::function<void(std::vector<std::byte>)> respond) {
      return dns_->resolve(query, over_tcp ? dns::Transport::kTcp : dns::Transport::kUdp, std::move(respond),
                           max_udp);
    });
  }

  // Guests named in rules are found by their leases' names.
  published_ = std::make_unique<portfwd::PublishedPorts>(
      loop_, *engine_, config_.gateway.nat.guest, config_.publish_source_gateway,
      [this](const std::string& guest) { return gateway_->dhcp().address_of(guest); });
  gateway_->set_lease_listener([this] {
    update_names();
    published_->guests_changed();
  });
  update_names();  // static leases are named from the start
  for (const auto& rule : config_.publish) {
    auto err = published_->add(rule, portfwd::PublishedPorts::Origin::kStatic);
    if (err.empty()) continue;
    if (config_.publish_strict) throw PublishError("cannot publish " + rule.to_string() + ": " + err);
    spdlog::error("cannot publish {}: {}", rule.to_string(), err);
  }
}

void Stack::update_names() {
  if (!dns_) return;
  std::map<std::string, std::vector<std::string>> now;
  const auto& nat = config_.gateway.nat;
  auto add = [&](const std::string& name, wire::Ipv4Addr v4, std::optional<wire::MacAddr> mac) {
    if (name.empty()) return;
    auto& addrs = now[name + ".internal"];
    addrs.push_back(v4.to_string());
    // The guest's own SLAAC address in the prefix (a Linux guest forms it
    // from its MAC, EUI-64).
    if (nat.ipv6 && mac) {
      wire::Ipv6Addr a = nat.prefix6;
      const auto& m = mac->octets;
      uint8_t iid[8] = {static_cast<uint8_t>(m[0] ^ 0x02), m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]};
      for (size_t i = 0; i < 8; ++i) a.octets[8 + i] = iid[i];
      addrs.push_back(a.to_string());
    }
  };
  for (const auto& st : config_.gateway.dhcp_statics) add(st.name, st.address, st.mac);
  for (const auto& l : gateway_->dhcp().leases())
    if (std::string(l.state) != "offered") add(l.name, l.address, l.mac);
  for (auto& [name, addrs] : now) {
    std::sort(addrs.begin(), addrs.end());
    addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
    auto it = names_.find(name);
    if (it == names_.end() || it->second != addrs) dns_->set_local_name(name, addrs);
  }
  for (const auto& [name, addrs] : names_)
    if (!now.contains(name)) dns_->set_local_name(name, {});
  names_ = std::move(now);
}

Stack::~Stack() {
  // Members go in reverse order of declaration (see stack.h); the sinks of
  // the transport and the gateway point at each other, so cut them first:
  // nothing may reach a part that is already gone.
  link::Port& guest_side = pcap_ ? static_cast<link::Port&>(*pcap_) : *transport_;
  guest_side.set_tx_ready_listener(nullptr);  // the engine goes before the transport
  auto_forward_.reset();
  published_.reset();
  dns_.reset();
  engine_.reset();  // closing flows still send RSTs through the gateway
  icmp_.reset();
  if (gateway_) gateway_->set_sink(nullptr);
  guest_side.set_sink(nullptr);
  guest_side.set_capabilities_listener(nullptr);
}

void Stack::forward_from_namespace(int sock_diag_fd) {
  auto_forward_ = std::make_unique<portfwd::AutoForwarder>(loop_, *published_, sock_diag_fd,
                                                           config_.forward_exclude, config_.forward_hosts);
}

void Stack::forward_from_agent(uint16_t agent_port) {
  auto_forward_ = std::make_unique<portfwd::AutoForwarder>(loop_, *published_, -1, config_.forward_exclude,
                                                           config_.forward_hosts);
  engine_->set_line_service(agent_port,
                            [af = auto_forward_.get()](std::string_view line) { af->update_from_agent(line); });
}

dns::ProxyConfig Stack::with_builtin_names(dns::ProxyConfig dc) const {
  const auto& nat = config_.gateway.nat;
  auto& names = dc.static_names["host.internal"];
  names.push_back(nat.gateway.to_string());
  if (nat.ipv6) names.push_back(nat.gateway6.to_string());
  return dc;
}

void Stack::reload(const StackConfig& next) {
  auto has = [](const std::vector<portfwd::Rule>& rules, const portfwd::Rule& r) {
    return std::find(rules.begin(), rules.end(), r) != rules.end();
  };
  for (const auto& r : config_.publish)
    if (!has(next.publish, r) && published_->remove(r)) spdlog::info("reload: removed forward {}", r.to_string());
  for (const auto& r : next.publish) {
    if (has(config_.publish, r)) continue;
    auto err = published_->add(r, portfwd::PublishedPorts::Origin::kStatic);
    if (err.empty()) {
      spdlog::info("reload: added forward {}", r.to_string());
    } else {
      spdlog::error("reload: cannot publish {}: {}", r.to_string(), err);
    }
  }
  config_.publish = next.publish;
  reload_dns(config_.dns_config, next.dns_config);
}

void Stack::reload_dns(const dns::ProxyConfig& a, const dns::ProxyConfig& b) {
  if (!dns_) return;
  bool same = a.upstreams == b.upstreams && a.routes == b.routes && a.static_names == b.static_names &&
              a.hosts_file == b.hosts_file && a.cache == b.cache;
  try {
    if (!same) {
      dns_->reconfigure(with_builtin_names(b));
      config_.dns_config = b;
      spdlog::info("reload: DNS settings applied");
    } else {
      dns_->reload();  // resolv.conf and the hosts file may have changed
    }
  } catch (const std::exception& e) {
    spdlog::error("reload: keeping the DNS settings: {}", e.what());
  }
}

void Stack::log_stats() const {
  const auto& g = gateway_->stats();
  const auto& e = engine_->stats();
  spdlog::info("frames in {} out {}; tcp connects {} refused {} unreachable {}; udp out {} in {}; dropped "
               "malformed {} bad-source {} unsupported {}",
               g.frames_in, g.frames_out, e.tcp_connects, e.tcp_refused, e.tcp_unreachable, e.udp_datagrams_out,
               e.udp_datagrams_in, g.dropped_malformed, g.dropped_bad_source, g.dropped_unsupported);
  if (const auto* t = gateway_->tftp()) {
    const auto& ts = t->stats();
    spdlog::info("tftp: {} transfers, {} completed, {} timed out, {} aborted, {} retransmits, {} bytes; refused: {} "
                 "not found, {} access, {} writes, {} busy, {} malformed",
                 ts.transfers, ts.completed, ts.timed_out, ts.aborted, ts.retransmits, ts.bytes_sent, ts.not_found,
                 ts.access_denied, ts.write_refused, ts.busy, ts.bad_requests);
  }
  if (faults_) {
    // At warn level, as the faults' start-up line: whoever turned faults on
    // wants to see what they did.
    auto line = [](const link::FaultStats& f) {
      return fmt::format("{} frames, {} lost, {} corrupted, {} duplicated, {} reordered, {} delayed", f.frames, f.lost,
                         f.corrupted, f.duplicated, f.reordered, f.delayed);
    };
    spdlog::warn(
        "link faults: to the guest {}; from the guest {}; gateway dropped {} with bad checksums; TCP to the guest "
        "recovered in {} fast recoveries ({} segments retransmitted), {} loss probes and {} retransmission time-outs",
        line(faults_->to_inner_stats()), line(faults_->from_inner_stats()), g.dropped_bad_checksum, e.tcp_recoveries,
        e.tcp_recovery_retransmits, e.tcp_loss_probes, e.tcp_timeouts);
  }
}

}  // namespace slipway::stack
