// slipway::control::ControlServer and request() on a real libuv loop (run on
// a thread, since the client blocks) and a real unix socket in a private temp
// directory: round trip, pipelined requests answered in order (more than one
// wake-up's worth), a client that does not read its replies, malformed
// requests that leave the connection usable, an oversized line, end of input,
// the connection limit, the idle timeout, the socket file's mode, a live path
// refused, a stale one replaced, and the client's errors (nothing there, no
// reply in time, garbage). Every blocking call has a timeout; the whole file
// runs in well under 2 s.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "netstack/sys/control_client.h"
#include "netstack/control/control_server.h"

using nlohmann::json;
using slipway::control::ControlServer;

namespace {

class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/slipway-control-XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A test handler: "echo" returns the request's n, "fail" throws, "refuse"
// answers ok=false itself, anything else is an unknown op.
json test_handler(const json& request) {
  const std::string op = request.at("op");
  if (op == "echo") return {{"n", request.value("n", 0)}, {"op", op}};
  if (op == "fail") throw std::runtime_error("it failed");
  if (op == "refuse") return {{"ok", false}, {"error", "no such forward"}};
  if (op == "nothing") return nullptr;
  if (op == "big") return {{"n", request.value("n", 0)}, {"pad", std::string(request.value("size", 0), 'p')}};
  throw std::runtime_error("unknown op \"" + op + "\"");
}

// The server on its own loop and thread. The server is made before the loop
// runs and destroyed on the loop's thread.
class ServerThread {
 public:
  explicit ServerThread(const std::string& path, ControlServer::Limits limits = {}) {
    uv_loop_init(&loop_);
    server_ = std::make_unique<ControlServer>(&loop_, path, test_handler, limits);
    uv_async_init(&loop_, &stop_, [](uv_async_t* async) {
      static_cast<ServerThread*>(async->data)->server_.reset();
      uv_close(reinterpret_cast<uv_handle_t*>(async), nullptr);
    });
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~ServerThread() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    uv_async_send(&stop_);
    thread_.join();
    CHECK(uv_loop_close(&loop_) == 0);  // every handle was closed and freed
  }

