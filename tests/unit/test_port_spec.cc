// Port specs (cli/port_spec.h), the text `vswitch --port` and `slipway serve`
// take: every kind parses with its options and a derived name; bad specs are
// refused before anything is opened, with a message naming the fault; a
// vxlan spec opens a VxlanPort bound where it says, and two vxlan ports
// opened from specs carry a frame between two switches over loopback (from
// an isolated port: the tunnel is an uplink).
#include <uv.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "netstack/cli/options.h"
#include "netstack/cli/port_spec.h"
#include "netstack/link/vxlan_port.h"
#include "netstack/sys/clock.h"
#include "vswitch/switch.h"

using slipway::cli::parse_port_spec;
using slipway::cli::PortSpec;
using Mode = slipway::vswitch::PortOptions::Mode;

namespace {

// The message of the std::invalid_argument that parsing `text` throws.
std::string refusal(const std::string& text) {
  try {
    parse_port_spec(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("port spec: VM and netns kinds, names, VLAN options", "[port_spec]") {
  auto s = parse_port_spec("stream:/tmp/x/vm1.sock");
  CHECK(s.kind == PortSpec::Kind::kStream);
  CHECK(s.value == "/tmp/x/vm1.sock");
  CHECK(s.options.name == "vm1");
  CHECK(s.options.mode == Mode::kPlain);
  CHECK_FALSE(s.options.uplink);

  s = parse_port_spec("netns:/run/netns/web,vlan=10,mtu=1400,ifname=eth1");
  CHECK(s.kind == PortSpec::Kind::kNetns);
  CHECK(s.options.name == "web");
  CHECK(s.options.mode == Mode::kAccess);
  CHECK(s.options.vlan == 10);
  CHECK(s.mtu == 1400);
  CHECK(s.ifname == "eth1");

  s = parse_port_spec("dgram:/tmp/t.sock,trunk=10+20+4094,name=up");
  CHECK(s.options.mode == Mode::kTrunk);
  CHECK(s.options.trunk == std::vector<uint16_t>{10, 20, 4094});
  CHECK(s.options.name == "up");
  CHECK(parse_port_spec("netns:1234").options.name == "pid1234");
  CHECK(parse_port_spec("gateway").kind == PortSpec::Kind::kGateway);
}

TEST_CASE("port spec: vxlan with remote, port, VNI, local and mtu", "[port_spec][vxlan]") {
  auto s = parse_port_spec("vxlan:192.0.2.7,vni=42");
  CHECK(s.kind == PortSpec::Kind::kVxlan);
  CHECK(s.value == "192.0.2.7");
  CHECK(s.vni == 42);
  CHECK(s.local.empty());
  CHECK(s.options.name == "vxlan42");
  CHECK(s.options.uplink);                               // isolated ports reach it
  CHECK(s.options.mtu == slipway::cli::kVxlanDefaultMtu);  // the switch drops what does not fit
  CHECK(s.to_string() == "vxlan:192.0.2.7,name=vxlan42,vni=42");

  s = parse_port_spec("vxlan:127.0.0.1:4790,vni=16777215,local=127.0.0.1:4791,mtu=9000,trunk=10+20,name=site-b");
  CHECK(s.value == "127.0.0.1:4790");
  CHECK(s.vni == 16777215);
  CHECK(s.local == "127.0.0.1:4791");
  CHECK(s.mtu == 9000);
  CHECK(s.options.mtu == 9000);
  CHECK(s.options.mode == Mode::kTrunk);
  CHECK(s.options.name == "site-b");
  CHECK(parse_port_spec(s.to_string()).to_string() == s.to_string());

  s = parse_port_spec("vxlan:[2001:db8::1]:8472,vni=0,local=[::1]");
  CHECK(s.value == "[2001:db8::1]:8472");
  CHECK(s.vni == 0);
  CHECK(parse_port_spec("vxlan:2001:db8::1,vni=5").value == "2001:db8::1");
}

TEST_CASE("port spec: bad specs are refused with the reason", "[port_spec][vxlan]") {
  CHECK_THAT(refusal("tap:/x"), Catch::Contains("unknown kind 'tap'"));
  CHECK_THAT(refusal("stream:"), Catch::Contains("stream needs a value"));
  CHECK_THAT(refusal("stream:/x,vlan=0"), Catch::Contains("from 1 to 4094"));
  CHECK_THAT(refusal("stream:/x,vlan=4095"), Catch::Contains("from 1 to 4094"));
  CHECK_THAT(refusal("stream:/x,vlan=10,trunk=20"), Catch::Contains("exclude each other"));
  CHECK_THAT(refusal("stream:/x,trunk=10+"), Catch::Contains("VLAN ''"));
  CHECK_THAT(refusal("stream:/x,mtu=1400"), Catch::Contains("unknown option 'mtu' for stream"));
  CHECK_THAT(refusal("netns:1,mtu=67"), Catch::Contains("from 68 to 65520"));

  CHECK_THAT(refusal("vxlan:192.0.2.7"), Catch::Contains("vxlan needs vni=N"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=16777216"), Catch::Contains("from 0 to 16777215"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=x"), Catch::Contains("vni 'x'"));
  CHECK_THAT(refusal("vxlan:,vni=1"), Catch::Contains("vxlan needs a value"));
  CHECK_THAT(refusal("vxlan:host.example,vni=1"), Catch::Contains("is not ADDR, ADDR:PORT"));
  CHECK_THAT(refusal("vxlan:192.0.2.7:65536,vni=1"), Catch::Contains("is not ADDR, ADDR:PORT"));
  CHECK_THAT(refusal("vxlan:192.0.2.7:0,vni=1"), Catch::Contains("port 0"));
  CHECK_THAT(refusal("vxlan:0.0.0.0,vni=1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(refusal("vxlan:239.1.1.1,vni=1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(refusal("vxlan:[ff02::1],vni=1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=1,local=::1"), Catch::Contains("different address families"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=1,local=nowhere"), Catch::Contains("local 'nowhere'"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=1,mtu=65482"), Catch::Contains("from 68 to 65481"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=1,ifname=eth0"), Catch::Contains("unknown option 'ifname' for vxlan"));
  CHECK_THAT(refusal("vxlan:192.0.2.7,vni=1,vlan"), Catch::Contains("is not KEY=VALUE"));
}

TEST_CASE("port spec: slipway serve takes --vxlan guests beside the others, and refuses a bad one", "[port_spec][vxlan]") {
  auto guests_of = [](std::vector<std::string> args) {
    slipway::cli::NetworkOptions o;
    CLI::App app;
    o.add_to(app);
    o.add_transport_to(app);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return o.guests();
  };
  auto g = guests_of({"--netns", "/run/netns/web", "--vxlan", "192.0.2.7:8472,vni=42,mtu=1450"});
  REQUIRE(g.size() == 2);
  CHECK(g[1].kind == PortSpec::Kind::kVxlan);
  CHECK(g[1].value == "192.0.2.7:8472");
  CHECK(g[1].vni == 42);
  CHECK(g[1].mtu == 1450);
  CHECK(g[1].options.name == "vxlan42");
  g = guests_of({"--vxlan", "192.0.2.7,vni=1", "--vxlan", "192.0.2.8,vni=1"});
  CHECK(g[1].options.name == "vxlan1-2");  // derived names that collide get a number
  CHECK_THROWS_WITH(guests_of({"--vxlan", "192.0.2.7"}), Catch::Contains("vxlan needs vni=N"));
  CHECK_THROWS_WITH(guests_of({"--vxlan", "example.org,vni=1"}), Catch::Contains("is not ADDR, ADDR:PORT"));
}

TEST_CASE("port spec: two switches joined by vxlan ports opened from specs carry a frame", "[port_spec][vxlan]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    slipway::sys::LoopClock clock(&loop);
    slipway::vswitch::Switch sw_a(clock), sw_b(clock);
    // Each side binds 127.0.0.1 on a free port: open one, read its port,
    // then point the other at it.
    auto spec_a = parse_port_spec("vxlan:127.0.0.1:9,vni=77,local=127.0.0.1:0");
    auto probe = slipway::cli::open_vxlan_port(&loop, spec_a);
    const uint16_t port_a = static_cast<slipway::link::VxlanPort&>(*probe).local().port;
    auto spec_b = parse_port_spec("vxlan:127.0.0.1:" + std::to_string(port_a) + ",vni=77,local=127.0.0.1:0");
    auto vx_b = slipway::cli::open_vxlan_port(&loop, spec_b);
    const uint16_t port_b = static_cast<slipway::link::VxlanPort&>(*vx_b).local().port;
    probe.reset();
    uv_run(&loop, UV_RUN_NOWAIT);  // its socket closes in the close callback
    spec_a = parse_port_spec("vxlan:127.0.0.1:" + std::to_string(port_b) + ",vni=77,local=127.0.0.1:" +
                             std::to_string(port_a));
    auto vx_a = slipway::cli::open_vxlan_port(&loop, spec_a);
    sw_a.attach(*vx_a, spec_a.options);
    sw_b.attach(*vx_b, spec_b.options);

    // A guest on each switch, as in-memory ports.
    struct Guest : slipway::link::Port {
      std::vector<std::vector<std::byte>> got;
      bool transmit(slipway::link::Frame f, const slipway::link::Offload&) override {
        got.emplace_back(f.begin(), f.end());
        return true;
      }
      void receive(slipway::link::Frame f) { deliver(f); }
    } guest_a, guest_b;
    slipway::vswitch::PortOptions plain;
    plain.name = "a";
    plain.isolated = true;  // an isolated guest still reaches the tunnel (an uplink)
    sw_a.attach(guest_a, plain);
    plain.isolated = false;
    plain.name = "b";
    sw_b.attach(guest_b, plain);

    std::vector<std::byte> frame(60, std::byte{0x5a});
    const uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src[6] = {0x02, 0, 0, 0, 0, 0xa};
    std::memcpy(frame.data(), dst, 6);
    std::memcpy(frame.data() + 6, src, 6);
    frame[12] = std::byte{0x88};
    frame[13] = std::byte{0xb5};
    guest_a.receive(frame);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (guest_b.got.empty() && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      ::usleep(500);
    }
    REQUIRE(guest_b.got.size() == 1);
    CHECK(guest_b.got[0] == frame);
    CHECK(guest_a.got.empty());  // no hairpin
    sw_a.detach(*sw_a.find("a"));
    sw_b.detach(*sw_b.find("b"));
    sw_a.detach(*sw_a.find(spec_a.options.name));
    sw_b.detach(*sw_b.find(spec_b.options.name));
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
}
