// Engine: what terminates the guest's TCP and UDP and relays them over host
// sockets, as the gateway, the stack, portfwd and the control API see it.
//
// Theory of operation
//   The gateway owns the link layer and the special addresses; every IPv4 or
//   IPv6 packet from the guest that is TCP or UDP (or a fragment) goes to
//   input()/input6(). What the engine sends to the guest comes out of its
//   Output as an IP packet after kEthernetHeaderLen bytes of headroom, which
//   the gateway fills with the link header. The engine applies the NAT
//   policy (nat.h): a destination the policy refuses never reaches a host
//   socket.
//
//   Two services are answered inside the engine instead of being relayed:
//   DNS at the DNS addresses (UDP and TCP port 53), handed to a DnsResolver
//   (the stack plugs in its dns::Proxy), and one "line service" TCP port on
//   the gateway address (portfwd-agent's reports in VM mode).
//
//   Inbound connections (published ports, portfwd/) enter through
//   accept_inbound_tcp() and inbound_udp(): portfwd owns the host listeners,
//   the engine opens the guest side.
//
//   Implementations: LwipEngine (lwip_engine.h), the default, and
//   SlirpEngine (slirp_engine.h), on libslirp. An engine is
//   driven by the stack's clock (sys/clock.h) and its libuv loop.
//
// Limits (EngineConfig, each counted in EngineStats and logged at most once
// per 10 s, sys/log_limiter.h): TCP flows (max_tcp_flows, 16384; DNS and
// line sessions count too) and UDP mappings (max_udp_flows, 4096); new
// outbound flows per second (max_new_flows_per_second, 50,000, with a burst of
// as many); bytes held for all flows together (max_buffered_bytes, 256
// MiB). A guest SYN refused by a limit, or because the host is out of
// file descriptors (EMFILE, ENFILE), gets a RST at once; a datagram, ICMP
// destination unreachable (administratively prohibited). Existing flows are
// not affected, except that past max_buffered_bytes every flow waits (no
// host reads, no window reopened to the guest) until the total is under
// 7/8 of it again. Idle UDP mappings expire after udp_idle_timeout_ms
// (60 s); a TCP handshake that has not completed within
// tcp_connect_timeout_ms (30 s) is closed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/engine/flow_key.h"
#include "netstack/engine/nat.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/offload.h"

struct sockaddr;

namespace slipway::engine {

struct EngineConfig {
  NatPolicy nat;
  uint16_t mtu = 65520;
  size_t max_tcp_flows = 16384;  // TCP connections at once, DNS and line sessions included
  size_t max_udp_flows = 4096;   // UDP mappings at once (and published-port UDP sessions)
  // New outbound TCP connections and UDP mappings per second (a token
  // bucket holding one second's worth); 0: no limit.
  uint32_t max_new_flows_per_second = 50'000;
  // Bytes held for all flows together (data not yet taken by the host
  // socket or acknowledged by the guest); 0: no limit.
  uint64_t max_buffered_bytes = 256ull << 20;
  uint64_t udp_idle_timeout_ms = 60'000;
  uint64_t tcp_connect_timeout_ms = 30'000;
};

struct EngineStats {
  uint64_t tcp_inbound = 0, udp_inbound = 0;
  uint64_t tcp_connects = 0, tcp_refused = 0, tcp_unreachable = 0;
  // Guest SYNs refused (RST) at max_tcp_flows, at max_new_flows_per_second, or
  // because the host had no file descriptor left (EMFILE/ENFILE).
  uint64_t tcp_limit = 0, tcp_rate_limited = 0, tcp_no_fd = 0;
  // Of tcp_limit and udp_limit: refused because that guest held its share
  // (half of the limit) while others shared the gateway.
  uint64_t guest_share_refused = 0;
  uint64_t tcp_handshake_resets = 0;  // the guest reset a connection before completing it
  uint64_t udp_datagrams_out = 0, udp_datagrams_in = 0, udp_dropped = 0, udp_filtered = 0;
  // Guest datagrams refused (ICMP unreachable) for want of a mapping: at
  // max_udp_flows, at max_new_flows_per_second, or with no file descriptor.
  // They count in udp_dropped too.
  uint64_t udp_limit = 0, udp_rate_limited = 0, udp_no_fd = 0;
  uint64_t packets_dropped = 0;
  uint64_t dns_udp_queries = 0, dns_tcp_sessions = 0;
  uint64_t dns_tcp_refused = 0;  // connections to the DNS (or line) service refused at its limit
  uint64_t buffered_bytes = 0;   // now: held for all flows (see max_buffered_bytes)
  uint64_t buffer_waits = 0;     // times a flow waited for the total to fall
  uint64_t link_waits = 0;       // times a flow stopped reading for the guest's link (set_link_ready)
  uint64_t memory_trims = 0;     // free memory returned to the system after a flood
  uint64_t egress_denied = 0;  // SYNs and datagrams the egress policy denied
  // Loss recovery of the TCP data sent to the guest (lwIP engine; 0 on
  // slirp): fast recoveries entered, segments they retransmitted, loss
  // probes sent, and retransmission time-outs.
  uint64_t tcp_recoveries = 0, tcp_recovery_retransmits = 0, tcp_loss_probes = 0, tcp_timeouts = 0;
};

// One flow as the control API lists it.
struct FlowInfo {
  const char* proto;       // "tcp" or "udp"
  FlowKey key;             // the guest's view; remote is 0.0.0.0:0 for a UDP mapping
  bool inbound;            // from a published port
  const char* state;
  uint64_t bytes_to_host, bytes_to_guest;
};

// Answers one DNS message; `respond` is called at most once, maybe at once.
// Returns false when the query is dropped without an answer (`respond` is
// then never called), so that a TCP session frees its slot.
using DnsResolver =
    std::function<bool(wire::Bytes query, bool over_tcp, std::function<void(std::vector<std::byte>)> respond)>;
// Takes one line a guest sent to the line service (without its newline).
using LineHandler = std::function<void(std::string_view line)>;

class Engine {
 public:
  // Receives an IP packet for the guest: frame[0, kEthernetHeaderLen) is
  // free for the link header; the IPv4 or IPv6 packet follows. `offload`
  // (offsets from the start of `frame`) says what is left to do to it: a
  // TCP/UDP checksum, or segmentation of a TCP segment longer than the MTU;
  // plain unless set_link_offloads() allowed it.
  using Output = std::function<void(wire::MutBytes frame, const wire::Offload& offload)>;

  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  virtual ~Engine() = default;

