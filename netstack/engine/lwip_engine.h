// LwipEngine: terminates the guest's TCP and UDP in lwIP and relays each flow
// over a host socket on the libuv loop.
//
// Theory of operation
//   The gateway hands the engine every IPv4 packet from the guest that is TCP
//   or UDP (or an IPv4 fragment, which lwIP reassembles). lwIP is patched to be
//   transparent (patches/0001-transparent-termination.patch): one listening
//   pcb on port 0 accepts connections to any address and port, and one UDP pcb
//   on port 0 receives datagrams to any address and port. What lwIP sends
//   comes out of netif->output as IPv4 packets, which the engine passes to the
//   gateway in a buffer with room for the Ethernet header in front.
//
//   TCP: a guest SYN is not given to lwIP at once. The engine first connects a
//   host socket to the mapped destination (NatPolicy); only when that succeeds
//   is the saved SYN fed to lwIP, which answers SYN-ACK, so the guest sees the
//   real outcome: refused -> RST, unreachable -> ICMP unreachable. SYN
//   retransmissions while the host connect is under way are dropped. See
//   tcp_flow.h for the flow states, half-close, RST and flow control.
//
//   UDP: one host socket per guest (address, source port): an endpoint-
//   independent mapping (RFC 4787), with replies accepted only from addresses
//   the guest has sent to through it. Mappings expire when idle.
//
// Limits: lwIP keeps global state, so there is one engine per process. Flow
// counts are bounded (EngineConfig); a SYN beyond the limit gets a RST and a
// datagram beyond it is dropped. Timers: lwIP's timeouts run from a libuv
// timer re-armed after every loop iteration; housekeeping (idle UDP mappings,
// stuck connects) runs once a second.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "netstack/engine/dns_tcp_session.h"
#include "netstack/engine/flow_key.h"
#include "netstack/engine/line_session.h"
#include "netstack/engine/nat.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"

struct netif;
struct pbuf;
struct tcp_pcb;
struct udp_pcb;

namespace slipway::engine {

class TcpFlow;
class UdpFlow;

struct EngineConfig {
  NatPolicy nat;
  uint16_t mtu = 65520;
  size_t max_tcp_flows = 16384;
  size_t max_udp_flows = 4096;
  uint64_t udp_idle_timeout_ms = 60'000;
  uint64_t tcp_connect_timeout_ms = 30'000;
};

struct EngineStats {
  uint64_t tcp_inbound = 0, udp_inbound = 0;
  uint64_t tcp_connects = 0, tcp_refused = 0, tcp_unreachable = 0, tcp_limit = 0;
  uint64_t udp_datagrams_out = 0, udp_datagrams_in = 0, udp_dropped = 0, udp_filtered = 0;
  uint64_t packets_dropped = 0;
  uint64_t dns_udp_queries = 0, dns_tcp_sessions = 0;
};

// One flow as the control API lists it.
struct FlowInfo {
  const char* proto;       // "tcp" or "udp"
  FlowKey key;             // the guest's view; remote is 0.0.0.0:0 for a UDP mapping
  bool inbound;            // from a published port
  const char* state;
  uint64_t bytes_to_host, bytes_to_guest;
};

class LwipEngine {
 public:
  // Receives an IPv4 packet for the guest. frame[0, kEthernetHeaderLen) is
  // free for the link header; the IPv4 packet follows.
  using Output = std::function<void(wire::MutBytes frame)>;

  LwipEngine(uv_loop_t* loop, EngineConfig config, Output output);
  ~LwipEngine();
  LwipEngine(const LwipEngine&) = delete;
  LwipEngine& operator=(const LwipEngine&) = delete;

  // One TCP or UDP packet (or fragment) from the guest.
  void input(const wire::Ipv4Packet& packet);
  void input6(const wire::Ipv6Packet& packet);

  // Who answers DNS (UDP and TCP port 53) at the DNS address. Without one,
  // those queries are dropped and TCP connections refused.
  void set_dns_resolver(DnsResolver resolver) { dns_resolver_ = std::move(resolver); }
  // Serves TCP `port` on the gateway address itself (instead of relaying it
  // to the host's loopback), handing every line received to `handler`.
  void set_line_service(uint16_t port, LineHandler handler) {
    line_port_ = port;
    line_handler_ = std::move(handler);
  }

  // Inbound (a published port): accepts a connection waiting on `listener`
  // and opens a guest connection to guest:guest_port for it. The guest sees
  // the client's address (host loopback clients appear as the gateway), or
  // the gateway address when source_gateway is set. A client of the other
  // family (a ::1 or 2001:db8::x client of an IPv4 guest address) appears
  // as the gateway address of the guest's family.
  void accept_inbound_tcp(uv_stream_t* listener, const IpAddr& guest, uint16_t guest_port, bool source_gateway);

