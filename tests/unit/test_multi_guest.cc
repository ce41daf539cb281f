// Several guests on one Stack (its internal vswitch): distinct DHCP leases
// named by the guests' host names, a static lease, each guest's
// NAME.internal answered by the DNS proxy, frames between guests through the
// switch, and a published port that names its guest.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "dns-proxy/message.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"
#include "sockets.h"

using namespace slipway;
using wire::Ipv4Addr;
using wire::MacAddr;

namespace {

const Ipv4Addr kGw{10, 0, 2, 2};
const Ipv4Addr kDns{10, 0, 2, 3};

// One guest: the test's end of a memory link on the stack's switch.
struct Guest {
  MacAddr mac;
  std::unique_ptr<link::MemoryPort> mine;
  link::MemoryPort* theirs = nullptr;
  std::vector<std::vector<std::byte>> got;

  Guest(stack::Stack& st, const char* name, MacAddr m) : mac(m) {
    auto [a, b] = link::MemoryPort::make_pair();
    mine = std::move(a);
    theirs = b.get();
    vswitch::PortOptions o;
    o.name = name;
    st.add_guest(std::move(b), o);
    mine->set_sink([this](link::Frame f) { got.emplace_back(f.begin(), f.end()); });
  }
  void send(const std::vector<std::byte>& f) {
    mine->send(f);
    theirs->poll();
  }
  void pump() {
    theirs->poll();
    mine->poll();
  }
  // The first UDP datagram received for `port`, with its IP packet's source.
  std::optional<std::pair<Ipv4Addr, std::vector<std::byte>>> udp_to(uint16_t port) {
    for (const auto& f : got) {
      auto eth = wire::EthernetFrame::parse(f);
      if (!eth || eth->ethertype() != wire::ethertype::kIpv4) continue;
      auto ip = wire::Ipv4Packet::parse(eth->payload());
      if (!ip || ip->protocol() != wire::ipproto::kUdp) continue;
      auto udp = wire::UdpDatagram::parse(ip->payload());
      if (udp && udp->dst_port() == port)
        return std::make_pair(ip->src(), std::vector<std::byte>(udp->payload().begin(), udp->payload().end()));
    }
    return std::nullopt;
  }
};

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<stack::Stack> st;
  explicit Rig(stack::StackConfig c) {
    uv_loop_init(&loop);
    st = std::make_unique<stack::Stack>(&loop, std::move(c));
  }
  ~Rig() {
    st.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  template <class Pred>
  bool run_until(Pred pred, std::vector<Guest*> guests) {
    for (int i = 0; i < 1000 && !pred(); ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      for (auto* g : guests) g->pump();
      if (!pred()) usleep(2000);
    }
    return pred();
  }
};

// DISCOVER then REQUEST with a host name; returns the ACKed address.
std::optional<Ipv4Addr> lease(Guest& g, const char* hostname) {
  auto dhcp = [&](uint8_t type, std::optional<Ipv4Addr> requested) {
    wire::DhcpMessage d;
    d.xid = 0x4000u + g.mac.octets[5];
    d.chaddr = g.mac;
    d.message_type = type;
    d.hostname = hostname;
    d.flags = wire::DhcpMessage::kFlagBroadcast;
    if (requested) {
      d.requested_ip = requested;
      d.server_id = kGw;
    }
    g.pump();  // other guests' broadcast answers, flooded here earlier
    g.got.clear();
    g.send(wire::build_ipv4_udp_frame(MacAddr::broadcast(), g.mac, Ipv4Addr{}, 68, Ipv4Addr{0xffffffffu}, 67,
                                      d.emit()));
    g.pump();
    auto reply = g.udp_to(68);
    if (!reply) return std::optional<wire::DhcpMessage>{};
    return wire::DhcpMessage::parse(reply->second);
  };
  auto offer = dhcp(wire::dhcpmsg::kDiscover, std::nullopt);
  if (!offer || offer->message_type != wire::dhcpmsg::kOffer) return std::nullopt;
  auto ack = dhcp(wire::dhcpmsg::kRequest, offer->yiaddr);
  if (!ack || ack->message_type != wire::dhcpmsg::kAck) return std::nullopt;
  return ack->yiaddr;
}

std::vector<std::byte> dns_query(const std::string& name, uint16_t id) {
  dns::Query q;
  q.header.id = id;
  q.header.flags = dns::kFlagRd;
  q.header.qdcount = 1;
  q.question = dns::Question{*dns::name_from_text(name), dns::rrtype::kA, dns::kClassIn};
  auto msg = dns::build_answer(q, dns::Rcode::kNoError, false);
  wire::store16(msg, 2, dns::kFlagRd);
  return msg;
}

}  // namespace

