// The `slipway` program: `run`, `attach` and `serve`.
//
// All build a stack::Stack (transport Port -> [PcapPort] <-> Gateway ->
// engine, with DNS, ICMP relay and forwards) on one libuv loop, and serve a
// control socket with --control.
// `run` starts COMMAND in a new namespace (transport: a TAP fd) and exits with
// its exit status; `attach` serves an existing namespace, and `serve` a VM
// (vhost-user, stream or dgram socket), until SIGINT or SIGTERM.
// `config check FILE` validates a configuration file and prints the
// effective configuration. With --config, SIGHUP re-reads the file and applies
// its forwards (added and removed without touching other flows) and its DNS
// settings (upstreams, routes, names, hosts file, cache; flows untouched);
// other changes are logged as needing a restart.
// Once set up, the process enters the sandbox (sys/sandbox.h) unless
// --no-sandbox: a seccomp allow-list, no new privileges, capabilities
// dropped.
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
#include "netstack/cli/port_spec.h"
#include "netstack/compat/slirp4netns_main.h"
#include "netstack/config/config_file.h"
#include "netstack/control/stack_api.h"
#include "netstack/link/tap_port.h"
#include "netstack/link/vm_transports.h"
#include "netstack/ns/namespace.h"
#include "netstack/stack/stack.h"
#include "netstack/sys/heap.h"
#include "netstack/sys/sandbox.h"
#include "portfwd/listeners.h"

namespace slipway::cli {
namespace {

// The stack and what serves it from outside: the control socket.
class Session {
 public:
  // One guest, directly on its transport.
  Session(uv_loop_t* loop, std::unique_ptr<link::Port> transport, const NetworkOptions& o)
      : stack_(std::make_unique<stack::Stack>(loop, std::move(transport), o.stack_config())) {
    serve_control(loop, o, nullptr);
  }
  // Several guests on the stack's switch (`serve`); `iface` configures the
  // netns guests.
  Session(uv_loop_t* loop, const std::vector<PortSpec>& guests, const NetworkOptions& o)
      : stack_(std::make_unique<stack::Stack>(loop, o.stack_config())), iface_(o.guest_interface()) {
    for (auto spec : guests) {
      spec.options.isolated = o.isolate && !spec.options.uplink;
      add_port(loop, *stack_, spec, iface_);
    }
    const bool isolate = o.isolate;
    serve_control(loop, o, [this, loop, isolate](const std::string& text) {
      auto spec = parse_port_spec(text);
      spec.options.isolated = isolate && !spec.options.uplink;
      auto id = add_port(loop, *stack_, spec, iface_);
      spdlog::info("port {} added: {}", spec.options.name, spec.to_string());
      (void)id;
      return spec.options.name;
    });
  }
  ~Session() { control_.reset(); }  // before the stack it serves

  stack::Stack& stack() { return *stack_; }

 private:
  void serve_control(uv_loop_t* loop, const NetworkOptions& o, control::PortOpener open_port) {
    if (!o.control.empty())
      control_ = std::make_unique<control::ControlServer>(loop, o.control,
                                                          control::stack_handler(*stack_, std::move(open_port)));
  }