  // Inbound UDP on a published port: relays a datagram from `client` (the
  // address libuv reported, IPv4 or IPv6) to guest:guest_port, keeping a
  // session so that the guest's replies leave through `listener` to exactly
  // that address (an IPv6 scope included). The guest sees the client as for
  // TCP above.
  void inbound_udp(uv_udp_t* listener, const sockaddr* client, const IpAddr& guest, uint16_t guest_port,
                   bool source_gateway, wire::Bytes payload);
  // Forgets the sessions of a listener that is closing.
  void forget_inbound_udp(uv_udp_t* listener);

  const EngineConfig& config() const { return config_; }
  const EngineStats& stats() const { return stats_; }
  uv_loop_t* loop() const { return loop_; }
  size_t tcp_flow_count() const { return tcp_flows_.size(); }
  size_t udp_flow_count() const { return udp_flows_.size(); }
  std::vector<FlowInfo> flows() const;

  // For flows.
  void feed_lwip(wire::Bytes packet);  // an IPv4 or IPv6 packet
  void send_frame(std::vector<std::byte> frame);  // a whole frame built outside lwIP
  void refuse_syn(const FlowKey& key, uint32_t syn_seq);  // RST answering a guest SYN
  // ICMP (code4) or ICMPv6 (code6) destination unreachable quoting packet.
  void report_unreachable(wire::Bytes packet, uint8_t code4, uint8_t code6);
  void send_udp_to_guest(const IpAddr& src, uint16_t src_port, const IpAddr& guest, uint16_t guest_port,
                         wire::Bytes payload);
  void on_tcp_flow_closed(TcpFlow* flow);
  void on_udp_flow_closed(UdpFlow* flow);
  EngineStats& mutable_stats() { return stats_; }
  // A shared buffer for host reads: its contents are consumed before the
  // read callback returns.
  std::vector<std::byte>& read_buffer() { return read_buffer_; }

 private:
  friend struct EngineCallbacks;  // lwIP and libuv callbacks, in the .cc

  void input_tcp(const IpAddr& src, const IpAddr& dst, wire::Bytes l4, wire::Bytes packet);
  void start_tcp_flow(const FlowKey& key, wire::Bytes syn, uint32_t syn_seq);
  void handle_udp(struct pbuf* p, const IpAddr& src, uint16_t src_port);
  void resolve_udp_dns(struct pbuf* p, const IpAddr& dns, const IpAddr& src, uint16_t src_port);
  void start_dns_session(struct tcp_pcb* pcb);
  bool is_line_service(const FlowKey& key) const {
    return line_handler_ && key.remote == config_.nat.gateway && key.remote_port == line_port_;
  }
  void housekeeping(uint64_t now);

  uv_loop_t* loop_;
  EngineConfig config_;
  Output output_;
  EngineStats stats_;
  std::unique_ptr<struct netif> netif_;
  struct tcp_pcb* listener_ = nullptr;
  struct udp_pcb* udp_receiver_ = nullptr;
  struct udp_pcb* udp_sender_ = nullptr;
  // Timer handles are heap-allocated and freed in their close callbacks.
  uv_timer_t* lwip_timer_;
  uv_check_t* check_;
  uv_timer_t* housekeeping_timer_;
  std::vector<std::byte> out_buffer_;
  std::vector<std::byte> read_buffer_;
  std::unordered_map<FlowKey, TcpFlow*, FlowKeyHash> tcp_flows_;
  struct UdpKey {
    IpAddr guest;
    uint16_t port;
    friend bool operator==(const UdpKey&, const UdpKey&) = default;
  };
  struct UdpKeyHash {
    size_t operator()(const UdpKey& k) const noexcept { return k.guest.hash() * 31 + k.port; }
  };
  std::unordered_map<UdpKey, UdpFlow*, UdpKeyHash> udp_flows_;
  struct InboundUdp {
    uv_udp_t* listener;
    sockaddr_storage client;  // as received; replies are sent back to it
    uint64_t last_active;
  };
  // Keyed by the guest's view: (guest, guest port, mapped client, port).
  std::unordered_map<FlowKey, InboundUdp, FlowKeyHash> udp_inbound_;
  DnsResolver dns_resolver_;
  std::unordered_map<DnsTcpSession*, std::shared_ptr<DnsTcpSession>> dns_sessions_;
  std::vector<std::shared_ptr<DnsTcpSession>> dead_dns_sessions_;  // freed after this loop iteration
  uint16_t line_port_ = 0;
  LineHandler line_handler_;
  std::unordered_map<LineSession*, std::unique_ptr<LineSession>> line_sessions_;
  std::vector<std::unique_ptr<LineSession>> dead_line_sessions_;
  bool shutting_down_ = false;
};

// Converts a libuv/errno error into a short text for logs.
const char* uv_error_text(int err);

}  // namespace slipway::engine
