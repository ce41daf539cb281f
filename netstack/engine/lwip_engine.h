// LwipEngine: the default Engine (engine.h). It terminates the guest's TCP
// and UDP over IPv4 and IPv6 in lwIP and relays each flow over a host socket
// on the libuv loop.
//
// Theory of operation
//   The gateway hands the engine every packet from the guest that is TCP or
//   UDP (or a fragment, which lwIP reassembles). lwIP is patched to be
//   transparent (lwip/patches/0001-transparent-termination.patch): one
//   listening pcb on port 0 accepts connections to any address and port,
//   and one UDP pcb on port 0 receives datagrams to any address and port,
//   for both families. What lwIP sends comes out of netif->output (IPv4) and
//   netif->output_ip6 (IPv6), which the engine passes to its Output in a
//   buffer with room for the Ethernet header in front.
//
//   TCP: a guest SYN is not given to lwIP at once. The engine first connects a
//   host socket to the mapped destination (NatPolicy); only when that succeeds
//   is the saved SYN fed to lwIP, which answers SYN-ACK, so the guest sees the
//   real outcome: refused -> RST, unreachable -> ICMP/ICMPv6 unreachable. SYN
//   retransmissions while the host connect is under way are dropped. A SYN
//   to a guest forward (guest_forward.h, NatPolicy::guest_forward) connects
//   to the forward's target instead (a TCP address or a unix socket),
//   --restrict or not. See
//   tcp_flow.h for the flow states, half-close, RST and flow control.
//
//   UDP: one host socket per guest (address, source port): an endpoint-
//   independent mapping (RFC 4787), with replies accepted only from addresses
//   the guest has sent to through it (udp_flow.h). Mappings expire when idle.
//   UDP needs no connection state, so datagrams skip lwIP both ways: the
//   engine parses them itself and builds the replies' frames, except for
//   what needs IP fragments (lwIP reassembles the guest's, and fragments a
//   reply larger than the MTU).
//
//   TIME-WAIT: when lwIP's side closed first, the 4-tuple stays in TIME-WAIT
//   for 2 * TCP_MSL (20 s) after the flow is gone, to answer a retransmitted
//   FIN. The engine takes such pcbs out of lwIP at the end of each loop
//   iteration into a hash table (time_wait.h), so that thousands of
//   connections a second cost nothing per packet; a guest that reuses the
//   port sooner (a busy HTTP client walks its port range in seconds) sends
//   a SYN with a higher sequence number, which ends the TIME-WAIT and opens
//   the new connection, as Linux does (lwIP itself does the same with
//   lwip/patches/0002-timewait-recycle.patch, for the rare segment that
//   meets a TIME-WAIT pcb before the engine took it).
//
//   Offloads: when the guest's link carries them (set_link_offloads), lwIP
//   computes no TCP/UDP checksum (its netif's checksum flags) and the engine
//   marks each frame's checksum partial (wire::prepare_partial); with TSO,
//   connections send segments of up to kTsoSegmentBytes (32 KiB, a whole
//   number of the guest's MSS), which the link cuts to the MTU. 32 KiB
//   rather than 64: lwIP sends a segment only when all of it fits the
//   guest's window, and a Linux guest starts with a window of about 64 KiB.
//
//   Flows talk back to the engine through FlowHost (flow_host.h). Time comes
//   from the stack's Clock, read where an event enters and passed down;
//   lwIP's own sys_now() reads the same clock.
//
// Handles: the engine's own timers and check handle are unreferenced
// (uv_unref): they never keep a loop alive by themselves; in a Stack the
// transport does.
//
// Limits: lwIP keeps global state, so there is one engine per process (a
// second constructor throws std::logic_error). The limits of EngineConfig
// (engine.h) hold here as follows:
//   - max_tcp_flows counts TcpFlows, DNS and line sessions, and the
//     handshakes of those two services (lwIP's half-open pcbs, which live
//     at most TCP_SYN_RCVD_TIMEOUT, 20 s); the services have a limit of
//     their own, kMaxServedSessions (64). A SYN beyond either gets RST.
//   - max_new_flows_per_second: a token bucket refilled continuously,
//     holding at most one second's worth; each new outbound TCP flow, UDP
//     mapping and service connection takes a token.
//   - max_udp_flows: a datagram that would need a mapping beyond it gets
//     ICMP unreachable (administratively prohibited).
//   - max_buffered_bytes: the flows report what they hold (tcp_flow.h);
//     past it, flows wait in a list, resumed at the end of a loop iteration
//     once the total is below 7/8 of the limit.
//   Every refusal is counted (EngineStats) and logged at most once per
//   kLogIntervalMs (10 s) per kind, with the number held back.
// A guest RST for a flow still in its handshake (kConnecting, or kAccepting
// with the sequence number lwIP accepts) cancels it and resets the host
// connection at once, so a SYN flood the guest's kernel answers with RSTs
// holds no host connections.
// Timers: lwIP's timeouts run from a libuv timer re-armed after every loop
// iteration; housekeeping (idle UDP mappings after udp_idle_timeout_ms,
// handshakes stuck for tcp_connect_timeout_ms, idle DNS and line sessions,
// TIME-WAIT entries whose 20 s are up) runs every kHousekeepingMs (1 s).
// At most max_tcp_flows TIME-WAIT entries, the oldest dropped first.
// Memory: after a flood, once the flows and TIME-WAIT entries have fallen
// by kTrimFlows (1024) from their peak, housekeeping returns the C heap's
// free memory to the system (malloc_trim), once per such fall.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "netstack/engine/dns_tcp_session.h"
#include "netstack/engine/engine.h"
#include "netstack/engine/flow_host.h"
#include "netstack/engine/flow_key.h"
#include "netstack/engine/line_session.h"
#include "netstack/engine/nat.h"
#include "netstack/engine/time_wait.h"
#include "netstack/sys/clock.h"
#include "netstack/sys/log_limiter.h"
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

