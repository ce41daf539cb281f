// SlirpEngine: the second Engine (engine.h), on libslirp, QEMU's user-mode
// network stack (`--engine slirp`).
//
// Theory of operation
//   The gateway in front is the same as with lwIP: it answers ARP, DHCP,
//   NDP/RA/DHCPv6 and ping, and hands the engine the guest's TCP and UDP.
//   libslirp speaks Ethernet, so the engine puts an Ethernet header in front
//   of each IP packet (slirp_input) and takes it off what slirp sends
//   (send_packet), which then goes to the gateway like lwIP's output. slirp's
//   own DHCP and DNS are switched off (disable_dhcp, disable_dns): the
//   gateway's DHCP server and the stack's DNS proxy serve both engines, so a
//   guest gets the same lease, names and static leases whichever runs.
//
//   Link layer inside: slirp resolves the guest's MAC before it sends (its
//   ARP and NDP tables). The engine teaches it every guest source it sees
//   (a gratuitous ARP, an unsolicited Neighbour Advertisement, with one
//   made-up MAC: the gateway frames the packets for the real guest), and
//   answers the ARP requests and Neighbour Solicitations slirp still sends
//   (a table entry pushed out, an inbound connection before the guest spoke)
//   right after the slirp call that sent them. slirp's Router Advertisements
//   are dropped (the gateway sends its own).
//
//   Before slirp: the NAT policy (nat.h) is applied here, as LwipEngine does:
//   a SYN to a refused destination gets a RST, a datagram is dropped
//   (counted). DNS at the DNS addresses over UDP goes to the DnsResolver (the
//   stack's proxy), never to slirp. DNS over TCP at the IPv4 DNS address is
//   a guest forward of slirp's (slirp_add_unix) to a unix socket of the
//   engine's in a private directory, where DnsStreamServer hands each message
//   to the same resolver; at the IPv6 DNS address it is refused with a RST
//   (slirp's guest forwards are IPv4 only). The user's guest forwards
//   (--guest-forward, guest_forward.h) with a unix: target are slirp's guest
//   forwards too (slirp_add_unix); a tcp: target goes through a unix socket
//   of the engine's in the private directory, where TcpTargetRelay splices
//   each connection to a TCP connection to the target; a cmd: target is
//   slirp_add_exec (`/bin/sh -c 'COMMAND'`). Their SYNs pass the
//   policy, --restrict or not (libslirp's restricted mode lets guest
//   forwards through as well). The TCP/UDP checksum of every guest packet is computed
//   again, since the guest's link may leave it partial and slirp checks it.
//
//   Published ports: slirp listens on the host itself (slirp_add_hostxfwd,
//   IPv4 and IPv6 host addresses to the guest's IPv4), so owns_host_listeners()
//   is true and PublishedPorts hands each port to add_host_forward(). The
//   guest sees the client's address, a loopback client as the gateway.
//
//   The loop: slirp's sockets are watched through one epoll fd of the
//   engine's, itself watched by a uv_poll: before the loop blocks (a
//   uv_prepare) slirp_pollfds_fill() lists the fds and the engine brings the
//   epoll set in line; when the epoll fd is readable, at most kMaxEvents
//   events are read (level-triggered: the rest come next iteration) and
//   slirp_pollfds_poll() runs; a uv_timer armed with fill's timeout (at most
//   1 s, 2 ms with delayed ACKs pending; only ever brought forward, so that
//   a loop woken often by other handles cannot starve it) runs it without
//   events for slirp's TCP timers, and at once after the engine answered an
//   ARP/NDP request (the packets slirp queued behind it leave then). slirp's own timers (the RA timer) are uv_timers. The engine
//   owns no fd of slirp's: it drops an fd from the epoll set when slirp
//   unregisters it, before slirp closes it.
//
// Limits: libslirp keeps per-instance state, but the Stack builds one engine
// per process. It has no flow limits (EngineConfig's max flows and timeouts
// do not apply: the options are refused at start-up), carries no offloads
// (every frame to the guest is plain), and lists only IPv4 flows
// (slirp_connection_info). The line service (portfwd-agent in a VM) is not
// available: set_line_service() throws std::logic_error.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "netstack/engine/engine.h"
#include "netstack/sys/clock.h"

struct Slirp;

namespace slipway::engine {

class DnsStreamServer;
class TcpTargetRelay;

class SlirpEngine final : public Engine {
 public:
  static constexpr int kMaxEvents = 256;  // epoll events read per wake-up

  // Throws std::runtime_error if libslirp cannot be set up.
  SlirpEngine(uv_loop_t* loop, const sys::Clock& clock, EngineConfig config, Output output);
  ~SlirpEngine() override;

