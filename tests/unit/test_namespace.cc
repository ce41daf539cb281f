// slipway::ns against the real kernel: a command started in a new namespace
// sees the configured eth0, and the TAP fd slipway keeps receives what the
// guest's kernel sends; attach adds a TAP to a namespace that already exists.
//
// Runs only where it can (root, or unprivileged user namespaces and a
// /dev/net/tun open to everyone); elsewhere each test WARNs and returns.
// The commands run by /bin/sh write their output to a temporary file named in
// their argv. ARP traffic is provoked with ping or, lacking it, bash's
// /dev/udp.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "netstack/ns/namespace.h"

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
// `target` arrives or `limit` passes.
bool saw_arp_request(int fd, const std::array<uint8_t, 6>& mac, uint32_t sender, uint32_t target,
                     std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  uint8_t frame[65536];
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
    ssize_t n = read(fd, frame, sizeof frame);
    if (n < 42) continue;
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
  GuestInterface iface;
  auto child = slipway::ns::spawn_in_new_namespace(iface, {"/bin/sh", "-c", kPath + provoke_arp("10.0.2.2")});
  bool seen = saw_arp_request(child.tap_fd, iface.mac, iface.address, iface.gateway, std::chrono::seconds(2));
  CHECK(seen);
  wait_child(child.pid);
  close(child.tap_fd);
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
    CHECK(saw_arp_request(fd, second.mac, second.address, 0x0a000302, std::chrono::seconds(4)));
  }
  wait_child(child.pid);
  std::string text = out.read();
  INFO(text);
  CHECK(text.find("inet 10.0.3.15/24") != std::string::npos);
  if (fd >= 0) close(fd);
  close(child.tap_fd);
}
