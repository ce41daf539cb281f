// DHCPv4 server for the guest's private link (RFC 2131).
//
// Theory of operation. The server is authoritative for one subnet and hands
// out addresses from [pool_start, pool_end], skipping reserved addresses, the
// server, router and DNS addresses, and the subnet's network and broadcast
// addresses. It is a pure state machine: handle() takes one UDP payload
// received on port 67 plus the current time and returns at most one reply for
// the caller to send from server_address:67 to dst_ip:68 (dst_mac). Nothing
// here reads the clock or does I/O.
//
// Clients are identified by their client identifier (option 61) when they
// send one, else by chaddr. Each known client has one record:
//
//   kOffered  an OFFER was sent; the address is held for kOfferHold (60 s).
//   kBound    a REQUEST was ACKed; held until the lease expires.
//   kFree     released, expired or declined; the address is no longer held,
//             but remembered so the client gets it back if it is still free.
//
// Expiry is lazy: every handle() first moves records whose time has passed to
// kFree. At most max_leases records exist; when a new client arrives and the
// table is full, the least recently used kFree record is forgotten; if every
// record holds an address the pool counts as exhausted and the client gets
// no reply. A DECLINEd address is kept out of the pool for kDeclineHold.
//
// Replies carry message type, server id, lease time with T1 = 50% and
// T2 = 87.5% (not for INFORM), subnet mask, router, DNS, interface MTU,
// domain name and domain search list, and echo the client identifier
// (RFC 6842). With a boot file, OFFERs and ACKs also carry the next server
// (siaddr) and the boot file (the header's file field, when it fits in its
// 128 bytes, and options 66 and 67), as PXE and iPXE read them. They are addressed per RFC 2131 §4.1: to ciaddr if set, else
// broadcast if the client set the broadcast flag, else to yiaddr at chaddr;
// NAKs are always broadcast.
//
// Static leases (DhcpServerConfig::statics): a MAC always gets its own
// address, which no other client is given (it need not lie in the pool).
// Names: a lease carries a name (the static lease's, else the client's host
// name, option 12, if it is a valid DNS label), for the DNS proxy
// (NAME.internal) and for published ports that name their guest. bind()
// gives a MAC a lease without a DHCP exchange (a namespace whose interface
// slipway configures itself).
//
// Limits: no relay agents (messages with giaddr set are dropped), no
// persistence across restarts (a client that INIT-REBOOTs or
// RENEWs with an address that is free and in the pool gets it back, so a
// restart is harmless). Plain BOOTP (no message type) is counted as
// malformed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/wire/bytes.h"
#include "netstack/wire/dhcp.h"

namespace slipway::gateway {

struct DhcpServerConfig {
  wire::Ipv4Addr server_address{10, 0, 2, 2};
  wire::Ipv4Addr subnet{10, 0, 2, 0};
  unsigned prefix = 24;
  wire::Ipv4Addr router{10, 0, 2, 2};
  std::vector<wire::Ipv4Addr> dns{{10, 0, 2, 3}};
  wire::Ipv4Addr pool_start{10, 0, 2, 15};
  wire::Ipv4Addr pool_end{10, 0, 2, 254};
  std::vector<wire::Ipv4Addr> reserved;  // never leased, e.g. gateway and DNS
  uint16_t mtu = 65520;
  std::chrono::seconds lease_time{86400};
  std::string domain_name;
  std::vector<std::string> search_domains;
  size_t max_leases = 1024;
  struct StaticLease {
    wire::MacAddr mac;
    wire::Ipv4Addr address;
    std::string name;  // "" or a DNS label
    friend bool operator==(const StaticLease&, const StaticLease&) = default;
  };
  std::vector<StaticLease> statics;
  // Network boot (--boot-file): replies name the TFTP server (siaddr and
  // option 66, `next_server`) and the boot file (the BOOTP file field when
  // it fits, and option 67). "" for none.
  std::string boot_file;
  wire::Ipv4Addr next_server;
};

// Empty if `config` is usable, else a message saying what is wrong (for the
// start-up check: prefix 1..30, pool non-empty and inside the subnet, server
// address in the subnet, search domains valid, max_leases > 0).
std::string validate(const DhcpServerConfig& config);

using Clock = std::chrono::steady_clock;

struct DhcpServerReply {
  std::vector<std::byte> payload;  // UDP payload, sent from server_address:67 to dst_ip:68
  wire::Ipv4Addr dst_ip;
  wire::MacAddr dst_mac;
};

class DhcpServer {
 public:
  static constexpr std::chrono::seconds kOfferHold{60};
  static constexpr std::chrono::seconds kDeclineHold{600};

