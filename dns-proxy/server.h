// DNS listeners: a UDP socket and a TCP listener on one address that feed a
// Proxy. Used by the standalone `dns-proxy` program; reusable by anything
// that wants a DNS service on a host address.
//
// Theory of operation
// - UDP: each datagram is one query; the answer goes back to its source with
//   uv_udp_try_send (DNS over UDP is lossy by design: if the socket buffer is
//   full the answer is dropped and counted, the client retries). libuv reads
//   at most 32 datagrams per wake-up.
// - TCP (RFC 7766): 2-byte length framing; a client may pipeline queries and
//   answers go back as each is ready, in any order, each with its own ID.
//   Per connection: at most `max_inflight` queries at the proxy and at most
//   `max_write_backlog` bytes queued for writing; beyond either, reading
//   stops until answers drain (this also bounds the frames handled per
//   wake-up). The read buffer holds one maximum-size frame plus slack. A
//   connection with nothing in flight for `idle_timeout_ms` is closed; after
//   the client's EOF the connection closes once every answer is written.
//   At most `max_connections` connections; beyond it new ones are accepted
//   and closed at once.
// - Lifetime: the Proxy must outlive the Server (destroy the Server first).
//   Handles are freed in their close callbacks. Answers that arrive
//   after the Server (or a connection) is gone are dropped: callbacks hold
//   weak references only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dns-proxy/proxy.h"

namespace slipway::dns {

struct ServerLimits {
  size_t max_connections = 256;
  uint64_t idle_timeout_ms = 10000;
  size_t max_inflight = 64;
  size_t max_write_backlog = 256 * 1024;
};

struct ServerStats {
  uint64_t udp_queries = 0;
  uint64_t udp_send_drops = 0;
  uint64_t tcp_connections = 0;
  uint64_t tcp_rejected = 0;
  uint64_t tcp_queries = 0;
};

class Server {
 public:
  // Binds UDP and TCP on listen_addr:port (an IPv4 or IPv6 literal; port 0
  // picks a free port per protocol). Throws std::runtime_error on failure.
  Server(uv_loop_t* loop, Proxy& proxy, const std::string& listen_addr, uint16_t port,
         ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t udp_port() const;
  uint16_t tcp_port() const;
  size_t connections() const;
  const ServerStats& stats() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace slipway::dns
