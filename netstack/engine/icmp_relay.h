// ICMP echo relay: forwards a guest's pings to the host side and returns the
// replies, on a libuv loop.
//
// The guest's echo request arrives as parsed fields (the caller has already
// checked the IPv4/ICMP headers and mapped the destination to a host address,
// e.g. the gateway to 127.0.0.1). The relay sends it from an ICMP socket of
// the host and reports what comes back through two callbacks: on_reply for an
// echo reply, on_error for an ICMP error (or a local routing failure) about
// the request. The caller turns those into frames for the guest.
//
// Two kinds of socket, chosen at construction (Mode::kAuto tries in order):
//  * Ping sockets (SOCK_DGRAM, IPPROTO_ICMP): unprivileged, allowed when the
//    process's gid is within /proc/sys/net/ipv4/ping_group_range. The kernel
//    owns the echo id (it is the socket's local "port") and fills in the
//    checksum, so we keep one socket per flow (guest, guest id, destination),
//    map replies back by socket and restore the guest's id. IP_RECVERR
//    queues ICMP errors (unreachable, time exceeded) on the socket's error
//    queue; SO_SELECT_ERR_QUEUE makes them show up as POLLPRI, which libuv
//    hands us instead of stopping the handle on a bare POLLERR.
//    At most kMaxFlows sockets; when full, the least recently used is closed.
//    (Each is a file descriptor: the program should raise RLIMIT_NOFILE's
//    soft limit, whose usual default is also 1024; a socket() failure drops
//    the request.)
//  * One raw socket (SOCK_RAW, IPPROTO_ICMP; needs CAP_NET_RAW), used when
//    ping sockets are refused (EACCES/EPERM) or not built in. The guest's
//    id goes out unchanged. The raw socket sees every ICMP packet the host receives (an
//    ICMP_FILTER narrows it to echo replies, unreachables and time
//    exceeded), with the IP header: each is parsed with bounds checks and
//    accepted only if it answers an outstanding request (a reply whose
//    source, id and seq match, or an error quoting such a request). The
//    table of outstanding requests is bounded (kMaxPending, oldest dropped)
//    and entries time out after kPendingTimeoutMs. Two guests pinging the
//    same host with the same id and seq at once cannot be told apart in this
//    mode; the later request wins.
//
// Sockets are read through uv_poll_t, at most kMaxReadsPerWakeup datagrams
// (and as many error-queue entries) per callback so one busy socket cannot
// starve the loop. A send that fails at once with ENETUNREACH/EHOSTUNREACH
// (no route) is reported as ICMP destination unreachable; that report is
// queued and delivered from the loop (a uv_idle_t), never from inside
// send_echo, so the caller is not re-entered.
//
// Time is passed in: send_echo() stamps flows and requests with now_ms and
// expire(now_ms) closes ping sockets (and the raw socket) idle for more than
// kIdleTimeoutMs and forgets unanswered raw-mode requests.
//
// Lifetime: every socket lives in a heap object owning its uv_poll_t; closing
// calls uv_close and the close callback closes the fd and frees the object,
// so the relay may be destroyed at any time, with requests outstanding, as
// long as the loop runs afterwards to finish the closes (the usual libuv
// rule). Callbacks are never invoked after the destructor has returned. A
// callback may call send_echo() and expire() but must not destroy the relay.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "netstack/wire/bytes.h"

namespace slipway::engine {

struct IcmpEchoReply {
  wire::Ipv4Addr from;   // the remote host that answered (the reply's source to the guest)
  wire::Ipv4Addr guest;  // guest address that sent the request
  uint16_t id = 0;       // the guest's id (restored if the kernel rewrote it)
  uint16_t seq = 0;
  std::vector<std::byte> payload;  // echo payload, after the 8-byte ICMP header
};

// An ICMP error about the guest's request to dst (e.g. type 3 code 1, host
// unreachable). `type`/`code` are ICMP values ready to send to the guest.
struct IcmpError {
  wire::Ipv4Addr guest;
  wire::Ipv4Addr dst;
  uint16_t id = 0, seq = 0;
  uint8_t type = 0, code = 0;
};

class IcmpEchoRelay {
 public:
  enum class Mode { kAuto, kPingSocket, kRaw };

