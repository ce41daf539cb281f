// Gateway: the virtual router the guest sees, as a Port.
//
// Theory of operation
//   Frames from the guest arrive through send(); frames for the guest leave
//   through the Port's sink. The gateway owns the link layer and the special
//   addresses, and dispatches the rest; the Stack (stack/stack.h) builds it
//   with the engine and the ICMP relay it hands traffic to:
//     - ARP: answers requests for the gateway and DNS addresses with its own
//       MAC, and learns the guest's IP -> MAC bindings (a bounded table) from
//       the ARP and IPv4 frames the guest sends;
//     - DHCPv4 (UDP to port 67): served by DhcpServer;
//     - TFTP (with config.tftp_root): UDP to the gateway address (IPv4 or
//       IPv6) on port 69, and to each transfer's own port, is TftpServer's,
//       whichever engine runs (so with --restrict too); the gateway's timer
//       drives its retransmissions;
//     - ICMP echo: answered for the gateway and DNS addresses, relayed to
//       other destinations through the IcmpEchoRelay, whose replies and
//       errors come back through echo_reply()/echo_error() to be framed;
//       likewise ICMPv6 echo (see the IPv6 item);
//     - TCP and UDP (and IPv4 fragments), DNS at the DNS address included:
//       handed to the Engine, whose output comes back through to_guest() to
//       be framed for the guest;
//     - IPv6 (when config.nat.ipv6): NDP, router advertisements (one at
//       start and every GatewayConfig::ra_interval, 200 s by default, and
//       in answer to router solicitations), ICMPv6 echo to the gateway's
//       addresses and stateless DHCPv6 are NdpResponder's; ICMPv6 echo to
//       other unicast addresses is relayed through the IcmpEchoRelay like
//       IPv4's when NatPolicy::host_destination() allows the destination
//       (the reply comes from the address the guest pinged, errors from the
//       gateway's address), and refused at once otherwise with destination
//       unreachable (administratively prohibited; "beyond scope" for a
//       link-local source); TCP and UDP over IPv6 go to the engine like
//       IPv4. IPv6 neighbours are learned from the guest's packets (source
//       MAC) and, when unknown, asked for with a neighbour solicitation;
//       frames wait for the answer in the same queue as ARP.
//   Everything from the guest is untrusted: each frame is parsed with the
//   checked views in wire/, and whatever fails a check is dropped and counted
//   (GatewayStats), with a trace log. Time comes from the stack's clock, read
//   once per frame and passed down.
//
// Limits: one guest subnet and one IPv6 prefix. The neighbour table holds
// kMaxNeighbors (256) entries, the least recently learned evicted first. A
// frame for a guest address whose MAC is unknown triggers an ARP request
// (IPv6: a neighbour solicitation) and waits for the answer in a small queue
// (kMaxPendingFrames (16) per address, kMaxPendingAddresses (16) addresses,
// kPendingTimeoutMs (3 s)); beyond that it is dropped and counted. Relayed
// echo (both families) quotes only the request's headers in errors (the
// relay keeps no payload); fragmented ICMPv6 echo is not relayed.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "netstack/engine/engine.h"
#include "netstack/engine/icmp_relay.h"
#include "netstack/engine/ip_addr.h"
#include "netstack/engine/nat.h"
#include "netstack/gateway/dhcp_server.h"
#include "netstack/gateway/ndp_responder.h"
#include "netstack/gateway/tftp_server.h"
#include "netstack/link/port.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmpv6.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/offload.h"

