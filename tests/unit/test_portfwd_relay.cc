// slipway::portfwd::TcpRelay and UdpRelay on a real libuv loop (in a thread)
// with real peers on 127.0.0.1: bytes both ways through splice and through
// read/write with a tiny buffer (backpressure), half-close, reset when the
// target refuses, reset propagation, UDP round trip and idle expiry. Every
// blocking call in the test has a receive timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "portfwd/relay.h"

using slipway::portfwd::Endpoint;
using slipway::portfwd::RelayOptions;

namespace {

Endpoint endpoint(const std::string& text) {
  std::string error;
  auto e = slipway::portfwd::parse_endpoint(text, &error);
  INFO(error);
  REQUIRE(e.has_value());
  return *e;
}

void set_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int listen_tcp(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  REQUIRE(listen(fd, 16) == 0);
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  port = ntohs(sin.sin_port);
  set_timeout(fd, 10);
  return fd;
}

int connect_tcp(const Endpoint& to) {
  int fd = socket(to.family(), SOCK_STREAM, 0);
  set_timeout(fd, 10);
  REQUIRE(connect(fd, to.addr(), to.length) == 0);
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads until EOF; returns -errno on error.
ssize_t read_all(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return static_cast<ssize_t>(out.size());
    if (n < 0) return -errno;
    out.append(buf, static_cast<size_t>(n));
  }
}

// A relay running on its own loop in a thread until stop().
template <typename Relay>
class RelayThread {
 public:
  RelayThread(const Endpoint& listen, const Endpoint& target, const RelayOptions& options) {
    uv_loop_init(&loop_);
    relay_ = std::make_unique<Relay>(&loop_, listen, target, options);
    relay_->start();
    uv_async_init(&loop_, &stop_, [](uv_async_t* h) {
      static_cast<Relay*>(h->data)->close();
      uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    });
    stop_.data = relay_.get();
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~RelayThread() { stop(); }
  Endpoint local() const { return relay_->local_endpoint(); }
  void stop() {
    if (!thread_.joinable()) return;
    uv_async_send(&stop_);
    thread_.join();
    uv_loop_close(&loop_);
  }
  Relay& relay() { return *relay_; }

 private:
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<Relay> relay_;
  std::thread thread_;
};

using TcpThread = RelayThread<slipway::portfwd::TcpRelay>;
using UdpThread = RelayThread<slipway::portfwd::UdpRelay>;

std::string pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

}  // namespace

TEST_CASE("portfwd relay: endpoints", "[portfwd]") {
  CHECK(endpoint("127.0.0.1:80").to_string() == "127.0.0.1:80");
  CHECK(endpoint("[::1]:8080").to_string() == "[::1]:8080");
  CHECK(endpoint("0.0.0.0:0").port() == 0);
  CHECK(endpoint("[::]:65535").family() == AF_INET6);
  for (const char* bad : {"", "80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:x", "::1:80", "[::1]80",
                          "[::1", "[::1]:", "host:80", "1.2.3.4:-1"}) {
    std::string error;
    INFO(bad);
    CHECK_FALSE(slipway::portfwd::parse_endpoint(bad, &error).has_value());
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("portfwd relay: TCP both ways with half-close", "[portfwd]") {
  const bool splice = GENERATE(true, false);
  const size_t buffer = GENERATE(size_t{4096}, size_t{1} << 20);
  INFO("splice " << splice << ", buffer " << buffer);
  uint16_t port = 0;
  int server = listen_tcp(port);
  RelayOptions options;
  options.splice = splice;
  options.buffer_bytes = buffer;
  TcpThread relay(endpoint("127.0.0.1:0"), endpoint("127.0.0.1:" + std::to_string(port)), options);

  const std::string request = pattern(3 << 20);
  // The server reads everything until the client's EOF, then answers with a
  // reply of its own and closes: only works if the half-close is relayed
  // and the other direction stays open.
  std::string received;
  std::thread peer([&] {
    int fd = accept(server, nullptr, nullptr);
    if (fd < 0) return;
    set_timeout(fd, 10);
    read_all(fd, received);
    send_all(fd, "got " + std::to_string(received.size()) + " bytes");
    close(fd);
  });
  int client = connect_tcp(relay.local());
  REQUIRE(send_all(client, request));
  REQUIRE(shutdown(client, SHUT_WR) == 0);
  std::string reply;
  CHECK(read_all(client, reply) >= 0);
  peer.join();
  close(client);
  close(server);
  CHECK(received == request);
  CHECK(reply == "got " + std::to_string(request.size()) + " bytes");
  relay.stop();
  CHECK(relay.relay().stats().accepted == 1);
  CHECK(relay.relay().stats().bytes_to_target == request.size());
  CHECK(relay.relay().stats().resets == 0);
}

TEST_CASE("portfwd relay: a refused target resets the client", "[portfwd]") {
  uint16_t port = 0;
  close(listen_tcp(port));  // nothing listens there now
  TcpThread relay(endpoint("127.0.0.1:0"), endpoint("127.0.0.1:" + std::to_string(port)), RelayOptions{});
  int client = connect_tcp(relay.local());
  std::string data;
  CHECK(read_all(client, data) == -ECONNRESET);
  close(client);
  relay.stop();
  CHECK(relay.relay().stats().connect_failures == 1);
}

TEST_CASE("portfwd relay: a reset from the target reaches the client", "[portfwd]") {
  uint16_t port = 0;
  int server = listen_tcp(port);
  TcpThread relay(endpoint("127.0.0.1:0"), endpoint("127.0.0.1:" + std::to_string(port)), RelayOptions{});
  int client = connect_tcp(relay.local());
  int fd = accept(server, nullptr, nullptr);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(client, "ping"));
  char buf[4];
  set_timeout(fd, 10);
  REQUIRE(recv(fd, buf, sizeof buf, MSG_WAITALL) == 4);
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
  std::string data;
  CHECK(read_all(client, data) == -ECONNRESET);
  close(client);
  close(server);
  relay.stop();
  CHECK(relay.relay().stats().resets == 1);
}

TEST_CASE("portfwd relay: UDP round trip and idle expiry", "[portfwd]") {
  int server = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(server, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  socklen_t len = sizeof sin;
  getsockname(server, reinterpret_cast<sockaddr*>(&sin), &len);
  set_timeout(server, 5);

  RelayOptions options;
  options.udp_timeout_ms = 100;
  UdpThread relay(endpoint("127.0.0.1:0"), endpoint("127.0.0.1:" + std::to_string(ntohs(sin.sin_port))), options);
  const Endpoint local = relay.local();

  int client = socket(AF_INET, SOCK_DGRAM, 0);
  set_timeout(client, 5);
  for (const std::string& payload : {std::string("hello"), pattern(1400), pattern(60000)}) {
    REQUIRE(sendto(client, payload.data(), payload.size(), 0, local.addr(), local.length) ==
            static_cast<ssize_t>(payload.size()));
    std::string got(65536, '\0');
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(server, got.data(), got.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    REQUIRE(n == static_cast<ssize_t>(payload.size()));
    got.resize(static_cast<size_t>(n));
    CHECK(got == payload);
    const std::string answer = "re:" + got;
    REQUIRE(sendto(server, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len) ==
            static_cast<ssize_t>(answer.size()));
    std::string back(65536, '\0');
    n = recv(client, back.data(), back.size(), 0);
    REQUIRE(n == static_cast<ssize_t>(answer.size()));
    back.resize(static_cast<size_t>(n));
    CHECK(back == answer);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  relay.stop();
  close(client);
  close(server);
  const auto& stats = relay.relay().stats();
  CHECK(stats.sessions_opened == 1);
  CHECK(stats.sessions_expired == 1);
  CHECK(stats.datagrams_to_target == 3);
  CHECK(stats.datagrams_to_client == 3);
  CHECK(stats.dropped == 0);
}
