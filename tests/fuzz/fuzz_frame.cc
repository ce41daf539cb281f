// Fuzz target: the guest frame path. Each input is a sequence of Ethernet
// frames (fuzz_common.h's records) that a guest sends on an in-memory link
// to a whole Stack: Ethernet, ARP, IPv4 and IPv6 (fragments, extension
// headers), ICMP, ICMPv6/NDP, DHCPv4/v6, UDP and TCP into lwIP and the
// flows, DNS to the proxy, TFTP to the gateway's server. The Stack lives for the whole run (lwIP's state
// is global), so state carries over between inputs as it would in a long
// session; the clock advances 100 ms per frame so timers and leases move.
// Runs in a private network namespace (fuzz_common.h), whose loopback has
// an echo server on TCP and UDP port 8080 (the gateway's 10.0.2.2 and fd00::2
// lead there), so that flows carry data both ways. A record that starts
// with 0xAC is a frame whose TCP acknowledgment number (IPv4 without
// options, or IPv6 without extension headers) the target sets to what acknowledges
// the last TCP segment the guest received, so that inputs complete
// handshakes with lwIP's sequence numbers (it checks no TCP checksum).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <string>

#include "fuzz_common.h"
#include "netstack/link/memory_port.h"
#include "netstack/stack/stack.h"
#include "netstack/sys/clock.h"

using namespace slipway;

namespace {

std::string g_tftp_root;  // the TFTP server's directory, removed at exit

struct Rig {
  uv_loop_t loop;
  std::unique_ptr<link::MemoryPort> guest;
  link::MemoryPort* gw_end = nullptr;
  sys::ManualClock* clock = nullptr;
  std::unique_ptr<stack::Stack> stack;
  uint64_t received = 0;  // frames to the guest
  uint32_t next_ack = 0;  // acknowledges the last TCP segment to the guest

  // Where a frame's TCP header starts, or 0.
  static size_t tcp_offset(std::span<const std::byte> f) {
    auto at = [&](size_t i) { return std::to_integer<uint8_t>(f[i]); };
    if (f.size() >= 54 && at(12) == 0x08 && at(13) == 0x00 && at(14) == 0x45 && at(23) == 6) return 34;
    if (f.size() >= 74 && at(12) == 0x86 && at(13) == 0xdd && at(20) == 6) return 54;
    return 0;
  }
  void saw(std::span<const std::byte> f) {
    received++;
    size_t t = tcp_offset(f);
    if (t == 0) return;
    auto at = [&](size_t i) { return std::to_integer<uint32_t>(f[i]); };
    uint32_t seq = (at(t + 4) << 24) | (at(t + 5) << 16) | (at(t + 6) << 8) | at(t + 7);
    size_t hlen = (at(t + 12) >> 4) * 4u;
    size_t payload = f.size() > t + hlen ? f.size() - t - hlen : 0;
    uint32_t flags = at(t + 13);
    next_ack = seq + static_cast<uint32_t>(payload) + ((flags & 0x03) != 0 ? 1 : 0);  // SYN or FIN
  }

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
    // The TFTP server at the gateway (port 69), with one file to serve,
    // named as the boot file in DHCP.
    char tftp_dir[] = "/tmp/slipway-fuzz-frame-tftp.XXXXXX";
    if (mkdtemp(tftp_dir) != nullptr) {
      g_tftp_root = tftp_dir;
      std::ofstream(g_tftp_root + "/boot.ipxe") << "#!ipxe\n" << std::string(3000, 'x');
      c.gateway.tftp_root = g_tftp_root;
      c.gateway.boot_file = "boot.ipxe";
      std::atexit([] {
        (void)unlink((g_tftp_root + "/boot.ipxe").c_str());
        (void)rmdir(g_tftp_root.c_str());
      });
    }
    auto clk = std::make_unique<sys::ManualClock>();
    clock = clk.get();
    stack = std::make_unique<stack::Stack>(&loop, std::move(b), c, std::move(clk));
    guest->set_sink([this](link::Frame f) { saw(f); });
  }
};

Rig* rig = nullptr;

// The echo servers on the namespace's 127.0.0.1:8080 and [::1]:8080.
struct Echo {
  std::vector<int> listeners, udp;
  std::deque<int> conns;  // at most kMaxConns, the oldest closed first
  uint64_t accepted = 0, echoed = 0;
  static constexpr size_t kMaxConns = 64;

  Echo() {
    for (int family : {AF_INET, AF_INET6}) {
      sockaddr_storage ss{};
      socklen_t len;
      if (family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(8080);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
      } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(8080);
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
      }
      int t = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int u = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (bind(t, reinterpret_cast<sockaddr*>(&ss), len) == 0 && listen(t, 64) == 0) listeners.push_back(t);
      if (bind(u, reinterpret_cast<sockaddr*>(&ss), len) == 0) udp.push_back(u);
    }
  }
  void serve() {
    char buf[65536];
    for (int l : listeners) {
      int c;
      while ((c = accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        conns.push_back(c);
        accepted++;
        if (conns.size() > kMaxConns) {
          close(conns.front());
          conns.pop_front();
        }
      }
    }
    for (auto it = conns.begin(); it != conns.end();) {
      ssize_t n = read(*it, buf, sizeof buf);
      if (n > 0 && send(*it, buf, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) echoed += static_cast<uint64_t>(n);
      if (n == 0) {
        close(*it);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
    for (int u : udp) {
      sockaddr_storage from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n >= 0 && sendto(u, buf, static_cast<size_t>(n), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), fl) >= 0)
        echoed += static_cast<uint64_t>(n);
    }
  }
};

Echo* echo = nullptr;
// FUZZ_VERBOSE=1: what each input did (to check that the seeds get answers).
bool verbose = false;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  fuzz::isolate_network();
  echo = new Echo;  // lives until exit
  rig = new Rig;    // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Records records(data, size);
  std::span<const std::byte> frame;
  int n = 0;
  std::vector<std::byte> patched;
  while (records.next(frame) && n++ < 64) {
    if (!frame.empty() && frame[0] == std::byte{0xAC}) {
      patched.assign(frame.begin() + 1, frame.end());
      if (size_t t = Rig::tcp_offset(patched); t != 0) {
        for (int i = 0; i < 4; ++i) patched[t + 8 + i] = std::byte(rig->next_ack >> (24 - 8 * i));
      }
      frame = patched;
    }
    rig->guest->send(frame);
    rig->gw_end->poll();
    rig->clock->advance(100);
    fuzz::spin(&rig->loop, 2);
    echo->serve();
    fuzz::spin(&rig->loop, 1);
    rig->gw_end->poll();
    rig->guest->poll();
  }
  if (verbose) {
    const auto& s = rig->stack->gateway().stats();
    std::fprintf(stderr, "frame: in %llu, out %llu, malformed %llu, unsupported %llu; the guest has had %llu frames; "
                 "echo: %llu connections, %llu bytes\n",
                 static_cast<unsigned long long>(s.frames_in), static_cast<unsigned long long>(s.frames_out),
                 static_cast<unsigned long long>(s.dropped_malformed),
                 static_cast<unsigned long long>(s.dropped_unsupported), static_cast<unsigned long long>(rig->received),
                 static_cast<unsigned long long>(echo->accepted), static_cast<unsigned long long>(echo->echoed));
  }
  return 0;
}