TEST_CASE("several guests share one gateway through the stack's switch", "[stack][vswitch]") {
  stack::StackConfig c;
  c.gateway.dhcp_statics.push_back({MacAddr{{0x52, 0x54, 0x00, 0, 0, 0x99}}, Ipv4Addr{10, 0, 2, 99}, "printer"});
  c.dns_config.upstreams.push_back(*dns::parse_upstream("127.0.0.1:9"));  // never asked: local names only
  Rig r(c);
  Guest a(*r.st, "a", MacAddr{{0x52, 0x54, 0x00, 0, 0, 0x0a}});
  Guest b(*r.st, "b", MacAddr{{0x52, 0x54, 0x00, 0, 0, 0x0b}});

  auto la = lease(a, "alpha");
  auto lb = lease(b, "beta");
  REQUIRE(la);
  REQUIRE(lb);
  CHECK(*la == Ipv4Addr{10, 0, 2, 15});
  CHECK(*lb == Ipv4Addr{10, 0, 2, 16});

  // A broadcast from a reaches b (through the switch), not back to a.
  a.got.clear();
  b.got.clear();
  wire::ArpPacket req{wire::ArpPacket::kRequest, a.mac, *la, MacAddr{}, *lb};
  a.send(wire::build_arp_frame(MacAddr::broadcast(), a.mac, req));
  b.pump();
  REQUIRE(b.got.size() == 1);
  CHECK(wire::EthernetFrame::parse(b.got[0])->src() == a.mac);

  // b's name, the static lease's name and a's own: answered by the DNS proxy.
  struct Want {
    const char* name;
    Ipv4Addr addr;
  };
  uint16_t id = 100;
  for (const Want& w : {Want{"beta.internal", *lb}, Want{"printer.internal", Ipv4Addr{10, 0, 2, 99}},
                        Want{"ALPHA.internal", *la}}) {
    INFO(w.name);
    a.got.clear();
    a.send(wire::build_ipv4_udp_frame(r.st->gateway().config().mac, a.mac, *la, 5353, kDns, 53, dns_query(w.name, id)));
    std::optional<std::pair<Ipv4Addr, std::vector<std::byte>>> answer;
    REQUIRE(r.run_until([&] { return (answer = a.udp_to(5353)).has_value(); }, {&a, &b}));
    const auto& m = answer->second;
    auto header = dns::Header::parse(m);
    REQUIRE(header);
    CHECK(header->id == id);
    REQUIRE(header->ancount == 1);
    // One A record and nothing after it: its RDATA ends the message.
    REQUIRE(m.size() > 4);
    CHECK(wire::load32(m, m.size() - 4) == w.addr.value);
    ++id;
  }

  // A published port that names b: the connection's SYN goes to b.
  const uint16_t host_port = test::free_port();
  std::string err;
  auto rule = portfwd::parse_rule(std::to_string(host_port) + ":beta:8080", &err);
  REQUIRE(rule);
  REQUIRE(r.st->published().add(*rule).empty());
  int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(host_port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to);
  a.got.clear();
  b.got.clear();
  auto syn_to = [&](Guest& g) {
    for (const auto& f : g.got) {
      auto eth = wire::EthernetFrame::parse(f);
      auto ip = eth ? wire::Ipv4Packet::parse(eth->payload()) : std::nullopt;
      if (!ip || ip->protocol() != wire::ipproto::kTcp) continue;
      auto tcp = wire::TcpSegment::parse(ip->payload());
      if (tcp && (tcp->flags() & wire::tcpflag::kSyn) && tcp->dst_port() == 8080) return ip->dst();
    }
    return Ipv4Addr{};
  };
  // b answers the gateway's ARP for it: the SYN waits for that.
  CHECK(r.run_until(
      [&] {
        for (const auto& f : b.got) {
          auto arp = wire::ArpPacket::parse(wire::EthernetFrame::parse(f)->payload());
          if (arp && arp->op == wire::ArpPacket::kRequest && arp->target_ip == *lb) {
            wire::ArpPacket rep{wire::ArpPacket::kReply, b.mac, *lb, arp->sender_mac, arp->sender_ip};
            b.got.clear();
            b.send(wire::build_arp_frame(arp->sender_mac, b.mac, rep));
            break;
          }
        }
        return syn_to(b) == *lb;
      },
      {&a, &b}));
  CHECK(syn_to(a) == Ipv4Addr{});
  close(client);

  // A guest that goes away takes its port; its lease stays.
  CHECK(r.st->remove_guest("b"));
  CHECK_FALSE(r.st->remove_guest("b"));
  CHECK(r.st->gateway().dhcp().address_of("beta") == *lb);
}
