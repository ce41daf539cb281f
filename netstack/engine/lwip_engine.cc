#include "netstack/engine/lwip_engine.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <netinet/in.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

extern "C" {
#include "lwip/icmp.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "lwip/priv/tcp_priv.h"  // tcp_active_pcbs, tcp_tw_pcbs: freed at shutdown
}

#include "netstack/engine/tcp_flow.h"
#include "netstack/engine/udp_flow.h"
#include "netstack/sys/rx_blocks.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/udp.h"

namespace slipway::engine {
namespace {

constexpr uint16_t kDnsPort = 53;

// lwIP keeps global state: one engine per process.
LwipEngine* g_engine = nullptr;
const sys::Clock* g_clock = nullptr;  // the engine's, for lwIP's sys_now()
bool g_lwip_initialised = false;

ip4_addr_t to_lwip4(wire::Ipv4Addr a) {
  ip4_addr_t r;
  r.addr = lwip_htonl(a.value);
  return r;
}

ip_addr_t to_lwip(const IpAddr& a) {
  ip_addr_t r;
  if (!a.v6) {
    ip_addr_set_ip4_u32_val(r, lwip_htonl(a.v4.value));
    return r;
  }
  uint32_t w[4];
  for (int i = 0; i < 4; ++i) {
    const auto& o = a.v6addr.octets;
    size_t b = static_cast<size_t>(i) * 4;
    w[i] = lwip_htonl((uint32_t{o[b]} << 24) | (uint32_t{o[b + 1]} << 16) | (uint32_t{o[b + 2]} << 8) | o[b + 3]);
  }
  IP_ADDR6(&r, w[0], w[1], w[2], w[3]);
  return r;
}

IpAddr from_lwip(const ip_addr_t* a) {
  if (IP_IS_V4(a)) return IpAddr(wire::Ipv4Addr{lwip_ntohl(ip_2_ip4(a)->addr)});
  wire::Ipv6Addr r;
  for (size_t i = 0; i < 4; ++i) {
    uint32_t v = lwip_ntohl(ip_2_ip6(a)->addr[i]);
    r.octets[i * 4] = static_cast<uint8_t>(v >> 24);
    r.octets[i * 4 + 1] = static_cast<uint8_t>(v >> 16);
    r.octets[i * 4 + 2] = static_cast<uint8_t>(v >> 8);
    r.octets[i * 4 + 3] = static_cast<uint8_t>(v);
  }
  return IpAddr(r);
}

// The same client address and port (and IPv6 scope) as a UDP session's.
bool same_endpoint(const sockaddr_storage& session, const sockaddr* from) {
  if (session.ss_family != from->sa_family) return false;
  if (from->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&session);
    const auto* b = reinterpret_cast<const sockaddr_in*>(from);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&session);
  const auto* b = reinterpret_cast<const sockaddr_in6*>(from);
  return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
         std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

template <class T>
void close_and_free(T* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

}  // namespace

struct EngineCallbacks {
  static err_t netif_init(struct netif* nif) {
    nif->name[0] = 's';
    nif->name[1] = 'w';
    nif->output = netif_output;
    nif->output_ip6 = netif_output6;
    nif->flags = 0;
    return ERR_OK;
  }

  static err_t netif_output(struct netif*, struct pbuf* p, const ip4_addr_t*) { return send_out(p); }
  static err_t netif_output6(struct netif*, struct pbuf* p, const ip6_addr_t*) { return send_out(p); }

  // Everything lwIP sends: copy into a frame with room for the link header.
  // With checksum offload, lwIP left the TCP/UDP checksum out: mark it
  // partial (and, with TSO, a segment longer than the MTU as GSO).
  static err_t send_out(struct pbuf* p) {
    LwipEngine* e = g_engine;
    if (e == nullptr) return ERR_IF;
    size_t len = p->tot_len;
    auto& buf = e->out_buffer_;
    buf.resize(wire::kEthernetHeaderLen + len);
    pbuf_copy_partial(p, buf.data() + wire::kEthernetHeaderLen, p->tot_len, 0);
    wire::MutBytes frame(buf.data(), buf.size());
    wire::Offload offload;
    if (e->link_csum_ && len > 0) {
      // The gateway writes the Ethernet header; the type tells the offload
      // code the IP version meanwhile.
      bool v6 = (static_cast<uint8_t>(buf[wire::kEthernetHeaderLen]) >> 4) == 6;
      wire::store16(frame, 12, v6 ? wire::ethertype::kIpv6 : wire::ethertype::kIpv4);
      offload = wire::prepare_partial(frame, e->link_tso_ ? e->config_.mtu : uint16_t{0});
    }
    e->output_(frame, offload);
    return ERR_OK;
  }

  static err_t on_accept(void*, struct tcp_pcb* pcb, err_t err) {
    LwipEngine* e = g_engine;
    if (e == nullptr || err != ERR_OK || pcb == nullptr) return ERR_VAL;
    FlowKey key{from_lwip(&pcb->remote_ip), pcb->remote_port, from_lwip(&pcb->local_ip), pcb->local_port};
    if (e->config_.nat.is_dns(key.remote) && key.remote_port == kDnsPort && e->dns_resolver_) {
      e->served_handshakes_.erase(key);
      e->start_dns_session(pcb);
      return ERR_OK;
    }
    if (e->is_line_service(key)) {
      e->served_handshakes_.erase(key);
      auto session = std::make_unique<LineSession>(
          pcb, e->line_handler_,
          [e](LineSession* ls) {
            auto it = e->line_sessions_.find(ls);
            if (it == e->line_sessions_.end()) return;
            e->dead_line_sessions_.push_back(std::move(it->second));
            e->line_sessions_.erase(it);
          },
          e->clock_);
      LineSession* raw = session.get();
      e->line_sessions_.emplace(raw, std::move(session));
      raw->start();
      return ERR_OK;
    }
    auto it = e->tcp_flows_.find(key);
    if (it == e->tcp_flows_.end() || it->second->state() != TcpFlow::State::kAccepting) {
      // A SYN that reached lwIP without a host connection (a fragmented SYN,
      // or one for a flow that has since closed): refuse it.
      spdlog::debug("tcp: no host connection for {}, resetting", key.to_string());
      tcp_abort(pcb);
      return ERR_ABRT;
    }
    it->second->attach(pcb);
    return ERR_OK;
  }

  static void on_udp_recv(void*, struct udp_pcb*, struct pbuf* p, const ip_addr_t* addr, u16_t port) {
    LwipEngine* e = g_engine;
    if (e == nullptr) {
      pbuf_free(p);
      return;
    }
    e->handle_udp(p, from_lwip(addr), port);
  }

