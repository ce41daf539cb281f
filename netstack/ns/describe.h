// The words for what went wrong in the namespace helper (internal to
// netstack/ns).
//
// Theory of operation. The child reports (Step, errno, index) (report.h);
// the parent turns that into one line for a human: what failed, with the
// values involved (the address, the MTU, the sysctl's path), then ": " and
// strerror, then a hint where one is known to help (the sysctls that forbid
// user namespaces, AppArmor's restriction, /dev/net/tun's mode, a read-only
// /proc/sys). The texts are part of the interface: tests and users match
// them.
#pragma once

#include <cstdint>
#include <string>

#include "netstack/ns/namespace.h"
#include "netstack/ns/report.h"

namespace slipway::ns {

// "a.b.c.d" for a host-order IPv4 address.
std::string format_ipv4(uint32_t host_order);

// `index` is Report::index, for the steps that use it.
std::string describe(Step step, int error, const GuestInterface& iface, uint32_t index = 0);

// Logs the Report's warning, if it has one.
void log_warning(const Report& report, const GuestInterface& iface);

}  // namespace slipway::ns
