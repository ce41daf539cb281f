// slipway::ns against the real kernel: a command started in a new namespace
// sees the configured eth0, and the TAP fd slipway keeps receives what the
// guest's kernel sends; attach adds a TAP to a namespace that already exists.
//
// Runs only where it can (root, or unprivileged user namespaces and a
// /dev/net/tun open to everyone); elsewhere each test WARNs and returns.
// The commands run by /bin/sh write their output to a temporary file named in
// their argv. ARP traffic is provoked with ping or, lacking it, bash's
// /dev/udp. The IPv6 tests read /proc/net/if_inet6 ("ADDRESS IFINDEX
// PREFIXLEN SCOPE FLAGS NAME", hex) and `ip -6 route`; the SLAAC test plays
// the gateway with gateway::NdpResponder on a thread that reads the TAP fd.
// The SLAAC wait's /proc/net/if_inet6 line parser is also tested on text.
#include <algorithm>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "netstack/gateway/ndp_responder.h"
#include "netstack/ns/namespace.h"
#include "netstack/ns/slaac_wait.h"

namespace {

using slipway::ns::GuestInterface;
using Clock = std::chrono::steady_clock;

// Why namespaces cannot be tested here, or "" if they can.
std::string skip_reason() {
  if (access("/dev/net/tun", R_OK | W_OK) != 0) {
    return std::string("/dev/net/tun is not usable: ") + std::strerror(errno);
  }
  if (geteuid() == 0) return "";
  pid_t pid = fork();
  if (pid == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 ? 0 : 1);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "unprivileged user namespaces are not available";
  }
  return "";
}

#define SKIP_UNLESS_NAMESPACES_WORK()                                       \
  do {                                                                      \
    std::string reason = skip_reason();                                     \
    if (!reason.empty()) {                                                  \
      WARN("skipping namespace test: " << reason);                          \
      return;                                                               \
    }                                                                       \
  } while (false)

struct TempFile {
  std::string path;
  TempFile() {
    char name[] = "/tmp/slipway-ns-test.XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
  }
  ~TempFile() { unlink(path.c_str()); }
  std::string read() const {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

// Waits for the child, killing it after `limit`; returns its exit status or
// -signal.
int wait_child(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = Clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Reads frames from the TAP fd until an ARP request from `mac`/`sender` for
// `target` arrives or `limit` passes. With `vnet_header` (the TAP was made
// with offload), each frame follows a kTapVnetHeaderLen-byte virtio-net
// header, which for an ARP request must say "nothing to do" (all zero).
bool saw_arp_request(int fd, const std::array<uint8_t, 6>& mac, uint32_t sender, uint32_t target,
                     std::chrono::milliseconds limit, bool vnet_header) {
  auto deadline = Clock::now() + limit;
  uint8_t buffer[65536 + slipway::ns::kTapVnetHeaderLen];
  const size_t header = vnet_header ? slipway::ns::kTapVnetHeaderLen : 0;
  uint8_t* frame = buffer + header;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
    ssize_t got = read(fd, buffer, sizeof buffer);
    ssize_t n = got - static_cast<ssize_t>(header);
    if (n < 42) continue;
    if (std::any_of(buffer, buffer + header, [](uint8_t b) { return b != 0; })) continue;
    auto be16 = [&](size_t off) { return static_cast<unsigned>(frame[off] << 8 | frame[off + 1]); };
    auto be32 = [&](size_t off) {
      return static_cast<uint32_t>(frame[off]) << 24 | static_cast<uint32_t>(frame[off + 1]) << 16 |
             static_cast<uint32_t>(frame[off + 2]) << 8 | frame[off + 3];
    };
    if (be16(12) != 0x0806 || be16(20) != 1) continue;  // not an ARP request
    if (std::memcmp(frame + 6, mac.data(), 6) != 0 || std::memcmp(frame + 22, mac.data(), 6) != 0) continue;
    if (be32(28) == sender && be32(38) == target) return true;
  }
  return false;
}

// Shell words that make the guest's kernel resolve `ip` with ARP.
std::string provoke_arp(const std::string& ip) {
  return "(ping -c1 -W1 " + ip + " || bash -c 'echo x > /dev/udp/" + ip + "/9') >/dev/null 2>&1; ";
}

const std::string kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; ";

using slipway::wire::Ipv6Addr;

Ipv6Addr v6(const char* text) {
  auto a = Ipv6Addr::parse(text);
  REQUIRE(a);
  return *a;
}

// The /proc/net/if_inet6 line for `address` on `dev`, or "".
std::string if_inet6_line(const std::string& text, const Ipv6Addr& address, const std::string& dev) {
  static const char* hex = "0123456789abcdef";
  std::string want;
  for (uint8_t b : address.octets) {
    want += hex[b >> 4];
    want += hex[b & 0xf];
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(want + " ", 0) == 0 && line.size() > dev.size() &&
        line.compare(line.size() - dev.size() - 1, std::string::npos, " " + dev) == 0) {
      return line;
    }
  }
  return "";
}

// The FLAGS field (the fifth) of an if_inet6 line.
unsigned if_inet6_flags(const std::string& line) {
  std::istringstream in(line);
  std::string address, index, prefix, scope, flags;
  in >> address >> index >> prefix >> scope >> flags;
  return static_cast<unsigned>(std::stoul(flags, nullptr, 16));
}

bool has_line_for(const std::string& text, const std::string& dev) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > dev.size() && line.compare(line.size() - dev.size() - 1, std::string::npos, " " + dev) == 0) {
      return true;
    }
  }
  return false;
}

