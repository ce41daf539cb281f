// The upstream client: one query to one upstream server over UDP or TCP, on
// the libuv loop. Also the small RAII timer the proxy and server use.
//
// Theory of operation
// - An Exchange sends one query (whose ID the proxy has already replaced by a
//   random one) and reports exactly one outcome, or none if aborted first:
//     kAnswer     a reply that matches (see below)
//     kTruncated  a matching UDP reply with TC=1 (the proxy retries over TCP)
//     kError      the socket failed, the peer refused or closed, or (TCP) the
//                 reply did not match
//   An Exchange has no timer of its own: the proxy decides how long to wait
//   and may keep an older attempt listening while it tries the next server.
// - UDP: every exchange opens a fresh socket connected to the server, so the
//   kernel picks a fresh random source port (Linux randomises ephemeral
//   ports) and reports ICMP "port unreachable" as ECONNREFUSED, which lets
//   the proxy fail over at once. A datagram is accepted only if its source
//   address and port are the server's, and it is a response (QR=1) with the
//   query's ID and question (name compared case-insensitively, type, class);
//   anything else is ignored and counted in `mismatched()`.
// - TCP: connect, send the query with its 2-byte length, read one framed
//   reply (at most 65535 bytes), check it as for UDP.
// - Lifecycle: created running; `abort()` (also from the owner's deleter,
//   ExchangePtr) stops callbacks and closes the handle; the memory is freed
//   in the close callback, never earlier. The owner may abort from inside the
//   done callback.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "dns-proxy/message.h"
#include "dns-proxy/upstreams.h"

namespace slipway::dns {

enum class Transport { kUdp, kTcp };

// A restartable timer. Its handle is freed in the close callback; the
// function is never called after the Timer is destroyed.
class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> fn);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void start(uint64_t timeout_ms);
  void stop();

 private:
  struct Box {
    uv_timer_t handle;
    std::function<void()> fn;
  };
  Box* box_;
};

class Exchange {
 public:
  enum class Outcome { kAnswer, kTruncated, kError };
  using Done = std::function<void(Outcome, std::vector<std::byte> reply)>;

  // Starts the exchange; `done` is never called before this returns. A
  // socket that cannot be set up is reported by returning nullptr.
  static Exchange* start(uv_loop_t* loop, const ResolvedUpstream& server, Transport transport,
                         std::vector<std::byte> query, Question expected, Done done);
  // No callback after this; the memory goes with the close callback.
  void abort();
  uint64_t mismatched() const { return mismatched_; }

 private:
  Exchange() = default;
  ~Exchange() = default;
  bool start_udp();
  bool start_tcp();
  void finish(Outcome outcome, std::vector<std::byte> reply);
  void on_udp(ssize_t nread, const uv_buf_t* buf, const sockaddr* from);
  void on_tcp_read(ssize_t nread, const uv_buf_t* buf);
  bool from_server(const sockaddr* from) const;

  uv_loop_t* loop_ = nullptr;
  ResolvedUpstream server_;
  Transport transport_ = Transport::kUdp;
  std::vector<std::byte> query_;  // TCP: with the 2-byte length in front
  uint16_t query_id_ = 0;
  Question expected_;
  Done done_;
  bool closing_ = false;
  bool initialised_ = false;
  uint64_t mismatched_ = 0;
  union {
    uv_handle_t handle;
    uv_udp_t udp;
    uv_tcp_t tcp;
  } h_{};
  uv_udp_send_t send_req_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  std::vector<std::byte> rbuf_;
  size_t rlen_ = 0;
};

struct ExchangeAbort {
  void operator()(Exchange* e) const { e->abort(); }
};
using ExchangePtr = std::unique_ptr<Exchange, ExchangeAbort>;

// True when `reply` answers `query_id`/`expected`: QR=1, same ID, one
// question equal to `expected`. Sets `truncated` from TC.
bool reply_matches(std::span<const std::byte> reply, uint16_t query_id, const Question& expected,
                   bool& truncated);

}  // namespace slipway::dns