  std::unique_ptr<stack::Stack> stack_;
  ns::GuestInterface iface_;
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

// Builds the session on the loop.
using SessionFactory = std::function<std::unique_ptr<Session>(uv_loop_t*)>;
// One guest's transport Port.
using TransportFactory = std::function<std::unique_ptr<link::Port>(uv_loop_t*)>;

// How automatic forwarding learns the guest's listeners: a sock_diag socket
// in its namespace (owned; -1 for none), or portfwd-agent's reports (VMs).
struct AutoForwardSource {
  int sock_diag_fd = -1;
  bool agent = false;
};

// Runs the loop until a signal or the child's exit; returns the exit code.
// `adds_ports`: the control API may open guests in namespaces later (several
// guests), which the sandbox must allow.
int serve(const SessionFactory& make_session, const NetworkOptions& o, pid_t child, AutoForwardSource forward = {},
          bool adds_ports = false) {
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
    std::unique_ptr<Session> session;
    try {
      session = make_session(&loop);
      if (forward.sock_diag_fd >= 0) {
        session->stack().forward_from_namespace(forward.sock_diag_fd);
        forward.sock_diag_fd = -1;
      } else if (forward.agent && o.engine == "slirp") {
        // libslirp cannot serve the agent's port on the gateway address.
        spdlog::warn("--engine slirp: automatic forwarding from portfwd-agent in a VM is not available (use -p)");
      } else if (forward.agent) {
        session->stack().forward_from_agent(o.agent_port);
      }
    } catch (const std::exception& e) {
      // A start-up error: nothing half-built stays on the loop.
      spdlog::critical("{}", e.what());
      session.reset();
      if (forward.sock_diag_fd >= 0) ::close(forward.sock_diag_fd);
      if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
      }
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
        auto after = next.stack_config();
        for (const auto& k : config::keys()) {
          bool reloadable = k.name == "forwarding.forwards" || k.name.rfind("dns.", 0) == 0;
          if (!reloadable && config::differs(current, next, k.name))
            spdlog::warn("reload: {} changed in {}: it needs a restart", k.name, current.config_file);
        }
        spdlog::info("SIGHUP: re-read {}", current.config_file);
        session->stack().reload(after);
        current = std::move(next);
      } catch (const std::exception& e) {
        spdlog::error("SIGHUP: keeping the running configuration: {}", e.what());
      }
    };
    // A cmd: guest forward runs a command per connection (fork, execve),
    // which the sandbox's allow-list does not have: then it stays off, said.
    bool runs_commands = std::any_of(o.guest_forwards.begin(), o.guest_forwards.end(),
                                     [](const std::string& g) { return g.find("=cmd:") != std::string::npos; });
    if (session && !o.no_sandbox && runs_commands)
      spdlog::warn("sandbox: off: a cmd: guest forward runs commands (use unix: or tcp: targets to keep it)");
    if (session && !o.no_sandbox && !runs_commands) {
      // Everything is set up: from here on the process only serves.
      try {
        sys::SandboxOptions so;
        so.keep = sys::default_kept_capabilities();
        so.namespace_helpers = adds_ports && !o.control.empty();
        sys::enter_sandbox(so);
        spdlog::debug("sandbox: on (seccomp allow-list, no new privileges, capabilities dropped)");
      } catch (const std::exception& e) {
        spdlog::critical("{} (--no-sandbox runs without it)", e.what());
        session.reset();
        if (child > 0) {
          kill(child, SIGKILL);
          waitpid(child, nullptr, 0);
        }
        code = 1;
      }
    }
    if (session) {
      // The command may have exited before the SIGCHLD handler was in place.
      int status = 0;
      if (child > 0 && waitpid(child, &status, WNOHANG) == child) st.child_status = status;
      if (!st.child_status) uv_run(&loop, UV_RUN_DEFAULT);
      session->stack().log_stats();
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

int serve_one(const TransportFactory& make_transport, const NetworkOptions& o, pid_t child,
              AutoForwardSource forward = {}) {
  return serve([&](uv_loop_t* l) { return std::make_unique<Session>(l, make_transport(l), o); }, o, child, forward);
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
  sys::keep_freed_heap_memory();
  // `slipway slirp4netns ...`: slirp4netns's own command line (netstack/compat/).
  if (argc >= 2 && std::strcmp(argv[1], "slirp4netns") == 0)
    return compat::slirp4netns_main(argc - 1, argv + 1, "slipway slirp4netns");
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
      "serve",
      "Serve virtual machines (virtio-net backend sockets), network namespaces and other hosts' segments "
      "(VXLAN) until SIGINT or SIGTERM.\n"
      "One guest is served directly; several share one gateway on an internal switch, each with its own DHCP "
      "lease and its name answered as NAME.internal.\n"
      "Each guest value may end in options: ,name=NAME ,vlan=N ,trunk=N+M (and for --netns ,ifname=IF "
      ",mac=MAC ,mtu=N; for --vxlan ,vni=N ,local=ADDR[:PORT] ,mtu=N).");
  serve_net.add_to(*serve_cmd);
  serve_net.add_transport_to(*serve_cmd);

  app.add_subcommand("slirp4netns",
                     "slirp4netns 1.2's command line and API socket (Podman, RootlessKit): "
                     "`slipway slirp4netns --help`");

  std::string config_path;
  auto* config_cmd = app.add_subcommand("config", "Work with configuration files (--config)");
  config_cmd->require_subcommand(1);
  auto* check_cmd = config_cmd->add_subcommand(
      "check", "Validate FILE and print the effective configuration (every setting, defaults included) as TOML");
  check_cmd->add_option("FILE", config_path, "The configuration file")->required();

  // Every start-up error exits 1 with its message, not with CLI11's own
  // codes (105 and up); --help and --version exit 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
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
      bool vnet = iface.offload;
      AutoForwardSource forward;
      if (net.forward_auto) forward.sock_diag_fd = open_sock_diag(std::to_string(child.pid), child.pid);
      return serve_one([fd, mtu, vnet](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14, vnet); },
                   net, child.pid, forward);
    }
    if (attach->parsed()) {
      attach_net.apply_config_file(*attach);
      set_up_logging(attach_net.log_level);
      attach_net.read_host_network();
      auto iface = attach_net.guest_interface();
      int fd = ns::open_tap_in_namespace(netns, iface);
      spdlog::info("serving namespace {} on {}", netns, iface.name);
      size_t mtu = iface.mtu;
      bool vnet = iface.offload;
      AutoForwardSource forward;
      if (attach_net.forward_auto) forward.sock_diag_fd = open_sock_diag(netns);
      return serve_one([fd, mtu, vnet](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14, vnet); },
                   attach_net, -1, forward);
    }
    serve_net.apply_config_file(*serve_cmd);
    auto guests = serve_net.guests();
    set_up_logging(serve_net.log_level);
    serve_net.read_host_network();
    size_t mtu = serve_net.gateway_config().mtu;  // validates before listening
    AutoForwardSource forward;
    if (guests.size() > 1) {
      // Automatic forwarding follows one guest's listeners; with several,
      // published ports name their guest (-p 8080:web:80).
      if (serve_net.forward_auto) spdlog::info("several guests: automatic forwarding is off");
      return serve([&](uv_loop_t* l) { return std::make_unique<Session>(l, guests, serve_net); }, serve_net, -1, {},
                   true);
    }
    const PortSpec& g = guests.front();
    if (g.kind == PortSpec::Kind::kNetns) {
      // One namespace: as `attach`, with the spec's interface name and MAC
      // when given.
      auto iface = serve_net.guest_interface();
      iface.name = g.ifname;
      if (g.mac) iface.mac = g.mac->octets;
      int fd = ns::open_tap_in_namespace(g.value, iface);
      spdlog::info("serving namespace {} on {}", g.value, iface.name);
      if (serve_net.forward_auto) forward.sock_diag_fd = open_sock_diag(g.value);
      size_t frame = iface.mtu + 14;
      bool vnet = iface.offload;
      return serve_one([fd, frame, vnet](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, frame, vnet); },
                   serve_net, -1, forward);
    }
    if (g.kind == PortSpec::Kind::kVxlan) {
      // Another host's segment: its guests are served as a namespace's or
      // a VM's would be; nobody there runs portfwd-agent for us.
      warn_vxlan_mtu(g, mtu);
      return serve_one([&](uv_loop_t* l) { return open_vxlan_port(l, g); }, serve_net, -1, forward);
    }
    forward.agent = serve_net.forward_auto;
    return serve_one([&](uv_loop_t* l) { return open_vm_port(l, g, mtu); }, serve_net, -1, forward);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slipway: %s\n", e.what());
    return 1;
  }
}

}  // namespace slipway::cli

int main(int argc, char** argv) { return slipway::cli::main(argc, argv); }
