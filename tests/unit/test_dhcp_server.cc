// DHCP server scenarios, with time driven by the test.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "netstack/gateway/dhcp_server.h"
#include "netstack/wire/dhcp.h"

using namespace slipway;
using namespace std::chrono_literals;
using gateway::Clock;
using gateway::DhcpServer;
using gateway::DhcpServerConfig;
using gateway::DhcpServerReply;
using wire::DhcpMessage;
using wire::Ipv4Addr;
using wire::MacAddr;
namespace dhcpmsg = wire::dhcpmsg;

namespace {

const MacAddr kMacA{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0a}};
const MacAddr kMacB{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0b}};
const MacAddr kMacC{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0c}};
const Ipv4Addr kServer{10, 0, 2, 2};
const Ipv4Addr kBroadcast{255, 255, 255, 255};
const Ipv4Addr k15{10, 0, 2, 15};
const Ipv4Addr k16{10, 0, 2, 16};
const Clock::time_point t0 = Clock::time_point{} + 1000h;

DhcpMessage request_of(MacAddr mac, uint8_t type, bool broadcast = false) {
  DhcpMessage m;
  m.op = DhcpMessage::kBootRequest;
  m.xid = 0x1000u + mac.octets[5];
  m.flags = broadcast ? DhcpMessage::kFlagBroadcast : 0;
  m.chaddr = mac;
  m.message_type = type;
  return m;
}

// A test harness: one server, one clock.
struct Harness {
  DhcpServer server;
  Clock::time_point now = t0;

  explicit Harness(DhcpServerConfig config = {}) : server(std::move(config)) {}

  // Sends `m`; returns the parsed reply (checked to be a well-formed reply to m).
  std::optional<std::pair<DhcpMessage, DhcpServerReply>> send(const DhcpMessage& m) {
    auto bytes = m.emit();
    auto reply = server.handle(bytes, m.chaddr, now);
    if (!reply) return std::nullopt;
    REQUIRE(reply->payload.size() >= 300);
    auto parsed = DhcpMessage::parse(reply->payload);
    REQUIRE(parsed);
    REQUIRE(parsed->op == DhcpMessage::kBootReply);
    REQUIRE(parsed->xid == m.xid);
    REQUIRE(parsed->chaddr == m.chaddr);
    REQUIRE(parsed->server_id == kServer);
    REQUIRE(parsed->client_id == m.client_id);
    return std::make_pair(*parsed, *reply);
  }

  std::optional<Ipv4Addr> discover(MacAddr mac) {
    auto r = send(request_of(mac, dhcpmsg::kDiscover));
    if (!r) return std::nullopt;
    REQUIRE(r->first.message_type == dhcpmsg::kOffer);
    return r->first.yiaddr;
  }

  // Full DORA; returns the ACKed address.
  std::optional<Ipv4Addr> dora(MacAddr mac) {
    auto offered = discover(mac);
    if (!offered) return std::nullopt;
    auto req = request_of(mac, dhcpmsg::kRequest);
    req.server_id = kServer;
    req.requested_ip = *offered;
    auto r = send(req);
    REQUIRE(r);
    REQUIRE(r->first.message_type == dhcpmsg::kAck);
    REQUIRE(r->first.yiaddr == *offered);
    return offered;
  }
};

}  // namespace

