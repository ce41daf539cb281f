// Namespaces and the guest's TAP device: theory of operation.
//
// Every namespace step runs in a forked helper child (sys::Helper,
// netstack/sys/netns.h), because unshare() and setns() into a user namespace
// need a single-threaded process and slipway's own process must stay in the
// host's namespaces. The child makes system calls only and reports each
// failure as a Step (report.h); the parent words it (describe.h). The jobs
// live one to a file:
//
//   spawn_child.cc   the child of `slipway run`: unshare, exec
//   id_maps.cc       the new user namespace's uid_map/gid_map (parent side)
//   link_config.cc   the TAP: create, MAC, MTU, addresses, routes (ioctls and
//                    sys/netlink)
//   sysctls.cc       the interface's IPv6 sysctls
//   mounts.cc        private /tmp, /sys/class/net, resolv.conf bind mount
//   slaac_wait.cc    waiting for the SLAAC address before exec
//   describe.cc      the user-facing error text
//
// spawn_in_new_namespace() (slipway run)
//
//   The parent forks the helper; they talk over its SOCK_SEQPACKET
//   socketpair, one fixed-size Report per message:
//
//     1. child:  unshare(CLONE_NEWUSER); sends Report (ok, or the errno).
//     2. parent: writes the child's ID maps (id_maps.h); sends one "go" byte.
//     3. child:  unshare(CLONE_NEWNET | CLONE_NEWNS); makes every mount
//                private; creates and configures the TAP (link_config.h) and
//                the mounts (mounts.h). Sends Report plus the TAP fd
//                (SCM_RIGHTS).
//     4. parent: receives the fd, makes it O_NONBLOCK, logs the child's
//                warning (if any), returns; the child is the command now.
//     5. child:  closes every fd but 0, 1, 2, resets signals, sets
//                PR_SET_PDEATHSIG(SIGTERM), waits for SLAAC (slaac_wait.h)
//                and execs the command (spawn_child.h).
//
// open_tap_in_namespace() (slipway attach)
//
//   sys::open_netns() opens the namespace (and, when we are not root, its
//   owning user namespace); sys::run_in_netns() forks a child that enters
//   them, creates and configures the TAP (link_config.h, without the SLAAC
//   wait and without touching resolv.conf), sends Report plus fd and exits;
//   the parent reaps it.
//
// Limits
//
//   - The parent waits at most sys::kHelperTimeout (10 s) for each Report,
//     then kills and reaps the child.
//   - validate() refuses a bad GuestInterface before anything is forked: an
//     interface name of 1..15 bytes without '/', blanks or ':', an MTU of
//     68..65535 (1280.. with IPv6), an IPv4 prefix of 0..32, IPv6 prefixes of
//     1..128, a SLAAC wait of 0..60 s, nameservers that are IPv4 or IPv6
//     addresses, search domains without blanks.
//   - Opening /dev/net/tun as a normal user needs the usual mode 0666.
#include "netstack/ns/namespace.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <span>
#include <stdexcept>

#include "netstack/ns/describe.h"
#include "netstack/ns/id_maps.h"
#include "netstack/ns/link_config.h"
#include "netstack/ns/mounts.h"
#include "netstack/ns/report.h"
#include "netstack/ns/slaac_wait.h"
#include "netstack/ns/spawn_child.h"
#include "netstack/ns/sysctls.h"
#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"
#include "netstack/sys/netns.h"