  // Engine
  void input(const wire::Ipv4Packet& packet) override;
  void input6(const wire::Ipv6Packet& packet) override;
  void set_dns_resolver(DnsResolver resolver) override { dns_resolver_ = std::move(resolver); }
  void set_line_service(uint16_t port, LineHandler handler) override;
  void set_link_offloads(bool, bool) override {}  // slirp's frames are always complete
  // libslirp reads its host sockets itself and has no way to pause them:
  // the port's queue (link/port.h) absorbs bursts, beyond it frames drop.
  void set_link_ready(bool) override {}
  void accept_inbound_tcp(uv_stream_t* listener, const IpAddr& guest, uint16_t guest_port,
                          bool source_gateway) override;
  void inbound_udp(uv_udp_t* listener, const sockaddr* client, const IpAddr& guest, uint16_t guest_port,
                   bool source_gateway, wire::Bytes payload) override;
  void forget_inbound_udp(uv_udp_t*) override {}
  bool owns_host_listeners() const override { return true; }
  std::string add_host_forward(bool udp, const sockaddr* host, const IpAddr& guest, uint16_t guest_port) override;
  void remove_host_forward(bool udp, const sockaddr* host) override;
  std::vector<std::byte>& read_buffer() override { return read_buffer_; }
  const EngineConfig& config() const override { return config_; }
  const EngineStats& stats() const override { return stats_; }
  size_t tcp_flow_count() const override;
  size_t udp_flow_count() const override;
  std::vector<FlowInfo> flows() const override;

 private:
  friend struct SlirpCallbacks;  // libslirp's and libuv's callbacks, in the .cc
  struct Timer;

  // Gives slirp one IP packet behind an Ethernet header, then answers the
  // ARP/NDP requests it sent meanwhile.
  void to_slirp(wire::Bytes packet, bool v6, size_t l4_offset, uint8_t protocol);
  void answer_resolutions();
  void teach(const IpAddr& guest);  // slirp's ARP/NDP table learns this guest address
  void from_slirp(const std::byte* frame, size_t len);
  // `packet` is the whole IP packet (quoted in an ICMP error when the
  // egress policy denies it).
  bool admit(const IpAddr& src, const IpAddr& dst, uint8_t protocol, wire::Bytes l4, wire::Bytes packet);
  // The egress policy for a fragment (no port to check): refused when a deny
  // rule covers the destination and no allow rule for every port does.
  bool fragment_allowed(const IpAddr& dst) const;
  void deny_egress(wire::Bytes packet);
  void refuse_syn(const IpAddr& src, const IpAddr& dst, wire::Bytes l4);
  void send_frame(std::vector<std::byte> frame);
  void fill();          // slirp_pollfds_fill and the epoll set
  void poll(bool io);   // slirp_pollfds_poll, with the epoll events if io
  void arm_poll_timer(uint64_t timeout_ms);
  void unregister_fd(int fd);

  uv_loop_t* loop_;
  const sys::Clock& clock_;
  EngineConfig config_;
  Output output_;
  EngineStats stats_;
  Slirp* slirp_ = nullptr;
  DnsResolver dns_resolver_;
  std::string private_dir_;  // holds the DNS socket
  std::unique_ptr<DnsStreamServer> dns_stream_;
  std::vector<std::unique_ptr<TcpTargetRelay>> tcp_relays_;  // guest forwards with a tcp: target
  std::vector<std::byte> read_buffer_;
  std::vector<std::byte> in_buffer_, out_buffer_;
  // The guest addresses slirp has been taught; requests still to answer.
  std::unordered_set<std::string> taught_;
  std::vector<IpAddr> to_answer_;
  // Polling (see the top of this file). fds_ holds the last fill's entries,
  // by the index slirp was given; registered_ what the epoll set holds.
  struct PollEntry {
    int fd;
    int events;   // SLIRP_POLL_*
    int revents;  // SLIRP_POLL_*
  };
  std::vector<PollEntry> fds_;
  std::unordered_map<int, uint32_t> registered_;  // fd -> epoll events
  int epoll_fd_ = -1;
  // Handles are heap-allocated and freed in their close callbacks.
  uv_poll_t* epoll_watch_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  uv_timer_t* poll_timer_ = nullptr;
  uint64_t poll_due_ = 0;  // when poll_timer_ fires, while active
  std::unordered_set<Timer*> timers_;
  bool in_slirp_ = false;  // a slirp call is under way (no re-entry)
};

}  // namespace slipway::engine
