// Stack: the one place a guest's network is assembled.
//
// Theory of operation
//   A Stack owns, on one libuv loop:
//     transport Port -> [FaultPort] -> [PcapPort] <-> Gateway -> Engine (LwipEngine or SlirpEngine) -> host sockets
//                                          |-> IcmpEchoRelay (ping sockets)
//                                     dns::Proxy (DNS at the DNS address, through the engine)
//                                     PublishedPorts, AutoForwarder (portfwd: host listeners -> engine)
//   and the one Clock all of them read. The `slipway` program, the C API and
//   the control API build or use a Stack; nothing else assembles these
//   parts. The Stack wires the outputs back: the engine's packets and the
//   relay's answers go to the gateway to be framed for the guest; the DNS
//   proxy answers the engine's DNS queries; published ports feed the
//   engine.
//
//   Order: parts are built transport first, then the relay, the engine, the
//   gateway, the DNS proxy and the forwards; they are destroyed in the
//   reverse order, so that flows closing in the engine's destructor can
//   still send their RSTs through the gateway to the transport. If a part
//   cannot be built, the constructor throws and everything built so far is
//   destroyed (no handle outlives a half-built stack).
//
//   Several guests: a Stack built without a transport puts its gateway on
//   an internal vswitch::Switch (through a PatchPort pair, as an uplink
//   port named "gateway"), and add_guest() attaches each guest's Port to
//   it; the guests share the gateway, one DHCP lease each (10.0.2.15, .16,
//   ...; static leases from StackConfig), and reach each other through the
//   switch. Each lease's name answers as NAME.internal in the DNS proxy
//   (its IPv4 address, and with IPv6 the guest's SLAAC address from its MAC),
//   and published ports may name their guest (portfwd/rule.h). A single
//   guest keeps the direct path: a Stack built with its transport has no
//   switch. With a switch, --pcap records the gateway's own port.
//
//   Automatic forwarding is switched on after construction, with the
//   resource it needs: a sock_diag socket inside the guest's namespace
//   (forward_from_namespace) or the gateway's agent port for portfwd-agent
//   in a VM (forward_from_agent).
//
// Limits: one Stack per process (lwIP keeps global state; a second one
// throws std::logic_error). A published port that cannot be bound is logged
// and skipped, or, with StackConfig::publish_strict, makes the constructor
// throw PublishError.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dns-proxy/proxy.h"
#include "netstack/engine/engine.h"
#include "netstack/engine/icmp_relay.h"
#include "netstack/gateway/gateway.h"
#include "netstack/link/fault_port.h"
#include "netstack/link/pcap.h"
#include "netstack/link/port.h"
#include "netstack/sys/clock.h"
#include "portfwd/auto_forward.h"
#include "portfwd/listeners.h"
#include "portfwd/published_ports.h"
#include "portfwd/rule.h"
#include "vswitch/switch.h"

