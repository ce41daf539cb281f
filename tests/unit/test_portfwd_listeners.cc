// slipway::portfwd listener discovery against the real kernel: a forked
// child in its own network namespace binds listeners; the parent sees them
// through a sock_diag socket opened in that namespace, and sees one go after
// the child closes it. Also the dump parser on hand-made (and broken) netlink
// bytes, and the listener -> forward policy.
//
// The namespace test needs root (unshare(CLONE_NEWNET) in the child);
// elsewhere it WARNs and returns.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "portfwd/listeners.h"

using slipway::portfwd::DumpStatus;
using slipway::portfwd::Listener;
using slipway::portfwd::Protocol;

namespace {

// Child side: system calls only. Binds, reports the four ports over `out`,
// then waits for commands on `in`: 'c' closes the first listener, 'q' exits.
[[noreturn]] void namespace_child(int in, int out) {
  auto die = [] { _exit(1); };
  if (unshare(CLONE_NEWNET) < 0) die();
  int ctl = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  if (ctl < 0 || ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0) die();
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0) die();

  auto bind4 = [&](int type, uint32_t addr) {
    int fd = socket(AF_INET, type, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(addr);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) < 0) die();
    if (type == SOCK_STREAM && listen(fd, 8) < 0) die();
    return fd;
  };
  int fds[4];
  fds[0] = bind4(SOCK_STREAM, INADDR_ANY);
  fds[1] = bind4(SOCK_STREAM, INADDR_LOOPBACK);
  fds[2] = socket(AF_INET6, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fds[2], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_any;
  if (fds[2] < 0 || bind(fds[2], reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) < 0 || listen(fds[2], 8) < 0) die();
  fds[3] = bind4(SOCK_DGRAM, INADDR_ANY);
  // A connected UDP socket and an accepted-style TCP client must not show.
  int connected = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  peer.sin_port = htons(9);
  if (connected < 0 || connect(connected, reinterpret_cast<sockaddr*>(&peer), sizeof peer) < 0) die();

  uint16_t ports[4];
  for (int i = 0; i < 4; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fds[i], reinterpret_cast<sockaddr*>(&ss), &len);
    ports[i] = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  if (write(out, ports, sizeof ports) != sizeof ports) die();
  char command = 0;
  while (read(in, &command, 1) == 1) {
    if (command == 'c') {
      close(fds[0]);
      if (write(out, "k", 1) != 1) die();
    } else {
      break;
    }
  }
  _exit(0);
}

Listener make(Protocol proto, int family, const char* address, uint16_t port) {
  return Listener{proto, family, address, port};
}

}  // namespace

TEST_CASE("portfwd listeners: sock_diag in a child's network namespace", "[portfwd]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root to create a network namespace in a child");
    return;
  }
  int to_child[2], from_child[2];
  REQUIRE(pipe(to_child) == 0);
  REQUIRE(pipe(from_child) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    namespace_child(to_child[0], from_child[1]);
  }
  close(to_child[0]);
  close(from_child[1]);
  struct Reaper {
    pid_t pid;
    int fd;
    ~Reaper() {
      close(fd);  // EOF: the child exits
      int status = 0;
      waitpid(pid, &status, 0);
    }
  } reaper{pid, to_child[1]};

  uint16_t ports[4] = {};
  REQUIRE(read(from_child[0], ports, sizeof ports) == static_cast<ssize_t>(sizeof ports));

  const int diag = slipway::portfwd::open_sock_diag_in_netns(std::to_string(pid));
  REQUIRE(diag >= 0);
  std::vector<Listener> expected{
      make(Protocol::kTcp, AF_INET, "0.0.0.0", ports[0]),
      make(Protocol::kTcp, AF_INET, "127.0.0.1", ports[1]),
      make(Protocol::kTcp, AF_INET6, "::", ports[2]),
      make(Protocol::kUdp, AF_INET, "0.0.0.0", ports[3]),
  };
  std::sort(expected.begin(), expected.end());
  auto listeners = slipway::portfwd::list_listeners(diag);
  for (const auto& l : listeners) UNSCOPED_INFO(slipway::portfwd::to_string(l));
  CHECK(listeners == expected);

  // The socket keeps answering for the child's namespace.
  REQUIRE(write(to_child[1], "c", 1) == 1);
  char ack = 0;
  REQUIRE(read(from_child[0], &ack, 1) == 1);
  expected.erase(std::find(expected.begin(), expected.end(), make(Protocol::kTcp, AF_INET, "0.0.0.0", ports[0])));
  CHECK(slipway::portfwd::list_listeners(diag) == expected);
  close(diag);
  close(from_child[0]);
}

TEST_CASE("portfwd listeners: opening a bad namespace throws a clear error", "[portfwd]") {
  CHECK_THROWS_WITH(slipway::portfwd::open_sock_diag_in_netns("/nonexistent/ns"),
                    Catch::Contains("cannot open network namespace /nonexistent/ns"));
  CHECK_THROWS_WITH(slipway::portfwd::open_sock_diag_in_netns("/proc/self/ns/uts"),
                    Catch::Contains("is not a network namespace"));
  CHECK_THROWS(slipway::portfwd::open_sock_diag_in_netns(""));
}

