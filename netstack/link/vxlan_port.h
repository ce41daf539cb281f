// VxlanPort: Ethernet frames in VXLAN (RFC 7348) over a UDP socket, to one
// remote host; a switch's link to a Linux vxlan device or another slipway.
//
// Theory of operation
//   One non-blocking UDP socket bound to the local address (default: any
//   address of the remote's family, port 4789). send() puts the 8-byte
//   VXLAN header (I flag, the configured VNI; wire/vxlan.h) before the frame
//   and sends the two in one sendmsg() to the remote address and port. The
//   source port is the local one, always: a receiver takes VXLAN from any
//   source port (RFC 7348 §5 lets senders vary it per flow for ECMP; we have
//   one socket and do not).
//
//   Received datagrams are untrusted and checked in this order, each refusal
//   counted in VxlanStats (and in PortStats::rx_dropped) and traced:
//     - the source address must be the remote's (any source port);
//     - the datagram must fit the receive buffer (kVxlanHeaderLen +
//       max_frame()) and hold a plain VXLAN header: exactly the I flag, no
//       reserved bit set (wire::parse_vxlan);
//     - the VNI must be the configured one;
//     - the inner frame must be 14 bytes (an Ethernet header) at least and
//       max_frame() = mtu + 18 (the header and one 802.1Q tag, as a trunk
//       port carries) at most.
//   What passes reaches the sink as a plain frame (no offload).
//
//   Offloads: the port takes partial checksums and TCP GSO frames
//   (capabilities() csum and tso) and finishes them itself: a checksum is
//   completed in place; a GSO frame is cut into segments (wire::segment_tcp)
//   that are laid one after the other, each behind its VXLAN header, in one
//   buffer, and handed to the kernel in one sendmsg() with UDP_SEGMENT
//   (UDP GSO, Linux 4.18): one system call for up to kMaxGsoSegments (64)
//   datagrams of at most kMaxGsoBytes (65507) in all, instead of one each.
//   The datagrams on the wire are the same. Where the kernel refuses (no
//   UDP GSO, or a datagram larger than the path MTU, which UDP GSO does not
//   fragment) the batch goes out one datagram at a time, and UDP GSO stays
//   off for the socket.
//
//   Limits: at most kMaxReadsPerWake (64) datagrams are read per wake-up
//   (the loop's other work is not starved), in recvmmsg() batches of up to
//   64 (fewer when the MTU is large: the batch's buffers hold at most
//   kRxBatchBytes, 1 MiB). Nothing is queued on send: on
//   EAGAIN or ENOBUFS the frame is dropped and counted (tx_again), as a
//   NIC whose ring is full would; TCP above recovers. The socket's buffers
//   are raised to kSocketBuffer (4 MiB) where allowed (SO_RCVBUFFORCE needs
//   CAP_NET_ADMIN; otherwise up to net.core.rmem_max/wmem_max), so that a
//   GSO frame cut into 45 datagrams fits. Outer datagrams are sent without
//   DF (IP_PMTUDISC_DONT), as Linux's vxlan device sends them: an inner
//   frame larger than the underlay's MTU allows goes out fragmented rather
//   than not at all.
//
//   Not here: multicast remotes (flooding to a group) and several remotes
//   or VNIs on one socket; two VxlanPorts need distinct local ports or
//   addresses. No states and no timeouts: a datagram socket has no
//   connection.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "netstack/link/polled_fd.h"
#include "netstack/link/port.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/vxlan.h"

namespace slipway::link {

// An IPv4 or IPv6 address and a UDP port.
struct VxlanEndpoint {
  std::variant<wire::Ipv4Addr, wire::Ipv6Addr> address;
  uint16_t port = wire::kVxlanUdpPort;

