// See slirp4netns_main.h.
#include "netstack/compat/slirp4netns_main.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "netstack/cli/options.h"
#include "netstack/compat/api_server.h"
#include "netstack/compat/hostfwd_api.h"
#include "netstack/compat/slirp4netns_options.h"
#include "netstack/control/stack_api.h"
#include "netstack/link/tap_port.h"
#include "netstack/ns/namespace.h"
#include "netstack/stack/stack.h"
#include "netstack/sys/sandbox.h"
#include "portfwd/listeners.h"

namespace slipway::compat {
namespace {

// HostfwdApi's forwards are the Stack's published ports.
class PublishedBackend : public HostfwdBackend {
 public:
  explicit PublishedBackend(portfwd::PublishedPorts& ports) : ports_(ports) {}
  std::string add(const portfwd::Rule& rule) override {
    return ports_.add(rule, portfwd::PublishedPorts::Origin::kApi);
  }
  bool remove(const portfwd::Rule& rule) override { return ports_.remove(rule); }

 private:
  portfwd::PublishedPorts& ports_;
};

// Watches --exit-fd: EOF or an error on it stops the loop. Heap block
// freed in its close callback.
struct ExitWatch {
  uv_poll_t poll{};
  int fd = -1;
  uv_loop_t* loop = nullptr;

  static void on_event(uv_poll_t* handle, int status, int) {
    auto* w = static_cast<ExitWatch*>(handle->data);
    char buf[256];
    ssize_t n = status < 0 ? -1 : ::read(w->fd, buf, sizeof buf);
    if (n > 0) return;  // data: read and ignored, as slirp4netns does
    if (n < 0 && status == 0 && (errno == EAGAIN || errno == EINTR)) return;
    spdlog::info("exit-fd {}: {}; shutting down", w->fd, n == 0 ? "closed" : "error");
    uv_poll_stop(handle);
    uv_stop(w->loop);
  }
  void close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll),
             [](uv_handle_t* h) { delete static_cast<ExitWatch*>(h->data); });
  }
};

struct Signals {
  uv_loop_t* loop = nullptr;
  static void on_signal(uv_signal_t* h, int signum) {
    auto* s = static_cast<Signals*>(h->data);
    if (signum == SIGHUP) {
      spdlog::info("SIGHUP: the slirp4netns entry point re-reads nothing");
      return;
    }
    spdlog::info("signal {}: shutting down", signum);
    uv_stop(s->loop);
  }
};

