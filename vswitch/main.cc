// The `vswitch` program: a learning L2 switch joining VMs, network
// namespaces, other hosts (VXLAN) and, as one port, slipway's NAT gateway.
//
//   vswitch --port SPEC [--port SPEC]... [--isolate] [--control PATH]
//           [--pcap FILE] [--ageing S] [--max-macs N] [--log-level L]
//   vswitch --control PATH [--json] ports | add SPEC | remove NAME | leases
//
// SPECs are those of netstack/cli/port_spec.h. With a `gateway[:CONFIG]`
// port the switch is the gateway's Stack's own (stack::Stack built for
// several guests), so DHCP, DNS with NAME.internal, forwards and the control
// API's lease list come with it; netns ports are then configured with their
// leases. Without one it is a bare vswitch::Switch and netns interfaces are
// only created and brought up. The second form talks to a running vswitch's
// (or `slipway serve`'s) control socket.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/cli/options.h"
#include "netstack/cli/port_spec.h"
#include "netstack/config/config_file.h"
#include "netstack/control/stack_api.h"
#include "netstack/link/pcap.h"
#include "netstack/stack/stack.h"
#include "netstack/sys/clock.h"
#include "netstack/sys/control_client.h"
#include "vswitch/switch.h"

namespace slipway::vswitch {
namespace {

using cli::PortSpec;

// The switch and its ports: the gateway's Stack's switch, or a bare one.
class Fabric {
 public:
  Fabric(uv_loop_t* loop, std::vector<PortSpec> specs, bool isolate, SwitchConfig config) : loop_(loop) {
    auto gw = std::find_if(specs.begin(), specs.end(), [](const PortSpec& s) { return s.kind == PortSpec::Kind::kGateway; });
    if (gw != specs.end()) {
      cli::NetworkOptions net;
      if (!gw->value.empty()) static_cast<config::Settings&>(net) = config::load_file(gw->value, net).settings;
      if (net.mode == "mirrored") throw std::runtime_error("gateway: mirrored mode serves one guest, not a switch");
      stack_ = std::make_unique<stack::Stack>(loop, net.stack_config());
      iface_ = net.guest_interface();
      specs.erase(gw);
      if (std::any_of(specs.begin(), specs.end(), [](const PortSpec& s) { return s.kind == PortSpec::Kind::kGateway; }))
        throw std::runtime_error("one gateway port at most");
    } else {
      clock_ = std::make_unique<sys::LoopClock>(loop);
      switch_ = std::make_unique<Switch>(*clock_, config);
      iface_.configure = false;
    }
    for (auto& s : specs) {
      s.options.isolated = isolate && !s.options.uplink;
      add(s);
    }
  }
  ~Fabric() {
    // Ports before the switch that holds them.
    if (switch_)
      for (auto& [id, port] : ports_) switch_->detach(id);
    ports_.clear();
  }

  Switch& sw() { return stack_ ? *stack_->vswitch() : *switch_; }
  stack::Stack* stack() { return stack_.get(); }

  // Opens and attaches the port; its name.
  std::string add(const PortSpec& spec) {
    if (sw().find(spec.options.name)) throw std::invalid_argument("a port named '" + spec.options.name + "' exists");
    if (stack_) {
      cli::add_port(loop_, *stack_, spec, iface_);
    } else {
      std::unique_ptr<link::Port> port;
      switch (spec.kind) {
        case PortSpec::Kind::kNetns:
          port = cli::open_netns_port(loop_, spec, iface_, nullptr);
          break;
        case PortSpec::Kind::kVhostUser:
        case PortSpec::Kind::kStream:
        case PortSpec::Kind::kDgram:
          port = cli::open_vm_port(loop_, spec, iface_.mtu);
          break;
        case PortSpec::Kind::kVxlan:
          port = cli::open_vxlan_port(loop_, spec);
          break;
        case PortSpec::Kind::kGateway:
          throw std::invalid_argument("a gateway port is given at start-up only");
      }
      auto id = switch_->attach(*port, spec.options);
      ports_.emplace_back(id, std::move(port));
    }
    spdlog::info("port {}: {}", spec.options.name, spec.to_string());
    return spec.options.name;
  }

  bool remove(const std::string& name) {
    if (stack_) {
      if (name == "gateway") throw std::runtime_error("the gateway's port cannot be removed");
      return stack_->remove_guest(name);
    }
    auto id = switch_->find(name);
    if (!id) return false;
    switch_->detach(*id);
    std::erase_if(ports_, [&](const auto& p) { return p.first == *id; });
    return true;
  }