  static void on_lwip_timer(uv_timer_t*) { sys_check_timeouts(); }

  // Before the loop polls (so after any timer callback, lwIP's own
  // included, that fed lwIP or ran its timeouts): arm the lwIP timer for
  // lwIP's next timeout. Armed only after polling (uv_check), a timeout
  // that a timer callback re-armed (lwIP's TCP timer re-arms itself from
  // its callback) waited for the next I/O event or housekeeping tick, up to
  // a second: with a quiet link that delayed every retransmission.
  static void on_prepare(uv_prepare_t* p) {
    auto* e = static_cast<LwipEngine*>(p->data);
    u32_t sleep = sys_timeouts_sleeptime();
    if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
      uv_timer_stop(e->lwip_timer_);
    } else {
      uv_timer_start(e->lwip_timer_, on_lwip_timer, sleep, 0);
    }
  }

  // After every loop iteration: lwIP may have armed new timeouts.
  static void on_check(uv_check_t* c) {
    auto* e = static_cast<LwipEngine*>(c->data);
    e->take_time_wait();
    // Guest-bound output of this iteration's host reads, one tcp_output per
    // flow. A flush may close flows (closed() nulls their entries); the list
    // is taken first so that new registrations go to the next round.
    std::vector<TcpFlow*> flows;
    flows.swap(e->to_flush_);
    for (TcpFlow* f : flows)
      if (f != nullptr) f->flush();
    flows.clear();
    if (e->to_flush_.empty()) e->to_flush_.swap(flows);  // keep the capacity
    std::vector<UdpFlow*> udp;
    udp.swap(e->udp_to_flush_);
    for (UdpFlow* f : udp)
      if (f != nullptr) f->flush();
    udp.clear();
    if (e->udp_to_flush_.empty()) e->udp_to_flush_.swap(udp);
    e->dead_dns_sessions_.clear();
    e->dead_line_sessions_.clear();
    e->resume_waiting_flows();
    // lwIP's next timeout is armed by on_prepare, before the next poll.
  }

  static void on_housekeeping(uv_timer_t* t) {
    auto* e = static_cast<LwipEngine*>(t->data);
    e->housekeeping(e->clock_.now_ms());
  }
};

LwipEngine::LwipEngine(uv_loop_t* loop, const sys::Clock& clock, EngineConfig config, Output output)
    : loop_(loop),
      clock_(clock),
      config_(config),
      output_(std::move(output)),
      netif_(std::make_unique<struct netif>()) {
  if (g_engine != nullptr) throw std::logic_error("only one LwipEngine may exist per process");
  g_engine = this;
  g_clock = &clock;
  if (!g_lwip_initialised) {
    lwip_init();
    g_lwip_initialised = true;
  }
  // lwIP's timeouts are global and may have been armed on an earlier
  // engine's clock: count them from this one.
  sys_restart_timeouts();
#if SLIPWAY_TCP_RECOVERY
  recovery_base_[0] = slipway_tcp_recovery.recoveries;
  recovery_base_[1] = slipway_tcp_recovery.fast_rexmits;
  recovery_base_[2] = slipway_tcp_recovery.rtos;
  recovery_base_[3] = slipway_tcp_recovery.probes;
#endif
  read_buffer_.resize(256 * 1024);
  flow_tokens_ = config_.max_new_flows_per_second;  // a full second's worth to start with
  tokens_at_ = clock_.now_ms();

  ip4_addr_t addr = to_lwip4(config_.nat.gateway);
  ip4_addr_t mask;
  mask.addr = lwip_htonl(wire::prefix_to_mask(config_.nat.prefix));
  ip4_addr_t gw = to_lwip4(config_.nat.gateway);
  std::memset(netif_.get(), 0, sizeof(struct netif));
  netif_add(netif_.get(), &addr, &mask, &gw, nullptr, EngineCallbacks::netif_init, ip4_input);
  netif_->mtu = config_.mtu;
  if (config_.nat.ipv6) {
    ip_addr_t gw6 = to_lwip(IpAddr(config_.nat.gateway6));
    netif_ip6_addr_set(netif_.get(), 0, ip_2_ip6(&gw6));
    netif_ip6_addr_set_state(netif_.get(), 0, IP6_ADDR_PREFERRED);
  }
  netif_set_default(netif_.get());
  netif_set_link_up(netif_.get());
  netif_set_up(netif_.get());

  // One listener on port 0 accepts every destination (the transparent patch).
  struct tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
  if (pcb == nullptr) throw std::runtime_error("lwIP: cannot allocate the listening pcb");
  err_t err = ERR_OK;
  listener_ = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &err);
  if (listener_ == nullptr) throw std::runtime_error("lwIP: cannot listen");
  tcp_accept(listener_, EngineCallbacks::on_accept);

  // One UDP pcb receives every destination port: bind to get it into the pcb
  // list, then reset its port to 0 (which the patch treats as "any").
  udp_receiver_ = udp_new_ip_type(IPADDR_TYPE_ANY);
  udp_sender_ = udp_new_ip_type(IPADDR_TYPE_ANY);
  if (udp_receiver_ == nullptr || udp_sender_ == nullptr) throw std::runtime_error("lwIP: cannot allocate UDP pcbs");
  udp_bind(udp_receiver_, IP_ANY_TYPE, 0);
  udp_receiver_->local_port = 0;
  udp_recv(udp_receiver_, EngineCallbacks::on_udp_recv, nullptr);