TEST_CASE("DORA gives the first client 10.0.2.15 with the configured options", "[dhcp]") {
  DhcpServerConfig cfg;
  cfg.domain_name = "slipway.internal";
  cfg.search_domains = {"slipway.internal", "example.org"};
  Harness h(cfg);

  auto discover = request_of(kMacA, dhcpmsg::kDiscover, /*broadcast=*/true);
  discover.parameter_request_list = {1, 3, 6, 15, 26, 119};
  auto offer = h.send(discover);
  REQUIRE(offer);
  const DhcpMessage& o = offer->first;
  REQUIRE(o.message_type == dhcpmsg::kOffer);
  REQUIRE(o.yiaddr == k15);
  REQUIRE(o.ciaddr.is_unspecified());
  REQUIRE(o.lease_time == 86400u);
  REQUIRE(o.renewal_time == 43200u);
  REQUIRE(o.rebinding_time == 75600u);
  REQUIRE(o.subnet_mask == Ipv4Addr{255, 255, 255, 0});
  REQUIRE(o.router == Ipv4Addr{10, 0, 2, 2});
  REQUIRE(o.dns_servers == std::vector<Ipv4Addr>{Ipv4Addr{10, 0, 2, 3}});
  REQUIRE(o.interface_mtu == 65520);
  REQUIRE(o.domain_name == "slipway.internal");
  REQUIRE(o.domain_search == cfg.search_domains);
  REQUIRE(offer->second.dst_ip == kBroadcast);
  REQUIRE(offer->second.dst_mac == MacAddr::broadcast());
  REQUIRE_FALSE(h.server.lease_of(kMacA));  // an offer is not a lease

  auto req = request_of(kMacA, dhcpmsg::kRequest, true);
  req.server_id = kServer;
  req.requested_ip = k15;
  auto ack = h.send(req);
  REQUIRE(ack);
  REQUIRE(ack->first.message_type == dhcpmsg::kAck);
  REQUIRE(ack->first.yiaddr == k15);
  REQUIRE(ack->first.lease_time == 86400u);
  REQUIRE(h.server.lease_of(kMacA) == k15);

  const auto& s = h.server.stats();
  REQUIRE(s.discovers == 1);
  REQUIRE(s.offers == 1);
  REQUIRE(s.requests == 1);
  REQUIRE(s.acks == 1);
  REQUIRE(s.naks == 0);
  REQUIRE(s.malformed == 0);
}

TEST_CASE("reply destination follows RFC 2131 4.1", "[dhcp]") {
  Harness h;
  SECTION("no broadcast flag: unicast to yiaddr at chaddr") {
    auto offer = h.send(request_of(kMacA, dhcpmsg::kDiscover, false));
    REQUIRE(offer);
    REQUIRE(offer->second.dst_ip == k15);
    REQUIRE(offer->second.dst_mac == kMacA);
  }
  SECTION("broadcast flag: broadcast") {
    auto offer = h.send(request_of(kMacA, dhcpmsg::kDiscover, true));
    REQUIRE(offer);
    REQUIRE(offer->second.dst_ip == kBroadcast);
    REQUIRE(offer->second.dst_mac == MacAddr::broadcast());
  }
  SECTION("ciaddr set: unicast to ciaddr, even with the broadcast flag") {
    REQUIRE(h.dora(kMacA) == k15);
    auto renew = request_of(kMacA, dhcpmsg::kRequest, true);
    renew.ciaddr = k15;
    auto ack = h.send(renew);
    REQUIRE(ack);
    REQUIRE(ack->first.message_type == dhcpmsg::kAck);
    REQUIRE(ack->first.ciaddr == k15);
    REQUIRE(ack->second.dst_ip == k15);
    REQUIRE(ack->second.dst_mac == kMacA);
  }
  SECTION("NAK: always broadcast") {
    auto reboot = request_of(kMacA, dhcpmsg::kRequest, false);
    reboot.requested_ip = Ipv4Addr{192, 168, 1, 50};
    auto nak = h.send(reboot);
    REQUIRE(nak);
    REQUIRE(nak->first.message_type == dhcpmsg::kNak);
    REQUIRE(nak->first.yiaddr.is_unspecified());
    REQUIRE_FALSE(nak->first.lease_time);
    REQUIRE(nak->second.dst_ip == kBroadcast);
    REQUIRE(nak->second.dst_mac == MacAddr::broadcast());
  }
}

TEST_CASE("renewing extends the lease", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  h.now += 12h;
  auto renew = request_of(kMacA, dhcpmsg::kRequest);
  renew.ciaddr = k15;
  auto ack = h.send(renew);
  REQUIRE(ack);
  REQUIRE(ack->first.message_type == dhcpmsg::kAck);
  REQUIRE(ack->first.yiaddr == k15);
  // The original lease would have ended at t0 + 24 h; the renewed one at 36 h.
  h.now = t0 + 30h;
  REQUIRE(h.discover(kMacB) == k16);
  REQUIRE(h.server.lease_of(kMacA) == k15);
}

