// The `slipway` program: `run`, `attach` and `serve`.
//
// All build the same pipeline on one libuv loop:
//   transport Port -> [PcapPort] <-> Gateway (ARP, DHCP, ICMP, DNS, lwIP engine)
// `run` starts COMMAND in a new namespace (transport: a TAP fd) and exits with
// its exit status; `attach` serves an existing namespace, and `serve` a VM
// (vhost-user, stream or dgram socket), until SIGINT or SIGTERM.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <set>
#include <memory>
#include <optional>

#include "netstack/cli/options.h"
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
    if (sock_diag_fd >= 0) {
      auto_forward_ = std::make_unique<gateway::AutoForwarder>(loop, gateway_->published(), sock_diag_fd, excluded);
    } else if (agent) {
      // VM mode: portfwd-agent in the guest reports its listeners.
      auto_forward_ = std::make_unique<gateway::AutoForwarder>(loop, gateway_->published(), -1, excluded);
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
  uv_signal_t sigs[3];
  int signums[3] = {SIGINT, SIGTERM, SIGCHLD};
  for (int i = 0; i < 3; ++i) {
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
  }
  for (auto& s : sigs) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);  // let every close callback run
  if (uv_loop_close(&loop) != 0) spdlog::debug("loop closed with handles still open");
  return code;
}

// The guest namespace's socket table, or -1 (logged) when it cannot be read.
int open_sock_diag(const std::string& netns) {
  try {
    return portfwd::open_sock_diag_in_netns(netns);
  } catch (const std::exception& e) {
    spdlog::warn("automatic forwarding is off: {}", e.what());
    return -1;
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
  std::string vhost_user_path, stream_path, dgram_path;
  auto* serve_cmd = app.add_subcommand(
      "serve", "Serve a virtual machine's network through a virtio-net backend socket until SIGINT or SIGTERM.");
  serve_net.add_to(*serve_cmd);
  auto* transport = serve_cmd->add_option_group("transport", "Exactly one of");
  transport->add_option("--vhost-user", vhost_user_path,
                        "Listen on PATH as a vhost-user-net backend (QEMU -netdev vhost-user, cloud-hypervisor)");
  transport->add_option("--stream", stream_path,
                        "Listen on PATH for QEMU -netdev stream (4-byte big-endian length before each frame)");
  transport->add_option("--dgram", dgram_path, "Bind PATH for QEMU -netdev dgram (one frame per datagram)");
  transport->require_option(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

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
      set_up_logging(net.log_level);
      auto iface = net.guest_interface();
      auto child = ns::spawn_in_new_namespace(iface, command);
      spdlog::info("running '{}' (pid {}) in a new network namespace", command.front(), child.pid);
      int fd = child.tap_fd;
      size_t mtu = net.mtu;
      int diag = net.forward_auto ? open_sock_diag(std::to_string(child.pid)) : -1;
      return serve([fd, mtu](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14); }, net,
                   child.pid, diag);
    }
    if (attach->parsed()) {
      set_up_logging(attach_net.log_level);
      auto iface = attach_net.guest_interface();
      int fd = ns::open_tap_in_namespace(netns, iface);
      spdlog::info("serving namespace {} on {}", netns, iface.name);
      size_t mtu = attach_net.mtu;
      int diag = attach_net.forward_auto ? open_sock_diag(netns) : -1;
      return serve([fd, mtu](uv_loop_t* l) { return std::make_unique<link::TapPort>(l, fd, mtu + 14); },
                   attach_net, -1, diag);
    }
    set_up_logging(serve_net.log_level);
    serve_net.gateway_config();  // validate before listening
    size_t mtu = serve_net.mtu;
    TransportFactory factory;
    if (!vhost_user_path.empty()) {
      factory = [&](uv_loop_t* l) { return link::listen_vhost_user(l, vhost_user_path, mtu); };
    } else if (!stream_path.empty()) {
      factory = [&](uv_loop_t* l) { return link::listen_stream(l, stream_path, mtu); };
    } else {
      factory = [&](uv_loop_t* l) { return link::bind_dgram(l, dgram_path, mtu); };
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
