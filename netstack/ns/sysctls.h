// The guest interface's IPv6 sysctls (internal to netstack/ns).
//
// Theory of operation. Which IPv6 the interface gets is set in
// /proc/sys/net/ipv6/conf/NAME/ (per network namespace: what the child opens
// belongs to its own namespace), in this order:
//
//   IPv6 off:  disable_ipv6=1 only, so the link never gets even a
//              link-local address.
//   IPv6 on:   accept_dad=0, accept_ra and autoconf 1 with SLAAC (0 with
//              static addresses only, so no second default route arrives),
//              then disable_ipv6=0 last, so that the rest is in place when
//              IPv6 comes on.
//
// They must be written before the link goes up: that is when the kernel
// forms the link-local address and, with DAD off, at once sends a router
// solicitation (link_config.h). The rest (the default route and MTU from the
// RA, accept_ra_defrtr, rtr_solicits) is left to the kernel's defaults.
//
// The paths are built before the fork (sysctl_plan()); the child only opens
// and writes them (set_ipv6_sysctls()).
//
// Limits
//
//   - Without IPv6 in the kernel (no /proc/sys/net/ipv6) asking for IPv6 is
//     an error (kIpv6Unavailable); IPv6 off then needs nothing.
//   - Failing to write disable_ipv6=1 (a read-only /proc/sys in a container)
//     is a warning (kDisableIpv6): the interface then keeps the kernel's
//     defaults, as before IPv6 was configurable. Any other failure is an
//     error (kIpv6Sysctl, with the index of the sysctl).
//   - The SLAAC address needs net.ipv6.conf.all.accept_dad < 1 as well to
//     skip DAD (the kernel's default, and always so in a new namespace); in
//     an attached namespace that sets it, DAD takes its usual second.
//   - accept_ra=1 takes RAs only while the namespace does not forward.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "netstack/ns/namespace.h"
#include "netstack/ns/report.h"

namespace slipway::ns {

inline constexpr const char* kIpv6SysctlDir = "/proc/sys/net/ipv6";

// One sysctl of the interface, under /proc/sys/net/ipv6/conf/NAME/.
struct Sysctl {
  const char* name;
  const char* value;
};

// The interface's IPv6 sysctls in the order the child writes them.
std::vector<Sysctl> ipv6_sysctls(const GuestInterface& iface);

// /proc/sys/net/ipv6/conf/NAME/SYSCTL.
std::string sysctl_path(const GuestInterface& iface, const Sysctl& sysctl);

// ipv6_sysctls() as (path, value), prepared before the fork.
using SysctlPlan = std::vector<std::pair<std::string, const char*>>;
SysctlPlan sysctl_plan(const GuestInterface& iface);

// Child side: writes the plan (see the file comment for what fails how).
bool set_ipv6_sysctls(const GuestInterface& iface, const SysctlPlan& plan, Report& report);

}  // namespace slipway::ns