TEST_CASE("INIT-REBOOT", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  auto reboot = [&](MacAddr mac, Ipv4Addr addr) {
    auto m = request_of(mac, dhcpmsg::kRequest);
    m.requested_ip = addr;
    auto r = h.send(m);
    REQUIRE(r);
    return r->first;
  };
  SECTION("with its own address: ACK") {
    auto r = reboot(kMacA, k15);
    REQUIRE(r.message_type == dhcpmsg::kAck);
    REQUIRE(r.yiaddr == k15);
  }
  SECTION("with an address of another subnet: NAK") {
    REQUIRE(reboot(kMacB, Ipv4Addr{192, 168, 0, 20}).message_type == dhcpmsg::kNak);
    REQUIRE(h.server.stats().naks == 1);
  }
  SECTION("with an address another client holds: NAK") {
    REQUIRE(reboot(kMacB, k15).message_type == dhcpmsg::kNak);
    REQUIRE(h.server.lease_of(kMacA) == k15);
    REQUIRE_FALSE(h.server.lease_of(kMacB));
  }
  SECTION("with an address outside the pool: NAK") {
    REQUIRE(reboot(kMacB, Ipv4Addr{10, 0, 2, 3}).message_type == dhcpmsg::kNak);
  }
  SECTION("with a free pool address (e.g. after a restart): ACK") {
    auto r = reboot(kMacB, Ipv4Addr{10, 0, 2, 77});
    REQUIRE(r.message_type == dhcpmsg::kAck);
    REQUIRE(h.server.lease_of(kMacB) == Ipv4Addr{10, 0, 2, 77});
  }
}

TEST_CASE("two clients get different addresses; the same client the same one", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  REQUIRE(h.dora(kMacB) == k16);
  REQUIRE(h.discover(kMacA) == k15);  // a bound client restarting DORA
  REQUIRE(h.discover(kMacB) == k16);
  REQUIRE(h.server.lease_of(kMacA) == k15);
  REQUIRE(h.server.lease_of(kMacB) == k16);
}

TEST_CASE("clients are identified by client id before chaddr", "[dhcp]") {
  Harness h;
  auto d1 = request_of(kMacA, dhcpmsg::kDiscover);
  d1.client_id = {std::byte{0xff}, std::byte{1}, std::byte{2}, std::byte{3}};
  auto o1 = h.send(d1);
  REQUIRE(o1);
  REQUIRE(o1->first.yiaddr == k15);
  // Same client id, new NIC: same address.
  auto d2 = request_of(kMacB, dhcpmsg::kDiscover);
  d2.client_id = d1.client_id;
  auto o2 = h.send(d2);
  REQUIRE(o2);
  REQUIRE(o2->first.yiaddr == k15);
  // Same MAC, other client id: another client.
  auto d3 = request_of(kMacA, dhcpmsg::kDiscover);
  d3.client_id = {std::byte{0xff}, std::byte{9}};
  auto o3 = h.send(d3);
  REQUIRE(o3);
  REQUIRE(o3->first.yiaddr == k16);
}

TEST_CASE("a free requested address is preferred", "[dhcp]") {
  Harness h;
  auto d = request_of(kMacA, dhcpmsg::kDiscover);
  d.requested_ip = Ipv4Addr{10, 0, 2, 100};
  REQUIRE(h.send(d)->first.yiaddr == Ipv4Addr{10, 0, 2, 100});
  d = request_of(kMacB, dhcpmsg::kDiscover);
  d.requested_ip = Ipv4Addr{10, 0, 2, 100};  // taken (offered to A)
  REQUIRE(h.send(d)->first.yiaddr == k15);
  d = request_of(kMacC, dhcpmsg::kDiscover);
  d.requested_ip = Ipv4Addr{10, 0, 2, 3};  // DNS address, not in the pool
  REQUIRE(h.send(d)->first.yiaddr == k16);
}

TEST_CASE("release frees the address and the client gets it back", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  auto rel = request_of(kMacA, dhcpmsg::kRelease);
  rel.ciaddr = k15;
  rel.server_id = kServer;
  REQUIRE_FALSE(h.send(rel));
  REQUIRE(h.server.stats().releases == 1);
  REQUIRE_FALSE(h.server.lease_of(kMacA));
  REQUIRE(h.dora(kMacA) == k15);

  // Released addresses go to whoever asks first.
  REQUIRE_FALSE(h.send(rel));
  REQUIRE(h.dora(kMacB) == k15);
  REQUIRE(h.dora(kMacA) == k16);
}