  explicit DhcpServer(DhcpServerConfig config);

  // Handles one client message (UDP payload to port 67). `src_mac` is the
  // Ethernet source, used when chaddr is not an Ethernet address.
  std::optional<DhcpServerReply> handle(wire::Bytes udp_payload, wire::MacAddr src_mac, Clock::time_point now);

  struct Stats {
    uint64_t discovers = 0, offers = 0, requests = 0, acks = 0, naks = 0, releases = 0, declines = 0,
             informs = 0, malformed = 0, pool_exhausted = 0;
  };
  const Stats& stats() const { return stats_; }
  // The address bound to this hardware address, if its lease is active as of
  // the last handle() call.
  std::optional<wire::Ipv4Addr> lease_of(wire::MacAddr mac) const;
  // Binds a lease for `mac` as if it had asked (its static address, the one
  // it had, or the first free one); nullopt if the pool is exhausted.
  std::optional<wire::Ipv4Addr> bind(wire::MacAddr mac, const std::string& name, Clock::time_point now);

  struct LeaseInfo {
    wire::MacAddr mac;
    wire::Ipv4Addr address;
    std::string name;
    const char* state;         // "offered", "bound", "static" (bound, from the config)
    std::chrono::seconds expires_in;
  };
  // Every active lease (offered or bound), as of the last handle() or bind().
  std::vector<LeaseInfo> leases() const;
  // The address of the active lease named `name` (case-insensitive).
  std::optional<wire::Ipv4Addr> address_of(std::string_view name) const;
  // Changes whenever a lease is bound, renamed or let go.
  uint64_t generation() const { return generation_; }
  const DhcpServerConfig& config() const { return config_; }

 private:
  using ClientKey = std::vector<std::byte>;
  enum class State { kOffered, kBound, kFree };
  struct Lease {
    wire::MacAddr mac;
    std::string name;
    wire::Ipv4Addr addr;  // 0.0.0.0: none remembered
    State state = State::kFree;
    Clock::time_point expires{};
    Clock::time_point last_used{};
  };
  struct Client {
    ClientKey key;
    wire::MacAddr mac;
    std::string hostname;  // option 12, if a valid DNS label
  };
  // free_for(), or the client's own static address.
  bool available_to(wire::Ipv4Addr addr, const Client& client) const;
  std::optional<wire::Ipv4Addr> choose_address(const Client& client, std::optional<wire::Ipv4Addr> requested) const;
  // The name a lease of this client carries.
  std::string name_for(const Client& client) const;

  void expire(Clock::time_point now);
  bool poolable(wire::Ipv4Addr addr) const;
  bool free_for(wire::Ipv4Addr addr, const ClientKey& key) const;
  // The static lease of a MAC, or nullptr.
  const DhcpServerConfig::StaticLease* static_of(wire::MacAddr mac) const;
  bool is_static_address(wire::Ipv4Addr addr) const;


  Lease* record_for(const Client& client, Clock::time_point now);
  void hold(Lease& lease, const ClientKey& key, wire::Ipv4Addr addr, State state, Clock::time_point until);
  void release(Lease& lease);
  void set_name(Lease& lease, std::string name);

  std::optional<DhcpServerReply> on_discover(const wire::DhcpMessage& msg, const Client& client, Clock::time_point now);
  std::optional<DhcpServerReply> on_request(const wire::DhcpMessage& msg, const Client& client, Clock::time_point now);
  void on_decline(const wire::DhcpMessage& msg, const Client& client, Clock::time_point now);
  void on_release(const wire::DhcpMessage& msg, const Client& client);
  std::optional<DhcpServerReply> on_inform(const wire::DhcpMessage& msg, const Client& client);

  wire::DhcpMessage reply_to(const wire::DhcpMessage& msg, uint8_t type) const;
  void add_config_options(wire::DhcpMessage& reply, bool with_lease) const;
  DhcpServerReply address(const wire::DhcpMessage& request, const wire::DhcpMessage& reply,
                          const Client& client) const;
  std::optional<DhcpServerReply> ack(const wire::DhcpMessage& msg, const Client& client, wire::Ipv4Addr addr);
  std::optional<DhcpServerReply> nak(const wire::DhcpMessage& msg, const Client& client, std::string why);

  DhcpServerConfig config_;
  Stats stats_;
  std::map<ClientKey, Lease> leases_;
  std::map<wire::Ipv4Addr, ClientKey> holders_;  // address -> client, for kOffered and kBound records
  std::map<wire::Ipv4Addr, Clock::time_point> declined_;
  Clock::time_point last_now_{};
  uint64_t generation_ = 0;
};

}  // namespace slipway::gateway
