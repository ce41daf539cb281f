// GuestForward: a virtual address:port in the guest's subnet whose TCP
// connections reach a host target instead (`--guest-forward`, QEMU's
// guestfwd): a host TCP address (`tcp:HOSTADDR:PORT`), a unix socket
// (`unix:PATH`) or a command (`cmd:COMMAND`, run by /bin/sh -c for each
// connection, its stdin, stdout and stderr being the connection, as
// libslirp's guestfwd runs it).
//
// Spec: ADDR:PORT=TARGET, ADDR an IPv4 address (the guest's subnet is
// checked by the caller, which knows it), PORT 1-65535, TARGET
// `tcp:IPV4:PORT`, `tcp:[IPV6]:PORT`, `unix:/ABSOLUTE/PATH` (at most 107
// bytes, sockaddr_un's room) or `cmd:COMMAND` (not empty). The engines treat a forward as a gateway
// service: the NAT policy (nat.h) lets it through with --restrict too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "netstack/engine/ip_addr.h"
#include "netstack/wire/bytes.h"

namespace slipway::engine {

struct GuestForward {
  enum class Kind { kTcp, kUnix, kCmd };
  wire::Ipv4Addr addr;  // the virtual address the guest connects to
  uint16_t port = 0;
  Kind kind = Kind::kTcp;
  IpAddr host;             // kTcp: the host address and port
  uint16_t host_port = 0;
  std::string path;        // kUnix: the socket's path; kCmd: the command

  std::string target() const;     // "tcp:127.0.0.1:80", "unix:/run/x.sock", "cmd:cat"
  std::string to_string() const;  // the spec, as parsed
};

// Parses a spec; on failure nullopt and *err says why.
std::optional<GuestForward> parse_guest_forward(std::string_view spec, std::string* err);

}  // namespace slipway::engine
