// Creating and configuring the guest's TAP (internal to netstack/ns).
//
// Theory of operation. Runs in the forked helper child, inside the target
// network namespace: system calls only, no allocation (see report.h).
//
// create_tap() opens /dev/net/tun and creates the TAP device (IFF_TAP |
// IFF_NO_PI) in the current network namespace. configure_link() then sets,
// in this order:
//
//   1. the MAC (only possible while the link is down), the MTU, lo up;
//   2. when configuring: the IPv4 address and netmask (ioctls);
//   3. the interface's IPv6 sysctls (sysctls.h), before the link goes up;
//   4. the link up;
//   5. when configuring: the IPv4 default route (SIOCADDRT; it needs the
//      connected subnet, so after the address and the link);
//   6. when configuring with IPv6: the static IPv6 addresses (rtnetlink
//      RTM_NEWADDR with IFA_F_NODAD, so they are usable even where
//      net.ipv6.conf.all.accept_dad is set) and the IPv6 default route
//      (RTM_NEWROUTE with the interface index, so a link-local gateway
//      works), over sys/netlink's request_ack(). A route through a down link
//      is refused, hence after step 4.
//
// No `ip` binary is needed. Each failure is a Step in the Report.
#pragma once

#include "netstack/ns/namespace.h"
#include "netstack/ns/report.h"
#include "netstack/ns/sysctls.h"

namespace slipway::ns {

// Returns the TAP fd, or -1 with the Report filled.
int create_tap(const GuestInterface& iface, Report& report);

// See the file comment for the order. False with the Report filled.
bool configure_link(const GuestInterface& iface, const SysctlPlan& sysctls, Report& report);

// create_tap() and configure_link(): the TAP fd, or -1 (closed again) with
// the Report filled.
int create_configured_tap(const GuestInterface& iface, const SysctlPlan& sysctls, Report& report);

}  // namespace slipway::ns