  lwip_timer_ = new uv_timer_t;
  uv_timer_init(loop_, lwip_timer_);
  uv_unref(reinterpret_cast<uv_handle_t*>(lwip_timer_));
  check_ = new uv_check_t;
  uv_check_init(loop_, check_);
  check_->data = this;
  uv_check_start(check_, EngineCallbacks::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop_, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, EngineCallbacks::on_prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
  housekeeping_timer_ = new uv_timer_t;
  uv_timer_init(loop_, housekeeping_timer_);
  housekeeping_timer_->data = this;
  uv_timer_start(housekeeping_timer_, EngineCallbacks::on_housekeeping, kHousekeepingMs, kHousekeepingMs);
  uv_unref(reinterpret_cast<uv_handle_t*>(housekeeping_timer_));
}

const EngineStats& LwipEngine::stats() const {
#if SLIPWAY_TCP_RECOVERY
  // lwIP counts loss recovery for all its connections (patches/0004).
  stats_.tcp_recoveries = slipway_tcp_recovery.recoveries - recovery_base_[0];
  stats_.tcp_recovery_retransmits = slipway_tcp_recovery.fast_rexmits - recovery_base_[1];
  stats_.tcp_timeouts = slipway_tcp_recovery.rtos - recovery_base_[2];
  stats_.tcp_loss_probes = slipway_tcp_recovery.probes - recovery_base_[3];
#endif
  return stats_;
}

LwipEngine::~LwipEngine() {
  shutting_down_ = true;
  // Close every flow. Their close callbacks run after the engine is gone,
  // so orphan them first: they then never call back into it.
  for (auto& [k, f] : tcp_flows_) {
    f->orphan();
    f->close();
  }
  for (auto& [k, f] : udp_flows_) {
    f->orphan();
    f->close();
  }
  tcp_flows_.clear();
  udp_flows_.clear();
  waiting_for_buffers_.clear();
  to_flush_.clear();
  udp_to_flush_.clear();
  std::vector<std::shared_ptr<DnsTcpSession>> dns;
  for (auto& [k, s] : dns_sessions_) dns.push_back(s);
  for (auto& s : dns) s->close();
  dns_sessions_.clear();
  dead_dns_sessions_.clear();
  std::vector<LineSession*> lines;
  for (auto& [k, ls] : line_sessions_) lines.push_back(k);
  for (auto* ls : lines) ls->close();
  line_sessions_.clear();
  dead_line_sessions_.clear();

  if (listener_ != nullptr) tcp_close(listener_);
  if (udp_receiver_ != nullptr) udp_remove(udp_receiver_);
  if (udp_sender_ != nullptr) udp_remove(udp_sender_);
  // Every active pcb belongs to a flow closed above; abort whatever is left
  // (TIME_WAIT and closing pcbs) so that lwIP holds no memory for us.
  while (tcp_active_pcbs != nullptr) tcp_abort(tcp_active_pcbs);
  while (tcp_tw_pcbs != nullptr) tcp_abort(tcp_tw_pcbs);
  netif_remove(netif_.get());

  close_and_free(lwip_timer_);
  close_and_free(check_);
  close_and_free(prepare_);
  close_and_free(housekeeping_timer_);
  g_engine = nullptr;
  g_clock = nullptr;
}

void LwipEngine::input(const wire::Ipv4Packet& packet) {
  uint8_t proto = packet.protocol();
  if (proto != wire::ipproto::kTcp && proto != wire::ipproto::kUdp) {
    stats_.packets_dropped++;
    return;
  }
  if (proto == wire::ipproto::kTcp && !packet.is_fragment()) {
    input_tcp(packet.src(), packet.dst(), packet.payload(), packet.bytes());
    return;
  }
  if (proto == wire::ipproto::kUdp && !packet.is_fragment()) {
    input_udp(packet.src(), packet.dst(), packet.payload(), packet.bytes());
    return;
  }
  feed(packet.bytes());  // fragments: lwIP reassembles
}

void LwipEngine::input6(const wire::Ipv6Packet& packet) {
  auto ul = packet.upper_layer();
  if (!config_.nat.ipv6 || !ul) {
    stats_.packets_dropped++;
    return;
  }
  if (ul->is_fragment) {  // lwIP reassembles
    feed(packet.bytes());
    return;
  }
  if (ul->protocol != wire::ipproto::kTcp && ul->protocol != wire::ipproto::kUdp) {
    stats_.packets_dropped++;
    return;
  }
  if (ul->protocol == wire::ipproto::kTcp) {
    input_tcp(packet.src(), packet.dst(), ul->data, packet.bytes());
    return;
  }
  input_udp(packet.src(), packet.dst(), ul->data, packet.bytes());
}

void LwipEngine::input_udp(const IpAddr& src, const IpAddr& dst, wire::Bytes l4, wire::Bytes packet) {
  auto udp = wire::UdpDatagram::parse(l4);
  if (!udp) {
    stats_.packets_dropped++;
    return;
  }
  udp_from_guest(src, udp->src_port(), dst, udp->dst_port(), udp->payload(), packet);
}

namespace {

// A pbuf over a transport's receive block (sys/rx_blocks.h), kept instead
// of copying the packet out of it; the block goes back when lwIP frees it.
struct BlockPbuf {
  struct pbuf_custom custom;  // first: lwIP's pbuf* is this
  std::byte* block;
  size_t block_size;

  static void free(struct pbuf* p) {
    auto* b = reinterpret_cast<BlockPbuf*>(p);
    sys::RxBlocks::release(b->block, b->block_size);
    delete b;
  }
};

// Packets from this size on are kept in their receive block; smaller ones
// are copied (a block is as large as the largest frame: keeping a small
// packet in it would hold far more memory than the packet).
constexpr size_t kKeepBlockFrom = 16 * 1024;

// The packet as a pbuf over its receive block, if the transport offers it.
struct pbuf* pbuf_over_block(wire::Bytes packet) {
  if (packet.size() < kKeepBlockFrom) return nullptr;
  size_t size = 0;
  std::byte* block = sys::RxBlocks::take(packet, &size);
  if (block == nullptr) return nullptr;
  auto* b = new BlockPbuf{};
  b->block = block;
  b->block_size = size;
  b->custom.custom_free_function = BlockPbuf::free;
  // PBUF_ROM: the memory stays put while lwIP holds the pbuf (lwIP may
  // queue it, and rewrites headers in place as with any received pbuf).
  auto len = static_cast<u16_t>(packet.size());
  struct pbuf* p = pbuf_alloced_custom(PBUF_RAW, len, PBUF_ROM, &b->custom,
                                       const_cast<std::byte*>(packet.data()), len);
  if (p == nullptr) BlockPbuf::free(&b->custom.pbuf);
  return p;
}

}  // namespace

void LwipEngine::feed(wire::Bytes packet) {
  if (packet.empty() || packet.size() > 0xffff) {
    stats_.packets_dropped++;
    return;
  }
  struct pbuf* p = pbuf_over_block(packet);
  if (p == nullptr) {
    p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(packet.size()), PBUF_RAM);
    if (p == nullptr) {
      stats_.packets_dropped++;
      return;
    }
    std::memcpy(p->payload, packet.data(), packet.size());
  }
  if ((static_cast<uint8_t>(packet[0]) >> 4) == 6) {
    ip6_input(p, netif_.get());  // takes ownership of p
  } else {
    ip4_input(p, netif_.get());
  }
}

