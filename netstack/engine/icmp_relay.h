// ICMP echo relay: forwards a guest's pings (IPv4 and IPv6) to the host side
// and returns the replies, on a libuv loop.
//
// The guest's echo request arrives as parsed fields (the caller has already
// checked the IPv4/ICMP or IPv6/ICMPv6 headers and mapped the destination to
// a host address with NatPolicy::host_destination()). The relay sends it
// from an ICMP socket of the host, of the destination's family, and reports
// what comes back through two callbacks: on_reply for an echo reply,
// on_error for an ICMP error (or a local routing failure) about the
// request. The caller turns those into frames for the guest. Everything
// below holds for both families; IPv6 differences are noted.
//
// Two kinds of socket, chosen at construction (Mode::kAuto tries in order;
// the choice, probed with IPv4, holds for both families):
//  * Ping sockets (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6):
//    unprivileged, allowed when the process's gid is within
//    /proc/sys/net/ipv4/ping_group_range (for IPv6 too). The kernel owns
//    the echo id (it is the socket's local "port") and fills in the
//    checksum, so we keep one socket per flow (guest, guest id,
//    destination), map replies back by socket and restore the guest's id.
//    IP_RECVERR (IPV6_RECVERR) queues ICMP errors (unreachable, time
//    exceeded) on the socket's error queue; SO_SELECT_ERR_QUEUE makes them
//    show up as POLLPRI, which libuv hands us instead of stopping the handle
//    on a bare POLLERR. At most max_flows sockets over both families
//    (kMaxFlows, 1024, unless the constructor is given another number); when
//    full, the least recently used is closed (counted: evicted).
//    (Each is a file descriptor: the program should raise RLIMIT_NOFILE's
//    soft limit, whose usual default is also 1024. When socket() fails for
//    want of descriptors, EMFILE or ENFILE, the guest gets destination
//    unreachable, administratively prohibited, at once, counted (no_fd) and
//    logged at most once per 10 s; another failure drops the request.)
//  * One raw socket per family (SOCK_RAW, IPPROTO_ICMP or IPPROTO_ICMPV6;
//    needs CAP_NET_RAW), used when ping sockets are refused (EACCES/EPERM)
//    or not built in. The guest's id goes out unchanged. A raw socket sees
//    every ICMP packet the host receives (an ICMP_FILTER or ICMP6_FILTER
//    narrows it to echo replies, destination unreachables and time
//    exceeded): IPv4 ones with the IP header, IPv6 ones without (the source
//    comes from recvfrom; the kernel checks and fills ICMPv6 checksums).
//    Each is parsed with bounds checks and accepted only if it answers an
//    outstanding request (a reply whose source, id and seq match, or an
//    error quoting such a request). The table of outstanding requests is
//    bounded (kMaxPending over both families, oldest dropped) and entries
//    time out after kPendingTimeoutMs. Two guests pinging the same host with
//    the same id and seq at once cannot be told apart in this mode; the
//    later request wins.
//
// Errors reach the caller with the type and code of the request's family:
// ICMP (3 destination unreachable, 11 time exceeded) for IPv4, ICMPv6 (1
// destination unreachable, 3 time exceeded) for IPv6. Other ICMPv6 errors
// (packet too big, parameter problem) concern the host's own sending and are
// not reported.
//
// Sockets are read through uv_poll_t, at most kMaxReadsPerWakeup datagrams
// (and as many error-queue entries) per callback so one busy socket cannot
// starve the loop. A send that fails at once with ENETUNREACH/EHOSTUNREACH
// (no route) is reported as destination unreachable (IPv4 net/host
// unreachable, IPv6 no route/address unreachable); that report is queued
// and delivered from the loop (a uv_idle_t), never from inside send_echo,
// so the caller is not re-entered.
//
// The guest's TTL (IPv6: hop limit) is set on the socket (IP_TTL,
// IPV6_UNICAST_HOPS) before each send, so traceroute-style probes expire
// where they would have.
//
// Time is passed in: send_echo() stamps flows and requests with now_ms and
// expire(now_ms) closes ping sockets (and the raw sockets) idle for more
// than kIdleTimeoutMs and forgets unanswered raw-mode requests.
//
// Lifetime: every socket lives in a heap object owning its uv_poll_t; closing
// calls uv_close and the close callback closes the fd and frees the object,
// so the relay may be destroyed at any time, with requests outstanding, as
// long as the loop runs afterwards to finish the closes (the usual libuv
// rule). Callbacks are never invoked after the destructor has returned. A
// callback may call send_echo() and expire() but must not destroy the relay.
#pragma once

