// Port specs: how `slipway serve` and the `vswitch` program name the ports
// of a switch, and opening them.
//
//   KIND[:VALUE][,key=value]...
//
//   vhost-user:PATH, stream:PATH, dgram:PATH
//                  a VM; slipway is the server socket (link/vm_transports.h)
//   netns:PATH|PID a TAP device in that network namespace
//   vxlan:ADDR[:PORT],vni=N[,local=ADDR[:PORT]]
//                  frames in VXLAN to another host (link/vxlan_port.h):
//                  ADDR is a unicast IPv4 or IPv6 address ([V6]:PORT with a
//                  port), the port defaults to 4789, VNI 0..16777215; the
//                  local socket binds ADDR:PORT (default: any address of
//                  the remote's family, port 4789). An uplink: isolated
//                  ports reach it.
//   gateway[:CONFIG.toml]
//                  slipway's NAT gateway (the `vswitch` program only)
//
//   Options: name=NAME (the port's name; by default one derived from the
//   value: a socket's file name without its extension, a namespace's name,
//   "pidN"), vlan=N (an access port), trunk=N+M+... (a trunk port), and for
//   netns ports ifname=NAME (default eth0) and mac=MAC (default: derived
//   from the port's name, so the same namespace gets the same MAC, and so
//   the same lease, each time); for netns and vxlan ports mtu=N (the
//   largest IP packet: a netns interface's MTU, default the gateway's;
//   a VXLAN port's inner MTU, default 1500, at most kVxlanMaxMtu).
//
// A netns port's interface is configured with the address the gateway
// leases to its MAC, under the port's name (NAME.internal), as `slipway
// attach` configures its interface; for a namespace named by ip-netns
// (/run/netns/NAME) the nameserver goes to /etc/netns/NAME/resolv.conf,
// which `ip netns exec` shows as /etc/resolv.conf. Without a gateway the
// interface is only created and brought up.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "netstack/link/port.h"
#include "netstack/ns/namespace.h"
#include "netstack/stack/stack.h"
#include "vswitch/switch.h"

namespace slipway::cli {

struct PortSpec {
  enum class Kind { kVhostUser, kStream, kDgram, kNetns, kVxlan, kGateway };
  Kind kind = Kind::kStream;
  std::string value;             // path, PID, remote address, configuration file
  vswitch::PortOptions options;  // name, VLANs
  // netns
  std::string ifname = "eth0";
  std::optional<wire::MacAddr> mac;
  // netns and vxlan: the largest IP packet (0: the default)
  size_t mtu = 0;
  // vxlan
  uint32_t vni = 0;
  std::string local;

  std::string to_string() const;
};

// Throws std::invalid_argument saying what is wrong with `text`. The name
// is always set (derived when not given).
PortSpec parse_port_spec(std::string_view text);
// "stream:" + text for `slipway serve --stream TEXT`, and so on.
PortSpec parse_port_spec(PortSpec::Kind kind, std::string_view text);

// A netns port's MAC: locally administered, from a hash of its name.
wire::MacAddr netns_mac(const std::string& name);

// Opens a VM port (vhost-user, stream, dgram). Throws std::runtime_error.
std::unique_ptr<link::Port> open_vm_port(uv_loop_t* loop, const PortSpec& spec, size_t mtu);

// Opens a netns port: the TAP device in the namespace, configured from
// `iface` (mtu, offload, IPv6, DNS) with the spec's name and MAC and, when
// `stack` is given, the address its gateway leases to that MAC. Throws
// std::runtime_error.
std::unique_ptr<link::Port> open_netns_port(uv_loop_t* loop, const PortSpec& spec, ns::GuestInterface iface,
                                            stack::Stack* stack);

// The largest inner MTU of a VXLAN port: an inner frame (MTU, Ethernet
// header, one 802.1Q tag) and the VXLAN header fit in one UDP datagram
// over IPv4 (65507 bytes).
constexpr size_t kVxlanMaxMtu = 65507 - 8 - 14 - 4;
constexpr size_t kVxlanDefaultMtu = 1500;

// Opens a VXLAN port (its socket bound). Throws std::invalid_argument or
// std::runtime_error (the address cannot be bound).
std::unique_ptr<link::Port> open_vxlan_port(uv_loop_t* loop, const PortSpec& spec);

// Logs a warning when the gateway's MTU (what DHCP and router
// advertisements tell the guests) is above a VXLAN port's inner MTU: its
// guests' larger packets would be dropped.
void warn_vxlan_mtu(const PortSpec& spec, size_t gateway_mtu);

// Adds the port `spec` names to `stack`'s switch (a Stack built for several
// guests): VM, netns and vxlan ports; `iface` as for open_netns_port. Throws
// std::runtime_error or std::invalid_argument.
vswitch::Switch::PortId add_port(uv_loop_t* loop, stack::Stack& stack, PortSpec spec,
                                 const ns::GuestInterface& iface);

}  // namespace slipway::cli