void LwipEngine::input_tcp(const IpAddr& src, const IpAddr& dst, wire::Bytes l4, wire::Bytes packet) {
  auto seg = wire::TcpSegment::parse(l4);
  // Options lwIP could read past (wire/tcp.h): dropped, as a malformed segment.
  if (!seg || !wire::tcp_options_well_formed(seg->options())) {
    stats_.packets_dropped++;
    return;
  }
  FlowKey key{src, seg->src_port(), dst, seg->dst_port()};
  uint8_t flags = seg->flags();
  if (time_wait_.size() > 0) {
    TimeWaitTable::Entry tw;
    switch (time_wait_.check(key, flags, seg->seq(), !seg->payload().empty(), clock_.now_ms(), &tw)) {
      case TimeWaitTable::Verdict::kNotFound:
      case TimeWaitTable::Verdict::kRecycle:
        break;
      case TimeWaitTable::Verdict::kDrop:
        return;
      case TimeWaitTable::Verdict::kAck:
        ack_time_wait(key, tw);
        return;
    }
  }
  bool syn_only = (flags & (wire::tcpflag::kSyn | wire::tcpflag::kAck | wire::tcpflag::kRst)) == wire::tcpflag::kSyn;
  auto it = tcp_flows_.find(key);
  if (syn_only) {
    if ((config_.nat.is_dns(key.remote) && key.remote_port == kDnsPort && dns_resolver_) || is_line_service(key)) {
      start_served_session(key, packet, seg->seq());  // served here, not relayed
      return;
    }
    if (it == tcp_flows_.end()) {
      start_tcp_flow(key, packet, seg->seq());
      return;
    }
    if (it->second->state() == TcpFlow::State::kConnecting) return;  // retransmitted SYN
  } else if (it != tcp_flows_.end()) {
    TcpFlow* flow = it->second;
    if (flow->state() == TcpFlow::State::kConnecting) {
      if (flags & wire::tcpflag::kRst) {
        stats_.tcp_handshake_resets++;
        flow->cancel();
      }
      return;
    }
    if (flow->state() == TcpFlow::State::kAccepting && (flags & wire::tcpflag::kRst)) {
      // lwIP drops its half-open pcb without telling anyone; the flow would
      // keep its host connection for the whole connect timeout. lwIP takes
      // the RST when its sequence number is the one it expects next, the
      // SYN's + 1 (RFC 5961): then the flow goes too.
      const uint32_t syn_seq = flow->syn_seq();
      feed(packet);
      if (seg->seq() == syn_seq + 1) {
        auto again = tcp_flows_.find(key);
        if (again != tcp_flows_.end() && again->second == flow) {
          stats_.tcp_handshake_resets++;
          flow->cancel();
        }
      }
      return;
    }
  } else if ((flags & wire::tcpflag::kRst) && !served_handshakes_.empty()) {
    // A reset handshake of the DNS or line service frees its place.
    auto h = served_handshakes_.find(key);
    if (h != served_handshakes_.end() && seg->seq() == h->second.syn_seq + 1) served_handshakes_.erase(h);
  }
  feed(packet);
}

void LwipEngine::start_served_session(const FlowKey& key, wire::Bytes syn, uint32_t syn_seq) {
  if (served_handshakes_.count(key) != 0) {  // retransmitted: lwIP answers it
    feed(syn);
    return;
  }
  std::string suffix;
  if (served_session_count() >= kMaxServedSessions ||
      tcp_flows_.size() + served_session_count() >= config_.max_tcp_flows) {
    stats_.dns_tcp_refused++;
    if (may_log("served-limit", &suffix))
      spdlog::warn("tcp: {} DNS and agent sessions open (limit {}, {} TCP flows): refusing {}{}",
                   served_session_count(), kMaxServedSessions, tcp_flows_.size(), key.to_string(), suffix);
    refuse_syn(key, syn_seq);
    return;
  }
  uint64_t now = clock_.now_ms();
  if (refuse_if_rate_limited(key, syn_seq, now)) return;
  served_handshakes_.emplace(key, Handshake{syn_seq, now});
  feed(syn);
}

bool LwipEngine::refuse_if_rate_limited(const FlowKey& key, uint32_t syn_seq, uint64_t now) {
  if (take_flow_token(now)) return false;
  stats_.tcp_rate_limited++;
  std::string suffix;
  if (may_log("tcp-rate", &suffix))
    spdlog::warn("tcp: more than {} new flows a second: refusing {}{}", config_.max_new_flows_per_second,
                 key.to_string(), suffix);
  refuse_syn(key, syn_seq);
  return true;
}

bool LwipEngine::take_flow_token(uint64_t now) {
  if (config_.max_new_flows_per_second == 0) return true;
  const double rate = config_.max_new_flows_per_second;
  if (now > tokens_at_) {
    flow_tokens_ = std::min(rate, flow_tokens_ + static_cast<double>(now - tokens_at_) * rate / 1000.0);
    tokens_at_ = now;
  }
  if (flow_tokens_ < 1.0) return false;
  flow_tokens_ -= 1.0;
  return true;
}

bool LwipEngine::may_log(std::string_view key, std::string* suffix) {
  uint64_t held = 0;
  if (!log_limit_.allow(key, clock_.now_ms(), &held)) return false;
  *suffix = log_limit_.suffix(held);
  return true;
}

void LwipEngine::out_of_descriptors(const char* what, int uv_error) {
  std::string suffix;
  if (may_log("no-fd", &suffix))
    spdlog::warn("{}: the host refused a socket ({}): refusing new flows until descriptors are free "
                 "(RLIMIT_NOFILE){}",
                 what, uv_strerror(uv_error), suffix);
}

void LwipEngine::buffered(int64_t delta) {
  if (delta < 0 && static_cast<uint64_t>(-delta) > stats_.buffered_bytes) {
    stats_.buffered_bytes = 0;  // never below zero (a flow's own invariant, kept here)
    return;
  }
  stats_.buffered_bytes = static_cast<uint64_t>(static_cast<int64_t>(stats_.buffered_bytes) + delta);
}

void LwipEngine::wait_for_buffers(TcpFlow* flow) {
  if (!buffers_full()) {
    stats_.link_waits++;  // the guest's link is backed up (set_link_ready)
    waiting_for_buffers_.push_back(flow);
    return;
  }
  stats_.buffer_waits++;
  if (waiting_for_buffers_.empty()) {
    std::string suffix;
    if (may_log("buffers-full", &suffix))
      spdlog::warn("tcp: {} bytes held for the flows (limit {}): flows wait until some are taken{}",
                   stats_.buffered_bytes, config_.max_buffered_bytes, suffix);
  }
  waiting_for_buffers_.push_back(flow);
}