  bool is_v6() const { return std::holds_alternative<wire::Ipv6Addr>(address); }
  bool is_unspecified() const;
  bool is_multicast() const;
  // "192.0.2.1", "192.0.2.1:4790", "2001:db8::1", "[2001:db8::1]",
  // "[2001:db8::1]:4790"; a missing port is `default_port`. nullopt on
  // anything else (a port above 65535, a name). Port 0 parses: as a local
  // endpoint it asks for any free port; a remote's is refused at open.
  static std::optional<VxlanEndpoint> parse(std::string_view text, uint16_t default_port = wire::kVxlanUdpPort);
  // "192.0.2.1:4789", "[2001:db8::1]:4789".
  std::string to_string() const;
};

struct VxlanConfig {
  VxlanEndpoint remote;                // a unicast address
  uint32_t vni = 0;                    // 0..wire::kVxlanMaxVni
  std::optional<VxlanEndpoint> local;  // default: any address of remote's family, port 4789
  size_t mtu = 1500;                   // the largest inner IP packet
};

struct VxlanStats {
  uint64_t rx_bad_source = 0;  // not from the remote's address
  uint64_t rx_bad_header = 0;  // shorter than the VXLAN header, or flags other than I
  uint64_t rx_bad_vni = 0;     // another VNI
  uint64_t rx_runt = 0;        // an inner frame shorter than an Ethernet header
  uint64_t rx_oversize = 0;    // an inner frame longer than max_frame()
  uint64_t tx_again = 0;       // the socket was full (EAGAIN, ENOBUFS): dropped
  uint64_t tx_errors = 0;      // another send error (no route, too big): dropped
  uint64_t tx_bad_length = 0;  // asked to send a frame below 14 bytes or above max_frame()
  uint64_t tx_bad_offload = 0; // a checksum or GSO frame that cannot be finished (not TCP, bad offsets)
  uint64_t tx_gso_sends = 0;   // sendmsg() calls carrying several datagrams (UDP GSO)
};

class VxlanPort : public Port {
 public:
  static constexpr int kMaxReadsPerWake = 64;
  static constexpr int kSocketBuffer = 4 << 20;
  static constexpr size_t kRxBatchBytes = 1 << 20;
  static constexpr size_t kMaxGsoSegments = 64;   // the kernel's UDP_MAX_SEGMENTS
  static constexpr size_t kMaxGsoBytes = 65507;   // one IPv4 UDP datagram's payload

  // Opens and binds the socket. Throws std::invalid_argument for a config
  // that makes no sense (a VNI above 24 bits, a multicast or unspecified
  // remote, a local address of the other family, an mtu below 68) and
  // std::runtime_error, naming the address and the reason, when the socket
  // cannot be bound.
  static std::unique_ptr<VxlanPort> open(uv_loop_t* loop, const VxlanConfig& config);
  ~VxlanPort() override;

  const VxlanConfig& config() const { return config_; }
  // The address the socket is bound to (its port, when 0 was asked).
  const VxlanEndpoint& local() const { return local_; }
  size_t max_frame() const { return max_frame_; }
  const VxlanStats& vxlan_stats() const { return vxlan_stats_; }
  std::vector<std::pair<const char*, uint64_t>> link_counters() const override;

 protected:
  bool transmit(Frame frame, const Offload& offload) override;

 private:
  // One datagram: the VXLAN header and `frame` (a plain frame).
  bool send_one(Frame frame);
  // A GSO frame, cut into segments sent in batches (see the top).
  bool send_segments(Frame frame, const Offload& offload);
  // Sends batch_: `count` datagrams of `size` bytes each but the last.
  bool flush_batch(size_t size, size_t count);
  VxlanPort(uv_loop_t* loop, int fd, VxlanConfig config, VxlanEndpoint local);
  void on_readable();
  void receive(Frame datagram, const sockaddr_storage& from);

  VxlanConfig config_;
  VxlanEndpoint local_;
  size_t max_frame_;
  sockaddr_storage remote_{};
  socklen_t remote_len_ = 0;
  std::unique_ptr<PolledFd> sock_;
  size_t rx_slot_ = 0, rx_slots_ = 1;  // (declared before rx_, which they size)
  std::vector<std::byte> rx_;          // rx_slots_ buffers of rx_slot_ bytes, one per datagram
  std::array<std::byte, wire::kVxlanHeaderLen> tx_header_{};
  bool udp_gso_ = false;                  // the socket takes UDP_SEGMENT
  std::vector<std::byte> scratch_;        // a frame being finished, a segment
  std::vector<std::byte> batch_;          // datagrams for one UDP GSO send
  VxlanStats vxlan_stats_;
};

}  // namespace slipway::link
