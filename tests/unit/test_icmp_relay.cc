// IcmpEchoRelay against the real kernel, with real sockets on a real loop,
// for IPv4 and IPv6.
//
// Each case runs in a forked child that enters a private network namespace
// (unshare(CLONE_NEWNET) is process-wide, so the test binary itself must not
// do it) and brings lo up; the traffic never leaves that namespace and the
// ping_group_range sysctl written there is the namespace's own. The child
// reports through a pipe (a failure message, empty on success) and its exit
// status. Without root the cases are skipped with a warning.
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "netstack/engine/icmp_relay.h"
#include "sockets.h"

using slipway::engine::IcmpEchoRelay;
using slipway::engine::IcmpEchoReply;
using slipway::engine::IcmpError;
using slipway::engine::IpAddr;
using slipway::wire::Ipv4Addr;
using slipway::wire::Ipv6Addr;
using Mode = IcmpEchoRelay::Mode;

namespace {

// Inside the child: return a message instead of asserting (Catch's state
// belongs to the parent).
#define EXPECT(cond)                                                                       \
  do {                                                                                     \
    if (!(cond)) return std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond; \
  } while (0)

constexpr const char* kSkipPrefix = "skip: ";

bool write_file(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

bool allow_ping_sockets(bool allow) {
  return write_file("/proc/sys/net/ipv4/ping_group_range", allow ? "0 2147483647" : "1 0");
}

std::string bring_lo_up() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  std::string err;
  if (::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    err = std::string("SIOCGIFFLAGS lo: ") + std::strerror(errno);
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
      err = std::string("SIOCSIFFLAGS lo: ") + std::strerror(errno);
    }
  }
  ::close(fd);
  return err;
}

// Runs body in a child process inside a fresh network namespace. Fails the
// Catch test on a failure message, warns and returns on a skip.
void run_in_private_netns(const std::function<std::string()>& body) {
  if (::geteuid() != 0) {
    WARN("not root: skipping (needs a private network namespace)");
    return;
  }
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  // The child must not inherit (and later print again) unflushed output.
  std::fflush(stdout);
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(60);  // a hung child dies instead of hanging the suite
    std::string msg;
    if (::unshare(CLONE_NEWNET) != 0) {
      msg = std::string(kSkipPrefix) + "unshare(CLONE_NEWNET): " + std::strerror(errno);
    } else if (msg = bring_lo_up(); msg.empty()) {
      try {
        msg = body();
      } catch (const std::exception& e) {
        msg = std::string("exception: ") + e.what();
      }
    }
    size_t off = 0;
    while (off < msg.size()) {
      ssize_t n = ::write(fds[1], msg.data() + off, msg.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::_exit(msg.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (msg.rfind(kSkipPrefix, 0) == 0) {
    WARN(msg);
    return;
  }
  INFO("child: " << msg);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(msg.empty());
}

// A loop, a relay and what it reported.
struct Harness {
  uv_loop_t loop{};
  std::vector<IcmpEchoReply> replies;
  std::vector<IcmpError> errors;
  std::unique_ptr<IcmpEchoRelay> relay;

  explicit Harness(Mode mode) {
    uv_loop_init(&loop);
    relay = std::make_unique<IcmpEchoRelay>(
        &loop, [this](const IcmpEchoReply& r) { replies.push_back(r); },
        [this](const IcmpError& e) { errors.push_back(e); }, mode);
  }

  // Runs the loop until pred() holds or timeout_ms passes; returns pred().
  bool run_until(const std::function<bool()>& pred, uint64_t timeout_ms = 3000) {
    uv_timer_t tick;  // wakes the loop so pred() and the deadline are checked
    uv_timer_init(&loop, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 10, 10);
    const uint64_t deadline = uv_hrtime() + timeout_ms * 1'000'000;
    while (!pred() && uv_hrtime() < deadline) uv_run(&loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred();
  }

  // Destroys the relay, lets the loop finish its closes, closes the loop.
  bool finish() {
    relay.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0;
  }
};

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte((i * 7 + static_cast<size_t>(seed)) & 0xff);
  return v;
}

const Ipv4Addr kGuest(10, 0, 2, 15);
const Ipv4Addr kGuest2(10, 0, 2, 16);
const Ipv4Addr kLoopback(127, 0, 0, 1);
const Ipv4Addr kNoRoute(203, 0, 113, 1);  // TEST-NET-3: no route in the private netns
constexpr Ipv6Addr kGuest6 = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456});
constexpr Ipv6Addr kGuest6b = Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0x16});
constexpr Ipv6Addr kLoopback6 = Ipv6Addr::from_groups({0, 0, 0, 0, 0, 0, 0, 1});
constexpr Ipv6Addr kNoRoute6 = Ipv6Addr::from_groups({0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1});