void LwipEngine::resume_waiting_flows() {
  if (waiting_for_buffers_.empty() || !link_ready_) return;
  if (config_.max_buffered_bytes != 0 && stats_.buffered_bytes > config_.max_buffered_bytes / 8 * 7) return;
  // Flows that must wait again register anew, in the member list.
  std::vector<TcpFlow*> flows;
  flows.swap(waiting_for_buffers_);
  for (TcpFlow* f : flows)
    if (f != nullptr) f->resume();
}

void LwipEngine::refuse_udp(wire::Bytes packet) {
  if (packet.empty()) return;  // reassembled from fragments: nothing to quote
  report_unreachable(packet, wire::icmpcode::kAdminProhibited, wire::icmpv6code::kAdminProhibited);
}

void LwipEngine::take_time_wait() {
  // New TIME-WAIT pcbs are at the head of lwIP's list; this runs every loop
  // iteration, so the list is short and each removal O(1).
  const uint64_t now = clock_.now_ms();
  while (tcp_tw_pcbs != nullptr) {
    struct tcp_pcb* pcb = tcp_tw_pcbs;
    FlowKey key{from_lwip(&pcb->remote_ip), pcb->remote_port, from_lwip(&pcb->local_ip), pcb->local_port};
    time_wait_.insert(key, pcb->snd_nxt, pcb->rcv_nxt, now);
    tcp_abort(pcb);  // a TIME-WAIT pcb is freed without a RST
  }
}

void LwipEngine::ack_time_wait(const FlowKey& key, const TimeWaitTable::Entry& tw) {
  wire::TcpHeaderFields f;
  f.src_port = key.remote_port;
  f.dst_port = key.guest_port;
  f.seq = tw.snd_nxt;
  f.ack = tw.rcv_nxt;
  f.flags = wire::tcpflag::kAck;
  send_frame(key.guest.v6 ? wire::build_ipv6_tcp_frame({}, {}, key.remote.v6addr, key.guest.v6addr, f, {})
                          : wire::build_ipv4_tcp_frame({}, {}, key.remote.v4, key.guest.v4, f, {}));
}

void LwipEngine::start_tcp_flow(const FlowKey& key, wire::Bytes syn, uint32_t syn_seq) {
  // A guest forward reaches its target, --restrict or not (nat.h).
  const GuestForward* fwd = config_.nat.guest_forward(key.remote, key.remote_port);
  auto host = fwd != nullptr ? std::optional<IpAddr>(fwd->host) : config_.nat.host_destination(key.remote);
  if (!host || key.remote_port == 0) {
    spdlog::debug("tcp: {} refused by policy", key.to_string());
    stats_.tcp_refused++;
    refuse_syn(key, syn_seq);
    return;
  }
  if (fwd == nullptr && !config_.nat.egress.allows(key.remote, *host, EgressPolicy::Proto::kTcp, key.remote_port)) {
    deny_egress(key.to_string(), syn);  // (a guest forward is a gateway service: no egress check)
    return;
  }
  std::string suffix;
  if (tcp_flows_.size() + served_session_count() >= config_.max_tcp_flows) {
    stats_.tcp_limit++;
    if (may_log("tcp-limit", &suffix))
      spdlog::warn("tcp: flow limit {} reached, refusing {}{}", config_.max_tcp_flows, key.to_string(), suffix);
    refuse_syn(key, syn_seq);
    return;
  }
  const uint32_t guest = input_guest();
  if (guest != kNoGuest && over_share(guest, guest_flows_[guest].tcp, config_.max_tcp_flows)) {
    stats_.tcp_limit++;
    stats_.guest_share_refused++;
    if (may_log("tcp-guest-limit", &suffix))
      spdlog::warn("tcp: guest on port {} holds half the flow limit ({} of {}), refusing {}{}", guest,
                   guest_flows_[guest].tcp, config_.max_tcp_flows, key.to_string(), suffix);
    refuse_syn(key, syn_seq);
    return;
  }
  uint64_t now = clock_.now_ms();
  if (refuse_if_rate_limited(key, syn_seq, now)) return;
  stats_.tcp_connects++;
  auto* flow = new TcpFlow(*this, key, syn, syn_seq, now);
  tcp_flows_.emplace(key, flow);
  flow->set_guest_id(guest);
  count_flow(guest, true);
  if (fwd == nullptr) {
    flow->connect(*host, key.remote_port);
  } else if (fwd->kind == GuestForward::Kind::kUnix) {
    flow->connect_unix(fwd->path);
  } else if (fwd->kind == GuestForward::Kind::kCmd) {
    flow->connect_command(fwd->path);
  } else {
    flow->connect(fwd->host, fwd->host_port);
  }
}