// An IPv6 frame (EtherType 0x86dd) carrying ICMPv6 (next header 58) of `type`,
// with no extension headers, as the kernel sends router solicitations.
bool is_icmpv6(const uint8_t* frame, size_t n, uint8_t type) {
  return n >= 14 + 40 + 4 && frame[12] == 0x86 && frame[13] == 0xdd && frame[14 + 6] == 58 && frame[14 + 40] == type;
}

// Plays the gateway's IPv6 side on a TAP fd: answers every router
// solicitation with the NdpResponder's RA for fd00::/64. Counts the frames
// it saw; stops on stop() or after 10 s.
class RouterOnTap {
 public:
  explicit RouterOnTap(int fd) : fd_(fd), thread_([this] { run(); }) {}
  ~RouterOnTap() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const slipway::gateway::NdpResponder& responder() const { return responder_; }
  int solicitations() const { return solicitations_; }
  int ipv6_frames() const { return ipv6_frames_; }

 private:
  void run() {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    uint8_t frame[65536];
    while (!stopping_ && Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = read(fd_, frame, sizeof frame);
      if (n < 14) continue;
      if (frame[12] == 0x86 && frame[13] == 0xdd) ++ipv6_frames_;
      if (!is_icmpv6(frame, static_cast<size_t>(n), 133)) continue;
      ++solicitations_;
      auto ra = responder_.unsolicited_ra();
      ssize_t written = write(fd_, ra.data(), ra.size());
      (void)written;
    }
  }