namespace {

// One netlink message: header + payload, padded to NLMSG_ALIGN.
void append_message(std::vector<std::byte>& out, uint16_t type, uint32_t seq, const void* payload, size_t size,
                    uint32_t length_override = 0) {
  nlmsghdr header{};
  header.nlmsg_len = length_override != 0 ? length_override : static_cast<uint32_t>(NLMSG_LENGTH(size));
  header.nlmsg_type = type;
  header.nlmsg_seq = seq;
  const size_t start = out.size();
  out.resize(start + NLMSG_ALIGN(NLMSG_LENGTH(size)));
  std::memcpy(out.data() + start, &header, sizeof header);
  if (size > 0) std::memcpy(out.data() + start + NLMSG_HDRLEN, payload, size);
}

inet_diag_msg diag_v4(const char* addr, uint16_t sport, uint16_t dport) {
  inet_diag_msg m{};
  m.idiag_family = AF_INET;
  m.id.idiag_sport = htons(sport);
  m.id.idiag_dport = htons(dport);
  inet_pton(AF_INET, addr, &m.id.idiag_src);
  return m;
}

}  // namespace

TEST_CASE("portfwd listeners: dump parser", "[portfwd]") {
  std::vector<Listener> out;
  std::string error;

  SECTION("entries, a foreign sequence number, then DONE") {
    std::vector<std::byte> buf;
    auto a = diag_v4("0.0.0.0", 53, 0);
    auto connected = diag_v4("127.0.0.1", 5353, 99);
    auto stale = diag_v4("10.0.0.1", 1, 0);
    append_message(buf, SOCK_DIAG_BY_FAMILY, 7, &a, sizeof a);
    append_message(buf, SOCK_DIAG_BY_FAMILY, 7, &connected, sizeof connected);
    append_message(buf, SOCK_DIAG_BY_FAMILY, 6, &stale, sizeof stale);
    int32_t zero = 0;
    append_message(buf, NLMSG_DONE, 7, &zero, sizeof zero);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 7, Protocol::kUdp, out, &error) == DumpStatus::kDone);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == make(Protocol::kUdp, AF_INET, "0.0.0.0", 53));
  }
  SECTION("no DONE yet: more") {
    std::vector<std::byte> buf;
    auto a = diag_v4("127.0.0.1", 80, 0);
    append_message(buf, SOCK_DIAG_BY_FAMILY, 1, &a, sizeof a);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kMore);
    CHECK(out.size() == 1);
  }
  SECTION("a length beyond the buffer is an error") {
    std::vector<std::byte> buf;
    auto a = diag_v4("127.0.0.1", 80, 0);
    append_message(buf, SOCK_DIAG_BY_FAMILY, 1, &a, sizeof a, 4096);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kError);
    CHECK_THAT(error, Catch::Contains("malformed"));
    CHECK(out.empty());
  }
  SECTION("a length shorter than the header is an error") {
    std::vector<std::byte> buf;
    append_message(buf, SOCK_DIAG_BY_FAMILY, 1, nullptr, 0, 8);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kError);
  }
  SECTION("a payload too short for inet_diag_msg is an error") {
    std::vector<std::byte> buf;
    std::array<std::byte, 8> tiny{};
    append_message(buf, SOCK_DIAG_BY_FAMILY, 1, tiny.data(), tiny.size());
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kError);
  }
  SECTION("NLMSG_ERROR carries the errno") {
    std::vector<std::byte> buf;
    int32_t code = -EPERM;
    append_message(buf, NLMSG_ERROR, 1, &code, sizeof code);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kError);
    CHECK_THAT(error, Catch::Contains(std::strerror(EPERM)));
  }
  SECTION("a trailing partial header is ignored, empty buffer is more") {
    std::vector<std::byte> buf(7);
    CHECK(slipway::portfwd::parse_sock_diag_dump(buf, 1, Protocol::kTcp, out, &error) == DumpStatus::kMore);
    CHECK(slipway::portfwd::parse_sock_diag_dump({}, 1, Protocol::kTcp, out, &error) == DumpStatus::kMore);
  }
}

TEST_CASE("portfwd listeners: forwards follow wildcard and loopback binds", "[portfwd]") {
  const std::vector<Listener> listeners{
      make(Protocol::kTcp, AF_INET, "0.0.0.0", 80),
      make(Protocol::kTcp, AF_INET, "127.0.0.1", 8080),
      make(Protocol::kTcp, AF_INET, "127.0.0.53", 53),
      make(Protocol::kTcp, AF_INET, "10.0.2.15", 9000),  // a specific address: skipped
      make(Protocol::kTcp, AF_INET6, "::", 80),
      make(Protocol::kTcp, AF_INET6, "::1", 631),
      make(Protocol::kTcp, AF_INET6, "fd00::15", 9001),  // skipped
      make(Protocol::kUdp, AF_INET, "0.0.0.0", 5353),
      make(Protocol::kUdp, AF_INET, "0.0.0.0", 22),      // excluded
  };
  const std::array<uint16_t, 2> excluded{22, 53};
  auto rules = slipway::portfwd::forwards_for_listeners(listeners, excluded);
  std::vector<std::string> texts;
  for (const auto& r : rules) texts.push_back(r.to_string());
  std::sort(texts.begin(), texts.end());
  CHECK(texts == std::vector<std::string>{
                     "127.0.0.1:5353:5353/udp",
                     "127.0.0.1:8080:8080/tcp",
                     "127.0.0.1:80:80/tcp",
                     "[::1]:631:631/tcp",
                     "[::1]:80:80/tcp",
                 });
  CHECK(slipway::portfwd::forwards_for_listeners({}).empty());
}