void LwipEngine::accept_inbound_tcp(uv_stream_t* listener, const IpAddr& guest, uint16_t guest_port,
                                    bool source_gateway) {
  TcpFlow* flow = TcpFlow::accept_inbound(*this, listener, clock_.now_ms());
  if (flow == nullptr) return;
  IpAddr client;
  uint16_t client_port = 0;
  if (!flow->peer_address(&client, &client_port)) {
    flow->reset();
    return;
  }
  if (tcp_flows_.size() + served_session_count() >= config_.max_tcp_flows) {
    stats_.tcp_limit++;
    std::string suffix;
    if (may_log("tcp-limit-inbound", &suffix))
      spdlog::warn("tcp: flow limit {} reached, resetting an inbound connection from {}{}", config_.max_tcp_flows,
                   client.endpoint(client_port), suffix);
    flow->reset();
    return;
  }
  // The guest sees a source of its own family: an IPv4 client on an IPv6
  // guest port (or the reverse) appears as the gateway.
  IpAddr src = source_gateway || client.v6 != guest.v6 ? config_.nat.gateway_for(guest)
                                                        : config_.nat.inbound_source(client);
  struct tcp_pcb* pcb = tcp_new_ip_type(guest.v6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
  if (pcb == nullptr) {
    flow->close();
    return;
  }
  ip_addr_t s = to_lwip(src);
  pcb->remote_ip = to_lwip(guest);
  FlowKey key{guest, guest_port, src, client_port};
  // Keep the client's port when it is free on the guest side; else any.
  if (tcp_flows_.count(key) != 0 || tcp_bind(pcb, &s, client_port) != ERR_OK) {
    if (tcp_bind(pcb, &s, 0) != ERR_OK) {
      tcp_abort(pcb);
      flow->close();
      return;
    }
    key.remote_port = pcb->local_port;
  }
  stats_.tcp_inbound++;
  spdlog::debug("tcp: inbound {}:{} -> {}", client.to_string(), client_port, key.to_string());
  tcp_flows_.emplace(key, flow);
  flow->connect_guest(pcb, key);
}

void LwipEngine::inbound_udp(uv_udp_t* listener, const sockaddr* client, const IpAddr& guest, uint16_t guest_port,
                             bool source_gateway, wire::Bytes payload) {
  IpAddr client_addr;
  uint16_t client_port = 0;
  if (!from_sockaddr(client, &client_addr, &client_port)) {
    stats_.udp_dropped++;
    return;
  }
  // As for TCP: a client of the other family appears as the gateway.
  IpAddr src = source_gateway || client_addr.v6 != guest.v6 ? config_.nat.gateway_for(guest)
                                                             : config_.nat.inbound_source(client_addr);
  uint64_t now = clock_.now_ms();
  FlowKey key{guest, guest_port, src, client_port};
  // Two clients that map to the same source and port (127.0.0.1:P and
  // [::1]:P both appear as the gateway) get different ports.
  bool mapped = false;
  for (int tries = 0; tries < 64 && !mapped; ++tries) {
    auto it = udp_inbound_.find(key);
    if (it == udp_inbound_.end()) {
      if (udp_inbound_.size() >= config_.max_udp_flows) {
        stats_.udp_limit++;
        stats_.udp_dropped++;
        std::string suffix;
        if (may_log("udp-limit-inbound", &suffix))
          spdlog::warn("udp: {} published-port sessions (limit {}): dropping datagrams of new clients{}",
                       udp_inbound_.size(), config_.max_udp_flows, suffix);
        return;
      }
      InboundUdp session{listener, {}, now};
      std::memcpy(&session.client, client, client->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
      udp_inbound_.emplace(key, session);
      mapped = true;
    } else if (it->second.listener == listener && same_endpoint(it->second.client, client)) {
      it->second.last_active = now;
      mapped = true;
    } else {
      key.remote_port = static_cast<uint16_t>(key.remote_port + 1 == 0 ? 1024 : key.remote_port + 1);
    }
  }
  if (!mapped) {  // no free port near the client's: the guest's reply could not be routed back
    stats_.udp_dropped++;
    return;
  }
  stats_.udp_inbound++;
  send_udp_to_guest(src, key.remote_port, guest, guest_port, payload);
}

void LwipEngine::set_link_offloads(bool csum, bool tso) {
  link_csum_ = csum;
  link_tso_ = csum && tso;
  // lwIP computes the checksums the link does not; IP and ICMP always.
  uint16_t flags = NETIF_CHECKSUM_ENABLE_ALL;
  if (link_csum_) flags = static_cast<uint16_t>(flags & ~(NETIF_CHECKSUM_GEN_TCP | NETIF_CHECKSUM_GEN_UDP));
  NETIF_SET_CHECKSUM_CTRL(netif_.get(), flags);
}

void LwipEngine::set_link_ready(bool ready) {
  // Only a flag: this may run inside lwIP's output (a port's send()). The
  // flows that stopped for the link resume from the check handle at the end
  // of the loop iteration (resume_waiting_flows).
  link_ready_ = ready;
}

uint16_t LwipEngine::segment_size(uint16_t guest_mss) const {
  if (!link_tso_ || guest_mss == 0) return guest_mss;
  size_t n = std::max<size_t>(1, kTsoSegmentBytes / guest_mss);
  return static_cast<uint16_t>(std::min<size_t>(n * guest_mss, TCP_MSS));
}

void LwipEngine::forget_inbound_udp(uv_udp_t* listener) {
  std::erase_if(udp_inbound_, [listener](const auto& kv) { return kv.second.listener == listener; });
}

void LwipEngine::refuse_syn(const FlowKey& key, uint32_t syn_seq) {
  // RST|ACK from the address the guest tried, acknowledging its SYN. No
  // packet can come from the unspecified address (lwIP would put its own in
  // the header under a checksum for 0.0.0.0): such a SYN is dropped.
  if (key.remote.v6 ? key.remote.v6addr.is_unspecified() : key.remote.v4.is_unspecified()) {
    stats_.packets_dropped++;
    return;
  }
  ip_addr_t local = to_lwip(key.remote);
  ip_addr_t remote = to_lwip(key.guest);
  tcp_rst(nullptr, 0, syn_seq + 1, &local, &remote, key.remote_port, key.guest_port);
}

void LwipEngine::deny_egress(const std::string& what, wire::Bytes packet) {
  stats_.egress_denied++;
  spdlog::debug("egress: {} denied by policy", what);
  // A datagram reassembled by lwIP has no packet left to quote: dropped.
  if (!packet.empty())
    report_unreachable(packet, wire::icmpcode::kAdminProhibited, wire::icmpv6code::kAdminProhibited);
}

void LwipEngine::report_unreachable(wire::Bytes packet, uint8_t code4, uint8_t code6) {
  if (!packet.empty() && (static_cast<uint8_t>(packet[0]) >> 4) == 6) {
    auto ip = wire::Ipv6Packet::parse(packet);
    if (!ip) return;
    send_frame(wire::build_ipv6_icmpv6_error_frame({}, {}, config_.nat.gateway6, wire::icmpv6type::kDestUnreachable,
                                                   code6, *ip));
    return;
  }
  auto ip = wire::Ipv4Packet::parse(packet);
  if (!ip) return;
  send_frame(wire::build_ipv4_icmp_error_frame({}, {}, config_.nat.gateway, wire::icmptype::kDestUnreachable, code4,
                                               *ip));
}

void LwipEngine::handle_udp(struct pbuf* p, const IpAddr& src, uint16_t src_port) {
  // A datagram lwIP reassembled from fragments (whole ones go to input_udp()
  // without lwIP). lwIP removed the UDP header just before the payload: look
  // back at it for the destination port.
  IpAddr dst = from_lwip(ip_current_dest_addr());
  uint16_t dst_port = 0;
  if (pbuf_add_header(p, UDP_HLEN) == 0) {
    const auto* h = static_cast<const uint8_t*>(p->payload);
    dst_port = static_cast<uint16_t>((h[2] << 8) | h[3]);
    pbuf_remove_header(p, UDP_HLEN);
  }
  std::vector<std::byte> data(p->tot_len);
  pbuf_copy_partial(p, data.data(), p->tot_len, 0);
  pbuf_free(p);
  udp_from_guest(src, src_port, dst, dst_port, data, {});
}

void LwipEngine::udp_from_guest(const IpAddr& src, uint16_t src_port, const IpAddr& dst, uint16_t dst_port,
                                wire::Bytes payload, wire::Bytes packet) {
  uint64_t now = clock_.now_ms();
  if (config_.nat.is_dns(dst) && dst_port == kDnsPort && dns_resolver_) {
    resolve_udp_dns(payload, dst, src, src_port);
    return;
  }
  if (auto in = udp_inbound_.find(FlowKey{src, src_port, dst, dst_port}); in != udp_inbound_.end()) {
    // A reply on a published UDP port: back to the client it came from.
    in->second.last_active = now;
    uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(payload.data())),
                             static_cast<unsigned>(payload.size()));
    if (uv_udp_try_send(in->second.listener, &b, 1, reinterpret_cast<const sockaddr*>(&in->second.client)) < 0)
      stats_.udp_dropped++;
    return;
  }
  auto host = config_.nat.host_destination(dst);
  if (!host || dst_port == 0 || src_port == 0) {
    stats_.udp_dropped++;
    return;
  }
  if (!config_.nat.egress.allows(dst, *host, EgressPolicy::Proto::kUdp, dst_port)) {
    deny_egress("udp " + dst.endpoint(dst_port), packet);
    return;
  }
  UdpKey key{src, src_port};
  auto it = udp_flows_.find(key);
  UdpFlow* flow = nullptr;
  if (it != udp_flows_.end()) {
    flow = it->second;
  } else {
    std::string suffix;
    if (udp_flows_.size() >= config_.max_udp_flows) {
      stats_.udp_limit++;
      stats_.udp_dropped++;
      if (may_log("udp-limit", &suffix))
        spdlog::warn("udp: mapping limit {} reached, refusing datagrams from {}{}", config_.max_udp_flows,
                     src.endpoint(src_port), suffix);
      refuse_udp(packet);
      return;
    }
    const uint32_t guest = input_guest();
    if (guest != kNoGuest && over_share(guest, guest_flows_[guest].udp, config_.max_udp_flows)) {
      stats_.udp_limit++;
      stats_.udp_dropped++;
      stats_.guest_share_refused++;
      if (may_log("udp-guest-limit", &suffix))
        spdlog::warn("udp: guest on port {} holds half the mapping limit ({} of {}), refusing datagrams from {}{}",
                     guest, guest_flows_[guest].udp, config_.max_udp_flows, src.endpoint(src_port), suffix);
      refuse_udp(packet);
      return;
    }
    if (!take_flow_token(now)) {
      stats_.udp_rate_limited++;
      stats_.udp_dropped++;
      if (may_log("udp-rate", &suffix))
        spdlog::warn("udp: more than {} new flows a second: refusing datagrams from {}{}",
                     config_.max_new_flows_per_second, src.endpoint(src_port), suffix);
      refuse_udp(packet);
      return;
    }
    flow = new UdpFlow(*this, src, src_port, now);
    if (!flow->open()) {
      stats_.udp_dropped++;
      refuse_udp(packet);
      return;
    }
    udp_flows_.emplace(key, flow);
    flow->set_guest_id(guest);
    count_flow(guest, false);
  }
  stats_.udp_datagrams_out++;
  flow->send(*host, dst_port, payload, now);
}

