// AutoForwarder: publishes the ports the guest listens on, as WSL2's
// localhostForwarding does, and withdraws them when the guest stops.
//
// Namespace mode: every kIntervalMs the guest namespace's socket table is
// dumped through a NETLINK_SOCK_DIAG socket opened inside it
// (open_sock_diag_in_netns), so a new listener appears on the host
// within well under a second. TCP listeners and bound UDP sockets on a
// wildcard or loopback address are forwarded from the same port on the
// host (forwards_for_listeners has the table): with
// HostAddresses::kLoopback (the default, WSL2's localhostForwarding) a guest
// bind to 0.0.0.0 or 127.0.0.1 is published on the host's 127.0.0.1, ::1 on
// ::1, and :: (usually dual-stack) on both 127.0.0.1 and ::1; with kAll
// (mirrored mode's addresses = "all") wildcard binds are published on the
// host's 0.0.0.0, and :: on both 0.0.0.0 and :: (bound IPv6-only), while
// loopback binds stay on loopback. Whatever the host address, the guest side
// is the guest's IPv4 address (see PublishedPorts). Ports in `excluded` are
// never forwarded (WSL's ignoredPorts). Static and API forwards take
// precedence: a port they hold on the same address, or on the wildcard
// address of the same family, is not forwarded again. A host port that is
// taken is reported (log and control API), not fatal; the next change of the
// guest's listeners retries it.
//
// VM mode: portfwd-agent in the guest reports the listeners as JSON lines
// over TCP to the gateway (see portfwd/agent/agent.c); update_from_agent()
// takes each line: {"listeners":[{"proto":"tcp","family":4,
// "address":"0.0.0.0","port":8080},...]}. A line that does not parse is
// logged and ignored.
#pragma once

#include <uv.h>

#include <set>
#include <string_view>
#include <vector>

#include "portfwd/listeners.h"
#include "portfwd/published_ports.h"

namespace slipway::portfwd {

class AutoForwarder {
 public:
  static constexpr uint64_t kIntervalMs = 250;

  // Polls the namespace behind sock_diag_fd (owned) when it is >= 0.
  // `hosts` chooses the host addresses the forwards are published on.
  AutoForwarder(uv_loop_t* loop, PublishedPorts& ports, int sock_diag_fd, std::set<uint16_t> excluded,
                HostAddresses hosts = HostAddresses::kLoopback);
  ~AutoForwarder();
  AutoForwarder(const AutoForwarder&) = delete;
  AutoForwarder& operator=(const AutoForwarder&) = delete;

  // Makes the automatic forwards match these guest listeners.
  void update(const std::vector<Listener>& listeners);
  void update_from_agent(std::string_view line);

 private:
  void poll();

  PublishedPorts& ports_;
  int fd_;
  std::set<uint16_t> excluded_;
  HostAddresses hosts_;
  std::vector<Listener> last_;
  uv_timer_t* timer_ = nullptr;  // freed in its close callback
};

}  // namespace slipway::portfwd
