// slirp4netns's API (compat/hostfwd_api.h, api_server.h): every answer
// compared byte for byte with what slirp4netns 1.2 writes (its api.c: compact
// JSON, its key order, its error strings), the ways slipway answers
// differently (ports out of range, another guest_addr, a missing proto), a
// backend that cannot bind; and the socket server on a real loop with a real
// unix socket: a client that shuts its side down (Podman, RootlessKit), one
// that does not, an oversized request, the socket's mode and its removal.
// Also the NAT policy's source for published ports' clients. Runs in well
// under a second.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "netstack/compat/api_server.h"
#include "netstack/compat/hostfwd_api.h"
#include "netstack/engine/nat.h"

using slipway::compat::ApiServer;
using slipway::compat::HostfwdApi;
using slipway::wire::Ipv4Addr;

namespace {

struct FakeBackend : slipway::compat::HostfwdBackend {
  std::vector<std::string> added, removed;
  std::string fail_with;  // non-empty: add() fails
  std::string add(const slipway::portfwd::Rule& rule) override {
    if (!fail_with.empty()) return fail_with;
    added.push_back(rule.to_string());
    return "";
  }
  bool remove(const slipway::portfwd::Rule& rule) override {
    removed.push_back(rule.to_string());
    return true;
  }
};

const Ipv4Addr kGuest{10, 0, 2, 100};

std::string add(HostfwdApi& api, const std::string& arguments) {
  return api.answer(R"({"execute":"add_hostfwd","arguments":)" + arguments + "}");
}

}  // namespace

TEST_CASE("slirp4netns API: add, list and remove answer as slirp4netns does", "[compat][slirp4netns]") {
  FakeBackend b;
  HostfwdApi api(b, kGuest);
  // Podman's request: guest_addr "" means the guest.
  CHECK(add(api, R"({"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"","guest_port":80})") ==
        R"({"return":{"id":1}})");
  // RootlessKit's: the guest's address named.
  CHECK(api.answer("{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"udp\",\"host_addr\":\"127.0.0.1\","
                   "\"host_port\":5353,\"guest_addr\":\"10.0.2.100\",\"guest_port\":53}}\n") ==
        R"({"return":{"id":2}})");
  // host_addr absent: 0.0.0.0.
  CHECK(add(api, R"({"proto":"tcp","host_port":2222,"guest_port":22})") == R"({"return":{"id":3}})");
  CHECK(b.added == std::vector<std::string>{"0.0.0.0:8080:80/tcp", "127.0.0.1:5353:53/udp", "0.0.0.0:2222:22/tcp"});
  CHECK(api.answer(R"({"execute":"list_hostfwd"})") ==
        R"({"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80},)"
        R"({"id":2,"proto":"udp","host_addr":"127.0.0.1","host_port":5353,"guest_addr":"10.0.2.100","guest_port":53},)"
        R"({"id":3,"proto":"tcp","host_addr":"0.0.0.0","host_port":2222,"guest_addr":"10.0.2.100","guest_port":22}]})");
  CHECK(api.answer(R"({"execute":"remove_hostfwd","arguments":{"id":2}})") == R"({"return":{}})");
  CHECK(b.removed == std::vector<std::string>{"127.0.0.1:5353:53/udp"});
  CHECK(api.answer(R"({"execute":"remove_hostfwd","arguments":{"id":2}})") ==
        R"({"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}})");
  // Ids are not reused.
  CHECK(add(api, R"({"proto":"tcp","host_port":9000,"guest_port":90})") == R"({"return":{"id":4}})");
  HostfwdApi empty(b, kGuest);
  CHECK(empty.answer(R"({"execute":"list_hostfwd"})") == R"({"entries":[]})");
}