namespace slipway::gateway {

struct GatewayConfig {
  wire::MacAddr mac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  engine::NatPolicy nat;  // guest, gateway and DNS addresses; host loopback
  uint16_t mtu = 65520;
  std::chrono::seconds lease_time{86400};
  std::vector<std::string> search_domains;
  std::string domain_name;
  // IPv6 (when nat.ipv6): the gateway's link-local address; unset: EUI-64 of
  // `mac`. Mirrored mode sets the host's IPv6 default gateway here when that
  // is link-local, so that the guest's copied default route resolves.
  std::optional<wire::Ipv6Addr> link_local6;
  // Mirrored mode: answer ARP and neighbour solicitations for every other
  // address on the link (proxy ARP/NDP, as passt does), since the guest's
  // subnet is the host's real one and its other hosts are reached through
  // the gateway.
  bool proxy_neighbors = false;
  std::chrono::seconds ra_interval{200};
  std::vector<DhcpServerConfig::StaticLease> dhcp_statics;  // [[dhcp.static]]
  // Drop guest TCP/UDP whose checksum is wrong, in frames that arrive
  // complete (no offload). Off by default: the guest's link does not
  // corrupt, and a bad checksum only spoils the guest's own data; on under
  // a FaultPort that corrupts (link/fault_port.h).
  bool verify_checksums = false;
  // --tftp DIR: a read-only TFTP server at the gateway address (UDP port
  // 69, tftp_server.h); "" for none.
  std::string tftp_root;
  // --boot-file NAME: DHCPv4 tells the guest to boot NAME (options 66 and
  // 67, the BOOTP header's siaddr and file); "" for nothing. The TFTP
  // server named is the gateway (even without tftp_root: NAME may be a URL
  // that iPXE fetches itself).
  std::string boot_file;
};

struct GatewayStats {
  uint64_t frames_in = 0, frames_out = 0;
  uint64_t dropped_malformed = 0, dropped_not_for_us = 0, dropped_bad_source = 0, dropped_unsupported = 0;
  uint64_t dropped_bad_checksum = 0;  // with verify_checksums
  uint64_t dropped_no_neighbor = 0;
  uint64_t neighbor_solicits_sent = 0;
  uint64_t icmpv6_echo_refused = 0;  // echo to a refused IPv6 destination, answered with an error
  // ICMP echo answered here (IPv4; NdpResponder counts IPv6's), handed to
  // the relay (both families), or not relayed (an IPv4 destination refused,
  // the relay unavailable or failing).
  uint64_t arp_replies = 0, icmp_echo_local = 0, icmp_echo_relayed = 0, icmp_echo_failed = 0;
  uint64_t icmp_echo_denied = 0;  // by the egress policy (answered: administratively prohibited)
};

class Gateway : public link::Port {
 public:
  // `engine` takes the guest's TCP and UDP; `icmp` (may be null: echo to
  // other hosts then fails) relays echo requests. Both must outlive the
  // gateway's use of them; the Stack wires their outputs back here.
  Gateway(uv_loop_t* loop, const sys::Clock& clock, GatewayConfig config, engine::Engine& engine,
          engine::IcmpEchoRelay* icmp);
  ~Gateway() override;

  // A frame from the guest. The gateway takes offloaded frames as they are
  // (capabilities: csum and tso): lwIP takes TCP segments of any length up
  // to 64 KiB and checks no TCP/UDP checksum; the one checksum the gateway
  // checks itself on a partial frame (DHCPv6's) is completed first.
  bool transmit(link::Frame frame, const link::Offload& offload) override;

  // An IPv4 or IPv6 packet for the guest after kEthernetHeaderLen bytes of
  // headroom (the engine's output): framed for the guest's MAC and
  // delivered, or held while the guest's MAC is being resolved.
  // `offload` (see wire/offload.h) travels with it to the transport.
  void to_guest(wire::MutBytes frame, const wire::Offload& offload = {});
  // The relay's answers to the guest's echo requests.
  void echo_reply(const engine::IcmpEchoReply& reply);
  void echo_error(const engine::IcmpError& error);

  const GatewayConfig& config() const { return config_; }
  const GatewayStats& stats() const { return stats_; }
  const DhcpServer& dhcp() const { return dhcp_; }
  // Gives `mac` a DHCP lease without the exchange (a namespace interface
  // slipway configures itself); nullopt if the pool is exhausted.
  std::optional<wire::Ipv4Addr> bind_lease(wire::MacAddr mac, const std::string& name);
  // Called after a lease was bound, renamed or let go (the DNS proxy's
  // NAME.internal follows the leases).
  void set_lease_listener(std::function<void()> listener) { lease_listener_ = std::move(listener); }
  const NdpResponder* ndp() const { return ndp_.get(); }
  const TftpServer* tftp() const { return tftp_.get(); }