TEST_CASE("leases expire and their addresses are reused", "[dhcp]") {
  DhcpServerConfig cfg;
  cfg.lease_time = 1h;
  Harness h(cfg);
  REQUIRE(h.dora(kMacA) == k15);
  h.now += 59min;
  REQUIRE(h.discover(kMacB) == k16);
  REQUIRE(h.server.lease_of(kMacA) == k15);
  h.now = t0 + 1h + 1s;
  REQUIRE(h.discover(kMacC) == k15);
  REQUIRE_FALSE(h.server.lease_of(kMacA));
  // A renews too late: its address is held by C's offer.
  auto renew = request_of(kMacA, dhcpmsg::kRequest);
  renew.ciaddr = k15;
  REQUIRE(h.send(renew)->first.message_type == dhcpmsg::kNak);
}

TEST_CASE("offers expire after a minute", "[dhcp]") {
  Harness h;
  REQUIRE(h.discover(kMacA) == k15);
  h.now += 30s;
  REQUIRE(h.discover(kMacB) == k16);  // A's offer still holds 15
  h.now = t0 + 61s;
  REQUIRE(h.discover(kMacC) == k15);  // A's offer lapsed
  // A, late, asks for 15 again: taken, so NAK.
  auto req = request_of(kMacA, dhcpmsg::kRequest);
  req.server_id = kServer;
  req.requested_ip = k15;
  REQUIRE(h.send(req)->first.message_type == dhcpmsg::kNak);
}

TEST_CASE("a late REQUEST for a lapsed but still free offer is ACKed", "[dhcp]") {
  Harness h;
  REQUIRE(h.discover(kMacA) == k15);
  h.now += 5min;
  auto req = request_of(kMacA, dhcpmsg::kRequest);
  req.server_id = kServer;
  req.requested_ip = k15;
  REQUIRE(h.send(req)->first.message_type == dhcpmsg::kAck);
}

TEST_CASE("a REQUEST for another server releases our offer silently", "[dhcp]") {
  Harness h;
  REQUIRE(h.discover(kMacA) == k15);
  auto req = request_of(kMacA, dhcpmsg::kRequest);
  req.server_id = Ipv4Addr{10, 0, 2, 200};
  req.requested_ip = Ipv4Addr{10, 0, 2, 201};
  REQUIRE_FALSE(h.send(req));
  REQUIRE(h.discover(kMacB) == k15);
}

TEST_CASE("a declined address is kept out of the pool for a while", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  auto dec = request_of(kMacA, dhcpmsg::kDecline);
  dec.requested_ip = k15;
  dec.server_id = kServer;
  REQUIRE_FALSE(h.send(dec));
  REQUIRE(h.server.stats().declines == 1);
  REQUIRE_FALSE(h.server.lease_of(kMacA));
  REQUIRE(h.dora(kMacA) == k16);
  REQUIRE(h.discover(kMacB) == Ipv4Addr{10, 0, 2, 17});
  h.now += DhcpServer::kDeclineHold + 1s;
  REQUIRE(h.discover(kMacC) == k15);
}

TEST_CASE("a client cannot decline another client's address", "[dhcp]") {
  Harness h;
  REQUIRE(h.dora(kMacA) == k15);
  auto dec = request_of(kMacB, dhcpmsg::kDecline);
  dec.requested_ip = k15;
  REQUIRE_FALSE(h.send(dec));
  REQUIRE(h.server.lease_of(kMacA) == k15);
  auto renew = request_of(kMacA, dhcpmsg::kRequest);
  renew.ciaddr = k15;
  REQUIRE(h.send(renew)->first.message_type == dhcpmsg::kAck);
}

TEST_CASE("pool exhaustion is counted and unanswered", "[dhcp]") {
  DhcpServerConfig cfg;
  cfg.pool_end = k16;
  Harness h(cfg);
  REQUIRE(h.dora(kMacA) == k15);
  REQUIRE(h.dora(kMacB) == k16);
  REQUIRE_FALSE(h.discover(kMacC));
  REQUIRE(h.server.stats().pool_exhausted == 1);
  // Once A releases, C fits.
  auto rel = request_of(kMacA, dhcpmsg::kRelease);
  rel.ciaddr = k15;
  h.send(rel);
  REQUIRE(h.discover(kMacC) == k15);
}