namespace slipway::ns {
namespace {

constexpr sys::HelperNames kHelper{"namespace helper", "TAP fd"};

void validate(const GuestInterface& iface) {
  if (iface.name.empty() || iface.name.size() >= IFNAMSIZ || iface.name.find('/') != std::string::npos ||
      iface.name.find_first_of(" \t\n:") != std::string::npos) {
    throw std::runtime_error("invalid interface name '" + iface.name + "'");
  }
  if (iface.mtu < 68 || iface.mtu > 65535) {
    throw std::runtime_error("invalid MTU " + std::to_string(iface.mtu) + " (68..65535)");
  }
  if (iface.configure) {
    if (iface.prefix > 32) throw std::runtime_error("invalid prefix /" + std::to_string(iface.prefix));
    if (iface.address == 0) throw std::runtime_error("no guest address to configure");
  }
  for (const auto& domain : iface.search) {
    if (domain.empty() || domain.find_first_of(" \t\r\n") != std::string::npos) {
      throw std::runtime_error("invalid search domain '" + domain + "'");
    }
  }
  for (const auto& server : iface.nameservers) {
    in6_addr buf{};
    if (inet_pton(AF_INET, server.c_str(), &buf) != 1 && inet_pton(AF_INET6, server.c_str(), &buf) != 1) {
      throw std::runtime_error("invalid nameserver '" + server + "' (an IPv4 or IPv6 address is needed)");
    }
  }
  if (!iface.ipv6) {
    if (!iface.ipv6_addresses.empty() || !iface.ipv6_gateway.is_unspecified()) {
      throw std::runtime_error("IPv6 addresses or an IPv6 gateway are given for " + iface.name +
                               " but IPv6 is off");
    }
    return;
  }
  if (iface.mtu < 1280) {
    throw std::runtime_error("IPv6 needs an MTU of at least 1280 on " + iface.name + ", not " +
                             std::to_string(iface.mtu));
  }
  for (const auto& [address, prefix] : iface.ipv6_addresses) {
    if (prefix < 1 || prefix > 128) {
      throw std::runtime_error("invalid IPv6 prefix length /" + std::to_string(prefix) + " for " +
                               address.to_string() + " (1..128)");
    }
    if (address.is_unspecified() || address.is_multicast() || address.is_loopback()) {
      throw std::runtime_error("invalid IPv6 address " + address.to_string() + " for " + iface.name);
    }
  }
  if (iface.ipv6_gateway.is_multicast() || iface.ipv6_gateway.is_loopback()) {
    throw std::runtime_error("invalid IPv6 gateway " + iface.ipv6_gateway.to_string());
  }
  if (iface.slaac_wait < std::chrono::milliseconds(0) || iface.slaac_wait > kMaxSlaacWait) {
    throw std::runtime_error("invalid SLAAC wait of " + std::to_string(iface.slaac_wait.count()) +
                             " ms (0.." + std::to_string(kMaxSlaacWait.count()) + ")");
  }
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw sys::SystemError("cannot make the TAP fd non-blocking", errno);
  }
}

// Receives one Report (and the fd, if one came along) and throws the child's
// failure in words.
void receive_report(sys::Helper& helper, const GuestInterface& iface, Report& report, sys::Fd& fd) {
  helper.receive(std::as_writable_bytes(std::span(&report, 1)), fd);
  if (report.step != Step::kNone) {
    throw std::runtime_error(describe(report.step, report.error, iface, report.index));
  }
}

}  // namespace

Child spawn_in_new_namespace(const GuestInterface& iface, const std::vector<std::string>& argv) {
  validate(iface);
  if (argv.empty() || argv[0].empty()) throw std::runtime_error("no command to run");

  // Everything the child needs, prepared before fork.
  const std::string resolv_conf = resolv_conf_text(iface);
  const SysctlPlan sysctls = sysctl_plan(iface);
  const SlaacWait slaac = slaac_wait_plan(iface);
  std::vector<char*> child_argv;
  child_argv.reserve(argv.size() + 1);
  for (const auto& arg : argv) child_argv.push_back(const_cast<char*>(arg.c_str()));
  child_argv.push_back(nullptr);
  const SpawnPlan plan{&iface, &sysctls, &slaac, &resolv_conf, child_argv.data(), getpid()};

  sys::Helper helper(kHelper, [&plan](int sock) { spawn_child(plan, sock); });
  Report report;
  sys::Fd tap;
  // Step 1: the child has its user namespace.
  receive_report(helper, iface, report, tap);
  // Step 2.
  write_id_maps(helper.pid());
  const std::byte go{1};
  helper.send(std::span(&go, 1));
  // Step 4.
  receive_report(helper, iface, report, tap);
  sys::require_fd(kHelper, tap);
  set_nonblocking(tap.get());
  log_warning(report, iface);
  spdlog::debug("started '{}' as pid {} in a new namespace with TAP {}", argv[0], helper.pid(), iface.name);
  const pid_t pid = helper.release();
  return Child{pid, tap.release()};
}

int open_tap_in_namespace(const std::string& target, const GuestInterface& iface, const std::string& userns) {
  validate(iface);
  if (!iface.manage_link && iface.configure) throw std::logic_error("a TAP left alone cannot be configured");
  const sys::Netns ns = sys::open_netns(target, userns);
  const SysctlPlan sysctls = sysctl_plan(iface);
  auto handoff = sys::run_in_netns<Report>(ns, kHelper, [&](Report& report) {
    return iface.manage_link ? create_configured_tap(iface, sysctls, report) : create_tap(iface, report);
  });
  if (handoff.report.step != Step::kNone) {
    throw std::runtime_error(describe(handoff.report.step, handoff.report.error, iface, handoff.report.index));
  }
  sys::require_fd(kHelper, handoff.fd);
  set_nonblocking(handoff.fd.get());
  spdlog::debug("created TAP {} in {}", iface.name, ns.path);
  return handoff.fd.release();
}

}  // namespace slipway::ns