  // One TCP or UDP packet (or fragment) from the guest, whose source the
  // gateway has checked.
  virtual void input(const wire::Ipv4Packet& packet) = 0;
  virtual void input6(const wire::Ipv6Packet& packet) = 0;

  // Who answers DNS at the DNS addresses. Without one, those queries are
  // dropped and TCP connections to port 53 there refused.
  virtual void set_dns_resolver(DnsResolver resolver) = 0;
  // Serves TCP `port` on the gateway address itself (instead of relaying it
  // to the host's loopback), handing every line received to `handler`.
  virtual void set_line_service(uint16_t port, LineHandler handler) = 0;

  // What the guest's link carries as is (link::Capabilities): frames whose
  // TCP/UDP checksum is still to be computed (csum), and TCP segments longer
  // than the MTU to be cut by the link (tso). With them the engine computes
  // no checksum and sends larger TCP segments; without, plain frames only.
  // May change at any time (a new VM frontend); frames already out are
  // finished by the link as needed.
  virtual void set_link_offloads(bool csum, bool tso) = 0;

  // Whether the guest's link takes more now (link::Port::tx_ready(): false
  // while frames for the guest pile up in the transport's queue). While it
  // does not, TCP flows stop reading their host sockets once what they read
  // is in lwIP, so the host's senders see their window close; they read
  // again after the link is ready (from the end of that loop iteration).
  // Data already in lwIP still goes out. May be called from inside the
  // engine's own output.
  virtual void set_link_ready(bool ready) = 0;

  // Several guests behind one gateway: `who` names the guest whose packet
  // input() is taking now (the switch port it came in on; kNoGuest when
  // unknown). The engine then lets no one guest hold more than half of
  // max_tcp_flows or of max_udp_flows, so a guest that floods cannot lock
  // the others out. Engines without limits (slirp) ignore it.
  static constexpr uint32_t kNoGuest = ~uint32_t{0};
  virtual void set_guest_identity(std::function<uint32_t()> /*who*/) {}

  // Inbound (a published port): accepts a connection waiting on `listener`
  // and opens a guest connection to guest:guest_port for it. The guest sees
  // the client's address (host loopback clients appear as the gateway), or
  // the gateway address when source_gateway is set. A client of the other
  // family appears as the gateway address of the guest's family.
  virtual void accept_inbound_tcp(uv_stream_t* listener, const IpAddr& guest, uint16_t guest_port,
                                  bool source_gateway) = 0;
  // Inbound UDP on a published port: relays a datagram from `client` (as
  // libuv reported it) to guest:guest_port, keeping a session so that the
  // guest's replies leave through `listener` to exactly that client.
  virtual void inbound_udp(uv_udp_t* listener, const sockaddr* client, const IpAddr& guest, uint16_t guest_port,
                           bool source_gateway, wire::Bytes payload) = 0;
  // Forgets the sessions of a listener that is closing.
  virtual void forget_inbound_udp(uv_udp_t* listener) = 0;
  // An engine that listens on published host ports itself (libslirp's host
  // forwards) says so here; PublishedPorts then calls add_host_forward() for
  // each host port instead of binding a listener and calling
  // accept_inbound_tcp()/inbound_udp(). add_host_forward() returns "" or why
  // it failed; the guest is resolved once, when the port is added.
  virtual bool owns_host_listeners() const { return false; }
  virtual std::string add_host_forward(bool /*udp*/, const sockaddr* /*host*/, const IpAddr& /*guest*/,
                                       uint16_t /*guest_port*/) {
    return "this engine does not listen on host ports";
  }
  virtual void remove_host_forward(bool /*udp*/, const sockaddr* /*host*/) {}
  // A buffer for host reads whose contents are consumed before the read
  // callback returns (shared by every reader on the loop).
  virtual std::vector<std::byte>& read_buffer() = 0;

  virtual const EngineConfig& config() const = 0;
  virtual const EngineStats& stats() const = 0;
  virtual size_t tcp_flow_count() const = 0;
  virtual size_t udp_flow_count() const = 0;
  virtual std::vector<FlowInfo> flows() const = 0;
};

}  // namespace slipway::engine
