// Fuzz target: the guest frame path. Each input is a sequence of Ethernet
// frames (fuzz_common.h's records) that a guest sends on an in-memory link
// to a whole Stack: Ethernet, ARP, IPv4 and IPv6 (fragments, extension
// headers), ICMP, ICMPv6/NDP, DHCPv4/v6, UDP and TCP into lwIP and the
// flows, DNS to the proxy. The Stack lives for the whole run (lwIP's state
// is global), so state carries over between inputs as it would in a long
// session; the clock advances 100 ms per frame so timers and leases move.
// Runs in a private network namespace (fuzz_common.h).
#include <memory>

#include "fuzz_common.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"
#include "netstack/sys/clock.h"

using namespace slipway;

namespace {

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<link::MemoryPort> guest;
  link::MemoryPort* gw_end = nullptr;
  sys::ManualClock* clock = nullptr;
  std::unique_ptr<stack::Stack> stack;
  uint64_t received = 0;  // frames to the guest

  Rig() {
    uv_loop_init(&loop);
    auto [a, b] = link::MemoryPort::make_pair();
    guest = std::move(a);
    gw_end = b.get();
    stack::StackConfig c;
    c.gateway.nat.ipv6 = true;
    c.max_tcp_flows = 256;
    c.max_udp_flows = 256;
    // An upstream on the namespace's loopback where nothing answers.
    c.dns_config.upstreams = {{"127.0.0.1", 53}};
    c.dns_config.static_names["fuzz.test"] = {"10.0.2.99", "fd00::99"};
    auto clk = std::make_unique<sys::ManualClock>();
    clock = clk.get();
    stack = std::make_unique<stack::Stack>(&loop, std::move(b), c, std::move(clk));
    guest->set_sink([this](link::Frame) { received++; });
  }
};

Rig* rig = nullptr;
// FUZZ_VERBOSE=1: what each input did (to check that the seeds get answers).
bool verbose = false;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  fuzz::isolate_network();
  rig = new Rig;  // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Records records(data, size);
  std::span<const std::byte> frame;
  int n = 0;
  while (records.next(frame) && n++ < 64) {
    rig->guest->send(frame);
    rig->gw_end->poll();
    rig->clock->advance(100);
    fuzz::spin(&rig->loop, 2);
    rig->gw_end->poll();
    rig->guest->poll();
  }
  if (verbose) {
    const auto& s = rig->stack->gateway().stats();
    std::fprintf(stderr, "frame: in %llu, out %llu, malformed %llu, unsupported %llu; the guest has had %llu frames\n",
                 static_cast<unsigned long long>(s.frames_in), static_cast<unsigned long long>(s.frames_out),
                 static_cast<unsigned long long>(s.dropped_malformed),
                 static_cast<unsigned long long>(s.dropped_unsupported), static_cast<unsigned long long>(rig->received));
  }
  return 0;
}
