// The host's primary interface, for mirrored mode (like WSL2's mirrored
// networking or pasta): the guest gets a copy of the host's addresses,
// gateways, MTU and nameservers instead of a private 10.0.2.0/24.
//
// read_host_network() asks the kernel directly over rtnetlink (NETLINK_ROUTE
// dumps of RTM_GETROUTE, RTM_GETLINK and RTM_GETADDR; no `ip` binary, no
// libnl) in the network namespace of the calling thread, and reads the
// nameservers from a resolv.conf file. See host_network.cc for the netlink
// walk and its checks.
//
// Which interface is primary
//
//   The interface of the IPv4 default route (destination length 0, unicast,
//   main table) with the lowest metric; if there is no IPv4 default route,
//   the interface of the IPv6 default route with the lowest metric. On a tie
//   the kernel's dump order decides. Once the interface is chosen, each
//   gateway is that of the lowest-metric default route of its family *on that
//   interface*: an IPv6 default route through another interface is ignored
//   (gateway6 stays empty), and an IPv6 default route on the IPv4 primary is
//   used. A multipath default route counts with its first next hop.
//
// Limits
//
//   - Only the main routing table is read: policy routing (ip rule, VPN
//     clients that use their own table) is not followed.
//   - A default route without a gateway (a point-to-point link, `default dev
//     ppp0`) or whose IPv4 gateway is an IPv6 address (RTA_VIA) selects the
//     interface but leaves the gateway empty.
//   - Routes that use nexthop objects (`ip nexthop`) are understood through
//     the attributes the kernel adds for them in its default
//     net.ipv4.nexthop_compat_mode=1; without those they are skipped.
//   - Blocking: the call waits for the kernel (at most 5 s for each reply
//     datagram and 30 s for each dump, see "Bounds" in the .cc). Call it at
//     start-up or from a worker, not from the event loop.
//   - A dump that the kernel marks as interrupted by a concurrent change
//     (NLM_F_DUMP_INTR) is repeated a few times before we give up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"

namespace slipway::ns {

struct HostAddress4 {
  wire::Ipv4Addr address;
  unsigned prefix = 0;
};

struct HostAddress6 {
  wire::Ipv6Addr address;
  unsigned prefix = 0;
};

struct HostNetwork {
  std::string interface;  // name of the primary interface ("eth0")
  unsigned ifindex = 0;
  uint32_t mtu = 0;
  // Every IPv4 address on the interface in the kernel's order: per subnet
  // the primary address first, then its secondaries. For a point-to-point
  // address this is the local end (IFA_LOCAL), not the peer.
  std::vector<HostAddress4> ipv4;
  std::optional<wire::Ipv4Addr> gateway4;  // default route's gateway on the interface
  // Global-scope addresses only (ULAs count as global; link-local, host and
  // site scope do not), in the kernel's order. Tentative and DAD-failed
  // addresses are left out; deprecated ones (preferred lifetime over) are
  // left out unless they are all there is.
  std::vector<HostAddress6> ipv6;
  std::optional<wire::Ipv6Addr> gateway6;  // often link-local (fe80::1)
  // From resolv.conf, see parse_nameservers().
  std::vector<std::string> nameservers;
};

// Reads the primary interface of the calling thread's network namespace
// (see the file comment) and the nameservers in `resolv_conf`. A missing or
// unreadable resolv.conf gives no nameservers, not an error. Throws
// std::runtime_error when there is no default route ("mirrored mode needs a
// default route on the host, and there is none ...") or when netlink fails
// (the message names the dump and strerror).
HostNetwork read_host_network(const std::string& resolv_conf = "/etc/resolv.conf");

// The `nameserver` entries of a resolv.conf text, in order, as written.
// A comment runs from '#' or ';' to the end of the line; the keyword and the
// address may be surrounded by any blanks, and words after the address are
// ignored (as glibc does). An address must be IPv4 dotted-quad or IPv6 text
// (inet_pton rules, so ::ffff:192.0.2.1 is accepted); anything else is
// skipped. An IPv6 zone index ("fe80::1%eth0") is kept as written, since in
// mirrored mode the guest's interface has the host's name; an empty zone
// ("fe80::1%") makes the entry invalid. Duplicates are kept; there is no
// limit of three (glibc's MAXNS), which is the resolver's business.
std::vector<std::string> parse_nameservers(std::string_view resolv_conf_text);

}  // namespace slipway::ns
