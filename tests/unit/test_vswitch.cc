// vswitch::Switch over in-memory ports: learning and flooding, no hairpin,
// ageing with test-driven time, the bounded table, detaching, VLAN access
// and trunk ports, isolation, the MTU check, offload offsets across tags, a
// slow port that never stalls the others, and a port that answers from
// inside send().
#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "netstack/link/memory_port.h"
#include "netstack/link/patch_port.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/frame.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/offload.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/vlan.h"
#include "vswitch/switch.h"

using namespace slipway;
using wire::MacAddr;
using Mode = vswitch::PortOptions::Mode;

namespace {

MacAddr mac(uint8_t n) { return MacAddr{{0x52, 0x54, 0x00, 0x00, 0x00, n}}; }

// A raw frame from `src` to `dst` with a recognisable payload.
std::vector<std::byte> frame(MacAddr dst, MacAddr src, uint8_t mark, size_t payload = 46) {
  std::vector<std::byte> f(wire::kEthernetHeaderLen + payload, std::byte{mark});
  wire::emit_ethernet_header(f, dst, src, 0x88b5);  // local experimental ethertype
  return f;
}

// One guest: the test's end of a memory link whose other end is on the switch.
// Its port leaves the switch when it goes (the switch is declared first in
// each test, so it outlives the guests: a port must outlive its attachment,
// and ~Switch would otherwise touch ports already freed).
struct Guest {
  vswitch::Switch& sw;
  std::unique_ptr<link::MemoryPort> mine, theirs;
  vswitch::Switch::PortId id = 0;
  std::vector<std::vector<std::byte>> got;
  std::vector<link::Offload> offloads;

  Guest(vswitch::Switch& s, vswitch::PortOptions o) : sw(s) {
    auto [a, b] = link::MemoryPort::make_pair();
    mine = std::move(a);
    theirs = std::move(b);
    id = sw.attach(*theirs, std::move(o));
    mine->set_sink([this](link::Frame f, const link::Offload& off) {
      got.emplace_back(f.begin(), f.end());
      offloads.push_back(off);
    });
  }
  void send(const std::vector<std::byte>& f, const link::Offload& o = {}) {
    mine->send(f, o);
    theirs->poll();
  }
  size_t take() {
    mine->poll();
    size_t n = got.size();
    return n;
  }
  void clear() {
    mine->poll();
    got.clear();
    offloads.clear();
  }
  ~Guest() {
    if (sw.port(id) == theirs.get()) sw.detach(id);
  }
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;
};

vswitch::PortOptions named(const char* n, Mode m = Mode::kPlain) {
  vswitch::PortOptions o;
  o.name = n;
  o.mode = m;
  return o;
}

}  // namespace

TEST_CASE("vswitch: floods unknown and broadcast, then forwards to what it learnt, never back", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  Guest a(sw, named("a")), b(sw, named("b")), c(sw, named("c"));
  a.send(frame(MacAddr::broadcast(), mac(1), 1));
  CHECK(a.take() == 0);
  CHECK(b.take() == 1);
  CHECK(c.take() == 1);
  CHECK(sw.where(mac(1)) == a.id);
  b.clear();
  c.clear();
  b.send(frame(mac(1), mac(2), 2));  // to a, which is known
  CHECK(a.take() == 1);
  CHECK(c.take() == 0);
  CHECK(a.got[0] == frame(mac(1), mac(2), 2));
  a.clear();
  c.send(frame(mac(9), mac(3), 3));  // unknown unicast: flooded
  CHECK(a.take() == 1);
  CHECK(b.take() == 1);
  a.clear();
  b.clear();
  a.send(frame(mac(1), mac(4), 4));  // to a MAC on a's own segment: no hairpin
  CHECK(a.take() == 0);
  CHECK(b.take() == 0);
  CHECK(c.take() == 0);
  // A MAC that moves is learnt on its new port.
  c.send(frame(MacAddr::broadcast(), mac(1), 5));
  CHECK(sw.where(mac(1)) == c.id);
}