 private:
  static constexpr size_t kMaxNeighbors = 256;
  static constexpr size_t kMaxPendingFrames = 16;
  static constexpr size_t kMaxPendingAddresses = 16;
  static constexpr uint64_t kPendingTimeoutMs = 3000;

  void on_arp(const wire::EthernetFrame& eth);
  void on_ipv4(const wire::EthernetFrame& eth, uint64_t now);
  void on_ipv6(const wire::EthernetFrame& eth, wire::Bytes frame, const wire::Offload& offload, uint64_t now);
  void on_icmp(const wire::Ipv4Packet& ip, uint64_t now);
  // An ICMPv6 echo request to an address that is not the gateway's.
  void on_icmpv6_echo(const wire::EthernetFrame& eth, const wire::Ipv6Packet& ip, const wire::Icmpv6Message& icmp,
                      uint64_t now);
  void on_dhcp(const wire::EthernetFrame& eth, wire::Bytes udp_payload, uint64_t now);
  // Hands an echo request to the relay (both families).
  void relay_echo(const engine::IpAddr& src, const engine::IpAddr& host, uint16_t id, uint16_t seq,
                  wire::Bytes payload, uint8_t hop_limit, uint64_t now);
  void learn(const engine::IpAddr& ip, wire::MacAddr mac);
  bool is_guest_source(wire::Ipv4Addr src) const;
  bool is_guest_source(const wire::Ipv6Addr& src) const;
  bool is_guest_source(const engine::IpAddr& src) const {
    return src.v6 ? is_guest_source(src.v6addr) : is_guest_source(src.v4);
  }
  void deliver_frame(std::vector<std::byte> frame);
  void deliver_frames(std::vector<std::vector<std::byte>> frames);
  void request_neighbor(const engine::IpAddr& ip);
  void hold_for_neighbor(const engine::IpAddr& dst, wire::MutBytes frame, const wire::Offload& offload,
                         uint64_t now);
  void start_router_adverts(uv_loop_t* loop);
  // A UDP datagram from the guest to a gateway address: true if the TFTP
  // server took it.
  bool to_tftp(const engine::IpAddr& src, wire::Bytes udp, uint64_t now);
  void send_tftp(const engine::IpAddr& guest, uint16_t guest_port, uint16_t server_port, wire::Bytes payload);
  // Runs the TFTP server's timer for its next deadline.
  void arm_tftp_timer();

  const sys::Clock& clock_;
  GatewayConfig config_;
  GatewayStats stats_;
  DhcpServer dhcp_;
  engine::Engine& engine_;
  engine::IcmpEchoRelay* icmp_;
  std::unique_ptr<NdpResponder> ndp_;  // IPv6 only
  uv_timer_t* ra_timer_ = nullptr;     // freed in its close callback
  std::unique_ptr<TftpServer> tftp_;   // with config.tftp_root
  uv_timer_t* tftp_timer_ = nullptr;   // freed in its close callback
  std::function<void()> lease_listener_;
  struct Neighbor {
    wire::MacAddr mac;
    uint64_t seen;  // learn_count_ when last learned: the eviction order
  };
  uint64_t learn_count_ = 0;
  struct IpAddrHash {
    size_t operator()(const engine::IpAddr& a) const noexcept { return a.hash(); }
  };
  std::unordered_map<engine::IpAddr, Neighbor, IpAddrHash> neighbors_;
  struct HeldFrame {
    std::vector<std::byte> bytes;  // with room for the Ethernet header
    wire::Offload offload;
  };
  struct Pending {
    uint64_t since;
    std::vector<HeldFrame> frames;
  };
  std::unordered_map<engine::IpAddr, Pending, IpAddrHash> pending_;  // frames waiting for ARP or NDP
};

// The DHCP server settings that follow from a gateway configuration.
DhcpServerConfig dhcp_config_for(const GatewayConfig& config);
// The NDP/RA/DHCPv6 settings that follow from it.
NdpResponderConfig ndp_config_for(const GatewayConfig& config);

}  // namespace slipway::gateway
