// The `portfwd` program.
//
// Forms of the command line, told apart by the first argument:
//   portfwd [OPTIONS] LISTEN_ADDR:PORT TARGET_ADDR:PORT
//       the standalone relay (the default form: its first positional
//       argument is an address);
//   portfwd --control PATH [--json] add RULE | remove RULE | list | flows | stats
//       a client of a running slipway's control socket (see
//       netstack/control/control_server.h for the operations): one request,
//       the reply printed as a table (list, flows), a line (add, remove) or
//       pretty JSON (stats), or as it came with --json. Exit 0 when the reply
//       says ok, 1 (and "portfwd: MESSAGE" on stderr) when it does not or
//       there is no reply, 2 on usage errors.
// A new form is a function `int run_<form>(int argc, char** argv)` and one
// entry in kForms, matched on argv[1].
//
// The relay runs on the default libuv loop until SIGINT or SIGTERM, then
// closes its listener and connections and exits 0. Start-up errors (bad
// addresses, bind failures) print one line and exit 1.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/sys/control_client.h"
#include "portfwd/relay.h"

namespace {

using slipway::portfwd::Endpoint;
using slipway::portfwd::RelayOptions;

// Each connection needs two sockets and up to four pipe fds.
constexpr uint64_t kFdsPerConnection = 6;
constexpr uint64_t kSpareFds = 64;

struct Signals {
  std::array<uv_signal_t, 2> handles{};
};

int run_relay(int argc, char** argv) {
  CLI::App app{"portfwd: relay TCP connections (or UDP datagrams) from a listen address to a target address.\n"
               "Addresses are IPv4 (127.0.0.1:8080) or bracketed IPv6 ([::1]:8080).",
               "portfwd"};
  std::string listen_text, target_text, log_level = "info";
  bool udp = false;
  bool no_splice = false;
  RelayOptions options;
  uint64_t udp_timeout_s = options.udp_timeout_ms / 1000;
  size_t max_connections = 0;

  app.add_option("listen", listen_text, "address to listen on, ADDR:PORT or [ADDR]:PORT")->required();
  app.add_option("target", target_text, "address to relay to, ADDR:PORT or [ADDR]:PORT")->required();
  app.add_flag("--udp", udp, "relay UDP datagrams instead of TCP connections (default: TCP)");
  app.add_option("--udp-timeout", udp_timeout_s, "seconds without traffic after which a UDP session ends")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{86400}));
  app.add_option("--udp-max-sessions", options.udp_max_sessions, "most UDP sessions (client addresses) at once")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--max-connections", max_connections,
                 "most TCP connections at once (0: as many as the fd limit allows)")
      ->capture_default_str();
  app.add_option("--buffer", options.buffer_bytes, "bytes in flight per direction of a TCP connection")
      ->capture_default_str()
      ->check(CLI::Range(size_t{4096}, size_t{1} << 30));
  app.add_flag("--no-splice", no_splice, "copy with read/write instead of splice(2) (default: splice)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.footer(
      "Other form:\n"
      "  portfwd --control PATH [--json] add RULE | remove RULE | list | flows | stats\n"
      "      talk to a running slipway's control socket (portfwd --control PATH --help)");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_st("portfwd"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  std::string error;
  auto listen = slipway::portfwd::parse_endpoint(listen_text, &error);
  if (!listen) {
    spdlog::error("invalid listen address: {}", error);
    return 1;
  }
  auto target = slipway::portfwd::parse_endpoint(target_text, &error);
  if (!target) {
    spdlog::error("invalid target address: {}", error);
    return 1;
  }
  if (target->port() == 0) {
    spdlog::error("invalid target address '{}': port 0", target_text);
    return 1;
  }
  options.splice = !no_splice;
  options.udp_timeout_ms = udp_timeout_s * 1000;
  const uint64_t fd_limit = slipway::portfwd::raise_fd_limit();
  const uint64_t by_fds = fd_limit > kSpareFds ? (fd_limit - kSpareFds) / kFdsPerConnection : 1;
  options.max_connections = max_connections == 0 ? static_cast<size_t>(by_fds) : max_connections;

  uv_loop_t* loop = uv_default_loop();
  std::unique_ptr<slipway::portfwd::TcpRelay> tcp;
  std::unique_ptr<slipway::portfwd::UdpRelay> udp_relay;
  try {
    if (udp) {
      udp_relay = std::make_unique<slipway::portfwd::UdpRelay>(loop, *listen, *target, options);
      udp_relay->start();
      spdlog::info("relaying UDP {} -> {} (session timeout {} s, at most {} sessions)",
                   udp_relay->local_endpoint().to_string(), target->to_string(), udp_timeout_s,
                   options.udp_max_sessions);
    } else {
      tcp = std::make_unique<slipway::portfwd::TcpRelay>(loop, *listen, *target, options);
      tcp->start();
      spdlog::info("relaying TCP {} -> {} ({}, {} bytes per direction, at most {} connections, fd limit {})",
                   tcp->local_endpoint().to_string(), target->to_string(), options.splice ? "splice" : "read/write",
                   options.buffer_bytes, options.max_connections, fd_limit);
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }

  // SIGINT/SIGTERM: close everything and let the loop run out.
  struct Stop {
    slipway::portfwd::TcpRelay* tcp;
    slipway::portfwd::UdpRelay* udp;
    Signals* signals;
  };
  Signals signals;
  Stop stop{tcp.get(), udp_relay.get(), &signals};
  const std::array<int, 2> signums{SIGINT, SIGTERM};
  for (size_t i = 0; i < signals.handles.size(); ++i) {
    uv_signal_init(loop, &signals.handles[i]);
    signals.handles[i].data = &stop;
    uv_signal_start(
        &signals.handles[i],
        [](uv_signal_t* handle, int signum) {
          auto* s = static_cast<Stop*>(handle->data);
          spdlog::info("signal {}: stopping", signum);
          if (s->tcp != nullptr) s->tcp->close();
          if (s->udp != nullptr) s->udp->close();
          for (uv_signal_t& h : s->signals->handles) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
        },
        signums[i]);
  }
  signal(SIGPIPE, SIG_IGN);

  uv_run(loop, UV_RUN_DEFAULT);
  if (tcp) {
    const auto& s = tcp->stats();
    spdlog::info("{} connections, {} failed connects, {} resets, {} bytes to target, {} bytes to clients",
                 s.accepted, s.connect_failures, s.resets, s.bytes_to_target, s.bytes_to_client);
  }
  if (udp_relay) {
    const auto& s = udp_relay->stats();
    spdlog::info("{} UDP sessions, {} datagrams to target, {} to clients, {} dropped", s.sessions_opened,
                 s.datagrams_to_target, s.datagrams_to_client, s.dropped);
  }
  tcp.reset();
  udp_relay.reset();
  uv_loop_close(loop);
  return 0;
}

// --- portfwd --control PATH ... ---------------------------------------------

using nlohmann::json;

using slipway::control::cell;
using slipway::control::print_table;

void print_forwards(const json& reply) {
  const json forwards = reply.value("forwards", json::array());
  if (!forwards.is_array() || forwards.empty()) {
    std::printf("no forwards\n");
    return;
  }
  std::vector<std::vector<std::string>> rows{{"RULE", "ORIGIN", "STATUS"}};
  for (const json& f : forwards) {
    const std::string error = cell(f, "error");
    rows.push_back({cell(f, "rule"), cell(f, "origin"), error == "-" ? "listening" : "error: " + error});
  }
  print_table(rows);
}

void print_flows(const json& reply) {
  const json flows = reply.value("flows", json::array());
  if (!flows.is_array() || flows.empty()) {
    std::printf("no flows\n");
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"PROTO", "GUEST", "REMOTE", "DIRECTION", "STATE", "TO HOST", "TO GUEST"}};
  for (const json& f : flows) {
    rows.push_back({cell(f, "proto"), cell(f, "guest"), cell(f, "remote"), cell(f, "direction"), cell(f, "state"),
                    cell(f, "bytes_to_host"), cell(f, "bytes_to_guest")});
  }
  print_table(rows);
}

