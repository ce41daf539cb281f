// slirp4netns's API requests and their answers, byte for byte.
//
// Theory of operation
//   A client (Podman with port_handler=slirp4netns, RootlessKit's
//   slirp4netns port driver) sends one JSON object per connection and reads
//   one answer (api_server.h carries the bytes). HostfwdApi::answer() turns a
//   request into the answer slirp4netns 1.2 would write, with the same bytes:
//   compact JSON, keys in slirp4netns's order, its error strings.
//
//   {"execute":"add_hostfwd","arguments":{"proto":"tcp"|"udp",
//     "host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100",
//     "guest_port":80}}
//       -> {"return":{"id":1}}
//       host_addr "" or absent: 0.0.0.0; guest_addr "" or absent: the guest
//       (.100 of the CIDR). Ids count from 1 and are never reused.
//   {"execute":"list_hostfwd"}
//       -> {"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0",
//            "host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}]}
//       (slirp4netns answers this one without "return"; so does slipway)
//   {"execute":"remove_hostfwd","arguments":{"id":1}}  -> {"return":{}}
//   Errors: {"error":{"desc":"bad request: ..."}} with slirp4netns's texts:
//     cannot parse JSON | json_object() failed | no execute found |
//     unknown execute | too large message |
//     add_hostfwd: bad arguments.proto|host_addr|host_port|guest_addr|
//       guest_port | add_hostfwd: slirp_add_hostfwd failed (the host port
//       cannot be bound; the reason is logged) |
//     remove_hostfwd: bad arguments.id |
//     remove_hostfwd: slirp_remove_hostfwd failed
//
// Where slipway answers differently (README lists these):
//   - A port outside 1..65535 is "bad arguments.host_port"/"guest_port"
//     (slirp4netns truncates it to 16 bits); a missing "proto" is "bad
//     arguments.proto" (slirp4netns crashes).
//   - guest_addr must be the guest's own address: slipway forwards to the
//     guest's address only, so another address is refused with
//     "bad request: add_hostfwd: bad arguments.guest_addr (slipway forwards
//     to the guest address A only)".
//
// Limits: a request is at most kMaxRequestBytes - 1 bytes (slirp4netns's
// 4096-byte read buffer); HostfwdApi itself holds no I/O and no timers.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/bytes.h"
#include "portfwd/rule.h"

namespace slipway::compat {

// Where the forwards go: the Stack's published ports in the program, a
// fake in tests.
class HostfwdBackend {
 public:
  virtual ~HostfwdBackend() = default;
  // Opens the host port; "" on success, else why not.
  virtual std::string add(const portfwd::Rule& rule) = 0;
  // Closes it; false if there was no such forward.
  virtual bool remove(const portfwd::Rule& rule) = 0;
};

class HostfwdApi {
 public:
  static constexpr size_t kMaxRequestBytes = 4096;

  // `guest`: the only guest_addr forwards may name (.100 of the CIDR).
  HostfwdApi(HostfwdBackend& backend, wire::Ipv4Addr guest) : backend_(backend), guest_(guest) {}

  // The answer to one request (the bytes to write back).
  std::string answer(std::string_view request);
  // The answer to a request of kMaxRequestBytes or more.
  static std::string too_large();

  struct Entry {
    int id = 0;
    portfwd::Rule rule;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::string add_hostfwd(const nlohmann::json& request);
  std::string list_hostfwd() const;
  std::string remove_hostfwd(const nlohmann::json& request);

  HostfwdBackend& backend_;
  wire::Ipv4Addr guest_;
  std::vector<Entry> entries_;
  int next_id_ = 1;
};

}  // namespace slipway::compat
