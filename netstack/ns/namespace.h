// Linux namespaces and the guest's TAP device, for `slipway run` and
// `slipway attach`.
//
// `run` starts a command in a new user + network + mount namespace in which a
// TAP device (IFF_TAP | IFF_NO_PI) stands in for the guest's NIC; `attach`
// creates the same TAP device in a network namespace that already exists.
// Either way slipway keeps the TAP fd: what the guest kernel sends on the
// interface is read from it, and what slipway writes to it arrives there.
// The device lives as long as that fd is open (it is not persistent).
//
// All namespace work happens in a forked child, because unshare() and setns()
// into a user namespace need a single-threaded process and because slipway's
// own process must stay in the host's namespaces to reach the outside world.
// The child hands the TAP fd back over a socketpair (SCM_RIGHTS). Everything
// is configured with ioctls (no `ip` binary needed). See namespace.cc for the
// handshake and the limits.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace slipway::ns {

// What the guest's interface looks like inside the namespace.
struct GuestInterface {
  std::string name = "eth0";
  uint32_t mtu = 65520;
  std::array<uint8_t, 6> mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};  // guest MAC
  // false: only create the TAP and bring it (and lo) up; no address, route or
  // resolv.conf (for guests that run a DHCP client).
  bool configure = true;
  uint32_t address = 0x0a00020f;    // host-order IPv4, 10.0.2.15
  unsigned prefix = 24;
  uint32_t gateway = 0x0a000202;    // 10.0.2.2, default route (0: no route)
  uint32_t dns = 0x0a000203;        // 10.0.2.3, nameserver in resolv.conf (0: none)
  std::vector<std::string> search;  // resolv.conf "search" line if non-empty
};

// A command started by spawn_in_new_namespace(). The caller reaps `pid` and
// owns `tap_fd` (O_NONBLOCK, O_CLOEXEC).
struct Child {
  pid_t pid = -1;
  int tap_fd = -1;
};

// Starts `argv` (looked up in PATH) in a new user + network + mount namespace:
// a TAP device `iface.name` exists there, lo and it are up, and (if
// iface.configure) it has iface.address/prefix, a default route via
// iface.gateway, and /etc/resolv.conf is replaced by a private bind mount
// that names iface.dns (the host's file is not modified). /sys/class/net
// shows the namespace's own devices. The command starts only after the TAP is
// set up; it gets SIGTERM if slipway's thread that called this dies. If exec
// fails the child prints "slipway: cannot run 'X': strerror" and exits 127.
// Throws std::runtime_error with a clear message on failure (for example
// "user namespaces are not available: ...").
Child spawn_in_new_namespace(const GuestInterface& iface, const std::vector<std::string>& argv);

// Creates the TAP device `iface.name` in an existing network namespace and
// returns its fd (O_NONBLOCK, O_CLOEXEC). `target` is a path
// (/proc/PID/ns/net, /run/netns/NAME) or a PID. When we are not root, enters
// the namespace's owning user namespace first (as slirp4netns does).
// Configures the interface like spawn_in_new_namespace() when
// iface.configure, but never touches resolv.conf. Throws std::runtime_error
// on failure.
int open_tap_in_namespace(const std::string& target, const GuestInterface& iface);

}  // namespace slipway::ns