void LwipEngine::resolve_udp_dns(wire::Bytes payload, const IpAddr& dns, const IpAddr& src, uint16_t src_port) {
  std::vector<std::byte> query(payload.begin(), payload.end());
  stats_.dns_udp_queries++;
  // The resolver drops its pending callbacks when it is destroyed, which the
  // gateway does before destroying the engine.
  dns_resolver_(query, false, [this, dns, src, src_port](std::vector<std::byte> response) {
    send_udp_to_guest(dns, kDnsPort, src, src_port, response);
  });
}

void LwipEngine::start_dns_session(struct tcp_pcb* pcb) {
  stats_.dns_tcp_sessions++;
  auto session = std::make_shared<DnsTcpSession>(
      pcb, dns_resolver_,
      [this](DnsTcpSession* s) {
        auto it = dns_sessions_.find(s);
        if (it == dns_sessions_.end()) return;
        dead_dns_sessions_.push_back(std::move(it->second));
        dns_sessions_.erase(it);
      },
      clock_);
  dns_sessions_.emplace(session.get(), session);
  session->start();
}

void LwipEngine::send_udp_to_guest(const IpAddr& src, uint16_t src_port, const IpAddr& guest, uint16_t guest_port,
                                   wire::Bytes payload) {
  if (payload.size() > 0xffff - 48) {
    stats_.udp_dropped++;
    return;
  }
  // A datagram that fits the link goes out as one frame built here; a larger
  // one through lwIP, which fragments it.
  const size_t ip_len = guest.v6 ? wire::Ipv6Header::kLen : wire::Ipv4Header::kLen;
  const size_t l4_len = wire::UdpDatagram::kHeaderLen + payload.size();
  if (ip_len + l4_len <= config_.mtu) {
    auto& buf = out_buffer_;
    buf.resize(wire::kEthernetHeaderLen + ip_len + l4_len);
    wire::MutBytes frame(buf.data(), buf.size());
    wire::MutBytes l4 = frame.subspan(wire::kEthernetHeaderLen + ip_len);
    wire::emit_udp_unchecksummed(l4, src_port, guest_port, payload);
    uint32_t pseudo = 0;
    if (guest.v6) {
      wire::store16(frame, 12, wire::ethertype::kIpv6);
      wire::Ipv6Header h;
      h.src = src.v6addr;
      h.dst = guest.v6addr;
      h.next_header = wire::ipproto::kUdp;
      h.payload_len = static_cast<uint16_t>(l4_len);
      h.emit(frame.subspan(wire::kEthernetHeaderLen));
      pseudo = wire::pseudo_header_sum_v6(h.src, h.dst, wire::ipproto::kUdp, static_cast<uint32_t>(l4_len));
    } else {
      wire::store16(frame, 12, wire::ethertype::kIpv4);
      wire::Ipv4Header h;
      h.src = src.v4;
      h.dst = guest.v4;
      h.protocol = wire::ipproto::kUdp;
      h.id = ++ip_id_;
      h.payload_len = static_cast<uint16_t>(l4_len);
      h.emit(frame.subspan(wire::kEthernetHeaderLen));
      pseudo = wire::pseudo_header_sum_v4(h.src, h.dst, wire::ipproto::kUdp, static_cast<uint16_t>(l4_len));
    }
    wire::Offload offload;
    if (link_csum_) {
      offload = wire::prepare_partial(frame, 0);
    } else {
      wire::set_udp_checksum(l4, pseudo);
    }
    output_(frame, offload);
    stats_.udp_datagrams_in++;
    return;
  }
  struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(payload.size()), PBUF_RAM);
  if (p == nullptr) {
    stats_.udp_dropped++;
    return;
  }
  std::memcpy(p->payload, payload.data(), payload.size());
  ip_addr_t s = to_lwip(src);
  ip_addr_t d = to_lwip(guest);
  udp_sender_->local_port = src_port;
  udp_sendto_if_src(udp_sender_, p, &d, guest_port, netif_.get(), &s);
  pbuf_free(p);
  stats_.udp_datagrams_in++;
}

