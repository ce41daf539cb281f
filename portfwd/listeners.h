// Discovery of the listening sockets in a network namespace, and the
// forwards that follow from them (WSL2's localhostForwarding, for
// containers; VMs run portfwd-agent instead, see agent/agent.c).
//
// open_sock_diag_in_netns() creates a NETLINK_SOCK_DIAG socket *inside* the
// namespace (a netlink socket answers for the namespace it was created in,
// for its whole life), so one socket can be asked again and again without
// entering the namespace each time. list_listeners() does one dump through
// it. forwards_for_listeners() turns the result into rules.
#pragma once

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "portfwd/protocol.h"
#include "portfwd/rule.h"

namespace slipway::portfwd {

// One listening TCP socket or bound, unconnected UDP socket.
struct Listener {
  Protocol proto = Protocol::kTcp;
  int family = 0;       // AF_INET or AF_INET6
  std::string address;  // as bound, canonical text: "0.0.0.0", "::", "127.0.0.1"
  uint16_t port = 0;
  bool operator==(const Listener&) const = default;
  auto operator<=>(const Listener&) const = default;
};

// "tcp 0.0.0.0:80", "udp [::]:53".
std::string to_string(const Listener& listener);

// Opens a NETLINK_SOCK_DIAG socket in the network namespace `netns`: a path
// (/proc/PID/ns/net, /run/netns/NAME) or a PID. The socket is created by a
// forked child that setns()es into the namespace (into its owning user
// namespace first when we are not root) and passed back over SCM_RIGHTS.
// Returns the fd (O_CLOEXEC; the caller closes it). Throws
// std::runtime_error with a clear message on failure.
int open_sock_diag_in_netns(const std::string& netns);

// One dump of the TCP LISTEN sockets and the bound, unconnected UDP sockets
// (IPv4 and IPv6) through `sock_diag_fd`. Sorted, without duplicates (several
// SO_REUSEPORT sockets on one address are one listener). Wildcard and
// loopback binds are reported with their address like any other. Waits at
// most 2 s for each reply datagram and 10 s for each of its four dumps.
// Throws std::runtime_error on failure.
std::vector<Listener> list_listeners(int sock_diag_fd);

// The parsing behind list_listeners(), exposed for tests: appends the
// listeners in one buffer of netlink messages (one recv()) for the request
// numbered `seq`. Every header and payload is bounds-checked; a message that
// does not fit is an error. Returns Done when NLMSG_DONE was seen, More when
// the dump continues, Error (with `error` set) otherwise.
enum class DumpStatus { kMore, kDone, kError };
DumpStatus parse_sock_diag_dump(std::span<const std::byte> buffer, uint32_t seq, Protocol proto,
                                std::vector<Listener>& out, std::string* error);

// Which host addresses automatic forwards are published on.
//   kLoopback (WSL2's localhostForwarding): the host's loopback only.
//   kAll (mirrored mode's `addresses = "all"`): the host's wildcard
//   addresses for the guest's wildcard binds.
enum class HostAddresses { kLoopback, kAll };

// The host-side forwards that follow from the listeners, each from the same
// port on the host. Only wildcard and loopback binds are forwarded (a bind
// to a specific other address is skipped), and no port in `excluded` (for
// either protocol):
//
//   guest bind                       kLoopback              kAll
//   0.0.0.0 (or ::ffff:0.0.0.0)      127.0.0.1              0.0.0.0
//   127.x.x.x (or ::ffff:127.x)      127.0.0.1              127.0.0.1
//   ::1                              ::1                    ::1
//   :: (usually dual-stack)          127.0.0.1 and ::1      0.0.0.0 and ::
//
// A loopback bind stays on the host's loopback in kAll too: the guest asked
// for it not to be reachable from elsewhere. In kAll a loopback rule is
// dropped when the wildcard of its family is forwarded on the same port (the
// wildcard covers it, and both could not be bound). The host's "::" is bound
// IPv6-only (PublishedPorts), so "0.0.0.0" and "::" coexist. Sorted by
// protocol, port and address, without duplicates.
std::vector<Rule> forwards_for_listeners(const std::vector<Listener>& listeners,
                                         std::span<const uint16_t> excluded = {},
                                         HostAddresses hosts = HostAddresses::kLoopback);

}  // namespace slipway::portfwd
