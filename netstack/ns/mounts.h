// The mount-namespace part of `slipway run` (internal to netstack/ns).
//
// Theory of operation. In the child's new mount namespace (every mount made
// private first, by spawn_child.cc), set_up_mounts():
//
//   1. opens the bind target of the private resolv.conf with O_PATH:
//      /etc/resolv.conf, or what a symlink there points to, before anything
//      could hide it (it might point into /tmp, however unlikely);
//   2. mounts a scratch tmpfs over /tmp (mode 0755, 1 MiB);
//   3. mounts a sysfs of the new network namespace at /tmp/sys and binds its
//      /class/net and /devices/virtual/net over the host's view, so /sys
//      shows the namespace's devices while /sys/fs/cgroup and the rest stay
//      as they were;
//   4. writes the private resolv.conf (text prepared before the fork by
//      resolv_conf_text()) to /tmp/resolv.conf and binds it over the target;
//   5. detaches the tmpfs again (MNT_DETACH): the bind mounts keep what they
//      need alive, and the command sees its own /tmp.
//
//   Bind targets are mounted over through /proc/self/fd/N, so a symlink is
//   followed once, when it was opened.
//
// Limits: failing to rebind /sys is a warning, not an error (kSysfs; for
// example in a container whose /sys is partly masked); so is a host without
// any /etc/resolv.conf (kResolvConfOpen): the command then has no DNS
// configuration either way. Anything else is an error. The resolv.conf
// steps run only when iface.configure. Child side: system calls only.
#pragma once

#include <string>

#include "netstack/ns/namespace.h"
#include "netstack/ns/report.h"

namespace slipway::ns {

// Parent side: "nameserver" lines for iface.dns and iface.nameservers, and
// a "search" line for iface.search.
std::string resolv_conf_text(const GuestInterface& iface);

// Child side: steps 1 to 5 of the file comment. False with the Report filled.
bool set_up_mounts(const GuestInterface& iface, const std::string& resolv_conf, Report& report);

}  // namespace slipway::ns