#include <uv.h>

#include <array>
#include <compare>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netstack/engine/ip_addr.h"
#include "netstack/sys/log_limiter.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/icmp.h"

namespace slipway::engine {

struct IcmpEchoReply {
  IpAddr from;   // the remote host that answered (the reply's source to the guest)
  IpAddr guest;  // guest address that sent the request (same family as from)
  uint16_t id = 0;  // the guest's id (restored if the kernel rewrote it)
  uint16_t seq = 0;
  std::vector<std::byte> payload;  // echo payload, after the 8-byte ICMP header
};

// An error about the guest's request to dst, with `type`/`code` ready to
// send to the guest in the request's family: ICMP for IPv4 (e.g. type 3 code
// 1, host unreachable), ICMPv6 for IPv6 (e.g. type 1 code 3, address
// unreachable).
struct IcmpError {
  IpAddr guest;
  IpAddr dst;  // the host-side destination given to send_echo
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
  static constexpr size_t kMaxPayload = 65507;   // 65535 - IPv4 header - ICMP header
  static constexpr size_t kMaxPayload6 = 65527;  // 65535 (IPv6 payload length) - ICMPv6 header
  static constexpr int kMaxReadsPerWakeup = 64;
  static constexpr size_t kMaxQueuedErrors = 1024;  // local errors waiting for the loop

  struct Stats {
    uint64_t requests = 0;  // echo requests sent
    uint64_t replies = 0;   // replies reported
    uint64_t errors = 0;    // errors reported
    uint64_t dropped = 0;   // requests refused (bad input, socket failure) or replies malformed
    uint64_t no_fd = 0;     // requests refused for want of file descriptors (EMFILE, ENFILE)
    uint64_t evicted = 0;   // ping sockets closed to make room (max_flows)
    size_t sockets = 0;     // open sockets
  };

  IcmpEchoRelay(uv_loop_t* loop, std::function<void(const IcmpEchoReply&)> on_reply,
                std::function<void(const IcmpError&)> on_error, Mode mode = Mode::kAuto,
                size_t max_flows = kMaxFlows);
  IcmpEchoRelay(const IcmpEchoRelay&) = delete;
  IcmpEchoRelay& operator=(const IcmpEchoRelay&) = delete;
  ~IcmpEchoRelay();

  // Sends an echo request on behalf of the guest to host_dst (of the
  // guest's family) with the guest's TTL or hop limit. Returns false if it
  // was not sent: no relay is possible (neither socket kind is available; a
  // warning is logged once), or the request was refused (mixed families,
  // payload too long, socket failure; counted in stats().dropped).
  bool send_echo(const IpAddr& guest, const IpAddr& host_dst, uint16_t id, uint16_t seq,
                 wire::Bytes payload, uint8_t hop_limit, uint64_t now_ms);

  // Closes sockets idle for more than kIdleTimeoutMs; forgets raw-mode
  // requests older than kPendingTimeoutMs.
  void expire(uint64_t now_ms);