TEST_CASE("max_leases bounds the client table", "[dhcp]") {
  DhcpServerConfig cfg;
  cfg.max_leases = 2;
  Harness h(cfg);
  REQUIRE(h.dora(kMacA) == k15);
  REQUIRE(h.dora(kMacB) == k16);
  REQUIRE_FALSE(h.discover(kMacC));
  REQUIRE(h.server.stats().pool_exhausted == 1);
  auto rel = request_of(kMacA, dhcpmsg::kRelease);
  rel.ciaddr = k15;
  h.send(rel);
  REQUIRE(h.dora(kMacC) == k15);  // A's remembered record was evicted
}

TEST_CASE("reserved, server, router and DNS addresses are never leased", "[dhcp]") {
  DhcpServerConfig cfg;
  cfg.pool_start = Ipv4Addr{10, 0, 2, 1};
  cfg.pool_end = Ipv4Addr{10, 0, 2, 6};
  cfg.reserved = {Ipv4Addr{10, 0, 2, 4}};
  Harness h(cfg);
  REQUIRE(h.discover(kMacA) == Ipv4Addr{10, 0, 2, 1});
  REQUIRE(h.discover(kMacB) == Ipv4Addr{10, 0, 2, 5});  // .2 server/router, .3 DNS, .4 reserved
}

TEST_CASE("INFORM gets configuration without a lease", "[dhcp]") {
  Harness h;
  auto inform = request_of(kMacA, dhcpmsg::kInform);
  inform.ciaddr = Ipv4Addr{10, 0, 2, 50};
  auto r = h.send(inform);
  REQUIRE(r);
  REQUIRE(r->first.message_type == dhcpmsg::kAck);
  REQUIRE(r->first.yiaddr.is_unspecified());
  REQUIRE(r->first.ciaddr == Ipv4Addr{10, 0, 2, 50});
  REQUIRE_FALSE(r->first.lease_time);
  REQUIRE_FALSE(r->first.renewal_time);
  REQUIRE_FALSE(r->first.rebinding_time);
  REQUIRE(r->first.subnet_mask == Ipv4Addr{255, 255, 255, 0});
  REQUIRE(r->first.router == kServer);
  REQUIRE(r->second.dst_ip == Ipv4Addr{10, 0, 2, 50});
  REQUIRE(r->second.dst_mac == kMacA);
  REQUIRE(h.server.stats().informs == 1);
  REQUIRE_FALSE(h.server.lease_of(kMacA));
}

TEST_CASE("malformed and foreign input is dropped and counted", "[dhcp]") {
  Harness h;
  std::vector<std::byte> garbage(100, std::byte{0x5a});
  REQUIRE_FALSE(h.server.handle(garbage, kMacA, h.now));
  REQUIRE_FALSE(h.server.handle({}, kMacA, h.now));
  auto bytes = request_of(kMacA, dhcpmsg::kDiscover).emit();
  bytes[236] = std::byte{0};  // cookie
  REQUIRE_FALSE(h.server.handle(bytes, kMacA, h.now));
  REQUIRE(h.server.stats().malformed == 3);

  // Every truncation of a valid DISCOVER is either a valid message or dropped.
  auto good = request_of(kMacA, dhcpmsg::kDiscover).emit();
  for (size_t n = 0; n < 260; ++n) h.server.handle(std::span{good}.first(n), kMacA, h.now);

  Harness h2;
  auto bootp = request_of(kMacA, 0);  // no message type
  REQUIRE_FALSE(h2.send(bootp));
  auto offer = request_of(kMacA, dhcpmsg::kOffer);  // a server message sent to us
  REQUIRE_FALSE(h2.send(offer));
  REQUIRE(h2.server.stats().malformed == 2);
  auto reply = request_of(kMacA, dhcpmsg::kDiscover);
  reply.op = DhcpMessage::kBootReply;  // not a request: ignored, not counted
  REQUIRE_FALSE(h2.send(reply));
  auto relayed = request_of(kMacA, dhcpmsg::kDiscover);
  relayed.giaddr = Ipv4Addr{10, 9, 9, 9};
  REQUIRE_FALSE(h2.send(relayed));
  REQUIRE(h2.server.stats().malformed == 2);
  REQUIRE(h2.server.stats().discovers == 0);
  auto no_addr = request_of(kMacA, dhcpmsg::kRequest);  // no server id, requested ip or ciaddr
  REQUIRE_FALSE(h2.send(no_addr));
  REQUIRE(h2.server.stats().malformed == 3);
}

