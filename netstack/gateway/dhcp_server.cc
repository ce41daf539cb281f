// DHCPv4 server state machine; the theory of operation is in dhcp_server.h.
//
// Invariant: holders_ has an entry for an address exactly when one record in
// leases_ is kOffered or kBound with that address, and the entry names that
// record's client.
#include "netstack/gateway/dhcp_server.h"

#include <cctype>

#include <algorithm>
#include <limits>
#include <utility>

namespace slipway::gateway {

using wire::DhcpMessage;
using wire::Ipv4Addr;
using wire::MacAddr;

namespace {

// RFC 2131 §2: a client must be able to receive 576-byte IP datagrams, so a
// reply that fits a 548-byte UDP payload is always deliverable.
constexpr size_t kUdpIpHeaders = 28;
constexpr size_t kMinDatagram = 576;

// A host name usable as NAME.internal: one DNS label of letters, digits and
// hyphens (RFC 1123), not starting or ending with a hyphen.
bool is_dns_label(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

std::vector<std::byte> client_key(const DhcpMessage& msg, MacAddr mac) {
  std::vector<std::byte> key;
  if (!msg.client_id.empty()) {
    key.push_back(std::byte{'c'});
    key.insert(key.end(), msg.client_id.begin(), msg.client_id.end());
  } else {
    key.push_back(std::byte{'m'});
    for (uint8_t o : mac.octets) key.push_back(std::byte{o});
  }
  return key;
}

}  // namespace

std::string validate(const DhcpServerConfig& c) {
  if (c.prefix < 1 || c.prefix > 30) return "DHCP: prefix must be between 1 and 30";
  if (!c.server_address.in_subnet(c.subnet, c.prefix)) return "DHCP: server address is outside the subnet";
  if (!c.pool_start.in_subnet(c.subnet, c.prefix) || !c.pool_end.in_subnet(c.subnet, c.prefix))
    return "DHCP: address pool is outside the subnet";
  if (c.pool_end < c.pool_start) return "DHCP: pool end is before pool start";
  if (c.max_leases == 0) return "DHCP: max_leases must be at least 1";
  if (c.lease_time.count() <= 0) return "DHCP: lease time must be positive";
  for (const auto& d : c.search_domains) {
    if (!wire::is_valid_domain_name(d)) return "DHCP: invalid search domain '" + d + "'";
  }
  for (size_t i = 0; i < c.statics.size(); ++i) {
    const auto& st = c.statics[i];
    const std::string what = "DHCP: static lease for " + st.mac.to_string() + ": ";
    if (st.mac.is_multicast() || st.mac.is_zero()) return what + "not a unicast MAC address";
    if (!st.address.in_subnet(c.subnet, c.prefix)) return what + st.address.to_string() + " is outside the subnet";
    uint32_t mask = wire::prefix_to_mask(c.prefix);
    uint32_t host = st.address.value & ~mask;
    if (host == 0 || host == ~mask || st.address == c.server_address || st.address == c.router ||
        std::find(c.dns.begin(), c.dns.end(), st.address) != c.dns.end())
      return what + st.address.to_string() + " is not a guest address";
    if (!st.name.empty() && !is_dns_label(st.name)) return what + "name '" + st.name + "' is not a DNS label";
    for (size_t j = 0; j < i; ++j) {
      if (c.statics[j].mac == st.mac) return what + "the MAC appears twice";
      if (c.statics[j].address == st.address) return what + st.address.to_string() + " is given twice";
      if (!st.name.empty() && c.statics[j].name == st.name) return what + "the name '" + st.name + "' is given twice";
    }
  }
  return {};
}

DhcpServer::DhcpServer(DhcpServerConfig config) : config_(std::move(config)) {}

std::optional<DhcpServerReply> DhcpServer::handle(wire::Bytes udp_payload, MacAddr src_mac,
                                                   Clock::time_point now) {
  last_now_ = now;
  auto msg = DhcpMessage::parse(udp_payload);
  if (!msg) {
    ++stats_.malformed;
    return std::nullopt;
  }
  if (msg->op != DhcpMessage::kBootRequest) return std::nullopt;
  if (!msg->giaddr.is_unspecified()) return std::nullopt;  // relayed: not on our link
  expire(now);

  Client client;
  client.mac = (msg->htype == 1 && msg->hlen == 6) ? msg->chaddr : src_mac;
  client.key = client_key(*msg, client.mac);
  if (is_dns_label(msg->hostname)) client.hostname = msg->hostname;

  switch (msg->message_type) {
    case wire::dhcpmsg::kDiscover:
      return on_discover(*msg, client, now);
    case wire::dhcpmsg::kRequest:
      return on_request(*msg, client, now);
    case wire::dhcpmsg::kDecline:
      on_decline(*msg, client, now);
      return std::nullopt;
    case wire::dhcpmsg::kRelease:
      on_release(*msg, client);
      return std::nullopt;
    case wire::dhcpmsg::kInform:
      return on_inform(*msg, client);
    default:
      ++stats_.malformed;  // BOOTP, or a server-to-client type sent to us
      return std::nullopt;
  }
}

const DhcpServerConfig::StaticLease* DhcpServer::static_of(MacAddr mac) const {
  for (const auto& st : config_.statics)
    if (st.mac == mac) return &st;
  return nullptr;
}

bool DhcpServer::is_static_address(Ipv4Addr addr) const {
  return std::any_of(config_.statics.begin(), config_.statics.end(),
                     [&](const auto& st) { return st.address == addr; });
}

bool DhcpServer::available_to(Ipv4Addr addr, const Client& client) const {
  if (const auto* st = static_of(client.mac); st != nullptr && st->address == addr) return true;
  return free_for(addr, client.key);
}

std::string DhcpServer::name_for(const Client& client) const {
  if (const auto* st = static_of(client.mac); st != nullptr && !st->name.empty()) return st->name;
  return client.hostname;
}

std::optional<Ipv4Addr> DhcpServer::bind(MacAddr mac, const std::string& name, Clock::time_point now) {
  last_now_ = now;
  expire(now);
  Client client;
  client.mac = mac;
  client.key = client_key(DhcpMessage{}, mac);
  if (is_dns_label(name)) client.hostname = name;
  Lease* lease = record_for(client, now);
  std::optional<Ipv4Addr> addr;
  if (lease) addr = choose_address(client, std::nullopt);
  if (!addr) {
    ++stats_.pool_exhausted;
    return std::nullopt;
  }
  hold(*lease, client.key, *addr, State::kBound, now + config_.lease_time);
  set_name(*lease, name_for(client));
  return addr;
}

void DhcpServer::set_name(Lease& lease, std::string name) {
  if (lease.name == name) return;
  lease.name = std::move(name);
  ++generation_;
}

std::vector<DhcpServer::LeaseInfo> DhcpServer::leases() const {
  std::vector<LeaseInfo> r;
  for (const auto& [key, lease] : leases_) {
    if (lease.state == State::kFree || lease.expires <= last_now_) continue;
    const char* state = lease.state == State::kOffered ? "offered" : static_of(lease.mac) ? "static" : "bound";
    r.push_back(LeaseInfo{lease.mac, lease.addr, lease.name, state,
                          std::chrono::duration_cast<std::chrono::seconds>(lease.expires - last_now_)});
  }
  return r;
}

std::optional<Ipv4Addr> DhcpServer::address_of(std::string_view name) const {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [key, lease] : leases_)
    if (lease.state == State::kBound && lease.expires > last_now_ && same(lease.name, name)) return lease.addr;
  for (const auto& st : config_.statics)
    if (same(st.name, name)) return st.address;
  return std::nullopt;
}

std::optional<Ipv4Addr> DhcpServer::lease_of(MacAddr mac) const {
  for (const auto& [key, lease] : leases_) {
    if (lease.mac == mac && lease.state == State::kBound && lease.expires > last_now_) return lease.addr;
  }
  return std::nullopt;
}

void DhcpServer::expire(Clock::time_point now) {
  for (auto& [key, lease] : leases_) {
    if (lease.state != State::kFree && lease.expires <= now) release(lease);
  }
  std::erase_if(declined_, [&](const auto& d) { return d.second <= now; });
}

bool DhcpServer::poolable(Ipv4Addr addr) const {
  const auto& c = config_;
  if (addr < c.pool_start || c.pool_end < addr || !addr.in_subnet(c.subnet, c.prefix)) return false;
  uint32_t mask = wire::prefix_to_mask(c.prefix);
  uint32_t host = addr.value & ~mask;
  if (host == 0 || host == ~mask) return false;  // network and broadcast addresses
  if (addr == c.server_address || addr == c.router) return false;
  if (std::find(c.dns.begin(), c.dns.end(), addr) != c.dns.end()) return false;
  if (std::find(c.reserved.begin(), c.reserved.end(), addr) != c.reserved.end()) return false;
  if (is_static_address(addr)) return false;  // only ever its owner's (available_to)
  return !declined_.contains(addr);
}

bool DhcpServer::free_for(Ipv4Addr addr, const ClientKey& key) const {
  if (!poolable(addr)) return false;
  auto holder = holders_.find(addr);
  return holder == holders_.end() || holder->second == key;
}

std::optional<Ipv4Addr> DhcpServer::choose_address(const Client& client, std::optional<Ipv4Addr> requested) const {
  if (const auto* st = static_of(client.mac)) return st->address;
  const ClientKey& key = client.key;
  if (auto it = leases_.find(key); it != leases_.end() && !it->second.addr.is_unspecified() &&
                                   free_for(it->second.addr, key))
    return it->second.addr;
  if (requested && free_for(*requested, key)) return requested;
  // First free address. At most max_leases addresses are held and at most
  // max_leases declined, so the scan stops early unless the pool is that full.
  for (uint64_t v = config_.pool_start.value; v <= config_.pool_end.value; ++v) {
    Ipv4Addr addr{static_cast<uint32_t>(v)};
    if (poolable(addr) && !holders_.contains(addr)) return addr;
  }
  return std::nullopt;
}

DhcpServer::Lease* DhcpServer::record_for(const Client& client, Clock::time_point now) {
  auto it = leases_.find(client.key);
  if (it == leases_.end()) {
    if (leases_.size() >= config_.max_leases) {
      auto victim = leases_.end();
      for (auto l = leases_.begin(); l != leases_.end(); ++l) {
        if (l->second.state == State::kFree &&
            (victim == leases_.end() || l->second.last_used < victim->second.last_used))
          victim = l;
      }
      if (victim == leases_.end()) return nullptr;
      leases_.erase(victim);
    }
    it = leases_.emplace(client.key, Lease{}).first;
  }
  it->second.mac = client.mac;
  it->second.last_used = now;
  return &it->second;
}

void DhcpServer::hold(Lease& lease, const ClientKey& key, Ipv4Addr addr, State state, Clock::time_point until) {
  if (state == State::kBound && !(lease.state == State::kBound && lease.addr == addr)) ++generation_;
  release(lease);
  lease.addr = addr;
  lease.state = state;
  lease.expires = until;
  holders_[addr] = key;
}

void DhcpServer::release(Lease& lease) {
  if (lease.state == State::kBound) ++generation_;
  if (lease.state != State::kFree) holders_.erase(lease.addr);
  lease.state = State::kFree;
}

std::optional<DhcpServerReply> DhcpServer::on_discover(const DhcpMessage& msg, const Client& client,
                                                        Clock::time_point now) {
  ++stats_.discovers;
  Lease* lease = record_for(client, now);
  std::optional<Ipv4Addr> addr;
  if (lease) addr = choose_address(client, msg.requested_ip);
  if (!addr) {
    ++stats_.pool_exhausted;
    return std::nullopt;
  }
  // A bound client that starts over keeps its lease; anyone else gets a hold.
  if (!(lease->state == State::kBound && lease->addr == *addr)) {
    hold(*lease, client.key, *addr, State::kOffered, now + kOfferHold);
  }
  DhcpMessage reply = reply_to(msg, wire::dhcpmsg::kOffer);
  reply.yiaddr = *addr;
  add_config_options(reply, true);
  ++stats_.offers;
  return address(msg, reply, client);
}

std::optional<DhcpServerReply> DhcpServer::on_request(const DhcpMessage& msg, const Client& client,
                                                       Clock::time_point now) {
  ++stats_.requests;
  Ipv4Addr addr;
  if (msg.server_id) {
    // SELECTING: the client answers an OFFER, ours or another server's.
    if (*msg.server_id != config_.server_address) {
      if (auto it = leases_.find(client.key); it != leases_.end() && it->second.state == State::kOffered)
        release(it->second);
      return std::nullopt;
    }
    addr = msg.requested_ip.value_or(msg.ciaddr);
  } else if (msg.requested_ip && msg.ciaddr.is_unspecified()) {
    // INIT-REBOOT: the client verifies a remembered address.
    addr = *msg.requested_ip;
    if (!addr.in_subnet(config_.subnet, config_.prefix)) return nak(msg, client, "wrong subnet");
  } else {
    // RENEWING (unicast) or REBINDING (broadcast): extend ciaddr.
    addr = msg.ciaddr;
  }
  if (addr.is_unspecified()) {
    ++stats_.malformed;
    return std::nullopt;
  }
  if (!available_to(addr, client)) return nak(msg, client, "address not available");
  if (const auto* st = static_of(client.mac); st != nullptr && st->address != addr)
    return nak(msg, client, "this client has another address");
  Lease* lease = record_for(client, now);
  if (!lease) {
    ++stats_.pool_exhausted;
    return std::nullopt;
  }
  hold(*lease, client.key, addr, State::kBound, now + config_.lease_time);
  set_name(*lease, name_for(client));
  return ack(msg, client, addr);
}

void DhcpServer::on_decline(const DhcpMessage& msg, const Client& client, Clock::time_point now) {
  ++stats_.declines;
  if (msg.server_id && *msg.server_id != config_.server_address) return;
  if (!msg.requested_ip) return;
  Ipv4Addr addr = *msg.requested_ip;
  // A client may only decline an address that is free or its own.
  if (!free_for(addr, client.key)) return;
  if (auto it = leases_.find(client.key); it != leases_.end() && it->second.addr == addr) {
    release(it->second);
    it->second.addr = Ipv4Addr{};  // do not offer it to this client again
  }
  if (declined_.size() < config_.max_leases) declined_[addr] = now + kDeclineHold;
}

void DhcpServer::on_release(const DhcpMessage& msg, const Client& client) {
  ++stats_.releases;
  if (msg.server_id && *msg.server_id != config_.server_address) return;
  auto it = leases_.find(client.key);
  if (it != leases_.end() && it->second.state != State::kFree && it->second.addr == msg.ciaddr)
    release(it->second);
}

std::optional<DhcpServerReply> DhcpServer::on_inform(const DhcpMessage& msg, const Client& client) {
  ++stats_.informs;
  DhcpMessage reply = reply_to(msg, wire::dhcpmsg::kAck);
  reply.ciaddr = msg.ciaddr;
  add_config_options(reply, false);
  ++stats_.acks;
  return address(msg, reply, client);
}

DhcpMessage DhcpServer::reply_to(const DhcpMessage& msg, uint8_t type) const {
  DhcpMessage r;
  r.op = DhcpMessage::kBootReply;
  r.htype = msg.htype;
  r.hlen = msg.hlen;
  r.xid = msg.xid;
  r.flags = msg.flags;
  r.giaddr = msg.giaddr;
  r.chaddr = msg.chaddr;
  r.message_type = type;
  r.server_id = config_.server_address;
  r.client_id = msg.client_id;  // RFC 6842
  return r;
}

void DhcpServer::add_config_options(DhcpMessage& reply, bool with_lease) const {
  if (with_lease) {
    auto secs = static_cast<uint64_t>(config_.lease_time.count());
    uint32_t lease = static_cast<uint32_t>(std::min<uint64_t>(secs, std::numeric_limits<uint32_t>::max()));
    reply.lease_time = lease;
    reply.renewal_time = lease / 2;
    reply.rebinding_time = static_cast<uint32_t>(uint64_t{lease} * 7 / 8);
  }
  reply.subnet_mask = Ipv4Addr{wire::prefix_to_mask(config_.prefix)};
  reply.router = config_.router;
  reply.dns_servers = config_.dns;
  reply.interface_mtu = config_.mtu;
  reply.domain_name = config_.domain_name;
  reply.domain_search = config_.search_domains;
  if (!config_.boot_file.empty()) {
    reply.siaddr = config_.next_server;
    reply.file = config_.boot_file;
    reply.tftp_server_name = config_.next_server.to_string();
    reply.bootfile_name = config_.boot_file;
  }
}

DhcpServerReply DhcpServer::address(const DhcpMessage& request, const DhcpMessage& reply,
                                    const Client& client) const {
  DhcpServerReply out;
  // Keep the reply within what the client accepts, dropping the least
  // essential options first.
  size_t limit = kMinDatagram;
  if (request.max_message_size) limit = std::max<size_t>(limit, *request.max_message_size);
  limit -= kUdpIpHeaders;
  out.payload = reply.emit();
  if (out.payload.size() > limit && !reply.domain_search.empty()) {
    DhcpMessage smaller = reply;
    smaller.domain_search.clear();
    out.payload = smaller.emit();
    if (out.payload.size() > limit && !smaller.domain_name.empty()) {
      smaller.domain_name.clear();
      out.payload = smaller.emit();
    }
  }

  bool broadcast = reply.message_type == wire::dhcpmsg::kNak ||
                   (request.ciaddr.is_unspecified() &&
                    ((request.flags & DhcpMessage::kFlagBroadcast) != 0 || reply.yiaddr.is_unspecified()));
  if (broadcast) {
    out.dst_ip = Ipv4Addr{0xffffffffu};
    out.dst_mac = MacAddr::broadcast();
  } else {
    out.dst_ip = request.ciaddr.is_unspecified() ? reply.yiaddr : request.ciaddr;
    out.dst_mac = client.mac;
  }
  return out;
}

std::optional<DhcpServerReply> DhcpServer::ack(const DhcpMessage& msg, const Client& client, Ipv4Addr addr) {
  DhcpMessage reply = reply_to(msg, wire::dhcpmsg::kAck);
  reply.ciaddr = msg.ciaddr;
  reply.yiaddr = addr;
  add_config_options(reply, true);
  ++stats_.acks;
  return address(msg, reply, client);
}

std::optional<DhcpServerReply> DhcpServer::nak(const DhcpMessage& msg, const Client& client, std::string why) {
  DhcpMessage reply = reply_to(msg, wire::dhcpmsg::kNak);
  reply.message = std::move(why);
  ++stats_.naks;
  return address(msg, reply, client);
}

}  // namespace slipway::gateway
