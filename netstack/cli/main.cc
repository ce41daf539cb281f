// The `slipway` program: `run` and `attach`.
//
// Both build the same pipeline on one libuv loop:
//   TAP fd -> TapPort -> [PcapPort] <-> Gateway (ARP, DHCP, ICMP, lwIP engine)
// `run` starts COMMAND in a new namespace and exits with its exit status;
// `attach` serves an existing namespace until SIGINT or SIGTERM.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <optional>

#include "netstack/cli/options.h"
#include "netstack/gateway/gateway.h"
#include "netstack/link/pcap.h"
#include "netstack/link/tap_port.h"
#include "netstack/ns/namespace.h"

namespace slipway::cli {
namespace {

// The data path for one guest interface.
class Session {
 public:
  Session(uv_loop_t* loop, int tap_fd, const NetworkOptions& o) {
    tap_ = std::make_unique<link::TapPort>(loop, tap_fd, o.mtu + 14);
    link::Port* guest_side = tap_.get();
    if (!o.pcap.empty()) {
      pcap_ = std::make_unique<link::PcapPort>(*tap_, link::PcapWriter::open(o.pcap));
      guest_side = pcap_.get();
    }
    gateway_ = std::make_unique<gateway::Gateway>(loop, o.gateway_config());
    link::connect(*guest_side, *gateway_);
  }
  ~Session() {
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
  std::unique_ptr<link::TapPort> tap_;
  std::unique_ptr<link::PcapPort> pcap_;
  std::unique_ptr<gateway::Gateway> gateway_;
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

// Runs the loop until a signal or the child's exit; returns the exit code.
int serve(int tap_fd, const NetworkOptions& o, pid_t child) {
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
      session.emplace(&loop, tap_fd, o);
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
      return serve(child.tap_fd, net, child.pid);
    }
    set_up_logging(attach_net.log_level);
    auto iface = attach_net.guest_interface();
    int fd = ns::open_tap_in_namespace(netns, iface);
    spdlog::info("serving namespace {} on {}", netns, iface.name);
    return serve(fd, attach_net, -1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slipway: %s\n", e.what());
    return 1;
  }
}

}  // namespace slipway::cli

int main(int argc, char** argv) { return slipway::cli::main(argc, argv); }