TEST_CASE("slirp4netns API: slirp4netns's error answers", "[compat][slirp4netns]") {
  FakeBackend b;
  HostfwdApi api(b, kGuest);
  auto err = [](const char* desc) { return std::string(R"({"error":{"desc":")") + desc + "\"}}"; };
  CHECK(api.answer("") == err("bad request: cannot parse JSON"));
  CHECK(api.answer("{\"execute\":") == err("bad request: cannot parse JSON"));
  CHECK(api.answer("[1,2]") == err("bad request: json_object() failed"));
  CHECK(api.answer(R"({"exec":"list_hostfwd"})") == err("bad request: no execute found"));
  CHECK(api.answer(R"({"execute":42})") == err("bad request: no execute found"));
  CHECK(api.answer(R"({"execute":"add_port"})") == err("bad request: unknown execute"));
  CHECK(add(api, R"({"proto":"sctp","host_port":1,"guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.proto"));
  CHECK(add(api, R"({"host_port":1,"guest_port":1})") == err("bad request: add_hostfwd: bad arguments.proto"));
  CHECK(add(api, R"({"proto":"tcp","host_addr":"::1","host_port":1,"guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.host_addr"));
  CHECK(add(api, R"({"proto":"tcp","host_port":0,"guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.host_port"));
  CHECK(add(api, R"({"proto":"tcp","host_port":"80","guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.host_port"));
  CHECK(add(api, R"({"proto":"tcp","host_port":70000,"guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.host_port"));
  CHECK(add(api, R"({"proto":"tcp","host_port":80,"guest_addr":"x","guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.guest_addr"));
  CHECK(add(api, R"({"proto":"tcp","host_port":80,"guest_addr":"10.0.2.15","guest_port":1})") ==
        err("bad request: add_hostfwd: bad arguments.guest_addr (slipway forwards to the guest address 10.0.2.100 "
            "only)"));
  CHECK(add(api, R"({"proto":"tcp","host_port":80})") == err("bad request: add_hostfwd: bad arguments.guest_port"));
  CHECK(add(api, R"({"proto":"tcp","host_port":80,"guest_port":-5})") ==
        err("bad request: add_hostfwd: bad arguments.guest_port"));
  CHECK(api.answer(R"({"execute":"remove_hostfwd"})") == err("bad request: remove_hostfwd: bad arguments.id"));
  b.fail_with = "address already in use";
  CHECK(add(api, R"({"proto":"tcp","host_port":80,"guest_port":80})") ==
        err("bad request: add_hostfwd: slirp_add_hostfwd failed"));
  CHECK(api.entries().empty());
  CHECK(api.answer(std::string(5000, ' ')) == err("bad request: too large message"));
  CHECK(HostfwdApi::too_large() == err("bad request: too large message"));
}

namespace {

// Connects to PATH, writes REQUEST, shuts down its side if asked, and
// reads until EOF (at most 2 s).
std::string client(const std::string& path, const std::string& request, bool shut_down) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket failed";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return "connect failed";
  }
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (shut_down) shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Runs `work` on a thread while the loop turns; false if it took over 5 s.
template <class F>
bool run_with_loop(uv_loop_t* loop, F&& work) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    work();
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  t.join();
  return done;
}

}  // namespace

TEST_CASE("slirp4netns API: the socket takes one request per connection", "[compat][slirp4netns]") {
  char dir[] = "/tmp/slipway-s4n-api-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/api.sock";
  uv_loop_t loop;
  uv_loop_init(&loop);
  FakeBackend b;
  HostfwdApi api(b, kGuest);
  {
    ApiServer server(&loop, path, [&api](std::string_view r) { return api.answer(r); }, HostfwdApi::too_large(),
                     HostfwdApi::kMaxRequestBytes);
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0077) == 0);
    std::string a, b2, c, d;
    REQUIRE(run_with_loop(&loop, [&] {
      a = client(path, R"({"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8080,"guest_port":80}})" "\n",
                 true);
      b2 = client(path, R"({"execute":"list_hostfwd"})", false);  // no shutdown: answered once complete
      c = client(path, std::string(5000, 'x'), true);
      d = client(path, "not json", true);
    }));
    CHECK(a == R"({"return":{"id":1}})");
    CHECK(b2 == R"({"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}]})");
    CHECK(c == HostfwdApi::too_large());
    CHECK(d == R"({"error":{"desc":"bad request: cannot parse JSON"}})");
    for (int i = 0; i < 20 && server.connection_count() != 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(server.connection_count() == 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(access(path.c_str(), F_OK) != 0);  // removed with the server
  CHECK(uv_loop_close(&loop) == 0);
  rmdir(dir);
}

TEST_CASE("NAT policy: a published port's loopback client appears as the gateway", "[compat][nat]") {
  slipway::engine::NatPolicy nat;
  nat.ipv6 = true;
  for (bool host_loopback : {true, false}) {
    nat.host_loopback = host_loopback;
    CHECK(nat.inbound_source(slipway::engine::IpAddr(Ipv4Addr{127, 0, 0, 1})) ==
          slipway::engine::IpAddr(nat.gateway));
    CHECK(nat.inbound_source(slipway::engine::IpAddr(slipway::engine::NatPolicy::kHostLoopback6)) == slipway::engine::IpAddr(nat.gateway6));
    CHECK(nat.inbound_source(slipway::engine::IpAddr(Ipv4Addr{192, 0, 2, 9})) ==
          slipway::engine::IpAddr(Ipv4Addr{192, 0, 2, 9}));
  }
}