int run_control(int argc, char** argv) {
  CLI::App app{"portfwd --control PATH [--json] add RULE | remove RULE | list | flows | stats\n"
               "  manage the forwards of a running slipway through its control socket.\n"
               "  RULE is [HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp], as for slipway --publish.",
               "portfwd"};
  std::string path, rule;
  bool raw = false;
  app.add_option("--control", path, "the control socket of a running slipway")->required();
  app.add_flag("--json", raw, "print the reply as it came (one JSON object)");
  app.require_subcommand(1, 1);
  app.fallthrough();  // --json may also come after the subcommand
  CLI::App* add = app.add_subcommand("add", "publish a guest port on the host");
  add->add_option("rule", rule, "the forward to add")->required();
  CLI::App* remove = app.add_subcommand("remove", "stop a forward");
  remove->add_option("rule", rule, "the forward to remove, as it was added or as list shows it")->required();
  CLI::App* list = app.add_subcommand("list", "the forwards: static, added here, and discovered in the guest");
  CLI::App* flows = app.add_subcommand("flows", "the open connections and UDP mappings with their byte counts");
  CLI::App* stats = app.add_subcommand("stats", "the stack's counters, as JSON");
  app.footer("Exit status: 0 when the reply is ok, 1 when it is not (or there is none), 2 on usage errors.");
  // CLI11 would take a --help right after --control as the path.
  if (argc > 2 && (std::string_view(argv[2]) == "--help" || std::string_view(argv[2]) == "-h")) {
    std::printf("%s", app.help().c_str());
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error and a hint
    return code == 0 ? 0 : 2;
  }

  json request;
  if (add->parsed()) request = {{"op", "add-forward"}, {"rule", rule}};
  if (remove->parsed()) request = {{"op", "remove-forward"}, {"rule", rule}};
  if (list->parsed()) request = {{"op", "list-forwards"}};
  if (flows->parsed()) request = {{"op", "list-flows"}};
  if (stats->parsed()) request = {{"op", "stats"}};

  int status = 0;
  auto answered = slipway::control::request_for_tool("portfwd", path, request, raw, &status);
  if (!answered) return status;
  const json& reply = *answered;

  if (add->parsed()) {
    const json forward = reply.value("forward", json::object());
    const std::string added = cell(forward, "rule");
    std::printf("added %s\n", added == "-" ? rule.c_str() : added.c_str());
  } else if (remove->parsed()) {
    std::printf("removed %s\n", rule.c_str());
  } else if (list->parsed()) {
    print_forwards(reply);
  } else if (flows->parsed()) {
    print_flows(reply);
  } else {
    std::printf("%s\n", reply.value("stats", json::object()).dump(2, ' ', false, json::error_handler_t::replace).c_str());
  }
  return 0;
}

// Forms chosen by argv[1]; anything else is the relay.
struct Form {
  std::string_view first_argument;
  int (*run)(int argc, char** argv);
};
constexpr std::array<Form, 1> kForms{{{"--control", run_control}}};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    for (const Form& form : kForms) {
      if (argv[1] == form.first_argument) return form.run(argc, argv);
    }
  }
  return run_relay(argc, argv);
}
