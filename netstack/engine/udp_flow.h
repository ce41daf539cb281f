// UdpFlow: the host socket for one guest (address, source port).
//
// Every datagram the guest sends from that source port, to any destination,
// leaves from the same host socket (endpoint-independent mapping, as RFC 4787
// asks for). Replies are accepted only from addresses the guest has sent to
// through this mapping (address-dependent filtering: at most kMaxPeers are
// remembered), so an arbitrary host cannot inject into the guest. The flow
// expires after EngineConfig::udp_idle_timeout_ms without traffic either way.
#pragma once

#include <uv.h>

#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "netstack/engine/ip_addr.h"

namespace slipway::engine {

class FlowHost;

class UdpFlow {
 public:
  static constexpr size_t kMaxPeers = 64;
  // Datagrams from the guest wait for the end of the loop iteration (one
  // sendmmsg for all of them); at most this many, then they go at once.
  static constexpr size_t kMaxQueued = 64;
  static constexpr size_t kMaxQueuedBytes = 256 * 1024;

  UdpFlow(FlowHost& host, const IpAddr& guest, uint16_t guest_port, uint64_t now);
  UdpFlow(const UdpFlow&) = delete;
  UdpFlow& operator=(const UdpFlow&) = delete;

  // Opens the host socket; false (and the flow deletes itself) on failure,
  // which the engine answers with ICMP unreachable. Out of file descriptors
  // (EMFILE, ENFILE) is counted (udp_no_fd) and reported to the engine's
  // rate-limited log (FlowHost::out_of_descriptors).
  bool open();
  // Queues a datagram for the host (sent by flush() or when the queue is full).
  void send(const IpAddr& host_dst, uint16_t port, wire::Bytes payload, uint64_t now);
  // Sends what send() queued (FlowHost::flush_later()).
  void flush();
  void close();
  // The engine is going away: the flow never calls it back (before close()).
  void orphan() { host_ = nullptr; }

  const IpAddr& guest() const { return guest_; }
  uint16_t guest_port() const { return guest_port_; }
  uint64_t last_active() const { return last_active_; }
  uint64_t bytes_to_host() const { return bytes_to_host_; }
  uint64_t bytes_to_guest() const { return bytes_to_guest_; }
  // Which guest opened the mapping (TcpFlow::guest_id).
  uint32_t guest_id() const { return guest_id_; }
  void set_guest_id(uint32_t id) { guest_id_ = id; }

 private:
  friend struct UdpFlowCallbacks;
  ~UdpFlow() = default;
  void received(const struct sockaddr* from, const std::byte* data, size_t len);
  void send_queued();

  FlowHost* host_;  // null once the engine is gone (orphan())
  IpAddr guest_;
  uint16_t guest_port_;
  uint64_t last_active_;
  uv_udp_t sock_;
  bool closing_ = false;
  uint64_t bytes_to_host_ = 0, bytes_to_guest_ = 0;
  uint32_t guest_id_ = ~uint32_t{0};  // Engine::kNoGuest
  std::vector<IpAddr> peers_;
  struct Queued {
    sockaddr_storage to;
    size_t offset, len;  // in queued_bytes_
  };
  std::vector<Queued> queued_;
  std::vector<std::byte> queued_bytes_;
  bool flush_pending_ = false;
};

}  // namespace slipway::engine