TEST_CASE("portfwd listeners: host addresses for each bind, loopback and all", "[portfwd]") {
  using slipway::portfwd::HostAddresses;
  struct Case {
    int family;
    const char* bind;
    std::vector<std::string> loopback, all;  // host addresses of the rules
  };
  const std::vector<Case> cases{
      {AF_INET, "0.0.0.0", {"127.0.0.1"}, {"0.0.0.0"}},
      {AF_INET, "127.0.0.1", {"127.0.0.1"}, {"127.0.0.1"}},
      {AF_INET, "127.1.2.3", {"127.0.0.1"}, {"127.0.0.1"}},
      {AF_INET, "192.0.2.7", {}, {}},
      {AF_INET6, "::1", {"::1"}, {"::1"}},
      {AF_INET6, "::", {"127.0.0.1", "::1"}, {"0.0.0.0", "::"}},
      {AF_INET6, "::ffff:0.0.0.0", {"127.0.0.1"}, {"0.0.0.0"}},
      {AF_INET6, "::ffff:127.0.0.1", {"127.0.0.1"}, {"127.0.0.1"}},
      {AF_INET6, "::ffff:192.0.2.7", {}, {}},
      {AF_INET6, "2001:db8::1", {}, {}},
      {AF_INET6, "fe80::1", {}, {}},
  };
  for (const Case& c : cases) {
    for (Protocol proto : {Protocol::kTcp, Protocol::kUdp}) {
      for (HostAddresses hosts : {HostAddresses::kLoopback, HostAddresses::kAll}) {
        INFO(c.bind << (proto == Protocol::kTcp ? " tcp" : " udp")
                    << (hosts == HostAddresses::kAll ? " all" : " loopback"));
        auto rules = slipway::portfwd::forwards_for_listeners({make(proto, c.family, c.bind, 4000)}, {}, hosts);
        std::vector<std::string> got;
        for (const auto& r : rules) {
          CHECK(r.proto == proto);
          CHECK(r.host_port_first == 4000);
          CHECK(r.host_port_last == 4000);
          CHECK(r.guest_port_first == 4000);
          CHECK(r.guest_port_last == 4000);
          got.push_back(r.host_addr);
        }
        std::sort(got.begin(), got.end());
        CHECK(got == (hosts == HostAddresses::kAll ? c.all : c.loopback));
      }
    }
  }
}

TEST_CASE("portfwd listeners: with all addresses, a wildcard covers the loopback bind", "[portfwd]") {
  using slipway::portfwd::HostAddresses;
  // A guest with 0.0.0.0:80 and 127.0.0.1:80 (SO_REUSEPORT, or two
  // processes), [::]:443 and [::1]:443, and a loopback-only 8080.
  const std::vector<Listener> listeners{
      make(Protocol::kTcp, AF_INET, "0.0.0.0", 80),   make(Protocol::kTcp, AF_INET, "127.0.0.1", 80),
      make(Protocol::kTcp, AF_INET6, "::", 443),      make(Protocol::kTcp, AF_INET6, "::1", 443),
      make(Protocol::kTcp, AF_INET, "127.0.0.1", 8080), make(Protocol::kUdp, AF_INET, "127.0.0.1", 80),
      make(Protocol::kTcp, AF_INET6, "::", 22),
  };
  const std::array<uint16_t, 1> excluded{22};
  std::vector<std::string> texts;
  for (const auto& r : slipway::portfwd::forwards_for_listeners(listeners, excluded, HostAddresses::kAll))
    texts.push_back(r.to_string());
  CHECK(texts == std::vector<std::string>{
                     "0.0.0.0:80:80/tcp",
                     "0.0.0.0:443:443/tcp",
                     "[::]:443:443/tcp",
                     "127.0.0.1:8080:8080/tcp",
                     "127.0.0.1:80:80/udp",  // another protocol: not covered by tcp 0.0.0.0:80
                 });
  texts.clear();
  for (const auto& r : slipway::portfwd::forwards_for_listeners(listeners, excluded))
    texts.push_back(r.to_string());
  CHECK(texts == std::vector<std::string>{
                     "127.0.0.1:80:80/tcp",
                     "127.0.0.1:443:443/tcp",
                     "[::1]:443:443/tcp",
                     "127.0.0.1:8080:8080/tcp",
                     "127.0.0.1:80:80/udp",
                 });
}