// The addresses of one family's round trip.
struct Family {
  IpAddr guest, guest2, loopback;
};
const Family kV4{kGuest, kGuest2, kLoopback};
const Family kV6{kGuest6, kGuest6b, kLoopback6};

using slipway::test::have_ipv6_loopback;

// Checks an echo round trip to the family's loopback address through
// whatever mode the relay has; the relay's counters start at `base`.
std::string echo_round_trip(Harness& h, uint64_t now_ms, const Family& f = kV4,
                            IcmpEchoRelay::Stats base = {}) {  // a copy: stats() changes
  const size_t first = h.replies.size();
  const auto p1 = pattern(56, 1);
  const auto p2 = pattern(1400, 2);
  EXPECT(h.relay->send_echo(f.guest, f.loopback, 0xbeef, 1, p1, 64, now_ms));
  EXPECT(h.relay->send_echo(f.guest2, f.loopback, 0x0101, 9, p2, 64, now_ms));
  EXPECT(h.relay->send_echo(f.guest, f.loopback, 0xbeef, 2, {}, 1,
                            now_ms));  // same flow, empty payload
  EXPECT(h.run_until([&] { return h.replies.size() >= first + 3; }));
  EXPECT(h.replies.size() == first + 3);
  EXPECT(h.errors.empty());
  int seen = 0;
  for (size_t i = first; i < h.replies.size(); ++i) {
    const auto& r = h.replies[i];
    EXPECT(r.from == f.loopback);
    if (r.seq == 1) {
      EXPECT(r.guest == f.guest);
      EXPECT(r.id == 0xbeef);
      EXPECT(r.payload == p1);
      seen |= 1;
    } else if (r.seq == 9) {
      EXPECT(r.guest == f.guest2);
      EXPECT(r.id == 0x0101);
      EXPECT(r.payload == p2);
      seen |= 2;
    } else if (r.seq == 2) {
      EXPECT(r.guest == f.guest);
      EXPECT(r.id == 0xbeef);
      EXPECT(r.payload.empty());
      seen |= 4;
    }
  }
  EXPECT(seen == 7);
  EXPECT(h.relay->stats().requests == base.requests + 3);
  EXPECT(h.relay->stats().replies == base.replies + 3);
  return {};
}

// Creates a veth pair in this namespace whose far end never answers ARP or
// neighbour solicitations, so a ping to 192.0.2.2 (with v6: 2001:db8::2)
// fails neighbour resolution and the kernel sends us a real ICMP host
// unreachable (ICMPv6 address unreachable). Returns a skip message if `ip`
// is missing or IPv6 is unavailable.
std::string make_dead_neighbour(bool v6) {
  if (::access("/usr/sbin/ip", X_OK) != 0 && ::access("/sbin/ip", X_OK) != 0) {
    return std::string(kSkipPrefix) + "no ip(8) to create a veth pair";
  }
  const char* cmds[] = {
      "ip link add v0 type veth peer name v1",
      v6 ? "ip -6 addr add 2001:db8::1/64 dev v0 nodad" : "ip addr add 192.0.2.1/24 dev v0",
      "ip link set v0 up",
      "ip link set v1 up",
  };
  for (const char* c : cmds) {
    if (std::system((std::string(c) + " 2>/dev/null").c_str()) != 0) {
      return std::string(kSkipPrefix) + "'" + c + "' failed";
    }
  }
  // Give up on the neighbour after one probe, fast.
  const std::string neigh = std::string("/proc/sys/net/") + (v6 ? "ipv6" : "ipv4") + "/neigh/v0/";
  write_file((neigh + "mcast_solicit").c_str(), "1");
  write_file((neigh + "retrans_time_ms").c_str(), "100");
  return {};
}

}  // namespace