  // kPingSocket or kRaw: what the constructor chose. kAuto if neither kind
  // of socket can be opened (send_echo then returns false).
  Mode active_mode() const { return mode_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Socket;  // heap state of one socket and its uv_poll_t; see the .cc
  // An address as a map key (IpAddr has no order): IPv4 in the first four
  // bytes, the family apart.
  struct AddrKey {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    friend auto operator<=>(const AddrKey&, const AddrKey&) = default;
  };
  static AddrKey key_of(const IpAddr& a);
  struct FlowKey {
    AddrKey guest;
    uint16_t id;
    AddrKey dst;
    friend auto operator<=>(const FlowKey&, const FlowKey&) = default;
  };
  struct PendingKey {  // raw mode: what a reply carries
    AddrKey dst;
    uint16_t id, seq;
    friend auto operator<=>(const PendingKey&, const PendingKey&) = default;
  };
  struct Pending {
    IpAddr guest;
    uint64_t sent_ms;
  };

  bool send_ping(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq,
                 wire::Bytes payload, uint8_t hop_limit, uint64_t now_ms);
  bool send_raw(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq,
                wire::Bytes payload, uint8_t hop_limit, uint64_t now_ms);
  // Sends the request on s: 0, or the errno of a failed sendto.
  static int send_request(Socket* s, const IpAddr& dst, uint16_t id, uint16_t seq,
                          wire::Bytes payload);
  // Accounts for send_request's result: true if the request counts as sent
  // (a local "no route" is queued as an error for the loop to report).
  bool finish_send(int err, const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq);
  Socket* open_raw(bool v6);
  Socket* open_socket(int fd, bool ping, bool v6);
  void close_socket(Socket* s);
  bool set_hop_limit(Socket* s, uint8_t hop_limit);
  void queue_local_error(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq,
                         int err);
  // socket() failed with `err`: EMFILE/ENFILE answer the guest with an error.
  void socket_failed(const IpAddr& guest, const IpAddr& dst, uint16_t id, uint16_t seq, int err,
                     uint64_t now_ms);

  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_idle(uv_idle_t* handle);
  // Reads at most kMaxReadsPerWakeup datagrams from s (while it is still
  // ours) and hands each, with its source, to `handle`.
  using DatagramHandler = void (IcmpEchoRelay::*)(Socket* s, wire::Bytes datagram,
                                                  const std::optional<IpAddr>& from);
  void read_datagrams(Socket* s, DatagramHandler handle);
  void handle_ping_datagram(Socket* s, wire::Bytes datagram, const std::optional<IpAddr>& from);
  void handle_raw_datagram(Socket* s, wire::Bytes datagram, const std::optional<IpAddr>& from);
  void read_ping_errors(Socket* s);
  void handle_raw_packet(wire::Bytes packet);                            // IPv4, IP header first
  void handle_raw_packet6(const wire::Ipv6Addr& src, wire::Bytes packet);  // IPv6, ICMPv6 only
  void complete_reply(const IpAddr& from, const wire::AnyIcmpMessage& echo_reply);
  void complete_error(const IpAddr& dst, const wire::AnyIcmpMessage& request, uint8_t type,
                      uint8_t code);

  uv_loop_t* loop_;
  size_t max_flows_;
  sys::LogLimiter log_limit_;
  std::function<void(const IcmpEchoReply&)> on_reply_;
  std::function<void(const IcmpError&)> on_error_;
  Mode mode_ = Mode::kAuto;
  bool warned_unavailable_ = false;
  std::string unavailable_reason_;  // why mode_ stayed kAuto, for the one warning

  std::map<FlowKey, Socket*> flows_;  // ping mode
  Socket* raw4_ = nullptr;            // raw mode, each opened on first use
  Socket* raw6_ = nullptr;
  std::map<PendingKey, Pending> pending_;
  std::deque<IcmpError> local_errors_;
  uv_idle_t* idle_ = nullptr;  // delivers local_errors_; freed in its close callback
  std::vector<std::byte> rx_buf_;
  Stats stats_;
};

}  // namespace slipway::engine