 private:
  uv_loop_t* loop_;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<sys::LoopClock> clock_;
  std::unique_ptr<Switch> switch_;
  std::vector<std::pair<Switch::PortId, std::unique_ptr<link::Port>>> ports_;
  ns::GuestInterface iface_;
};

void set_up_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("vswitch");
  logger->set_pattern("vswitch: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

int run_switch(int argc, char** argv) {
  CLI::App app{"vswitch: a learning L2 switch joining VMs, network namespaces, other hosts (VXLAN) and slipway's "
               "NAT gateway.\n",
               "vswitch"};
  std::vector<std::string> port_texts;
  bool isolate = false;
  std::string control_path, pcap_path, log_level = "warn";
  unsigned ageing = 300;
  size_t max_macs = 4096;
  app.add_option("--port", port_texts,
                 "A port (repeatable): vhost-user:PATH, stream:PATH, dgram:PATH (VMs; vswitch is the server), "
                 "netns:PATH|PID (a TAP in that namespace), "
                 "vxlan:ADDR[:PORT],vni=N[,local=ADDR[:PORT]] (Ethernet in VXLAN over UDP to one host, "
                 "e.g. a Linux vxlan device or another vswitch; port 4789 by default, local binds any "
                 "address:4789 by default; an uplink), "
                 "gateway[:CONFIG.toml] (slipway's NAT gateway with DHCP and DNS); each may end in ,name=NAME, "
                 ",vlan=N (access) or ,trunk=N+M (trunk); netns also ,ifname=IF ,mac=MAC ,mtu=N; "
                 "vxlan also ,mtu=N (inner MTU, default 1500)")
      ->required()
      ->type_name("SPEC");
  app.add_flag("--isolate", isolate, "Ports reach the gateway and VXLAN links (uplinks) but not each other");
  app.add_option("--control", control_path,
                 "Serve the control API on this unix socket (list, add and remove ports; leases with a gateway)");
  app.add_option("--pcap", pcap_path, "Record every frame that enters the switch to this file");
  app.add_option("--ageing", ageing, "Seconds after which an unused learnt MAC is forgotten")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  app.add_option("--max-macs", max_macs, "Most learnt MACs (a full table learns nothing new)")
      ->check(CLI::Range(size_t{16}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.footer("Control: vswitch --control PATH [--json] ports | add SPEC | remove NAME | leases");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<PortSpec> specs;
  try {
    for (const auto& t : port_texts) specs.push_back(cli::parse_port_spec(t));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "vswitch: %s\n", e.what());
    return 1;
  }
  std::vector<std::string> names;
  for (auto& s : specs) {
    std::string base = s.options.name;
    for (int i = 2; std::find(names.begin(), names.end(), s.options.name) != names.end(); ++i)
      s.options.name = base + "-" + std::to_string(i);
    names.push_back(s.options.name);
  }
  set_up_logging(log_level);
  ::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 0;
  // The signal handles outlive the block below: their close callbacks run
  // in the last uv_run.
  uv_signal_t sigs[2];
  {
    std::unique_ptr<Fabric> fabric;
    std::unique_ptr<link::PcapWriter> pcap;
    std::unique_ptr<control::ControlServer> control;
    try {
      fabric = std::make_unique<Fabric>(&loop, specs, isolate,
                                        SwitchConfig{std::chrono::seconds(ageing), max_macs});
      if (!pcap_path.empty()) {
        pcap = link::PcapWriter::open(pcap_path);
        fabric->sw().set_monitor([w = pcap.get()](Switch::PortId, link::Frame f) {
          w->write(f, std::chrono::system_clock::now());
        });
      }
      if (!control_path.empty()) {
        auto open = [&fabric, isolate](const std::string& text) {
          auto spec = cli::parse_port_spec(text);
          spec.options.isolated = isolate && !spec.options.uplink;
          return fabric->add(spec);
        };
        auto handler = fabric->stack()
                           ? control::stack_handler(*fabric->stack(), open)
                           : control::switch_handler(fabric->sw(), open,
                                                     [&fabric](const std::string& n) { return fabric->remove(n); });
        control = std::make_unique<control::ControlServer>(&loop, control_path, std::move(handler));
      }
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      code = 1;
    }
    if (code == 0) {
      for (int i = 0; i < 2; ++i) {
        uv_signal_init(&loop, &sigs[i]);
        sigs[i].data = &loop;
        uv_signal_start(
            &sigs[i],
            [](uv_signal_t* h, int signum) {
              spdlog::info("signal {}: shutting down", signum);
              uv_stop(static_cast<uv_loop_t*>(h->data));
            },
            i == 0 ? SIGINT : SIGTERM);
      }
      uv_run(&loop, UV_RUN_DEFAULT);
      for (const auto& p : fabric->sw().ports()) {
        std::string link;
        if (const link::Port* lp = fabric->sw().port(p.id)) {
          link = fmt::format(", {} refused by the link", lp->stats().rx_dropped);
          for (const auto& [name, value] : lp->link_counters())
            if (value != 0) link += fmt::format(", {} {}", name, value);
        }
        spdlog::info("port {}: {} frames in, {} out, {} dropped{}", p.options.name, p.stats.rx_frames,
                     p.stats.tx_frames, p.stats.tx_dropped, link);
      }
      for (auto& s : sigs) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
    }
    control.reset();
    if (fabric) fabric->sw().set_monitor(nullptr);
    fabric.reset();
    pcap.reset();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return code;
}

// --- vswitch --control PATH ... ---------------------------------------------

using nlohmann::json;
using control::cell;

void print_ports(const json& reply) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "VLANS", "MACS", "RX FRAMES", "RX DROPPED", "TX FRAMES", "TX DROPPED", "FLAGS"}};
  for (const json& p : reply.value("ports", json::array())) {
    std::string vlans = "-";
    if (p.contains("vlan")) vlans = "access " + cell(p, "vlan");
    if (p.contains("trunk")) {
      vlans = "trunk ";
      for (const auto& v : p["trunk"]) vlans += (vlans.size() > 6 ? "+" : "") + v.dump();
    }
    std::string macs;
    for (const json& m : p.value("macs", json::array()))
      macs += (macs.empty() ? "" : " ") + cell(m, "mac") + (m.value("vlan", 0) ? "@" + cell(m, "vlan") : "");
    std::string flags;
    if (p.value("uplink", false)) flags += "uplink ";
    if (p.value("isolated", false)) flags += "isolated ";
    uint64_t dropped = p.value("tx_dropped", uint64_t{0}) + p.value("tx_dropped_mtu", uint64_t{0});
    // Refused by the link (a VXLAN port: wrong VNI, source, header) or by
    // the switch (MTU, VLAN, malformed); `--json` has each counter.
    uint64_t rx_dropped = p.value("rx_dropped", uint64_t{0}) + p.value("rx_dropped_mtu", uint64_t{0}) +
                          p.value("rx_dropped_vlan", uint64_t{0}) + p.value("rx_dropped_malformed", uint64_t{0});
    rows.push_back({cell(p, "name"), vlans, macs.empty() ? "-" : macs, cell(p, "rx_frames"),
                    std::to_string(rx_dropped), cell(p, "tx_frames"), std::to_string(dropped),
                    flags.empty() ? "-" : flags.substr(0, flags.size() - 1)});
  }
  control::print_table(rows);
}

void print_leases(const json& reply) {
  const json leases = reply.value("leases", json::array());
  if (leases.empty()) {
    std::printf("no leases\n");
    return;
  }
  std::vector<std::vector<std::string>> rows{{"MAC", "ADDRESS", "NAME", "STATE", "EXPIRES IN"}};
  for (const json& l : leases) {
    std::string name = cell(l, "name");
    rows.push_back({cell(l, "mac"), cell(l, "address"), name.empty() ? "-" : name, cell(l, "state"),
                    cell(l, "expires_in") + " s"});
  }
  control::print_table(rows);
}

int run_control(int argc, char** argv) {
  CLI::App app{"vswitch --control PATH [--json] ports | add SPEC | remove NAME | leases\n"
               "  manage the ports of a running vswitch (or slipway serve with several guests) through its "
               "control socket.",
               "vswitch"};
  std::string path, spec, name;
  bool raw = false;
  app.add_option("--control", path, "the control socket of a running vswitch or slipway")->required();
  app.add_flag("--json", raw, "print the reply as it came (one JSON object)");
  app.require_subcommand(1, 1);
  app.fallthrough();
  CLI::App* ports = app.add_subcommand("ports", "the ports with their VLANs, learnt MACs and counters");
  CLI::App* add = app.add_subcommand("add", "open a port and attach it (SPEC as for --port, not gateway)");
  add->add_option("spec", spec, "the port")->required();
  CLI::App* remove = app.add_subcommand("remove", "detach a port and close it");
  remove->add_option("name", name, "the port's name, as `ports` shows it")->required();
  CLI::App* leases = app.add_subcommand("leases", "the gateway's DHCP leases");
  app.footer("Exit status: 0 when the reply is ok, 1 when it is not (or there is none), 2 on usage errors.");
  if (argc > 2 && (std::string_view(argv[2]) == "--help" || std::string_view(argv[2]) == "-h")) {
    std::printf("%s", app.help().c_str());
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  json request;
  if (ports->parsed()) request = {{"op", "list-ports"}};
  if (add->parsed()) request = {{"op", "add-port"}, {"spec", spec}};
  if (remove->parsed()) request = {{"op", "remove-port"}, {"name", name}};
  if (leases->parsed()) request = {{"op", "list-leases"}};
  int status = 0;
  auto answered = control::request_for_tool("vswitch", path, request, raw, &status);
  if (!answered) return status;
  const json& reply = *answered;
  if (ports->parsed()) print_ports(reply);
  if (add->parsed()) std::printf("added %s\n", cell(reply, "port").c_str());
  if (remove->parsed()) std::printf("removed %s\n", name.c_str());
  if (leases->parsed()) print_leases(reply);
  return 0;
}

}  // namespace
}  // namespace slipway::vswitch

int main(int argc, char** argv) {
  // The control form has no --port.
  bool has_port = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port" || a.rfind("--port=", 0) == 0) has_port = true;
  }
  if (!has_port && argc > 1 && std::string_view(argv[1]) == "--control")
    return slipway::vswitch::run_control(argc, argv);
  return slipway::vswitch::run_switch(argc, argv);
}