  static constexpr size_t kMaxFlows = 1024;           // ping sockets
  static constexpr size_t kMaxPending = 4096;         // raw-mode outstanding requests
  static constexpr uint64_t kIdleTimeoutMs = 60'000;  // sockets
  static constexpr uint64_t kPendingTimeoutMs = 60'000;
  static constexpr size_t kMaxPayload = 65507;  // 65535 - IPv4 header - ICMP header
  static constexpr int kMaxReadsPerWakeup = 64;
  static constexpr size_t kMaxQueuedErrors = 1024;  // local errors waiting for the loop

  struct Stats {
    uint64_t requests = 0;  // echo requests sent
    uint64_t replies = 0;   // replies reported
    uint64_t errors = 0;    // errors reported
    uint64_t dropped = 0;   // requests refused (bad input, socket failure) or replies malformed
    size_t sockets = 0;     // open sockets
  };

  IcmpEchoRelay(uv_loop_t* loop, std::function<void(const IcmpEchoReply&)> on_reply,
                std::function<void(const IcmpError&)> on_error, Mode mode = Mode::kAuto);
  IcmpEchoRelay(const IcmpEchoRelay&) = delete;
  IcmpEchoRelay& operator=(const IcmpEchoRelay&) = delete;
  ~IcmpEchoRelay();

  // Sends an echo request on behalf of the guest to host_dst. Returns false
  // if it was not sent: no relay is possible (neither socket kind is
  // available; a warning is logged once), or the request was refused (payload
  // too long, socket failure; counted in stats().dropped).
  bool send_echo(wire::Ipv4Addr guest, wire::Ipv4Addr host_dst, uint16_t id, uint16_t seq,
                 wire::Bytes payload, uint8_t ttl, uint64_t now_ms);

  // Closes sockets idle for more than kIdleTimeoutMs; forgets raw-mode
  // requests older than kPendingTimeoutMs.
  void expire(uint64_t now_ms);

  // kPingSocket or kRaw: what the constructor chose. kAuto if neither kind
  // of socket can be opened (send_echo then returns false).
  Mode active_mode() const { return mode_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Socket;  // heap state of one socket and its uv_poll_t; see the .cc
  struct FlowKey {
    uint32_t guest;
    uint16_t id;
    uint32_t dst;
    friend auto operator<=>(const FlowKey&, const FlowKey&) = default;
  };
  struct PendingKey {  // raw mode: what a reply carries
    uint32_t dst;
    uint16_t id, seq;
    friend auto operator<=>(const PendingKey&, const PendingKey&) = default;
  };
  struct Pending {
    wire::Ipv4Addr guest;
    uint64_t sent_ms;
  };

  bool send_ping(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id, uint16_t seq,
                 wire::Bytes payload, uint8_t ttl, uint64_t now_ms);
  bool send_raw(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id, uint16_t seq,
                wire::Bytes payload, uint8_t ttl, uint64_t now_ms);
  Socket* open_socket(int fd, bool ping);
  void close_socket(Socket* s);
  bool set_ttl(Socket* s, uint8_t ttl);
  void queue_local_error(wire::Ipv4Addr guest, wire::Ipv4Addr dst, uint16_t id, uint16_t seq,
                         int err);

  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_idle(uv_idle_t* handle);
  void read_ping(Socket* s);
  void read_ping_errors(Socket* s);
  void read_raw(Socket* s);
  void handle_raw_packet(wire::Bytes packet);

  uv_loop_t* loop_;
  std::function<void(const IcmpEchoReply&)> on_reply_;
  std::function<void(const IcmpError&)> on_error_;
  Mode mode_ = Mode::kAuto;
  bool warned_unavailable_ = false;
  std::string unavailable_reason_;  // why mode_ stayed kAuto, for the one warning

  std::map<FlowKey, Socket*> flows_;  // ping mode
  Socket* raw_ = nullptr;             // raw mode, opened on first use
  std::map<PendingKey, Pending> pending_;
  std::deque<IcmpError> local_errors_;
  uv_idle_t* idle_ = nullptr;  // delivers local_errors_; freed in its close callback
  std::vector<std::byte> rx_buf_;
  Stats stats_;
};

}  // namespace slipway::engine
