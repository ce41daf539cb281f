// The `slipway` program: `run`, `attach` and `serve`.
//
// All build the same pipeline on one libuv loop:
//   transport Port -> [PcapPort] <-> Gateway (ARP, DHCP, ICMP, DNS, lwIP engine)
// `run` starts COMMAND in a new namespace (transport: a TAP fd) and exits with
// its exit status; `attach` serves an existing namespace, and `serve` a VM
// (vhost-user, stream or dgram socket), until SIGINT or SIGTERM.
// `config check FILE` validates a configuration file and prints the
// effective configuration. With --config, SIGHUP re-reads the file and applies
// its forwards (added and removed without touching other flows) and its DNS
// settings (upstreams, routes, names, hosts file, cache; flows untouched);
// other changes are logged as needing a restart.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <memory>
#include <optional>

#include "netstack/cli/options.h"
#include "netstack/config/config_file.h"
#include "netstack/control/gateway_api.h"
#include "netstack/gateway/auto_forward.h"
#include "netstack/gateway/gateway.h"
#include "netstack/link/pcap.h"
#include "netstack/link/tap_port.h"
#include "netstack/link/vm_transports.h"
#include "netstack/ns/namespace.h"

namespace slipway::cli {
namespace {

// The data path for one guest interface.
class Session {
 public:
  // sock_diag_fd (owned, or -1): the guest namespace's socket table, for
  // automatic forwarding.
  // agent: serve portfwd-agent's reports on the gateway's agent port (VMs).
  Session(uv_loop_t* loop, std::unique_ptr<link::Port> transport, const NetworkOptions& o, int sock_diag_fd,
          bool agent)
      : tap_(std::move(transport)) {
    link::Port* guest_side = tap_.get();
    if (!o.pcap.empty()) {
      pcap_ = std::make_unique<link::PcapPort>(*tap_, link::PcapWriter::open(o.pcap));
      guest_side = pcap_.get();
    }
    gateway_ = std::make_unique<gateway::Gateway>(loop, o.gateway_config());
    link::connect(*guest_side, *gateway_);
    if (!o.control.empty())
      control_ = std::make_unique<control::ControlServer>(loop, o.control, control::gateway_handler(*gateway_));
    std::set<uint16_t> excluded(o.forward_exclude.begin(), o.forward_exclude.end());
    // Mirrored mode with addresses = "all": on every host address, as WSL does.
    auto hosts = o.mode == "mirrored" && o.mirrored_addresses == "all" ? portfwd::HostAddresses::kAll
                                                                        : portfwd::HostAddresses::kLoopback;
    if (sock_diag_fd >= 0) {
      auto_forward_ =
          std::make_unique<gateway::AutoForwarder>(loop, gateway_->published(), sock_diag_fd, excluded, hosts);
    } else if (agent) {
      // VM mode: portfwd-agent in the guest reports its listeners.
      auto_forward_ = std::make_unique<gateway::AutoForwarder>(loop, gateway_->published(), -1, excluded, hosts);
      gateway_->engine().set_line_service(o.agent_port, [af = auto_forward_.get()](std::string_view line) {
        af->update_from_agent(line);
      });
    }
  }
  ~Session() {
    control_.reset();
    auto_forward_.reset();
    // The gateway first: closing flows may still send frames towards the TAP.
    gateway_.reset();
    pcap_.reset();
    tap_.reset();
  }

  // Applies a re-read configuration: the difference in static forwards, and
  // the DNS settings. The rest needs a restart (logged).
  void reload(const gateway::GatewayConfig& before, const gateway::GatewayConfig& after) {
    auto& published = gateway_->published();
    auto has = [](const std::vector<portfwd::Rule>& rules, const portfwd::Rule& r) {
      return std::find(rules.begin(), rules.end(), r) != rules.end();
    };
    for (const auto& r : before.publish)
      if (!has(after.publish, r) && published.remove(r)) spdlog::info("reload: removed forward {}", r.to_string());
    for (const auto& r : after.publish) {
      if (has(before.publish, r)) continue;
      auto err = published.add(r, engine::PublishedPorts::Origin::kStatic);
      if (err.empty()) {
        spdlog::info("reload: added forward {}", r.to_string());
      } else {
        spdlog::error("reload: cannot publish {}: {}", r.to_string(), err);
      }
    }
    const auto& a = before.dns_config;
    const auto& b = after.dns_config;
    bool same = a.upstreams == b.upstreams && a.routes == b.routes && a.static_names == b.static_names &&
                a.hosts_file == b.hosts_file && a.cache == b.cache;
    try {
      if (!same) {
        gateway_->reconfigure_dns(b);
        spdlog::info("reload: DNS settings applied");
      } else if (auto* proxy = gateway_->dns()) {
        proxy->reload();  // resolv.conf and the hosts file may have changed
      }
    } catch (const std::exception& e) {
      spdlog::error("reload: keeping the DNS settings: {}", e.what());
    }
  }

