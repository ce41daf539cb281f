// Waiting for the SLAAC address before the command starts (internal to
// netstack/ns; `slipway run` only).
//
// Theory of operation. The router solicitation the guest's kernel sends at
// link up waits in the TAP's queue until the parent, which has the TAP fd by
// then, answers it from its event loop. So when IPv6 with SLAAC is
// configured, the child, just before exec, polls /proc/net/if_inet6 every
// kSlaacPollMs (20 ms) until the interface has a global address that is
// neither tentative, failed DAD nor permanent (static addresses are
// permanent; the RA's are not), or the wait has passed (iface.slaac_wait, at
// most kMaxSlaacWait = 60 s): then it writes a warning to the command's
// stderr and starts it anyway. The kernel installs the RA's default route
// before it adds the prefix's address, so the route is there too.
//
// Limits: each poll reads the file at most kMaxProcReads (256) times through
// a 4 KiB stack buffer (the file is far smaller); a line that fills the whole
// buffer is not one of the kernel's and is dropped. The child side makes
// system calls only; the warning text is prepared before the fork.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "netstack/ns/namespace.h"

namespace slipway::ns {

inline constexpr std::chrono::milliseconds kMaxSlaacWait{60000};

struct SlaacWait {
  long limit_ms = 0;    // 0: do not wait
  std::string warning;  // for the command's stderr when the wait times out
};

// Parent side: the wait spawn_in_new_namespace() does for `iface` (only with
// ipv6, ipv6_slaac and configure), and its warning.
SlaacWait slaac_wait_plan(const GuestInterface& iface);

// Child side: polls until `name` has an address from an RA (true) or
// `limit_ms` has passed (false).
bool wait_for_slaac_address(const char* name, long limit_ms);

// One line of /proc/net/if_inet6 ("ADDRESS IFINDEX PREFIXLEN SCOPE FLAGS
// NAME", all hex but the name): true if it is a ready SLAAC address (see the
// file comment) on `name`.
bool is_ready_slaac_address(const char* line, size_t len, const char* name);

}  // namespace slipway::ns