 private:
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  return addr;
}

// A raw client connection with a 2 s receive timeout, to see the protocol's
// bytes.
class RawClient {
 public:
  explicit RawClient(const std::string& path) : fd_(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval tv{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const sockaddr_un addr = unix_address(path);
    REQUIRE(connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { ::close(fd_); }
  bool send_all(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // The next line without its '\n'; "" at end of input, "<timeout>" when
  // nothing came for 2 s.
  std::string line() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return "";
      if (n < 0) return "<timeout>";
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  json reply() {
    const std::string l = line();
    INFO(l);
    REQUIRE(!l.empty());
    REQUIRE(l != "<timeout>");
    return json::parse(l);
  }

 private:
  int fd_;
  std::string buffer_;
};

}  // namespace

TEST_CASE("control: request and reply", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ServerThread server(path);

  json reply = slipway::control::request(path, {{"op", "echo"}, {"n", 7}});
  CHECK(reply == json{{"ok", true}, {"op", "echo"}, {"n", 7}});

  reply = slipway::control::request(path, {{"op", "fail"}});
  CHECK(reply == json{{"ok", false}, {"error", "it failed"}});
  reply = slipway::control::request(path, {{"op", "refuse"}});
  CHECK(reply == json{{"ok", false}, {"error", "no such forward"}});
  reply = slipway::control::request(path, {{"op", "nothing"}});
  CHECK(reply == json{{"ok", true}});
  reply = slipway::control::request(path, {{"op", "frobnicate"}});
  CHECK(reply["ok"] == false);
  CHECK(reply["error"] == "unknown op \"frobnicate\"");
}

TEST_CASE("control: pipelined requests are answered in order", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ServerThread server(path);
  RawClient client(path);

  // More than one wake-up's worth (16), in a single write, some with CRLF.
  constexpr int kRequests = 50;
  std::string burst;
  for (int i = 0; i < kRequests; ++i) {
    burst += json{{"op", "echo"}, {"n", i}}.dump() + (i % 3 == 0 ? "\r\n" : "\n");
  }
  REQUIRE(client.send_all(burst));
  for (int i = 0; i < kRequests; ++i) {
    const json reply = client.reply();
    CHECK(reply["ok"] == true);
    CHECK(reply["n"] == i);
  }
  // And the connection still takes more.
  REQUIRE(client.send_all("{\"op\":\"echo\",\"n\":99}\n"));
  CHECK(client.reply()["n"] == 99);
}

TEST_CASE("control: a client that does not read its replies holds back its requests", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ControlServer::Limits limits;
  limits.max_unsent_bytes = 4096;
  ServerThread server(path, limits);
  RawClient client(path);

  // 40 replies of 20 kB each, far more than the socket buffers hold: the
  // server stops reading until the client catches up, and loses nothing.
  constexpr int kRequests = 40;
  std::string burst;
  for (int i = 0; i < kRequests; ++i) burst += json{{"op", "big"}, {"n", i}, {"size", 20000}}.dump() + "\n";
  REQUIRE(client.send_all(burst));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < kRequests; ++i) {
    const json reply = client.reply();
    CHECK(reply["n"] == i);
    CHECK(reply["pad"].get<std::string>().size() == 20000);
  }
}

TEST_CASE("control: malformed requests get errors and the connection stays usable", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ServerThread server(path);
  RawClient client(path);

  for (const char* bad : {"{not json", "[1,2]", "\"op\"", "{\"x\":1}", "{\"op\":5}", "{\"op\":\"echo\"} trailing"}) {
    INFO(bad);
    REQUIRE(client.send_all(std::string(bad) + "\n"));
    const json reply = client.reply();
    CHECK(reply["ok"] == false);
    REQUIRE(reply["error"].is_string());
    CHECK_FALSE(reply["error"].get<std::string>().empty());
    CHECK(reply["error"].get<std::string>().find("[json.exception") == std::string::npos);
  }
  REQUIRE(client.send_all("\n   \n{\"op\":\"echo\",\"n\":1}\n"));  // blank lines are skipped
  CHECK(client.reply() == json{{"ok", true}, {"op", "echo"}, {"n", 1}});
}

TEST_CASE("control: an oversized line closes the connection with an error", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ServerThread server(path);

  SECTION("unterminated") {
    RawClient client(path);
    client.send_all(std::string(64 * 1024 + 100, 'x'));  // may fail part way once the server closes
    const json reply = client.reply();
    CHECK(reply["ok"] == false);
    CHECK(reply["error"].get<std::string>().find("longer than 65536") != std::string::npos);
    CHECK(client.line().empty());  // then the end
  }
  SECTION("complete, after a good request") {
    RawClient client(path);
    client.send_all("{\"op\":\"echo\",\"n\":1}\n{\"op\":\"echo\",\"pad\":\"" + std::string(70000, 'y') + "\"}\n");
    CHECK(client.reply()["n"] == 1);
    CHECK(client.reply()["ok"] == false);
    CHECK(client.line().empty());
  }
  // A line of exactly the limit is fine.
  RawClient client(path);
  std::string line = "{\"op\":\"echo\",\"n\":2,\"pad\":\"\"}";
  line.insert(line.size() - 2, std::string(64 * 1024 - line.size(), 'z'));
  REQUIRE(line.size() == 64 * 1024);
  REQUIRE(client.send_all(line + "\n"));
  CHECK(client.reply()["n"] == 2);
}

TEST_CASE("control: end of input answers the last request, then closes", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ServerThread server(path);
  RawClient client(path);
  REQUIRE(client.send_all("{\"op\":\"echo\",\"n\":1}\n{\"op\":\"echo\",\"n\":2}"));  // no final newline
  client.shutdown_write();
  CHECK(client.reply()["n"] == 1);
  CHECK(client.reply()["n"] == 2);
  CHECK(client.line().empty());
}

TEST_CASE("control: connection limit and idle timeout", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ControlServer::Limits limits;
  limits.max_connections = 2;
  limits.idle_timeout_ms = 150;
  ServerThread server(path, limits);

  RawClient a(path), b(path);
  REQUIRE(a.send_all("{\"op\":\"echo\",\"n\":1}\n"));
  REQUIRE(b.send_all("{\"op\":\"echo\",\"n\":2}\n"));
  CHECK(a.reply()["n"] == 1);
  CHECK(b.reply()["n"] == 2);
  RawClient c(path);
  const json refused = c.reply();
  CHECK(refused["ok"] == false);
  CHECK(refused["error"].get<std::string>().find("too many") != std::string::npos);
  CHECK(c.line().empty());

  // a and b say nothing more: both are closed after the idle timeout.
  const auto start = std::chrono::steady_clock::now();
  CHECK(a.line().empty());
  CHECK(b.line().empty());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1000));
  // Their places are free again.
  CHECK(slipway::control::request(path, {{"op", "echo"}, {"n", 3}})["n"] == 3);
}

TEST_CASE("control: at the connection limit, a new client takes the place of the one idle longest", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");
  ControlServer::Limits limits;
  limits.max_connections = 2;
  limits.evict_idle_ms = 100;
  ServerThread server(path, limits);

  RawClient a(path);
  REQUIRE(a.send_all("{\"op\":\"echo\",\"n\":1}\n"));
  CHECK(a.reply()["n"] == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  RawClient b(path);
  REQUIRE(b.send_all("{\"op\":\"echo\",\"n\":2}\n"));
  CHECK(b.reply()["n"] == 2);
  // Both idle, a for longer: a new client is served (it used to be refused
  // until the 60 s idle timeout) and a is the one closed.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(slipway::control::request(path, {{"op", "echo"}, {"n", 3}})["n"] == 3);
  CHECK(a.line().empty());
  REQUIRE(b.send_all("{\"op\":\"echo\",\"n\":4}\n"));
  CHECK(b.reply()["n"] == 4);
}

TEST_CASE("control: the socket file", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");

  SECTION("is a socket of mode 0600, removed when the server goes") {
    {
      ServerThread server(path);
      struct stat st {};
      REQUIRE(lstat(path.c_str(), &st) == 0);
      CHECK(S_ISSOCK(st.st_mode));
      CHECK((st.st_mode & 07777) == 0600);
    }
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SECTION("a second server on a live path throws; the first keeps working") {
    ServerThread server(path);
    uv_loop_t loop;
    uv_loop_init(&loop);
    try {
      ControlServer second(&loop, path, test_handler);
      FAIL("the second server started");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == path + " is in use");
    }
    CHECK(uv_loop_close(&loop) == 0);
    CHECK(slipway::control::request(path, {{"op", "echo"}, {"n", 4}})["n"] == 4);
  }
  SECTION("a stale socket file is replaced") {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un addr = unix_address(path);
    REQUIRE(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);  // the file stays, nobody listens
    REQUIRE(std::filesystem::exists(path));
    ServerThread server(path);
    CHECK(slipway::control::request(path, {{"op", "echo"}, {"n", 5}})["n"] == 5);
  }
  SECTION("a file that is not a socket is left alone") {
    std::ofstream(path) << "precious";
    uv_loop_t loop;
    uv_loop_init(&loop);
    CHECK_THROWS_WITH(ControlServer(&loop, path, test_handler), Catch::Contains("not a socket"));
    CHECK(uv_loop_close(&loop) == 0);
    std::ifstream in(path);
    std::string content;
    in >> content;
    CHECK(content == "precious");
  }
}

TEST_CASE("control: client errors", "[control]") {
  TempDir dir;
  const std::string path = dir.file("ctl.sock");

  SECTION("nothing there") {
    CHECK_THROWS_WITH(slipway::control::request(path, {{"op", "stats"}}),
                      Catch::StartsWith("cannot connect to " + path + ": "));
  }
  SECTION("a server that never answers") {
    // A bare listening socket: the connection is queued, the request is
    // buffered, and no reply ever comes.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un addr = unix_address(path);
    REQUIRE(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, 4) == 0);
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(slipway::control::request(path, {{"op", "stats"}}, std::chrono::milliseconds(200)),
                      "no reply from " + path + " within 200 ms");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= std::chrono::milliseconds(190));
    CHECK(elapsed < std::chrono::milliseconds(1000));
    ::close(fd);
  }
  SECTION("a server that answers garbage") {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un addr = unix_address(path);
    REQUIRE(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, 4) == 0);
    std::thread peer([fd] {
      const int c = accept(fd, nullptr, nullptr);
      if (c < 0) return;
      const char garbage[] = "hello\n";
      (void)::send(c, garbage, sizeof garbage - 1, MSG_NOSIGNAL);
      char buf[256];
      (void)recv(c, buf, sizeof buf, 0);
      ::close(c);
    });
    CHECK_THROWS_WITH(slipway::control::request(path, {{"op", "stats"}}, std::chrono::milliseconds(1000)),
                      "bad reply from " + path + ": not JSON");
    peer.join();
    ::close(fd);
  }
}
