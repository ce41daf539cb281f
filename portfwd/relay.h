// The standalone relay behind the `portfwd` program: listens on one address
// and relays every TCP connection (or every UDP client) to one target
// address, like `socat TCP-LISTEN:...,fork,reuseaddr TCP:...` or rinetd.
//
// TcpRelay: per accepted connection, a non-blocking connect to the target,
// then bytes both ways with
//   - half-close: EOF from one side becomes shutdown(SHUT_WR) on the other
//     once everything read before it has been written;
//   - reset propagation: a reset (or any error) on one side closes the other
//     with SO_LINGER 0, so its peer sees a reset too; a refused or failed
//     connect to the target resets the client;
//   - backpressure: at most `buffer_bytes` per direction in flight; a side is
//     not read while its direction is full;
//   - zero copy: splice(2) through a per-direction pipe (socket -> pipe ->
//     socket), falling back to read/write through a buffer when splice is
//     not possible (no pipe, or the kernel refuses).
// UdpRelay: one session per client address, each with its own connected
// upstream socket; sessions end after `udp_timeout_ms` without traffic in
// either direction; at most `udp_max_sessions` (datagrams from new clients
// are dropped and counted beyond that). Datagrams that cannot be sent at once
// are dropped and counted (UDP has no backpressure).
//
// Both are single-threaded on one libuv loop. close() stops listening and
// closes every connection or session; handle memory is freed in libuv's close
// callbacks, so a relay may be destroyed right after close() (the loop must
// still run to let those callbacks finish).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace slipway::portfwd {

// An IPv4 or IPv6 address and port.
struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&storage); }
  uint16_t port() const;
  // "127.0.0.1:80", "[::1]:80".
  std::string to_string() const;
};

// Parses "ADDR:PORT" (IPv4 literal) or "[ADDR]:PORT" (IPv6 literal); port
// 0..65535 (0 only makes sense to listen on). Sets `error` on failure.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* error);

struct RelayOptions {
  size_t buffer_bytes = 1 << 20;      // per direction: pipe size or copy buffer
  bool splice = true;                 // false: always read/write
  size_t max_connections = 1024;      // beyond this, accepting pauses
  uint64_t udp_timeout_ms = 60'000;   // idle time after which a session ends
  size_t udp_max_sessions = 4096;
};

struct TcpRelayStats {
  uint64_t accepted = 0;
  uint64_t connect_failures = 0;  // target refused or unreachable
  uint64_t resets = 0;            // connections ended by a reset or error
  uint64_t bytes_to_target = 0;
  uint64_t bytes_to_client = 0;
  uint64_t copy_fallbacks = 0;    // directions that could not use splice
  size_t active = 0;
};

struct UdpRelayStats {
  uint64_t sessions_opened = 0;
  uint64_t sessions_expired = 0;
  uint64_t datagrams_to_target = 0;
  uint64_t datagrams_to_client = 0;
  uint64_t dropped = 0;  // session limit reached or send would block
  size_t active = 0;
};

class TcpConnection;

class TcpRelay {
 public:
  TcpRelay(uv_loop_t* loop, const Endpoint& listen, const Endpoint& target, const RelayOptions& options);
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  // Binds and listens. Throws std::runtime_error naming the address.
  void start();
  // Stops listening and closes every connection (gracefully: the kernel
  // still sends what it has queued). Idempotent.
  void close();
  // The address actually bound (resolves port 0), after start().
  Endpoint local_endpoint() const;
  const TcpRelayStats& stats() const { return stats_; }

 private:
  friend class TcpConnection;
  static void on_listener_ready(uv_poll_t* handle, int status, int events);
  static void on_resume_timer(uv_timer_t* handle);
  void accept_some();
  void pause_accepting(uint64_t ms);
  void resume_accepting();
  void forget(TcpConnection* connection);  // called when a connection starts closing

  uv_loop_t* loop_;
  Endpoint listen_;
  Endpoint target_;
  RelayOptions options_;
  int listen_fd_ = -1;
  uv_poll_t* listener_ = nullptr;  // freed in its close callback
  uv_timer_t* resume_timer_ = nullptr;
  bool accepting_ = false;
  bool closed_ = false;
  std::unordered_set<TcpConnection*> connections_;
  TcpRelayStats stats_;
};

class UdpSession;

class UdpRelay {
 public:
  UdpRelay(uv_loop_t* loop, const Endpoint& listen, const Endpoint& target, const RelayOptions& options);
  ~UdpRelay();
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  void start();  // throws std::runtime_error
  void close();  // idempotent
  Endpoint local_endpoint() const;
  const UdpRelayStats& stats() const { return stats_; }

  // Ends the sessions idle since before now - udp_timeout_ms. Called by the
  // relay's own timer with the loop's time; public so tests can drive it.
  void expire_idle(uint64_t now_ms);

 private:
  friend class UdpSession;
  static void on_client_datagram(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                                 unsigned flags);
  static void on_sweep(uv_timer_t* handle);
  UdpSession* session_for(const sockaddr* client, uint64_t now_ms);
  void end_session(UdpSession* session);

  uv_loop_t* loop_;
  Endpoint listen_;
  Endpoint target_;
  RelayOptions options_;
  uv_udp_t* listener_ = nullptr;  // freed in its close callback
  uv_timer_t* sweep_timer_ = nullptr;
  bool closed_ = false;
  std::unordered_map<std::string, UdpSession*> sessions_;  // key: client address bytes
  UdpRelayStats stats_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (many connections need
// many fds); returns the soft limit now in force.
uint64_t raise_fd_limit();

}  // namespace slipway::portfwd
