// slipway::ns::read_host_network() against the real kernel, and the
// resolv.conf parser with text.
//
// Each kernel test forks a child that unshare()s a fresh network namespace
// (needs root or CAP_NET_ADMIN; elsewhere the test WARNs and returns), builds
// the host's network there with `ip` commands, calls read_host_network() and
// writes what it found as one line of text to a pipe. Nothing is created in
// the test runner's own namespace; the namespace dies with the child.
//
// The links are dummy devices where the kernel has them and veth pairs (both
// ends up, so the link has carrier) where it does not; either way they are
// named uplink0, uplink1.
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "netstack/ns/host_network.h"

namespace {

using slipway::ns::HostNetwork;
using slipway::ns::parse_nameservers;
using Strings = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

const std::string kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; ";

struct TempResolvConf {
  std::string path;
  explicit TempResolvConf(const std::string& text) {
    char name[] = "/tmp/slipway-host-network-test.XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~TempResolvConf() { unlink(path.c_str()); }
};

// Shell words that create link `name` (dummy, else a veth pair with an up
// peer `name`p).
std::string add_link(const std::string& name) {
  return "{ ip link add " + name + " type dummy 2>/dev/null || { ip link add " + name + " type veth peer name " +
         name + "p && ip link set " + name + "p up; }; } && ";
}

// One line: what read_host_network() found, for comparison as a whole.
std::string describe(const HostNetwork& net) {
  auto join = [](const Strings& words) {
    std::string s;
    for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
    return s.empty() ? std::string("-") : s;
  };
  Strings v4, v6;
  for (const auto& a : net.ipv4) v4.push_back(a.address.to_string() + "/" + std::to_string(a.prefix));
  for (const auto& a : net.ipv6) v6.push_back(a.address.to_string() + "/" + std::to_string(a.prefix));
  bool index_ok = net.ifindex != 0 && if_nametoindex(net.interface.c_str()) == net.ifindex;
  return net.interface + (index_ok ? "" : " (wrong index)") + " mtu " + std::to_string(net.mtu) + " | v4 " +
         join(v4) + " | gw4 " + (net.gateway4 ? net.gateway4->to_string() : "-") + " | v6 " + join(v6) + " | gw6 " +
         (net.gateway6 ? net.gateway6->to_string() : "-") + " | dns " + join(net.nameservers);
}

// In a child in a new network namespace: runs `setup` with /bin/sh, then
// read_host_network(resolv_conf). Returns describe() of the result, "error:
// <what()>" if it threw, or "skip: <why>" if the namespace could not be set
// up here.
std::string read_in_new_namespace(const std::string& setup, const std::string& resolv_conf) {
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    std::string line;
    try {
      if (unshare(CLONE_NEWNET) != 0) {
        line = std::string("skip: unshare(CLONE_NEWNET): ") + std::strerror(errno);
      } else if (int rc = std::system((kPath + "ip link set lo up && " + setup).c_str()); rc != 0) {
        line = "skip: setup commands failed (status " + std::to_string(rc) + ")";
      } else {
        line = describe(slipway::ns::read_host_network(resolv_conf));
      }
    } catch (const std::exception& e) {
      line = std::string("error: ") + e.what();
    } catch (...) {
      line = "error: unknown exception";
    }
    line += "\n";
    ssize_t ignored = write(fds[1], line.data(), line.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

#define READ_OR_SKIP(result, setup, resolv_conf)               \
  std::string result = read_in_new_namespace(setup, resolv_conf); \
  if (result.rfind("skip: ", 0) == 0) {                        \
    WARN("skipping host network test: " << result.substr(6));  \
    return;                                                    \
  }

}  // namespace

TEST_CASE("parse_nameservers: nameserver lines in order", "[host_network]") {
  CHECK(parse_nameservers("nameserver 192.0.2.53\nnameserver 2001:db8::53\n") == Strings{"192.0.2.53", "2001:db8::53"});
  CHECK(parse_nameservers("") == Strings{});
  CHECK(parse_nameservers("search example.org\noptions edns0\n") == Strings{});
  // No final newline, CRLF line ends, tabs and leading blanks, words after the address.
  CHECK(parse_nameservers("nameserver 192.0.2.1") == Strings{"192.0.2.1"});
  CHECK(parse_nameservers("nameserver 192.0.2.1\r\nnameserver\t192.0.2.2\r\n") == Strings{"192.0.2.1", "192.0.2.2"});
  CHECK(parse_nameservers("  nameserver   192.0.2.3   extra words\n") == Strings{"192.0.2.3"});
  // Duplicates are kept, and there is no limit of three.
  CHECK(parse_nameservers("nameserver 192.0.2.1\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver ::1\n") ==
        Strings{"192.0.2.1", "192.0.2.1", "192.0.2.2", "::1"});
}

TEST_CASE("parse_nameservers: comments", "[host_network]") {
  CHECK(parse_nameservers("# nameserver 192.0.2.1\n; nameserver 192.0.2.2\nnameserver 192.0.2.3 # local\n") ==
        Strings{"192.0.2.3"});
  CHECK(parse_nameservers("nameserver 192.0.2.4;comment\nnameserver #192.0.2.5\n") == Strings{"192.0.2.4"});
  CHECK(parse_nameservers("  # indented comment nameserver 192.0.2.6\n") == Strings{});
}

TEST_CASE("parse_nameservers: invalid entries are skipped", "[host_network]") {
  CHECK(parse_nameservers("nameserver\n"
                          "nameserver dns.example.org\n"
                          "nameserver 192.0.2\n"
                          "nameserver 192.0.2.256\n"
                          "nameserver 192.0.2.010\n"
                          "nameserver 2001:db8::zz\n"
                          "nameserver 192.0.2.1%eth0\n"
                          "nameservers 192.0.2.7\n"
                          "Nameserver 192.0.2.8\n"
                          "nameserver 192.0.2.9\n") == Strings{"192.0.2.9"});
}

TEST_CASE("parse_nameservers: IPv6 forms and zone indexes", "[host_network]") {
  CHECK(parse_nameservers("nameserver fe80::1%eth0\nnameserver fe80::2%\nnameserver fe80::3%averyveryverylongname\n"
                          "nameserver ::ffff:192.0.2.1\nnameserver 2001:DB8:0:0::1\n") ==
        Strings{"fe80::1%eth0", "::ffff:192.0.2.1", "2001:DB8:0:0::1"});
}

TEST_CASE("read_host_network: mirrors the interface of the IPv4 default route", "[host_network]") {
  TempResolvConf resolv("# generated\nsearch example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"
                        "nameserver not-an-address\n");
  READ_OR_SKIP(result,
               add_link("uplink0") +
                   "ip link set uplink0 mtu 1400 up && "
                   "ip addr add 192.0.2.10/24 dev uplink0 && "
                   "ip addr add 192.0.2.11/24 dev uplink0 && "  // a secondary, listed after its primary
                   "ip -6 addr add 2001:db8::20/64 dev uplink0 nodad preferred_lft 0 && "  // deprecated
                   "ip -6 addr add 2001:db8::10/64 dev uplink0 nodad && "
                   "ip route add default via 192.0.2.1 && "
                   "ip -6 route add default via fe80::1 dev uplink0",
               resolv.path);
  // The link-local address the kernel gave uplink0 and the deprecated
  // 2001:db8::20 are left out.
  CHECK(result ==
        "uplink0 mtu 1400 | v4 192.0.2.10/24 192.0.2.11/24 | gw4 192.0.2.1 | v6 2001:db8::10/64 | gw6 fe80::1 | "
        "dns 192.0.2.53 2001:db8::53");
}

TEST_CASE("read_host_network: lowest metric wins; gateways only from that interface", "[host_network]") {
  TempResolvConf resolv("");
  READ_OR_SKIP(result,
               add_link("uplink0") + add_link("uplink1") +
                   "ip link set uplink0 up && ip link set uplink1 mtu 9000 up && "
                   "ip addr add 192.0.2.10/24 dev uplink0 && "
                   "ip addr add 198.51.100.10/24 dev uplink1 && "
                   "ip -6 addr add 2001:db8:1::10/64 dev uplink1 nodad preferred_lft 0 && "  // only deprecated ones
                   "ip route add default via 192.0.2.1 dev uplink0 metric 200 && "
                   "ip route add default via 198.51.100.1 dev uplink1 metric 100 && "
                   "ip -6 route add default via fe80::1 dev uplink0",
               resolv.path);
  // uplink1 has the better IPv4 default; the IPv6 default on uplink0 is not
  // its gateway. With no other IPv6 address, the deprecated one is kept.
  CHECK(result ==
        "uplink1 mtu 9000 | v4 198.51.100.10/24 | gw4 198.51.100.1 | v6 2001:db8:1::10/64 | gw6 - | dns -");
}

TEST_CASE("read_host_network: an IPv6-only host uses the IPv6 default route's interface", "[host_network]") {
  TempResolvConf resolv("nameserver 2001:db8::53\n");
  READ_OR_SKIP(result,
               add_link("uplink0") + add_link("uplink1") +
                   "ip link set uplink0 up && ip link set uplink1 mtu 1280 up && "
                   "ip -6 addr add 2001:db8::10/64 dev uplink1 nodad && "
                   "ip -6 addr add fd00::10/64 dev uplink1 nodad && "  // ULAs are global scope
                   "ip -6 route add default via fe80::1 dev uplink1",
               resolv.path);
  // The kernel lists IPv6 addresses newest first.
  CHECK(result == "uplink1 mtu 1280 | v4 - | gw4 - | v6 fd00::10/64 2001:db8::10/64 | gw6 fe80::1 | dns 2001:db8::53");
}

TEST_CASE("read_host_network: no default route is an error that says so", "[host_network]") {
  TempResolvConf resolv("nameserver 192.0.2.53\n");
  READ_OR_SKIP(result,
               add_link("uplink0") +
                   "ip link set uplink0 up && ip addr add 192.0.2.10/24 dev uplink0 && "
                   "ip route add 198.51.100.0/24 via 192.0.2.1 && "
                   "ip -6 addr add 2001:db8::10/64 dev uplink0 nodad",
               resolv.path);
  CHECK(result.rfind("error: ", 0) == 0);
  CHECK_THAT(result, Catch::Contains("mirrored mode needs a default route on the host"));
}

TEST_CASE("read_host_network: a missing resolv.conf gives no nameservers", "[host_network]") {
  READ_OR_SKIP(result,
               add_link("uplink0") +
                   "ip link set uplink0 up && ip addr add 192.0.2.10/24 dev uplink0 && "
                   "ip route add default dev uplink0",  // no gateway, as on a point-to-point link
               "/nonexistent/resolv.conf");
  CHECK(result == "uplink0 mtu 1500 | v4 192.0.2.10/24 | gw4 - | v6 - | gw6 - | dns -");
}