TEST_CASE("vswitch: MACs age out, the table is bounded, a detached port forgets its MACs", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::SwitchConfig config;
  config.max_macs = 2;
  vswitch::Switch sw(clock, config);
  Guest a(sw, named("a")), b(sw, named("b")), c(sw, named("c"));
  a.send(frame(MacAddr::broadcast(), mac(1), 1));
  b.send(frame(MacAddr::broadcast(), mac(2), 1));
  c.send(frame(MacAddr::broadcast(), mac(3), 1));  // table full: not learnt
  CHECK(sw.mac_count() == 2);
  CHECK(sw.where(mac(3)) == vswitch::Switch::kNoPort);
  clock.advance(300'001);
  CHECK(sw.where(mac(1)) == vswitch::Switch::kNoPort);  // aged
  a.clear();
  b.clear();
  c.clear();
  b.send(frame(mac(1), mac(2), 2));  // mac(1) forgotten: flooded again
  CHECK(a.take() == 1);
  CHECK(c.take() == 1);
  sw.detach(b.id);
  CHECK(sw.where(mac(2)) == vswitch::Switch::kNoPort);
  CHECK(sw.ports().size() == 2);
}

TEST_CASE("vswitch: access ports keep VLANs apart, a trunk carries both tagged", "[vswitch][vlan]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  auto ten = named("ten", Mode::kAccess);
  ten.vlan = 10;
  auto twenty = named("twenty", Mode::kAccess);
  twenty.vlan = 20;
  auto trunk = named("trunk", Mode::kTrunk);
  trunk.trunk = {10, 20};
  Guest a(sw, ten), b(sw, twenty), t(sw, trunk);
  a.send(frame(MacAddr::broadcast(), mac(1), 1));
  CHECK(b.take() == 0);
  REQUIRE(t.take() == 1);
  auto tag = wire::vlan_tag(t.got[0]);
  REQUIRE(tag);
  CHECK(tag->vid == 10);
  std::vector<std::byte> untagged;
  wire::pop_vlan(t.got[0], untagged);
  CHECK(untagged == frame(MacAddr::broadcast(), mac(1), 1));

  // From the trunk, tagged 20: to b, untagged.
  std::vector<std::byte> tagged;
  wire::push_vlan(frame(MacAddr::broadcast(), mac(7), 7), wire::VlanTag{20, 0, false}, tagged);
  t.send(tagged);
  REQUIRE(b.take() == 1);
  CHECK(b.got[0] == frame(MacAddr::broadcast(), mac(7), 7));
  CHECK(a.take() == 0);
  // A VLAN the trunk does not carry, and a tagged frame from an access port.
  wire::push_vlan(frame(MacAddr::broadcast(), mac(7), 8), wire::VlanTag{30, 0, false}, tagged);
  t.send(tagged);
  wire::push_vlan(frame(MacAddr::broadcast(), mac(1), 9), wire::VlanTag{20, 0, false}, tagged);
  a.send(tagged);
  CHECK(b.take() == 1);
  auto info = sw.ports();
  CHECK(info[t.id].stats.rx_dropped_vlan == 1);
  CHECK(info[a.id].stats.rx_dropped_vlan == 1);
  CHECK_THROWS_AS(sw.attach(*b.mine, named("bad", Mode::kAccess)), std::invalid_argument);
}

TEST_CASE("vswitch: isolated guests reach the uplink but not each other", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  auto iso = named("a");
  iso.isolated = true;
  auto iso2 = named("b");
  iso2.isolated = true;
  auto up = named("gw");
  up.uplink = true;
  Guest a(sw, iso), b(sw, iso2), g(sw, up);
  a.send(frame(MacAddr::broadcast(), mac(1), 1));
  CHECK(g.take() == 1);
  CHECK(b.take() == 0);
  b.send(frame(MacAddr::broadcast(), mac(2), 2));
  g.clear();
  a.send(frame(mac(2), mac(1), 3));  // b is known, but isolated from a
  CHECK(b.take() == 0);
  g.send(frame(mac(2), mac(9), 4));  // the gateway reaches b
  CHECK(b.take() == 1);
}

TEST_CASE("vswitch: the MTU check counts by what the wire sees", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  auto small = named("small");
  small.mtu = 1500;
  Guest a(sw, named("a")), s(sw, small);
  a.send(frame(MacAddr::broadcast(), mac(1), 1, 1500));
  CHECK(s.take() == 1);
  a.send(frame(MacAddr::broadcast(), mac(1), 2, 1501));
  CHECK(s.take() == 1);
  CHECK(sw.ports()[s.id].stats.tx_dropped_mtu == 1);
  s.send(frame(MacAddr::broadcast(), mac(2), 3, 1501));
  CHECK(a.take() == 0);  // dropped on the way in
  CHECK(sw.ports()[s.id].stats.rx_dropped_mtu == 1);

  // A TCP segment of 20,000 bytes for the link to cut into 1448-byte ones fits.
  wire::TcpHeaderFields f;
  f.src_port = 1;
  f.dst_port = 2;
  f.flags = wire::tcpflag::kAck;
  std::vector<std::byte> payload(20000, std::byte{1});
  auto big = wire::build_ipv4_tcp_frame(mac(2), mac(1), wire::Ipv4Addr{10, 0, 2, 15}, wire::Ipv4Addr{10, 0, 2, 16}, f,
                                        payload);
  auto o = wire::prepare_partial(big, 1488);
  REQUIRE(o.is_gso());
  s.clear();
  a.send(big, o);
  CHECK(s.take() > 1);  // arrives cut into segments (the memory port has no TSO)
}

TEST_CASE("vswitch: a tag added or removed moves the offload's checksum offset with it", "[vswitch][vlan][offload]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  auto trunk = named("trunk", Mode::kTrunk);
  trunk.trunk = {10};
  auto access = named("access", Mode::kAccess);
  access.vlan = 10;
  Guest a(sw, access), t(sw, trunk);
  // a's end carries offloads straight through (a patch port pair on the
  // switch side would too); here the memory port finishes them, so check
  // the checksum of what arrives on the trunk after its tag.
  wire::TcpHeaderFields f;
  f.src_port = 1;
  f.dst_port = 2;
  f.flags = wire::tcpflag::kAck | wire::tcpflag::kPsh;
  std::vector<std::byte> payload(300, std::byte{7});
  auto tcp = wire::build_ipv4_tcp_frame(mac(2), mac(1), wire::Ipv4Addr{10, 0, 2, 15}, wire::Ipv4Addr{10, 0, 2, 16},
                                        f, payload);
  const auto whole = tcp;
  auto o = wire::prepare_partial(tcp, 0);
  a.send(tcp, o);
  REQUIRE(t.take() == 1);
  std::vector<std::byte> inner;
  wire::pop_vlan(t.got[0], inner);
  CHECK(inner == whole);  // finished with the right offsets: the checksum is valid
}

TEST_CASE("vswitch: a full port drops and counts, the others still get every frame", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  Guest a(sw, named("a")), slow(sw, named("slow")), b(sw, named("b"));
  const size_t n = link::MemoryPort::kMaxQueued + 100;
  for (size_t i = 0; i < n; ++i) {
    a.send(frame(MacAddr::broadcast(), mac(1), static_cast<uint8_t>(i)));
    b.mine->poll();  // b keeps up; slow never reads
  }
  CHECK(b.got.size() == n);
  CHECK(sw.ports()[slow.id].stats.tx_dropped == 100);
}

TEST_CASE("vswitch: a port that answers from inside send() is served", "[vswitch]") {
  sys::ManualClock clock;
  vswitch::Switch sw(clock);
  Guest a(sw, named("a"));
  // An "echo" behind a patch cable: answers every broadcast at once, from
  // inside the switch's send().
  auto [sw_end, echo_end] = link::PatchPort::make_pair();
  auto up = named("echo");
  up.uplink = true;
  sw.attach(*sw_end, up);
  link::PatchPort* echo = echo_end.get();
  int answered = 0;
  echo->set_sink([&](link::Frame f, const link::Offload&) {
    auto eth = wire::EthernetFrame::parse(f);
    if (!eth || !eth->dst().is_multicast()) return;
    ++answered;
    echo->send(frame(eth->src(), mac(200), 99));
  });
  a.send(frame(MacAddr::broadcast(), mac(1), 1));
  CHECK(answered == 1);
  REQUIRE(a.take() == 1);
  CHECK(a.got[0] == frame(mac(1), mac(200), 99));
  CHECK(sw.where(mac(200)) != vswitch::Switch::kNoPort);
  sw.detach(*sw.find("echo"));  // the patch cable goes before the switch
}