  void log_stats() const {
    const auto& g = gateway_->stats();
    const auto& e = gateway_->engine().stats();
    spdlog::info("frames in {} out {}; tcp connects {} refused {} unreachable {}; udp out {} in {}; dropped "
                 "malformed {} bad-source {} unsupported {}",
                 g.frames_in, g.frames_out, e.tcp_connects, e.tcp_refused, e.tcp_unreachable, e.udp_datagrams_out,
                 e.udp_datagrams_in, g.dropped_malformed, g.dropped_bad_source, g.dropped_unsupported);
  }

 private:
  std::unique_ptr<link::Port> tap_;  // the transport
  std::unique_ptr<link::PcapPort> pcap_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<gateway::AutoForwarder> auto_forward_;
  std::unique_ptr<control::ControlServer> control_;
};

struct SignalState {
  uv_loop_t* loop = nullptr;
  pid_t child = -1;
  std::optional<int> child_status;
  bool stop_requested = false;
  std::function<void()> reload;  // SIGHUP
};

void on_signal(uv_signal_t* h, int signum) {
  auto* s = static_cast<SignalState*>(h->data);
  if (signum == SIGCHLD) {
    int status = 0;
    if (s->child > 0 && waitpid(s->child, &status, WNOHANG) == s->child) {
      s->child_status = status;
      uv_stop(s->loop);
    }
    return;
  }
  if (signum == SIGHUP) {
    if (s->reload) s->reload();
    return;
  }
  if (s->child > 0 && !s->child_status) {
    // run: pass the signal on and keep serving until the command exits.
    kill(s->child, signum);
    return;
  }
  spdlog::info("signal {}: shutting down", signum);
  s->stop_requested = true;
  uv_stop(s->loop);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Makes the transport Port on the loop.
using TransportFactory = std::function<std::unique_ptr<link::Port>(uv_loop_t*)>;

// Runs the loop until a signal or the child's exit; returns the exit code.
int serve(const TransportFactory& make_transport, const NetworkOptions& o, pid_t child, int sock_diag_fd = -1,
          bool agent = false) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  SignalState st;
  st.loop = &loop;
  st.child = child;
  uv_signal_t sigs[4];
  int signums[4] = {SIGINT, SIGTERM, SIGCHLD, SIGHUP};
  for (int i = 0; i < 4; ++i) {
    uv_signal_init(&loop, &sigs[i]);
    sigs[i].data = &st;
    uv_signal_start(&sigs[i], on_signal, signums[i]);
  }
  int code = 0;
  {
    std::optional<Session> session;
    try {
      session.emplace(&loop, make_transport(&loop), o, sock_diag_fd, agent);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      if (child > 0) kill(child, SIGKILL);
      code = 1;
    }
    NetworkOptions current = o;
    st.reload = [&] {
      if (!session) return;
      if (current.config_file.empty()) {
        spdlog::info("SIGHUP: no --config file to re-read");
        return;
      }
      try {
        auto next = current.reloaded();
        auto before = current.gateway_config();
        auto after = next.gateway_config();
        for (const auto& k : config::keys()) {
          bool reloadable = k.name == "forwarding.forwards" || k.name.rfind("dns.", 0) == 0;
          if (!reloadable && config::differs(current, next, k.name))
            spdlog::warn("reload: {} changed in {}: it needs a restart", k.name, current.config_file);
        }
        spdlog::info("SIGHUP: re-read {}", current.config_file);
        session->reload(before, after);
        current = std::move(next);
      } catch (const std::exception& e) {
        spdlog::error("SIGHUP: keeping the running configuration: {}", e.what());
      }
    };
    if (session) {
      // The command may have exited before the SIGCHLD handler was in place.
      int status = 0;
      if (child > 0 && waitpid(child, &status, WNOHANG) == child) st.child_status = status;
      if (!st.child_status) uv_run(&loop, UV_RUN_DEFAULT);
      session->log_stats();
      if (child > 0 && !st.child_status) {
        kill(child, SIGTERM);
        if (waitpid(child, &status, 0) == child) st.child_status = status;
      }
      if (st.child_status) code = exit_code_of(*st.child_status);
    }
    st.reload = nullptr;
  }
  for (auto& s : sigs) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);  // let every close callback run
  if (uv_loop_close(&loop) != 0) spdlog::debug("loop closed with handles still open");
  return code;
}

// True once `pid` has exited (a zombie, or gone).
bool has_exited(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return true;
  char state = '?';
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state
  // follows the last ')'.
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  if (const char* p = std::strrchr(buf, ')'); p != nullptr && p[1] == ' ') state = p[2];
  return state == 'Z' || state == 'X';
}

// The guest namespace's socket table, or -1 (logged) when it cannot be read.
// `command`: the command `run` started, whose namespace may already be gone
// when it exits at once (then there is nothing to forward: no warning).
int open_sock_diag(const std::string& netns, pid_t command = -1) {
  try {
    return portfwd::open_sock_diag_in_netns(netns);
  } catch (const std::exception& e) {
    if (command > 0 && has_exited(command)) {
      spdlog::debug("automatic forwarding is off: the command has exited");
    } else {
      spdlog::warn("automatic forwarding is off: {}", e.what());
    }
    return -1;
  }
}

// `slipway config check FILE`: exit 0 and the effective configuration on
// stdout, or exit 1 and FILE:LINE:COLUMN: KEY: what is wrong on stderr.
int check_config_file(const std::string& path) {
  config::Settings defaults;
  defaults.forward_auto = true;  // as `run` and `serve` have it
  try {
    auto loaded = config::load_file(path, defaults);
    std::fputs(config::to_toml(loaded.settings).c_str(), stdout);
    return 0;
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

void set_up_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("slipway");
  logger->set_pattern("slipway: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slipway: user-mode networking for network namespaces and virtual machines.\n"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "slipway 0.1.0");

  NetworkOptions net;
  net.forward_auto = true;
  std::vector<std::string> command;
  auto* run = app.add_subcommand(
      "run",
      "Run COMMAND in a new user and network namespace with NAT networking and exit with its exit code.\n"
      "Without COMMAND, runs $SHELL (or /bin/sh).");
  net.add_to(*run);
  run->add_option("command", command, "COMMAND [ARGS...] (use -- before it if it starts with -)");
  run->positionals_at_end();
  run->prefix_command();

  NetworkOptions attach_net;
  std::string netns;
  auto* attach = app.add_subcommand(
      "attach", "Serve an existing network namespace: create its interface and relay its traffic until "
                "SIGINT or SIGTERM.");
  attach_net.add_to(*attach);
  attach->add_option("--netns", netns, "The namespace: a path (/proc/PID/ns/net, /run/netns/NAME) or a PID")
      ->required();

  NetworkOptions serve_net;
  serve_net.forward_auto = true;
  auto* serve_cmd = app.add_subcommand(
      "serve", "Serve a virtual machine's network through a virtio-net backend socket until SIGINT or SIGTERM.");
  serve_net.add_to(*serve_cmd);
  serve_net.add_transport_to(*serve_cmd);

  std::string config_path;
  auto* config_cmd = app.add_subcommand("config", "Work with configuration files (--config)");
  config_cmd->require_subcommand(1);
  auto* check_cmd = config_cmd->add_subcommand(
      "check", "Validate FILE and print the effective configuration (every setting, defaults included) as TOML");
  check_cmd->add_option("FILE", config_path, "The configuration file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (check_cmd->parsed()) return check_config_file(config_path);

  ::signal(SIGPIPE, SIG_IGN);
  // Every flow holds a host socket: allow as many as the hard limit does.
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  try {
    if (run->parsed()) {
      // CLI11 hands every word from the first positional on to `command`;
      // remaining() keeps the "--" separator and unknown options before it.
      for (auto& r : run->remaining())
        if (r != "--") throw CLI::ExtrasError("run", {r});
      if (command.empty()) {
        const char* sh = std::getenv("SHELL");
        command.push_back(sh != nullptr && *sh != '\0' ? sh : "/bin/sh");
      }
      net.apply_config_file(*run);
      set_up_logging(net.log_level);
      net.read_host_network();
      auto iface = net.guest_interface();
      auto child = ns::spawn_in_new_namespace(iface, command);
      spdlog::info("running '{}' (pid {}) in a new network namespace", command.front(), child.pid);
      int fd = child.tap_fd;
      size_t mtu = iface.mtu;
      int diag = net.forward_auto ? open_sock_diag(std::to_string(child.pid), child.pid) : -1;
      return serve([fd, mtu](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14); }, net,
                   child.pid, diag);
    }
    if (attach->parsed()) {
      attach_net.apply_config_file(*attach);
      set_up_logging(attach_net.log_level);
      attach_net.read_host_network();
      auto iface = attach_net.guest_interface();
      int fd = ns::open_tap_in_namespace(netns, iface);
      spdlog::info("serving namespace {} on {}", netns, iface.name);
      size_t mtu = iface.mtu;
      int diag = attach_net.forward_auto ? open_sock_diag(netns) : -1;
      return serve([fd, mtu](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14); },
                   attach_net, -1, diag);
    }
    serve_net.apply_config_file(*serve_cmd);
    serve_net.check_transport();
    set_up_logging(serve_net.log_level);
    serve_net.read_host_network();
    size_t mtu = serve_net.gateway_config().mtu;  // validates before listening
    TransportFactory factory;
    if (!serve_net.vhost_user.empty()) {
      factory = [&](uv_loop_t* l) { return link::listen_vhost_user(l, serve_net.vhost_user, mtu); };
    } else if (!serve_net.stream.empty()) {
      factory = [&](uv_loop_t* l) { return link::listen_stream(l, serve_net.stream, mtu); };
    } else {
      factory = [&](uv_loop_t* l) { return link::bind_dgram(l, serve_net.dgram, mtu); };
    }
    return serve(factory, serve_net, -1, -1, serve_net.forward_auto);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slipway: %s\n", e.what());
    return 1;
  }
}

}  // namespace slipway::cli

int main(int argc, char** argv) { return slipway::cli::main(argc, argv); }
