// What the namespace helper child tells the parent (internal to netstack/ns).
//
// Theory of operation. The forked child that creates and configures the TAP
// (spawn_child.cc for `slipway run`, the attach helper in namespace.cc for
// `slipway attach`) makes system calls only: it cannot allocate, so it cannot
// build messages. Each step that can fail has a Step. On failure the child
// records the step, errno and, for the steps that say so, which item of a
// list failed, and sends the Report; the parent puts it into words with
// describe() (describe.h). A failure that does not stop the child is a
// warning: the first one is kept and the parent logs it.
//
// A Report crosses a socketpair between two copies of this program (see
// netstack/sys/netns.h), so a plain struct is the message.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace slipway::ns {

// What the child was doing when it failed. Entering an existing namespace
// is sys::run_in_netns()'s, which words its own failures.
enum class Step : uint32_t {
  kNone = 0,  // success
  kUnshareUser,
  kUnshareNetMount,
  kMakeMountsPrivate,
  kOpenTun,
  kCreateTap,
  kControlSocket,
  kSetMac,
  kSetMtu,
  kLoUp,
  kSetAddress,
  kSetNetmask,
  kTapUp,
  kDefaultRoute,
  kScratchMount,
  kSysfs,
  kResolvConfOpen,
  kResolvConfWrite,
  kResolvConfBind,
  kIpv6Unavailable,
  kIpv6Sysctl,     // Report::index: which of ipv6_sysctls()
  kDisableIpv6,    // a warning
  kNetlinkSocket,
  kInterfaceIndex,
  kSetIpv6Address,  // Report::index: which of iface.ipv6_addresses
  kIpv6DefaultRoute,
  kTapOffload,      // IFF_VNET_HDR's header size or TUNSETOFFLOAD
};

struct Report {
  Step step = Step::kNone;
  int32_t error = 0;
  Step warning = Step::kNone;  // a non-fatal failure, logged by the parent
  int32_t warning_error = 0;
  uint32_t index = 0;  // for the steps that say so: which item of a list failed
};

// Child side: records `step` and errno; returns false, for `return fail(...)`.
inline bool fail(Report& report, Step step) {
  report.step = step;
  report.error = errno;
  return false;
}

inline bool fail_at(Report& report, Step step, size_t index) {
  report.index = static_cast<uint32_t>(index);
  return fail(report, step);
}

// Child side: records a warning (the first one only) and errno.
inline void warn(Report& report, Step step) {
  if (report.warning != Step::kNone) return;
  report.warning = step;
  report.warning_error = errno;
}

}  // namespace slipway::ns
