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
// is configured with ioctls and the interface's sysctls in /proc/sys/net/ipv6
// (no `ip` binary needed). See namespace.cc for the handshake and the limits.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "netstack/wire/ipv6.h"

namespace slipway::ns {

// The virtio-net header a TAP with offload carries before each frame.
inline constexpr int kTapVnetHeaderLen = 10;

// What the guest's interface looks like inside the namespace.
struct GuestInterface {
  std::string name = "eth0";
  uint32_t mtu = 65520;
  std::array<uint8_t, 6> mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};  // guest MAC
  // Checksum and segmentation offload between the guest's kernel and
  // slipway: the TAP is created with IFF_VNET_HDR (a kTapVnetHeaderLen-byte
  // virtio-net header before every frame, both ways) and TUNSETOFFLOAD
  // (partial checksums, TSO over IPv4 and IPv6), so TCP crosses the TAP in
  // segments of up to 64 KiB whatever the MTU. false: plain frames.
  bool offload = true;
  // false: only create the TAP and bring it (and lo) up; no address, route or
  // resolv.conf (for guests that run a DHCP client).
  bool configure = true;
  // attach only (open_tap_in_namespace): false opens the TAP (creating it
  // if it does not exist) and changes nothing on the interface: no MAC,
  // MTU, sysctls, link state or addresses; `configure` must be false. This
  // is slirp4netns without --configure, whose caller (RootlessKit) made the
  // device itself and configures it.
  bool manage_link = true;
  uint32_t address = 0x0a00020f;    // host-order IPv4, 10.0.2.15
  unsigned prefix = 24;
  uint32_t gateway = 0x0a000202;    // 10.0.2.2, default route (0: no route)
  uint32_t dns = 0x0a000203;        // 10.0.2.3, nameserver in resolv.conf (0: none)
  std::vector<std::string> search;  // resolv.conf "search" line if non-empty

  // IPv6. Off: IPv6 is disabled on the interface (disable_ipv6=1), so it has
  // no address at all, not even a link-local one. On: the interface keeps
  // IPv6, with DAD off (accept_dad=0) so that addresses are usable at once,
  // accept_ra and autoconf = ipv6_slaac; the kernel sends a router
  // solicitation when the link comes up. The sysctls are written whether or
  // not `configure` is set; the static addresses and route only with it.
  bool ipv6 = false;
  // Accept the gateway's RA prefix (SLAAC); mirrored mode turns it off and
  // sets addresses.
  bool ipv6_slaac = true;
  // Static addresses and prefix lengths (1..128), e.g. the host's in
  // mirrored mode. Usable at once (no DAD, see above).
  std::vector<std::pair<wire::Ipv6Addr, unsigned>> ipv6_addresses;
  // Static default route via this (may be link-local: it is bound to the
  // interface); unspecified (::): none (the RA gives one).
  wire::Ipv6Addr ipv6_gateway{};
  // resolv.conf lists `dns` (if non-zero) and then these (IPv4 or IPv6
  // text), e.g. "fd00::3".
  std::vector<std::string> nameservers;
  // spawn only: when ipv6 && ipv6_slaac && configure, the command starts
  // once the interface has a global, non-tentative address from a router
  // advertisement, or after this long (0..60 s) with a warning on its
  // stderr. The caller must be answering on the TAP fd meanwhile.
  std::chrono::milliseconds slaac_wait{3000};
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
// that names iface.dns and iface.nameservers (the host's file is not
// modified). IPv6 is set up as GuestInterface describes. /sys/class/net
// shows the namespace's own devices. The command starts only after the TAP is
// set up (and, with SLAAC, has its address or iface.slaac_wait has passed;
// this function returns before that wait, so that the caller can answer the
// router solicitation); it gets SIGTERM if slipway's thread that called this
// dies. If exec
// fails the child prints "slipway: cannot run 'X': strerror" and exits 127.
// Throws std::runtime_error with a clear message on failure (for example
// "user namespaces are not available: ...").
Child spawn_in_new_namespace(const GuestInterface& iface, const std::vector<std::string>& argv);

// Creates the TAP device `iface.name` in an existing network namespace and
// returns its fd (O_NONBLOCK, O_CLOEXEC). `target` is a path
// (/proc/PID/ns/net, /run/netns/NAME) or a PID. When we are not root, enters
// the namespace's owning user namespace first (as slirp4netns does).
// Configures the interface like spawn_in_new_namespace() when
// iface.configure (IPv6 sysctls, static addresses and route included, but it
// does not wait for SLAAC), and never touches resolv.conf; with
// !iface.manage_link it only opens the TAP. `userns`: a user namespace to
// enter first instead of the owning one (slirp4netns's --userns-path; see
// sys::open_netns). Throws std::runtime_error on failure.
int open_tap_in_namespace(const std::string& target, const GuestInterface& iface, const std::string& userns = "");

}  // namespace slipway::ns