TEST_CASE("replies stay within the client's maximum message size", "[dhcp]") {
  DhcpServerConfig cfg;
  for (int i = 0; i < 20; ++i) cfg.search_domains.push_back("a-long-search-domain-" + std::to_string(i) + ".zone" + std::to_string(i));
  Harness h(cfg);
  auto small = h.send(request_of(kMacA, dhcpmsg::kDiscover));
  REQUIRE(small);
  REQUIRE(small->second.payload.size() <= 576 - 28);
  REQUIRE(small->first.domain_search.empty());
  auto d = request_of(kMacB, dhcpmsg::kDiscover);
  d.max_message_size = 1500;
  auto big = h.send(d);
  REQUIRE(big);
  REQUIRE(big->first.domain_search == cfg.search_domains);
}

TEST_CASE("config validation", "[dhcp]") {
  DhcpServerConfig cfg;
  REQUIRE(gateway::validate(cfg).empty());
  cfg.pool_end = Ipv4Addr{10, 0, 3, 1};
  REQUIRE_FALSE(gateway::validate(cfg).empty());
  cfg = {};
  cfg.pool_start = Ipv4Addr{10, 0, 2, 200};
  cfg.pool_end = Ipv4Addr{10, 0, 2, 100};
  REQUIRE_FALSE(gateway::validate(cfg).empty());
  cfg = {};
  cfg.search_domains = {"bad..name"};
  REQUIRE_FALSE(gateway::validate(cfg).empty());
}

TEST_CASE("dhcp: static leases, names from the config or the client, bind() and the lease list", "[dhcp]") {
  DhcpServerConfig c;
  const Ipv4Addr k50{10, 0, 2, 50};
  c.statics.push_back({kMacB, k50, "web"});
  Harness h(c);
  // B always gets its static address, named as configured; the pool never
  // gives it to anyone else.
  REQUIRE(h.dora(kMacB) == k50);
  REQUIRE(h.dora(kMacA) == k15);
  // A client's own host name (option 12) names its lease.
  auto d = request_of(kMacC, dhcpmsg::kDiscover);
  d.hostname = "db";
  auto offer = h.send(d);
  REQUIRE(offer);
  auto r = request_of(kMacC, dhcpmsg::kRequest);
  r.server_id = kServer;
  r.requested_ip = offer->first.yiaddr;
  r.hostname = "db";
  REQUIRE(h.send(r));
  CHECK(h.server.address_of("web") == k50);
  CHECK(h.server.address_of("WEB") == k50);
  CHECK(h.server.address_of("db") == k16);
  CHECK_FALSE(h.server.address_of("nobody"));
  // A static address asked for by someone else is refused.
  auto steal = request_of(kMacA, dhcpmsg::kRequest);
  steal.requested_ip = k50;
  auto nak = h.send(steal);
  REQUIRE(nak);
  CHECK(nak->first.message_type == dhcpmsg::kNak);
  // bind(): a lease without a DHCP exchange, kept on a second call.
  const MacAddr kMacD{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0d}};
  auto bound = h.server.bind(kMacD, "ns1", h.now);
  REQUIRE(bound);
  CHECK(*bound == Ipv4Addr{10, 0, 2, 17});
  CHECK(h.server.bind(kMacD, "ns1", h.now + 10s) == bound);
  CHECK(h.server.address_of("ns1") == bound);
  auto leases = h.server.leases();
  CHECK(leases.size() == 4);
  size_t statics = 0;
  for (const auto& l : leases) statics += std::string(l.state) == "static";
  CHECK(statics == 1);
}

TEST_CASE("dhcp: static leases are checked at start-up", "[dhcp]") {
  DhcpServerConfig c;
  c.statics.push_back({kMacA, Ipv4Addr{10, 0, 3, 9}, "x"});
  CHECK(gateway::validate(c).find("outside the subnet") != std::string::npos);
  c.statics = {{kMacA, kServer, ""}};
  CHECK(gateway::validate(c).find("not a guest address") != std::string::npos);
  c.statics = {{kMacA, k15, "a"}, {kMacB, k15, "b"}};
  CHECK(gateway::validate(c).find("given twice") != std::string::npos);
  c.statics = {{kMacA, k15, "no_underscores"}};
  CHECK(gateway::validate(c).find("not a DNS label") != std::string::npos);
  c.statics = {{kMacA, k15, "fine"}, {kMacB, k16, ""}};
  CHECK(gateway::validate(c).empty());
}