class LwipEngine final : public Engine, private FlowHost {
 public:
  static constexpr uint64_t kHousekeepingMs = 1000;
  static constexpr size_t kTsoSegmentBytes = 32 * 1024;
  static constexpr size_t kMaxServedSessions = 64;  // DNS over TCP and line sessions, with their handshakes
  static constexpr uint64_t kLogIntervalMs = 10'000;
  static constexpr size_t kTrimFlows = 1024;

  LwipEngine(uv_loop_t* loop, const sys::Clock& clock, EngineConfig config, Output output);
  ~LwipEngine() override;

  // Engine
  void input(const wire::Ipv4Packet& packet) override;
  void input6(const wire::Ipv6Packet& packet) override;
  void set_dns_resolver(DnsResolver resolver) override { dns_resolver_ = std::move(resolver); }
  void set_line_service(uint16_t port, LineHandler handler) override {
    line_port_ = port;
    line_handler_ = std::move(handler);
  }
  void accept_inbound_tcp(uv_stream_t* listener, const IpAddr& guest, uint16_t guest_port,
                          bool source_gateway) override;
  void inbound_udp(uv_udp_t* listener, const sockaddr* client, const IpAddr& guest, uint16_t guest_port,
                   bool source_gateway, wire::Bytes payload) override;
  void forget_inbound_udp(uv_udp_t* listener) override;
  void set_link_offloads(bool csum, bool tso) override;
  void set_link_ready(bool ready) override;
  void set_guest_identity(std::function<uint32_t()> who) override { guest_of_input_ = std::move(who); }
  std::vector<std::byte>& read_buffer() override { return read_buffer_; }
  const EngineConfig& config() const override { return config_; }
  const EngineStats& stats() const override;
  size_t tcp_flow_count() const override { return tcp_flows_.size(); }
  // DNS and line sessions, and those services' handshakes under way.
  size_t served_session_count() const {
    return dns_sessions_.size() + line_sessions_.size() + served_handshakes_.size();
  }
  size_t udp_flow_count() const override { return udp_flows_.size(); }
  std::vector<FlowInfo> flows() const override;

  uv_loop_t* loop() const override { return loop_; }
  // TCP segments longer than the MTU go to the link whole (TSO).
  bool link_segments() const { return link_tso_; }
  // Runs the periodic work now (tests drive it with a manual clock).
  void housekeeping(uint64_t now);

 private:
  friend struct EngineCallbacks;  // lwIP and libuv callbacks, in the .cc

  // FlowHost
  uint64_t now() const override { return clock_.now_ms(); }
  const NatPolicy& nat() const override { return config_.nat; }
  EngineStats& counters() override { return stats_; }
  uint16_t segment_size(uint16_t guest_mss) const override;
  void feed(wire::Bytes packet) override;
  void refuse_syn(const FlowKey& key, uint32_t syn_seq) override;
  void report_unreachable(wire::Bytes packet, uint8_t code4, uint8_t code6) override;
  void send_udp_to_guest(const IpAddr& src, uint16_t src_port, const IpAddr& guest, uint16_t guest_port,
                         wire::Bytes payload) override;
  void flush_later(TcpFlow* flow) override { to_flush_.push_back(flow); }
  void flush_later(UdpFlow* flow) override { udp_to_flush_.push_back(flow); }
  void closed(TcpFlow* flow) override;
  void closed(UdpFlow* flow) override;
  void out_of_descriptors(const char* what, int uv_error) override;
  void buffered(int64_t delta) override;
  bool buffers_full() const override {
    return config_.max_buffered_bytes != 0 && stats_.buffered_bytes >= config_.max_buffered_bytes;
  }
  bool link_ready() const override { return link_ready_; }
  void wait_for_buffers(TcpFlow* flow) override;
  // Resumes the flows waiting for the buffer budget once it has room (and
  // the guest's link is ready).
  void resume_waiting_flows();

  // A token for a new outbound flow (max_new_flows_per_second).
  bool take_flow_token(uint64_t now);
  // Past the new-flow rate: counts, logs (rate-limited), refuses the SYN;
  // true if it did.
  bool refuse_if_rate_limited(const FlowKey& key, uint32_t syn_seq, uint64_t now);
  // Whether a line for `key` may be logged now; *suffix says how many were
  // held back (kLogIntervalMs).
  bool may_log(std::string_view key, std::string* suffix);
  // A SYN to the DNS or line service: refused at its limits, or given to lwIP.
  void start_served_session(const FlowKey& key, wire::Bytes syn, uint32_t syn_seq);
  void refuse_udp(wire::Bytes packet);