void set_up_logging(const std::string& level) {
  auto logger = spdlog::get("slipway");
  if (!logger) logger = spdlog::stderr_color_mt("slipway");
  logger->set_pattern("slipway-slirp4netns: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

// An fd the caller handed us (--ready-fd, --exit-fd): it must be open; it
// is kept from the helpers slipway forks.
void check_fd(const char* what, int fd) {
  if (fd < 0) return;
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) throw InvalidOption(std::string(what) + " " + std::to_string(fd) + " is not an open file descriptor");
  fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

void write_ready(int fd) {
  if (fd < 0) return;
  ssize_t n;
  do {
    n = ::write(fd, "1", 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) spdlog::warn("ready-fd {}: {}", fd, std::strerror(errno));
  ::close(fd);
}

// slirp4netns's start-up summary, on stdout.
void print_summary(const Slirp4netnsOptions& o, const CidrAddresses& a, bool offload) {
  std::printf("Starting slirp (slipway, slirp4netns %s compatible)\n", kSlirp4netnsVersion);
  std::printf("* MTU:             %u\n", o.mtu);
  std::printf("* Network:         %s\n", a.network.to_string().c_str());
  std::printf("* Netmask:         %s\n", a.netmask.to_string().c_str());
  std::printf("* Gateway:         %s\n", a.gateway.to_string().c_str());
  if (o.disable_dns) {
    std::printf("* DNS:             none (--disable-dns)\n");
  } else {
    std::printf("* DNS:             %s\n", a.dns.to_string().c_str());
  }
  std::printf("* DHCP:            %s (slipway hands out the recommended IP only)\n", a.guest.to_string().c_str());
  std::printf("* Recommended IP:  %s\n", a.guest.to_string().c_str());
  if (!o.api_socket.empty()) std::printf("* API Socket:      %s\n", o.api_socket.c_str());
  if (o.enable_ipv6) std::printf("* IPv6:            fd00::/64, gateway fd00::2, DNS fd00::3\n");
  if (!o.macaddress.empty()) std::printf("* MAC address:     %s\n", o.macaddress.c_str());
  std::printf("* TAP offload:     %s\n", offload ? "checksum and TSO (IFF_VNET_HDR)" : "off");
  if (!o.disable_host_loopback)
    std::printf(
        "WARNING: 127.0.0.1:* on the host is accessible as %s (set --disable-host-loopback to prohibit connecting "
        "to 127.0.0.1:*)\n",
        a.gateway.to_string().c_str());
  if (o.enable_sandbox || o.enable_seccomp)
    std::printf("* Sandbox:         on (capabilities dropped, no new privileges, seccomp allow-list)\n");
  std::fflush(stdout);
}

// Builds the network on a loop and serves it until the exit fd closes or a
// signal comes. Returns the exit code.
int serve(const Slirp4netnsOptions& o, const cli::NetworkOptions& net, stack::StackConfig sc, int tap_fd,
          const ns::GuestInterface& iface, wire::Ipv4Addr guest) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Signals st{&loop};
  uv_signal_t sigs[3];
  const int signums[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop, &sigs[i]);
    sigs[i].data = &st;
    uv_signal_start(&sigs[i], Signals::on_signal, signums[i]);
  }
  int code = 0;
  {
    std::optional<stack::Stack> stack;
    std::unique_ptr<control::ControlServer> control;
    std::unique_ptr<PublishedBackend> backend;
    std::unique_ptr<HostfwdApi> api;
    std::unique_ptr<ApiServer> api_server;
    ExitWatch* exit_watch = nullptr;
    try {
      const size_t frame = iface.mtu + 14;
      const int port_fd = tap_fd;
      tap_fd = -1;  // the TapPort owns it from here on, even when it throws
      auto port = std::make_unique<link::TapPort>(&loop, port_fd, frame, iface.offload);
      stack.emplace(&loop, std::move(port), std::move(sc));
      if (!net.control.empty())
        control = std::make_unique<control::ControlServer>(&loop, net.control, control::stack_handler(*stack));
      if (!o.api_socket.empty()) {
        backend = std::make_unique<PublishedBackend>(stack->published());
        api = std::make_unique<HostfwdApi>(*backend, guest);
        api_server = std::make_unique<ApiServer>(
            &loop, o.api_socket, [&api](std::string_view request) { return api->answer(request); },
            HostfwdApi::too_large(), HostfwdApi::kMaxRequestBytes);
      }
      if (net.forward_auto) stack->forward_from_namespace(portfwd::open_sock_diag_in_netns(o.target));
      if (o.exit_fd >= 0) {
        exit_watch = new ExitWatch;
        exit_watch->fd = o.exit_fd;
        exit_watch->loop = &loop;
        exit_watch->poll.data = exit_watch;
        if (int rc = uv_poll_init(&loop, &exit_watch->poll, o.exit_fd); rc != 0) {
          delete exit_watch;
          exit_watch = nullptr;
          throw std::runtime_error("cannot watch exit-fd " + std::to_string(o.exit_fd) + ": " + uv_strerror(rc));
        }
        uv_poll_start(&exit_watch->poll, UV_READABLE | UV_DISCONNECT, ExitWatch::on_event);
      }
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      code = 1;
    }
    if (tap_fd >= 0) ::close(tap_fd);
    if (code == 0 && (o.enable_sandbox || o.enable_seccomp)) {
      // slirp4netns's --enable-sandbox (capabilities, a private mount
      // namespace) and --enable-seccomp (a filter) are both slipway's one
      // sandbox (sys/sandbox.h), entered once everything is set up and
      // before the ready fd says so; a failure is fatal, as there.
      try {
        sys::SandboxOptions so;
        so.keep = sys::default_kept_capabilities();
        sys::enter_sandbox(so);
        spdlog::debug("sandbox: on (seccomp allow-list, no new privileges, capabilities dropped)");
      } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        code = 1;
      }
    }
    if (code == 0) {
      write_ready(o.ready_fd);
      uv_run(&loop, UV_RUN_DEFAULT);
      stack->log_stats();
    }
    if (exit_watch != nullptr) exit_watch->close();
    api_server.reset();  // before the stack its forwards live in
    api.reset();
    backend.reset();
    control.reset();
    stack.reset();
  }
  for (auto& s : sigs) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);  // every close callback
  if (uv_loop_close(&loop) != 0) spdlog::debug("loop closed with handles still open");
  return code;
}

}  // namespace

int slirp4netns_main(int argc, char** argv, const char* program) {
  const ParsedCommandLine parsed = parse_command_line(argc, argv);
  switch (parsed.action) {
    case ParsedCommandLine::Action::kHelp:
      std::fputs(usage(program).c_str(), stdout);
      return 0;
    case ParsedCommandLine::Action::kVersion:
      std::fputs(version_text().c_str(), stdout);
      return 0;
    case ParsedCommandLine::Action::kError:
      std::fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", program, parsed.error.c_str(), program);
      return 1;
    case ParsedCommandLine::Action::kRun:
      break;
  }
  const Slirp4netnsOptions& o = parsed.options;
  for (const auto& w : parsed.warnings) std::puts(w.c_str());

  ::signal(SIGPIPE, SIG_IGN);
  // Every flow holds a host socket: allow as many as the hard limit does.
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  try {
    config::Settings settings = settings_of(o);
    std::vector<std::string> ignored;
    const char* config_path = std::getenv("SLIPWAY_CONFIG");
    if (config_path != nullptr && *config_path != '\0') ignored = apply_config_file(settings, config_path);
    set_up_logging(settings.log_level);
    for (const auto& message : ignored) spdlog::warn("SLIPWAY_CONFIG: {}", message);
    check_fd("exit-fd", o.exit_fd);
    check_fd("ready-fd", o.ready_fd);

    cli::NetworkOptions net;
    static_cast<config::Settings&>(net) = settings;
    stack::StackConfig sc = net.stack_config();
    sc.dns = !o.disable_dns;
    ns::GuestInterface iface = net.guest_interface();
    iface.configure = o.configure;
    iface.manage_link = o.configure;
    const CidrAddresses addresses = cidr_addresses(o.cidr);

    int fd = ns::open_tap_in_namespace(o.target, iface, o.userns_path);
    spdlog::info("opened TAP {} in {}", iface.name, o.target);
    print_summary(o, addresses, iface.offload);
    return serve(o, net, std::move(sc), fd, iface, addresses.guest);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s: SLIPWAY_CONFIG: %s\n", program, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
  }
  return 1;
}

}  // namespace slipway::compat