namespace slipway::stack {

// What terminates the guest's TCP and UDP (engine/engine.h).
enum class EngineKind { kLwip, kSlirp };

struct StackConfig {
  gateway::GatewayConfig gateway;   // link layer, addresses, DHCP, RA
  EngineKind engine = EngineKind::kLwip;
  // Limits (engine.h, icmp_relay.h): flows at once, new flows a second
  // (0: none), bytes held for all flows (0: none).
  size_t max_tcp_flows = 16384;
  size_t max_udp_flows = 4096;
  size_t max_icmp_flows = 1024;
  uint32_t max_new_flows_per_second = 10'000;
  uint64_t max_buffered_bytes = 256ull << 20;
  bool dns = true;                  // answer DNS at the DNS addresses
  dns::ProxyConfig dns_config;      // host.internal is added, naming the gateway
  std::vector<portfwd::Rule> publish;
  bool publish_source_gateway = false;  // the guest sees the gateway, not the client
  bool publish_strict = false;          // a rule that cannot be bound fails the construction
  std::string pcap;                     // record the guest link to this file ("": no)
  link::LinkFaults link_faults;         // faults on the guest link (none by default)
  // Automatic forwarding, once switched on.
  std::set<uint16_t> forward_exclude;
  portfwd::HostAddresses forward_hosts = portfwd::HostAddresses::kLoopback;
};

// A published port could not be bound (publish_strict).
class PublishError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Stack {
 public:
  // `clock`: null for the loop's own (LoopClock); tests pass a ManualClock.
  // Throws std::runtime_error (and PublishError) when a part cannot be built.
  Stack(uv_loop_t* loop, std::unique_ptr<link::Port> transport, StackConfig config,
        std::unique_ptr<sys::Clock> clock = nullptr);
  // Several guests: no transport yet; add_guest() attaches them to the
  // internal switch.
  Stack(uv_loop_t* loop, StackConfig config, std::unique_ptr<sys::Clock> clock = nullptr);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Automatic forwarding from the guest namespace's socket table, polled
  // through sock_diag_fd (owned from here on).
  void forward_from_namespace(int sock_diag_fd);
  // Automatic forwarding from portfwd-agent's reports on the gateway's
  // TCP `agent_port` (VMs).
  void forward_from_agent(uint16_t agent_port);

  // Attaches a guest's Port to the internal switch (a Stack built without a
  // transport; std::logic_error otherwise). Throws std::invalid_argument for
  // bad options (see vswitch::Switch::attach), or a port name in use.
  vswitch::Switch::PortId add_guest(std::unique_ptr<link::Port> port, vswitch::PortOptions options);
  // Detaches and destroys a guest's port; its MACs are forgotten, its
  // lease stays (a guest that comes back gets it again). False if unknown.
  bool remove_guest(const std::string& name);
  vswitch::Switch* vswitch() { return switch_.get(); }

  // Applies a re-read configuration (SIGHUP): the difference in published
  // ports and the DNS settings. Everything else needs a restart (the caller
  // says so).
  void reload(const StackConfig& next);

  const sys::Clock& clock() const { return *clock_; }
  link::Port& transport() { return *transport_; }
  gateway::Gateway& gateway() { return *gateway_; }
  const gateway::Gateway& gateway() const { return *gateway_; }
  engine::Engine& engine() { return *engine_; }
  const engine::Engine& engine() const { return *engine_; }
  engine::IcmpEchoRelay& icmp() { return *icmp_; }
  dns::Proxy* dns() { return dns_.get(); }
  const dns::Proxy* dns() const { return dns_.get(); }
  portfwd::PublishedPorts& published() { return *published_; }
  const StackConfig& config() const { return config_; }

  link::FaultPort* faults() { return faults_.get(); }

  // One line of counters at info level (at exit).
  void log_stats() const;

 private:
  // The DNS configuration plus host.internal naming the gateway.
  dns::ProxyConfig with_builtin_names(dns::ProxyConfig config) const;
  void reload_dns(const dns::ProxyConfig& before, const dns::ProxyConfig& after);
  void build(std::unique_ptr<link::Port> transport);
  // NAME.internal for every named lease, after the leases changed.
  void update_names();

  uv_loop_t* loop_;
  StackConfig config_;
  // Destroyed in reverse order: see the top of this file.
  std::unique_ptr<sys::Clock> clock_;
  // Several guests (see above); declared first: destroyed after the switch.
  std::vector<std::unique_ptr<link::Port>> guest_ports_;
  std::unique_ptr<link::Port> switch_end_;  // the gateway's port on the switch
  std::unique_ptr<vswitch::Switch> switch_;
  std::unique_ptr<link::Port> transport_;
  std::unique_ptr<link::FaultPort> faults_;
  std::unique_ptr<link::PcapPort> pcap_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<engine::IcmpEchoRelay> icmp_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<dns::Proxy> dns_;
  std::unique_ptr<portfwd::PublishedPorts> published_;
  std::unique_ptr<portfwd::AutoForwarder> auto_forward_;
  std::map<std::string, std::vector<std::string>> names_;  // NAME.internal -> addresses
};

}  // namespace slipway::stack