  int fd_;
  slipway::gateway::NdpResponder responder_{slipway::gateway::NdpResponderConfig{}};
  std::atomic<bool> stopping_{false};
  std::atomic<int> solicitations_{0};
  std::atomic<int> ipv6_frames_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("spawn: the command sees the configured interface, route and resolv.conf", "[namespace]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  std::ifstream host_resolv("/etc/resolv.conf");
  std::stringstream host_before;
  host_before << host_resolv.rdbuf();

  GuestInterface iface;
  iface.search = {"example.org", "corp.example"};
  auto child = slipway::ns::spawn_in_new_namespace(
      iface, {"/bin/sh", "-c",
              kPath + "exec >" + out.path +
                  " 2>&1; cat /sys/class/net/eth0/mtu; ip -4 addr show eth0; ip route; cat /etc/resolv.conf"});
  REQUIRE(child.pid > 0);
  REQUIRE(child.tap_fd >= 0);
  CHECK((fcntl(child.tap_fd, F_GETFL) & O_NONBLOCK) != 0);
  CHECK((fcntl(child.tap_fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(wait_child(child.pid) == 0);
  close(child.tap_fd);

  std::string text = out.read();
  INFO(text);
  CHECK(text.rfind("65520\n", 0) == 0);
  CHECK(text.find("inet 10.0.2.15/24") != std::string::npos);
  CHECK(text.find("default via 10.0.2.2 dev eth0") != std::string::npos);
  CHECK(text.find("nameserver 10.0.2.3\n") != std::string::npos);
  CHECK(text.find("search example.org corp.example\n") != std::string::npos);

  std::ifstream host_resolv_after("/etc/resolv.conf");
  std::stringstream host_after;
  host_after << host_resolv_after.rdbuf();
  CHECK(host_after.str() == host_before.str());
}

TEST_CASE("spawn: the TAP fd receives the guest's ARP request for the gateway", "[namespace]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  for (bool offload : {true, false}) {
    INFO("offload " << offload);
    GuestInterface iface;
    iface.offload = offload;
    auto child = slipway::ns::spawn_in_new_namespace(iface, {"/bin/sh", "-c", kPath + provoke_arp("10.0.2.2")});
    bool seen =
        saw_arp_request(child.tap_fd, iface.mac, iface.address, iface.gateway, std::chrono::seconds(2), offload);
    CHECK(seen);
    wait_child(child.pid);
    close(child.tap_fd);
  }
}

TEST_CASE("spawn: a command that cannot be run exits 127", "[namespace]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  GuestInterface iface;
  iface.configure = false;
  auto child = slipway::ns::spawn_in_new_namespace(iface, {"/nonexistent/slipway-test-command"});
  CHECK(wait_child(child.pid) == 127);
  close(child.tap_fd);
}

TEST_CASE("spawn: bad configuration is rejected before anything starts", "[namespace]") {
  GuestInterface iface;
  iface.name = "a-name-far-too-long-for-linux";
  CHECK_THROWS_AS(slipway::ns::spawn_in_new_namespace(iface, {"true"}), std::runtime_error);
  CHECK_THROWS_AS(slipway::ns::spawn_in_new_namespace(GuestInterface{}, {}), std::runtime_error);
  CHECK_THROWS_AS(slipway::ns::open_tap_in_namespace("/nonexistent/netns", GuestInterface{}), std::runtime_error);
}

TEST_CASE("attach: a TAP added to an existing namespace carries its frames", "[namespace]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  // The command waits (at most 5 s) for eth1 to appear, then talks on it.
  auto child = slipway::ns::spawn_in_new_namespace(
      GuestInterface{},
      {"/bin/sh", "-c",
       kPath + "i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; " +
           "ip -4 addr show eth1 >" + out.path + " 2>&1; " + provoke_arp("10.0.3.2")});
  GuestInterface second;
  second.name = "eth1";
  second.mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  second.address = 0x0a00030f;  // 10.0.3.15
  second.gateway = 0;           // eth0 has the default route
  int fd = -1;
  try {
    fd = slipway::ns::open_tap_in_namespace(std::to_string(child.pid), second);
  } catch (const std::exception& e) {
    FAIL_CHECK(e.what());
  }
  if (fd >= 0) {
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(saw_arp_request(fd, second.mac, second.address, 0x0a000302, std::chrono::seconds(4), second.offload));
  }
  wait_child(child.pid);
  std::string text = out.read();
  INFO(text);
  CHECK(text.find("inet 10.0.3.15/24") != std::string::npos);
  if (fd >= 0) close(fd);
  close(child.tap_fd);
}

TEST_CASE("spawn: IPv6 with a static address, a link-local gateway and an IPv6 nameserver", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  GuestInterface iface;
  iface.ipv6 = true;
  iface.ipv6_slaac = false;  // as in mirrored mode: nothing to wait for
  iface.ipv6_addresses = {{v6("2001:db8::5"), 64}};
  iface.ipv6_gateway = v6("fe80::1");
  iface.nameservers = {"fd00::3"};
  auto child = slipway::ns::spawn_in_new_namespace(
      iface, {"/bin/sh", "-c",
              kPath + "exec >" + out.path + " 2>&1; cat /proc/net/if_inet6; ip -6 route; cat /etc/resolv.conf"});
  CHECK(wait_child(child.pid) == 0);
  close(child.tap_fd);

  std::string text = out.read();
  INFO(text);
  std::string line = if_inet6_line(text, v6("2001:db8::5"), "eth0");
  REQUIRE(!line.empty());
  CHECK(line.find(" 40 00 ") != std::string::npos);  // /64, global scope
  CHECK((if_inet6_flags(line) & 0x40) == 0);         // not tentative: no DAD
  CHECK(!if_inet6_line(text, Ipv6Addr::link_local_from_mac({iface.mac}), "eth0").empty());
  CHECK(text.find("2001:db8::/64 dev eth0") != std::string::npos);
  CHECK(text.find("default via fe80::1 dev eth0") != std::string::npos);
  CHECK(text.find("nameserver 10.0.2.3\nnameserver fd00::3\n") != std::string::npos);
}

TEST_CASE("spawn: with IPv6 off the interface has no IPv6 address and sends no IPv6", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  GuestInterface iface;  // ipv6 = false
  iface.offload = false;  // RouterOnTap reads plain frames
  auto child = slipway::ns::spawn_in_new_namespace(
      iface, {"/bin/sh", "-c", "cat /proc/net/if_inet6 >" + out.path + "; sleep 0.5"});
  RouterOnTap router(child.tap_fd);
  CHECK(wait_child(child.pid) == 0);
  router.stop();
  close(child.tap_fd);

  std::string text = out.read();
  INFO(text);
  CHECK(!has_line_for(text, "eth0"));
  CHECK(!if_inet6_line(text, v6("::1"), "lo").empty());  // IPv6 itself works
  CHECK(router.ipv6_frames() == 0);
}

TEST_CASE("spawn: SLAAC from the gateway's RA before the command starts", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  GuestInterface iface;
  iface.ipv6 = true;  // ipv6_slaac is on by default
  iface.offload = false;  // RouterOnTap reads and writes plain frames
  iface.slaac_wait = std::chrono::milliseconds(8000);
  // The command's first action is to read the addresses: they must be there
  // already.
  auto child = slipway::ns::spawn_in_new_namespace(
      iface, {"/bin/sh", "-c", kPath + "exec >" + out.path + " 2>&1; cat /proc/net/if_inet6; ip -6 route"});
  auto started = Clock::now();
  RouterOnTap router(child.tap_fd);
  CHECK(wait_child(child.pid) == 0);
  auto took = Clock::now() - started;
  router.stop();
  close(child.tap_fd);

  std::string text = out.read();
  INFO(text);
  CHECK(router.solicitations() >= 1);
  std::string line = if_inet6_line(text, v6("fd00::5054:ff:fe12:3456"), "eth0");
  REQUIRE(!line.empty());
  CHECK((if_inet6_flags(line) & 0xc8) == 0);  // not tentative, permanent or failed
  CHECK(text.find("default via " + router.responder().link_local().to_string() + " dev eth0") != std::string::npos);
  CHECK(text.find("fd00::/64 dev eth0") != std::string::npos);
  CHECK(took < std::chrono::seconds(5));  // the RA ended the wait, not the timeout
}

TEST_CASE("spawn: without an RA the command starts after slaac_wait with a warning", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out, err;
  GuestInterface iface;
  iface.ipv6 = true;
  iface.slaac_wait = std::chrono::milliseconds(300);
  // The child writes the warning to the stderr it inherits: make that a
  // file for the moment of the fork.
  int saved = dup(STDERR_FILENO);
  int file = open(err.path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  dup2(file, STDERR_FILENO);
  close(file);
  auto start = Clock::now();
  slipway::ns::Child child;
  try {
    child = slipway::ns::spawn_in_new_namespace(iface, {"/bin/sh", "-c", "echo started >" + out.path});
  } catch (...) {
    dup2(saved, STDERR_FILENO);
    close(saved);
    throw;
  }
  dup2(saved, STDERR_FILENO);
  close(saved);
  CHECK(wait_child(child.pid) == 0);  // nobody reads the TAP: no RA
  auto took = Clock::now() - start;
  close(child.tap_fd);

  CHECK(out.read() == "started\n");
  INFO(err.read());
  CHECK(err.read().find("slipway: warning: eth0 has no IPv6 address from a router advertisement after 300 ms") !=
        std::string::npos);
  CHECK(took >= std::chrono::milliseconds(290));
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("attach: IPv6 sysctls and a static address on the new TAP", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  TempFile out;
  // The command waits (at most 5 s) for eth1 to have its address.
  auto child = slipway::ns::spawn_in_new_namespace(
      GuestInterface{},
      {"/bin/sh", "-c",
       "i=0; while ! grep -q '^20010db8000100000000000000000005 ' /proc/net/if_inet6 && [ $i -lt 50 ]; do "
       "sleep 0.1; i=$((i+1)); done; cat /proc/net/if_inet6 /proc/sys/net/ipv6/conf/eth1/accept_dad "
       "/proc/sys/net/ipv6/conf/eth1/accept_ra >" +
           out.path});
  GuestInterface second;
  second.name = "eth1";
  second.mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  second.address = 0x0a00030f;  // 10.0.3.15
  second.gateway = 0;
  second.ipv6 = true;
  second.ipv6_slaac = false;
  second.ipv6_addresses = {{v6("2001:db8:1::5"), 64}};
  int fd = -1;
  try {
    fd = slipway::ns::open_tap_in_namespace(std::to_string(child.pid), second);
  } catch (const std::exception& e) {
    FAIL_CHECK(e.what());
  }
  wait_child(child.pid);
  std::string text = out.read();
  INFO(text);
  std::string line = if_inet6_line(text, v6("2001:db8:1::5"), "eth1");
  REQUIRE(!line.empty());
  CHECK((if_inet6_flags(line) & 0x40) == 0);
  CHECK(!has_line_for(text, "eth0"));  // the namespace's own eth0 has IPv6 off
  CHECK(text.find("\n0\n0\n") != std::string::npos);  // accept_dad, accept_ra (static only: no RAs)
  if (fd >= 0) close(fd);
  close(child.tap_fd);
}

TEST_CASE("spawn: an IPv6 step the kernel refuses is reported with what and why", "[namespace][ipv6]") {
  SKIP_UNLESS_NAMESPACES_WORK();
  GuestInterface iface;
  iface.ipv6 = true;
  iface.ipv6_slaac = false;
  iface.ipv6_gateway = v6("2001:db8:99::1");  // on no connected prefix
  try {
    auto child = slipway::ns::spawn_in_new_namespace(iface, {"true"});
    wait_child(child.pid);
    close(child.tap_fd);
    FAIL("the route was accepted");
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find("cannot add an IPv6 default route via 2001:db8:99::1 dev eth0: ") == 0);
  }
}

TEST_CASE("spawn: bad IPv6 configuration is rejected before anything starts", "[namespace][ipv6]") {
  auto rejects = [](const GuestInterface& iface) {
    CHECK_THROWS_AS(slipway::ns::spawn_in_new_namespace(iface, {"true"}), std::runtime_error);
  };
  GuestInterface iface;
  iface.ipv6 = true;
  iface.ipv6_addresses = {{v6("2001:db8::5"), 0}};
  rejects(iface);
  iface.ipv6_addresses = {{v6("2001:db8::5"), 129}};
  rejects(iface);
  iface.ipv6_addresses = {{v6("ff02::1"), 64}};
  rejects(iface);
  iface.ipv6_addresses = {};
  iface.mtu = 1200;
  rejects(iface);
  iface.mtu = 1500;
  iface.slaac_wait = std::chrono::minutes(5);
  rejects(iface);

  GuestInterface off;  // addresses while IPv6 is off
  off.ipv6_addresses = {{v6("2001:db8::5"), 64}};
  rejects(off);

  for (const char* bad : {"fd00::3 ", "nameserver", "10.0.2", "", "fd00::3%eth0"}) {
    GuestInterface ns;
    ns.nameservers = {bad};
    INFO(bad);
    rejects(ns);
  }
}

TEST_CASE("SLAAC wait: which /proc/net/if_inet6 lines are a ready address from an RA", "[namespace][ipv6]") {
  using slipway::ns::is_ready_slaac_address;
  auto ready = [](const std::string& line, const char* name = "eth0") {
    return is_ready_slaac_address(line.data(), line.size(), name);
  };
  // ADDRESS IFINDEX PREFIXLEN SCOPE FLAGS NAME, as the kernel writes them.
  CHECK(ready("fd000000000000005054fffe12345600 02 40 00 00     eth0"));
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 40     eth0"));  // tentative
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 08     eth0"));  // DAD failed
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 80     eth0"));  // permanent (static)
  CHECK_FALSE(ready("fe800000000000005054fffe12345600 02 40 20 00     eth0"));  // link scope
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 00     eth1"));  // another interface
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 00     eth0", "eth"));
  CHECK_FALSE(ready("fd00000000000000 02 40 00 00 eth0"));                         // short address
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00 zz     eth0"));  // not hex
  CHECK_FALSE(ready("fd000000000000005054fffe12345600 02 40 00"));              // cut short
  CHECK_FALSE(ready(""));
}