TEST_CASE("icmp: ping sockets relay an echo and restore the guest's id", "[icmp]") {
  run_in_private_netns([]() -> std::string {
    EXPECT(allow_ping_sockets(true));
    Harness h(Mode::kAuto);
    EXPECT(h.relay->active_mode() == Mode::kPingSocket);
    if (auto err = echo_round_trip(h, 1000); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 2);  // one per (guest, id, destination)

    // expire(): idle means more than 60 s since the last request.
    h.relay->expire(1000 + 60'000);
    EXPECT(h.relay->stats().sockets == 2);
    h.relay->expire(1000 + 60'001);
    EXPECT(h.relay->stats().sockets == 0);
    // A new request after expiry opens a fresh socket and still works.
    EXPECT(h.relay->send_echo(kGuest, kLoopback, 0xbeef, 3, pattern(8, 3), 64, 70'000));
    EXPECT(h.run_until([&] { return h.replies.size() == 4; }));
    EXPECT(h.replies.back().id == 0xbeef && h.replies.back().seq == 3);
    EXPECT(h.finish());
    return {};
  });
}

TEST_CASE("icmp: IPv6 ping sockets relay an echo to ::1 and restore the guest's id",
          "[icmp][ipv6]") {
  run_in_private_netns([]() -> std::string {
    if (!have_ipv6_loopback()) return std::string(kSkipPrefix) + "no IPv6 loopback";
    EXPECT(allow_ping_sockets(true));  // net.ipv4.ping_group_range governs IPv6 too
    Harness h(Mode::kAuto);
    EXPECT(h.relay->active_mode() == Mode::kPingSocket);
    if (auto err = echo_round_trip(h, 1000, kV6); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 2);
    // IPv4 flows beside the IPv6 ones, each on its own sockets.
    if (auto err = echo_round_trip(h, 2000, kV4, h.relay->stats()); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 4);
    h.relay->expire(1000 + 60'001);
    EXPECT(h.relay->stats().sockets == 2);
    h.relay->expire(2000 + 60'001);
    EXPECT(h.relay->stats().sockets == 0);
    EXPECT(h.finish());
    return {};
  });
}

TEST_CASE("icmp: raw socket when ping sockets are not allowed", "[icmp]") {
  run_in_private_netns([]() -> std::string {
    EXPECT(allow_ping_sockets(false));
    Harness h(Mode::kAuto);
    EXPECT(h.relay->active_mode() == Mode::kRaw);
    if (auto err = echo_round_trip(h, 1000); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 1);

    // Someone else's ping on the host: its reply reaches our raw socket too
    // and must be ignored.
    int other = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    EXPECT(other >= 0);
    const unsigned char req[] = {8, 0, 0xe5, 0xca, 0x12, 0x34, 0, 1};  // id 0x1234 seq 1
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(kLoopback.value);
    EXPECT(::sendto(other, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(sizeof req));
    // Our own request afterwards: once its reply is in, the stranger's was seen.
    EXPECT(h.relay->send_echo(kGuest, kLoopback, 0x4242, 5, pattern(32, 5), 64, 2000));
    EXPECT(h.run_until([&] { return h.replies.size() >= 4; }));
    ::close(other);
    EXPECT(h.run_until([] { return false; }, 100) == false);  // nothing more arrives
    EXPECT(h.replies.size() == 4);
    EXPECT(h.replies.back().id == 0x4242 && h.replies.back().seq == 5);
    EXPECT(h.replies.back().guest == kGuest);

    h.relay->expire(2000 + 60'001);
    EXPECT(h.relay->stats().sockets == 0);
    EXPECT(h.finish());
    return {};
  });
}

TEST_CASE("icmp: IPv6 raw socket when ping sockets are not allowed", "[icmp][ipv6]") {
  run_in_private_netns([]() -> std::string {
    if (!have_ipv6_loopback()) return std::string(kSkipPrefix) + "no IPv6 loopback";
    EXPECT(allow_ping_sockets(false));
    Harness h(Mode::kAuto);
    EXPECT(h.relay->active_mode() == Mode::kRaw);
    if (auto err = echo_round_trip(h, 1000, kV6); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 1);

    // Someone else's ping: its reply reaches our raw socket too and must be
    // ignored. (The kernel fills in the ICMPv6 checksum.)
    int other = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    EXPECT(other >= 0);
    const unsigned char req[] = {128, 0, 0, 0, 0x12, 0x34, 0, 1};  // id 0x1234 seq 1
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_addr = in6addr_loopback;
    EXPECT(::sendto(other, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(sizeof req));
    EXPECT(h.relay->send_echo(kGuest6, kLoopback6, 0x4242, 5, pattern(32, 5), 64, 2000));
    EXPECT(h.run_until([&] { return h.replies.size() >= 4; }));
    ::close(other);
    EXPECT(h.run_until([] { return false; }, 100) == false);  // nothing more arrives
    EXPECT(h.replies.size() == 4);
    EXPECT(h.replies.back().id == 0x4242 && h.replies.back().seq == 5);
    EXPECT(h.replies.back().guest == kGuest6);
    EXPECT(h.replies.back().from == kLoopback6);

    // The IPv4 raw socket is separate; each closes when idle.
    if (auto err = echo_round_trip(h, 30'000, kV4, h.relay->stats()); !err.empty()) return err;
    EXPECT(h.relay->stats().sockets == 2);
    h.relay->expire(2000 + 60'001);
    EXPECT(h.relay->stats().sockets == 1);
    h.relay->expire(30'000 + 60'001);
    EXPECT(h.relay->stats().sockets == 0);
    EXPECT(h.finish());
    return {};
  });
}

TEST_CASE("icmp: no route is reported as destination unreachable, from the loop", "[icmp]") {
  for (Mode mode : {Mode::kPingSocket, Mode::kRaw}) {
    run_in_private_netns([mode]() -> std::string {
      EXPECT(allow_ping_sockets(true));
      Harness h(mode);
      EXPECT(h.relay->active_mode() == mode);
      EXPECT(h.relay->send_echo(kGuest, kNoRoute, 0x5555, 7, pattern(16, 7), 64, 0));
      EXPECT(h.errors.empty());  // not from inside send_echo
      EXPECT(h.run_until([&] { return !h.errors.empty(); }));
      const IcmpError& e = h.errors.front();
      EXPECT(e.type == 3);
      EXPECT(e.code == 0);  // net unreachable: no route at all
      EXPECT(e.guest == kGuest);
      EXPECT(e.dst == kNoRoute);
      EXPECT(e.id == 0x5555);
      EXPECT(e.seq == 7);
      EXPECT(h.replies.empty());
      EXPECT(h.relay->stats().errors == 1);
      EXPECT(h.finish());
      return {};
    });
    run_in_private_netns([mode]() -> std::string {
      if (!have_ipv6_loopback()) return std::string(kSkipPrefix) + "no IPv6 loopback";
      EXPECT(allow_ping_sockets(true));
      Harness h(mode);
      EXPECT(h.relay->send_echo(kGuest6, kNoRoute6, 0x5555, 7, pattern(16, 7), 64, 0));
      EXPECT(h.errors.empty());
      EXPECT(h.run_until([&] { return !h.errors.empty(); }));
      const IcmpError& e = h.errors.front();
      EXPECT(e.type == 1);  // ICMPv6 destination unreachable
      EXPECT(e.code == 0);  // no route
      EXPECT(e.guest == kGuest6);
      EXPECT(e.dst == kNoRoute6);
      EXPECT(e.id == 0x5555);
      EXPECT(e.seq == 7);
      EXPECT(h.replies.empty());
      EXPECT(h.finish());
      return {};
    });
  }
}

TEST_CASE("icmp: an ICMP error from the network reaches on_error", "[icmp]") {
  for (Mode mode : {Mode::kPingSocket, Mode::kRaw}) {
    run_in_private_netns([mode]() -> std::string {
      EXPECT(allow_ping_sockets(true));
      if (auto err = make_dead_neighbour(false); !err.empty()) return err;
      Harness h(mode);
      const Ipv4Addr dead(192, 0, 2, 2);
      EXPECT(h.relay->send_echo(kGuest, dead, 0x0a0b, 3, pattern(24, 3), 64, 0));
      EXPECT(h.run_until([&] { return !h.errors.empty(); }, 5000));
      const IcmpError& e = h.errors.front();
      EXPECT(e.type == 3);
      EXPECT(e.code == 1);  // host unreachable: neighbour resolution failed
      EXPECT(e.guest == kGuest);
      EXPECT(e.dst == dead);
      EXPECT(e.id == 0x0a0b);
      EXPECT(e.seq == 3);
      EXPECT(h.finish());
      return {};
    });
    run_in_private_netns([mode]() -> std::string {
      EXPECT(allow_ping_sockets(true));
      if (auto err = make_dead_neighbour(true); !err.empty()) return err;
      Harness h(mode);
      const Ipv6Addr dead = Ipv6Addr::from_groups({0x2001, 0xdb8, 0, 0, 0, 0, 0, 2});
      EXPECT(h.relay->send_echo(kGuest6, dead, 0x0a0b, 3, pattern(24, 3), 64, 0));
      EXPECT(h.run_until([&] { return !h.errors.empty(); }, 5000));
      const IcmpError& e = h.errors.front();
      EXPECT(e.type == 1);  // ICMPv6 destination unreachable
      EXPECT(e.code == 3);  // address unreachable: neighbour discovery failed
      EXPECT(e.guest == kGuest6);
      EXPECT(e.dst == dead);
      EXPECT(e.id == 0x0a0b);
      EXPECT(e.seq == 3);
      EXPECT(h.replies.empty());
      EXPECT(h.finish());
      return {};
    });
  }
}

TEST_CASE("icmp: destroying the relay with requests outstanding is clean", "[icmp]") {
  for (Mode mode : {Mode::kPingSocket, Mode::kRaw}) {
    run_in_private_netns([mode]() -> std::string {
      EXPECT(allow_ping_sockets(true));
      Harness h(mode);
      for (uint16_t i = 0; i < 8; ++i) {
        EXPECT(h.relay->send_echo(kGuest, kLoopback, static_cast<uint16_t>(100 + i), i,
                                  pattern(64, i), 64, 0));
      }
      EXPECT(h.relay->send_echo(kGuest, kNoRoute, 1, 1, {}, 64, 0));  // a queued local error
      if (have_ipv6_loopback()) {
        for (uint16_t i = 0; i < 4; ++i) {
          EXPECT(h.relay->send_echo(kGuest6, kLoopback6, static_cast<uint16_t>(200 + i), i,
                                    pattern(64, i), 64, 0));
        }
        EXPECT(h.relay->send_echo(kGuest6, kNoRoute6, 1, 1, {}, 64, 0));
      }
      ::usleep(50'000);  // replies now wait, unread, in the sockets
      EXPECT(h.finish());
      EXPECT(h.replies.empty());
      EXPECT(h.errors.empty());
      return {};
    });
  }
}

TEST_CASE("icmp: bad requests and an impossible relay are refused", "[icmp]") {
  run_in_private_netns([]() -> std::string {
    EXPECT(allow_ping_sockets(true));
    {
      Harness h(Mode::kPingSocket);
      std::vector<std::byte> huge(IcmpEchoRelay::kMaxPayload + 1);
      EXPECT(!h.relay->send_echo(kGuest, kLoopback, 1, 1, huge, 64, 0));
      EXPECT(h.relay->stats().dropped == 1);
      EXPECT(h.relay->stats().sockets == 0);
      // The largest allowed payload goes through (loopback MTU is 65536).
      std::vector<std::byte> max(IcmpEchoRelay::kMaxPayload, std::byte{0xab});
      EXPECT(h.relay->send_echo(kGuest, kLoopback, 1, 2, max, 0, 0));  // ttl 0 is raised to 1
      EXPECT(h.run_until([&] { return !h.replies.empty(); }));
      EXPECT(h.replies[0].payload == max);
      // Mixed families are a caller's bug: refused, not sent.
      EXPECT(!h.relay->send_echo(kGuest6, kLoopback, 1, 3, {}, 64, 0));
      EXPECT(!h.relay->send_echo(kGuest, kLoopback6, 1, 4, {}, 64, 0));
      EXPECT(h.relay->stats().dropped == 3);
      if (have_ipv6_loopback()) {
        std::vector<std::byte> huge6(IcmpEchoRelay::kMaxPayload6 + 1);
        EXPECT(!h.relay->send_echo(kGuest6, kLoopback6, 1, 1, huge6, 64, 0));
        EXPECT(h.relay->stats().dropped == 4);
        // The largest IPv6 payload goes through, fragmented on loopback;
        // hop limit 0 is raised to 1.
        std::vector<std::byte> max6(IcmpEchoRelay::kMaxPayload6, std::byte{0xcd});
        EXPECT(h.relay->send_echo(kGuest6, kLoopback6, 1, 2, max6, 0, 0));
        EXPECT(h.run_until([&] { return h.replies.size() >= 2; }));
        EXPECT(h.replies[1].payload == max6);
      }
      EXPECT(h.finish());
    }
    EXPECT(allow_ping_sockets(false));
    {
      Harness h(Mode::kPingSocket);  // ping sockets only, and they are refused
      EXPECT(h.relay->active_mode() == Mode::kAuto);
      EXPECT(!h.relay->send_echo(kGuest, kLoopback, 1, 1, {}, 64, 0));
      EXPECT(!h.relay->send_echo(kGuest, kLoopback, 1, 2, {}, 64, 0));
      EXPECT(h.relay->stats().requests == 0);
      EXPECT(h.finish());
    }
    return {};
  });
}

TEST_CASE("icmp: at most kMaxFlows ping sockets, least recently used evicted", "[icmp]") {
  run_in_private_netns([]() -> std::string {
    EXPECT(allow_ping_sockets(true));
    rlimit rl{};
    EXPECT(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max < 2048) return std::string(kSkipPrefix) + "RLIMIT_NOFILE too low";
    rl.rlim_cur = rl.rlim_max;
    EXPECT(::setrlimit(RLIMIT_NOFILE, &rl) == 0);

    Harness h(Mode::kPingSocket);
    const size_t n = IcmpEchoRelay::kMaxFlows + 1;
    for (size_t i = 0; i < n; ++i) {
      EXPECT(h.relay->send_echo(kGuest, kLoopback, static_cast<uint16_t>(i), 1, {}, 64, i));
      EXPECT(h.relay->stats().sockets == std::min(i + 1, IcmpEchoRelay::kMaxFlows));
    }
    // The newest flow works; flow 0 was the one evicted, and comes back.
    EXPECT(h.run_until([&] {
      for (const auto& r : h.replies)
        if (r.id == n - 1) return true;
      return false;
    }));
    EXPECT(h.relay->send_echo(kGuest, kLoopback, 0, 2, {}, 64, n));
    EXPECT(h.relay->stats().sockets == IcmpEchoRelay::kMaxFlows);
    EXPECT(h.run_until([&] {
      for (const auto& r : h.replies)
        if (r.id == 0 && r.seq == 2) return true;
      return false;
    }));
    EXPECT(h.finish());
    return {};
  });
}