  void send_frame(std::vector<std::byte> frame);  // a whole frame built outside lwIP
  // Moves the pcbs that entered TIME-WAIT out of lwIP (time_wait.h).
  void take_time_wait();
  void ack_time_wait(const FlowKey& key, const TimeWaitTable::Entry& entry);
  void input_tcp(const IpAddr& src, const IpAddr& dst, wire::Bytes l4, wire::Bytes packet);
  void start_tcp_flow(const FlowKey& key, wire::Bytes syn, uint32_t syn_seq);
  // UDP from the guest: whole datagrams bypass lwIP (input_udp); fragments
  // come back from lwIP's reassembly (handle_udp); both end here.
  void input_udp(const IpAddr& src, const IpAddr& dst, wire::Bytes l4, wire::Bytes packet);
  void handle_udp(struct pbuf* p, const IpAddr& src, uint16_t src_port);
  // `packet`: the whole IP packet, quoted in an ICMP error if the datagram
  // is refused (empty for a reassembled one: dropped without an error).
  void udp_from_guest(const IpAddr& src, uint16_t src_port, const IpAddr& dst, uint16_t dst_port,
                      wire::Bytes payload, wire::Bytes packet);
  // A SYN or datagram the egress policy denies: counted, logged at debug,
  // answered with ICMP administratively prohibited quoting `packet`.
  void deny_egress(const std::string& what, wire::Bytes packet);
  void resolve_udp_dns(wire::Bytes query, const IpAddr& dns, const IpAddr& src, uint16_t src_port);
  void start_dns_session(struct tcp_pcb* pcb);
  bool is_line_service(const FlowKey& key) const {
    return line_handler_ && key.remote == config_.nat.gateway && key.remote_port == line_port_;
  }

  uv_loop_t* loop_;
  const sys::Clock& clock_;
  EngineConfig config_;
  Output output_;
  mutable EngineStats stats_;  // stats() copies lwIP's loss-recovery counters in
  uint64_t recovery_base_[4] = {};  // those counters when this engine started
  std::unique_ptr<struct netif> netif_;
  struct tcp_pcb* listener_ = nullptr;
  struct udp_pcb* udp_receiver_ = nullptr;
  struct udp_pcb* udp_sender_ = nullptr;
  // Timer handles are heap-allocated and freed in their close callbacks.
  uv_timer_t* lwip_timer_;
  uv_check_t* check_;
  uv_prepare_t* prepare_;  // arms lwip_timer_ before each poll
  uv_timer_t* housekeeping_timer_;
  std::vector<std::byte> out_buffer_;
  bool link_csum_ = false;  // set_link_offloads()
  uint16_t ip_id_ = 0;      // IPv4 identification of the datagrams built here
  bool link_tso_ = false;
  std::vector<std::byte> read_buffer_;
  std::unordered_map<FlowKey, TcpFlow*, FlowKeyHash> tcp_flows_;
  std::vector<TcpFlow*> to_flush_;  // flush() at the end of the loop iteration; null: closed since
  bool link_ready_ = true;  // set_link_ready()
  // Several guests (set_guest_identity): the flows each guest holds, so
  // that none holds more than half of a limit. Flows remember their guest.
  std::function<uint32_t()> guest_of_input_;
  struct GuestFlows {
    size_t tcp = 0, udp = 0;
  };
  std::unordered_map<uint32_t, GuestFlows> guest_flows_;
  // The guest of the packet being taken (kNoGuest with one guest).
  uint32_t input_guest() const { return guest_of_input_ ? guest_of_input_() : kNoGuest; }
  // True if `guest` holds its share of `limit` already (`held` of them).
  static bool over_share(uint32_t guest, size_t held, size_t limit) {
    return guest != kNoGuest && held >= std::max<size_t>(1, limit / 2);
  }
  void count_flow(uint32_t guest, bool tcp);
  void uncount_flow(uint32_t guest, bool tcp);
  std::vector<UdpFlow*> udp_to_flush_;
  TimeWaitTable time_wait_{config_.max_tcp_flows};
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
  // SYNs to the DNS and line services given to lwIP, until lwIP accepts the
  // connection, the guest resets it, or lwIP's SYN-RCVD timeout is up: the
  // SYN's sequence number and when it came.
  struct Handshake {
    uint32_t syn_seq;
    uint64_t since;
  };
  std::unordered_map<FlowKey, Handshake, FlowKeyHash> served_handshakes_;
  std::vector<TcpFlow*> waiting_for_buffers_;  // null: closed since
  double flow_tokens_ = 0;                     // max_new_flows_per_second
  uint64_t tokens_at_ = 0;
  sys::LogLimiter log_limit_{kLogIntervalMs};
  size_t peak_flows_ = 0;                      // since the last malloc_trim
  bool shutting_down_ = false;
};

}  // namespace slipway::engine