void LwipEngine::send_frame(std::vector<std::byte> frame) {
  if (frame.size() < wire::kEthernetHeaderLen) return;
  output_(wire::MutBytes(frame.data(), frame.size()), wire::Offload{});
}

std::vector<FlowInfo> LwipEngine::flows() const {
  static constexpr const char* kStates[] = {"connecting", "accepting", "connecting-guest", "established", "closed"};
  std::vector<FlowInfo> r;
  r.reserve(tcp_flows_.size() + udp_flows_.size());
  for (const auto& [k, f] : tcp_flows_)
    r.push_back(FlowInfo{"tcp", k, f->inbound(), kStates[static_cast<int>(f->state())], f->bytes_to_host(),
                         f->bytes_to_guest()});
  for (const auto& [k, f] : udp_flows_)
    r.push_back(FlowInfo{"udp", FlowKey{f->guest(), f->guest_port(), {}, 0}, false, "mapped", f->bytes_to_host(),
                         f->bytes_to_guest()});
  return r;
}

void LwipEngine::closed(TcpFlow* flow) {
  std::replace(to_flush_.begin(), to_flush_.end(), flow, static_cast<TcpFlow*>(nullptr));
  if (flow->waiting_for_buffers())
    std::replace(waiting_for_buffers_.begin(), waiting_for_buffers_.end(), flow, static_cast<TcpFlow*>(nullptr));
  auto it = tcp_flows_.find(flow->key());
  if (it != tcp_flows_.end() && it->second == flow) tcp_flows_.erase(it);
  uncount_flow(flow->guest_id(), true);
}

void LwipEngine::closed(UdpFlow* flow) {
  std::replace(udp_to_flush_.begin(), udp_to_flush_.end(), flow, static_cast<UdpFlow*>(nullptr));
  auto it = udp_flows_.find(UdpKey{flow->guest(), flow->guest_port()});
  if (it != udp_flows_.end() && it->second == flow) udp_flows_.erase(it);
  uncount_flow(flow->guest_id(), false);
}

// A flow starts with no guest (tcp_flow.h, udp_flow.h spell it out).
static_assert(Engine::kNoGuest == ~uint32_t{0});

void LwipEngine::count_flow(uint32_t guest, bool tcp) {
  if (guest == kNoGuest) return;
  auto& g = guest_flows_[guest];
  (tcp ? g.tcp : g.udp)++;
}

void LwipEngine::uncount_flow(uint32_t guest, bool tcp) {
  if (guest == kNoGuest) return;
  auto g = guest_flows_.find(guest);
  if (g == guest_flows_.end()) return;
  size_t& n = tcp ? g->second.tcp : g->second.udp;
  if (n > 0) n--;
  if (g->second.tcp == 0 && g->second.udp == 0) guest_flows_.erase(g);
}

void LwipEngine::housekeeping(uint64_t now) {
  time_wait_.expire(now);
  std::vector<UdpFlow*> idle;
  for (auto& [k, f] : udp_flows_)
    if (now - f->last_active() > config_.udp_idle_timeout_ms) idle.push_back(f);
  for (UdpFlow* f : idle) {
    spdlog::debug("udp: mapping for {}:{} expired", f->guest().to_string(), f->guest_port());
    f->close();
  }
  std::vector<TcpFlow*> stuck;
  for (auto& [k, f] : tcp_flows_) {
    if ((f->state() == TcpFlow::State::kConnecting || f->state() == TcpFlow::State::kAccepting ||
         f->state() == TcpFlow::State::kConnectingGuest) &&
        now - f->started() > config_.tcp_connect_timeout_ms)
      stuck.push_back(f);
  }
  for (TcpFlow* f : stuck) {
    spdlog::debug("tcp: {} did not complete its handshake, closing", f->key().to_string());
    f->close();
  }
  std::erase_if(udp_inbound_, [&](const auto& kv) { return now - kv.second.last_active > config_.udp_idle_timeout_ms; });
  std::vector<std::shared_ptr<DnsTcpSession>> idle_dns;
  for (auto& [k, s] : dns_sessions_)
    if (now - s->last_active() > DnsTcpSession::kIdleTimeoutMs) idle_dns.push_back(s);
  for (auto& s : idle_dns) s->close();
  std::vector<LineSession*> idle_lines;
  for (auto& [k, ls] : line_sessions_)
    if (now - ls->last_active() > LineSession::kIdleTimeoutMs) idle_lines.push_back(k);
  for (auto* ls : idle_lines) ls->close();
  // lwIP forgets a half-open pcb after TCP_SYN_RCVD_TIMEOUT; so do we.
  std::erase_if(served_handshakes_,
                [&](const auto& kv) { return now - kv.second.since > TCP_SYN_RCVD_TIMEOUT + kHousekeepingMs; });
  // After a flood: give the memory its flows used back to the system, once
  // their number has fallen well below its peak (glibc keeps freed memory
  // for reuse otherwise: tens of MB after 16,000 connections).
  size_t flows = tcp_flows_.size() + udp_flows_.size() + time_wait_.size() + served_session_count();
  peak_flows_ = std::max(peak_flows_, flows);
  if (peak_flows_ - flows >= kTrimFlows) {
    malloc_trim(0);
    stats_.memory_trims++;
    peak_flows_ = flows;
  }
}

}  // namespace slipway::engine

// lwIP's platform hooks.
extern "C" {
u32_t sys_now(void) {
  using slipway::engine::g_clock;
  if (g_clock != nullptr) return static_cast<u32_t>(g_clock->now_ms());
  uint64_t ns = uv_hrtime();
  return static_cast<u32_t>(ns / 1000000u);
}

uint32_t slipway_lwip_rand(void) {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) v = static_cast<uint32_t>(uv_hrtime());
  return v;
}

int slipway_link_segments(const struct netif*, unsigned char proto) {
  using slipway::engine::g_engine;
  return g_engine != nullptr && proto == IP_PROTO_TCP && g_engine->link_segments() ? 1 : 0;
}

void slipway_lwip_assert(const char* msg, const char* file, int line) {
  spdlog::critical("lwIP assertion failed: {} at {}:{}", msg, file, line);
  abort();
}
}
