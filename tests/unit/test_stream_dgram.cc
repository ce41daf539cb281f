// StreamPort and DgramPort through real unix sockets on a real loop:
// framing (4-byte big-endian length), partial reads and writes, bad lengths,
// reconnects, and dgram's "answer the last sender", a frontend that stops
// reading (no busy retrying) and one restarted at the same path.
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "netstack/link/dgram_port.h"
#include "netstack/link/stream_port.h"
#include "netstack/wire/bytes.h"

using slipway::link::DgramPort;
using slipway::link::Frame;
using slipway::link::StreamPort;

namespace {

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
  void spin(int n = 5) {
    for (int i = 0; i < n; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  }
};

std::vector<std::byte> frame_of(size_t n, int seed) {
  std::vector<std::byte> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = std::byte((i * 3 + size_t(seed)) & 0xff);
  return f;
}

// The stream framing: a 4-byte big-endian length, then the frame.
std::vector<std::byte> framed(const std::vector<std::byte>& f) {
  std::vector<std::byte> v(4 + f.size());
  slipway::wire::store32(v, 0, static_cast<uint32_t>(f.size()));
  std::copy(f.begin(), f.end(), v.begin() + 4);
  return v;
}

void write_all(int fd, const std::vector<std::byte>& v) {
  REQUIRE(write(fd, v.data(), v.size()) == static_cast<ssize_t>(v.size()));
}

// Reads exactly n bytes (spinning the loop so the port can flush).
std::vector<std::byte> read_n(Loop& l, int fd, size_t n) {
  std::vector<std::byte> v(n);
  size_t have = 0;
  for (int i = 0; i < 2000 && have < n; ++i) {
    l.spin(1);
    ssize_t r = recv(fd, v.data() + have, n - have, MSG_DONTWAIT);
    if (r > 0) have += size_t(r);
    if (r <= 0) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 1);
    }
  }
  REQUIRE(have == n);
  return v;
}

std::string temp_path(const char* name) {
  return std::string("/tmp/slipway-unit-") + std::to_string(getpid()) + "-" + name;
}

}  // namespace

TEST_CASE("stream: frames split and joined across reads are delivered whole", "[stream]") {
  Loop l;
  StreamPort port(&l.loop, 1500);
  std::vector<std::vector<std::byte>> got;
  port.set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  port.adopt(sv[0]);
  auto a = frame_of(60, 1), b = frame_of(1514, 2), c = frame_of(100, 3);
  // Two frames in one write, then the third in three pieces (the length
  // prefix itself split).
  auto ab = framed(a);
  auto fb = framed(b);
  ab.insert(ab.end(), fb.begin(), fb.end());
  write_all(sv[1], ab);
  l.spin();
  auto fc = framed(c);
  write_all(sv[1], std::vector<std::byte>(fc.begin(), fc.begin() + 2));
  l.spin();
  write_all(sv[1], std::vector<std::byte>(fc.begin() + 2, fc.begin() + 50));
  l.spin();
  CHECK(got.size() == 2);
  write_all(sv[1], std::vector<std::byte>(fc.begin() + 50, fc.end()));
  l.spin();
  REQUIRE(got.size() == 3);
  CHECK(got[0] == a);
  CHECK(got[1] == b);
  CHECK(got[2] == c);

  // And back: length prefix, then the frame.
  CHECK(port.send(b));
  CHECK(read_n(l, sv[1], 4 + b.size()) == framed(b));
  close(sv[1]);
}

TEST_CASE("stream: a bad length closes the connection", "[stream]") {
  Loop l;
  StreamPort port(&l.loop, 1500);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  port.adopt(sv[0]);
  SECTION("zero") { write_all(sv[1], {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}}); }
  SECTION("above mtu + 14") { write_all(sv[1], {std::byte{0}, std::byte{0}, std::byte{0x05}, std::byte{0xeb}}); }
  SECTION("huge") { write_all(sv[1], {std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}}); }
  l.spin();
  CHECK_FALSE(port.connected());
  CHECK(port.bad_lengths() == 1);
  CHECK_FALSE(port.send(frame_of(60, 1)));  // no frontend: dropped
  CHECK(port.stats().tx_dropped == 1);
  char x;
  CHECK(read(sv[1], &x, 1) == 0);  // our side sees EOF
  close(sv[1]);
}

TEST_CASE("stream: a slow reader gets every frame in order, the queue stays bounded", "[stream]") {
  Loop l;
  StreamPort port(&l.loop, 65520);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  port.adopt(sv[0]);
  // Far more than the socket buffer and the queue bound together.
  const size_t n = (StreamPort::kMaxQueuedBytes / 65534) * 3;
  size_t accepted = 0;
  std::vector<size_t> accepted_seeds;
  for (size_t i = 0; i < n; ++i) {
    if (port.send(frame_of(65534, int(i)))) accepted_seeds.push_back(i), accepted++;
  }
  CHECK(accepted < n);
  CHECK(port.stats().tx_dropped == n - accepted);
  // Read everything back: every accepted frame, whole and in order.
  for (size_t i : accepted_seeds) {
    auto got = read_n(l, sv[1], 4 + 65534);
    REQUIRE(got == framed(frame_of(65534, int(i))));
  }
  CHECK(port.connected());
  close(sv[1]);
}

TEST_CASE("stream: listening on a path serves one frontend after another", "[stream]") {
  Loop l;
  auto path = temp_path("stream.sock");
  auto port = StreamPort::listen(&l.loop, path, 1500);
  std::vector<std::vector<std::byte>> got;
  port->set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  for (int round = 0; round < 2; ++round) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    l.spin();
    REQUIRE(port->connected());
    write_all(fd, framed(frame_of(80, round)));
    l.spin();
    REQUIRE(got.size() == size_t(round + 1));
    CHECK(got.back() == frame_of(80, round));
    CHECK(port->send(frame_of(90, round)));
    CHECK(read_n(l, fd, 94) == framed(frame_of(90, round)));
    close(fd);
    l.spin();
    CHECK_FALSE(port->connected());
  }
  CHECK(port->connections() == 2);
  port.reset();
  l.spin();
  CHECK(access(path.c_str(), F_OK) != 0);  // removed at exit
}

TEST_CASE("dgram: one frame per datagram, answered to the last sender", "[dgram]") {
  Loop l;
  auto path = temp_path("dgram.sock");
  auto port = DgramPort::bind(&l.loop, path, 1500);
  std::vector<std::vector<std::byte>> got;
  port->set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  CHECK_FALSE(port->send(frame_of(60, 0)));  // nobody to answer yet
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, path.c_str(), sizeof(to.sun_path) - 1);
  for (int round = 0; round < 2; ++round) {
    auto mine = temp_path(round == 0 ? "peer0.sock" : "peer1.sock");
    unlink(mine.c_str());
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un me{};
    me.sun_family = AF_UNIX;
    std::strncpy(me.sun_path, mine.c_str(), sizeof(me.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) == 0);
    auto f = frame_of(100 + size_t(round), round);
    REQUIRE(sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == ssize_t(f.size()));
    // Oversized: dropped and counted.
    auto big = frame_of(1515, 9);
    REQUIRE(sendto(fd, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == ssize_t(big.size()));
    l.spin();
    REQUIRE(got.size() == size_t(round + 1));
    CHECK(got.back() == f);
    CHECK(port->oversize() == uint64_t(round + 1));
    auto reply = frame_of(70, round + 5);
    CHECK(port->send(reply));
    std::vector<std::byte> buf(2000);
    pollfd p{fd, POLLIN, 0};
    REQUIRE(poll(&p, 1, 1000) == 1);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    REQUIRE(n == 70);
    buf.resize(70);
    CHECK(buf == reply);
    close(fd);
    unlink(mine.c_str());
  }
  // The last peer is gone: frames are dropped, the port lives on.
  port->send(frame_of(60, 1));
  CHECK(port->stats().tx_dropped >= 1);
}

TEST_CASE("dgram: a socketpair end works as a connected transport", "[dgram]") {
  Loop l;
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  DgramPort port(&l.loop, sv[0], "", 1500);
  std::vector<std::vector<std::byte>> got;
  port.set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  auto f = frame_of(1514, 1);
  write_all(sv[1], f);
  l.spin();
  REQUIRE(got.size() == 1);
  CHECK(got[0] == f);
  CHECK(port.send(f));
  std::vector<std::byte> buf(2000);
  ssize_t n = recv(sv[1], buf.data(), buf.size(), 0);
  CHECK(n == 1514);
  close(sv[1]);
}

TEST_CASE("dgram: a peer that stops reading gets every frame in order when it reads again", "[dgram]") {
  Loop l;
  auto path = temp_path("dgram-slow.sock");
  auto port = DgramPort::bind(&l.loop, path, 1500);
  std::vector<bool> ready_changes;
  port->set_tx_ready_listener([&](bool r) { ready_changes.push_back(r); });
  std::vector<std::vector<std::byte>> got;
  port->set_sink([&](Frame f) { got.emplace_back(f.begin(), f.end()); });
  // A peer as QEMU's -netdev dgram is: bound to its own path, not connected,
  // sendto() ours.
  auto bind_peer = [&](const std::string& mine) {
    unlink(mine.c_str());
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un me{};
    me.sun_family = AF_UNIX;
    std::strncpy(me.sun_path, mine.c_str(), sizeof(me.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) == 0);
    return fd;
  };
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, path.c_str(), sizeof(to.sun_path) - 1);
  auto say_hello = [&](int fd, int seed) {
    auto f = frame_of(60, seed);
    REQUIRE(sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 60);
    size_t before = got.size();
    for (int i = 0; i < 100 && got.size() == before; ++i) l.spin(1);
    REQUIRE(got.size() == before + 1);
    CHECK(got.back() == f);
  };
  auto mine = temp_path("dgram-slow-peer.sock");
  int peer = bind_peer(mine);
  say_hello(peer, 1);

  // The peer does not read: its socket takes a few datagrams, the rest wait
  // in the port's queue up to its bound; beyond it they are dropped, counted.
  const size_t frame_len = 1514;
  std::vector<int> accepted;
  int sent = 0;
  for (; sent < 4000; ++sent)
    if (port->send(frame_of(frame_len, sent))) accepted.push_back(sent);
  CHECK(port->queued_bytes() <= DgramPort::kMaxQueuedBytes);
  CHECK(port->queued_bytes() > DgramPort::kMaxQueuedBytes - frame_len);
  CHECK(port->stats().tx_queue_full == size_t(sent) - accepted.size());
  CHECK(port->stats().tx_dropped == size_t(sent) - accepted.size());
  CHECK_FALSE(port->tx_ready());
  CHECK(ready_changes == std::vector<bool>{false});

  // While the peer does not read, the loop sleeps: the socket is not polled
  // writable over and over.
  uv_timer_t timer;
  uv_timer_init(&l.loop, &timer);
  bool fired = false;
  timer.data = &fired;
  uv_timer_start(&timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 50, 0);
  int iterations = 0;
  while (!fired && iterations < 100000) {
    uv_run(&l.loop, UV_RUN_ONCE);
    iterations++;
  }
  CHECK(fired);
  CHECK(iterations < 10);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);

  // The peer reads again: every accepted frame, whole and in order.
  std::vector<std::byte> buf(2000);
  size_t next = 0;
  for (int i = 0; i < 100000 && next < accepted.size(); ++i) {
    ssize_t n = recv(peer, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      l.spin(1);
      continue;
    }
    REQUIRE(size_t(n) == frame_len);
    REQUIRE(std::vector<std::byte>(buf.begin(), buf.begin() + n) == frame_of(frame_len, accepted[next]));
    next++;
  }
  CHECK(next == accepted.size());
  CHECK(port->queued_frames() == 0);
  CHECK(port->tx_ready());
  CHECK(ready_changes == std::vector<bool>{false, true});
  CHECK(port->stats().tx_frames == accepted.size());

  // Once the queue is empty another frontend (a restarted QEMU with a new
  // address) is heard and answered again.
  auto mine2 = temp_path("dgram-slow-peer2.sock");
  int peer2 = bind_peer(mine2);
  say_hello(peer2, 2);
  CHECK(port->send(frame_of(80, 3)));
  pollfd p{peer2, POLLIN, 0};
  REQUIRE(poll(&p, 1, 1000) == 1);
  CHECK(recv(peer2, buf.data(), buf.size(), 0) == 80);
  close(peer);
  close(peer2);
  unlink(mine.c_str());
  unlink(mine2.c_str());
}

namespace {

// A frontend's datagram socket bound at `path` (replacing a stale one).
int bind_frontend(const std::string& path) {
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un me{};
  me.sun_family = AF_UNIX;
  std::strncpy(me.sun_path, path.c_str(), sizeof(me.sun_path) - 1);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) == 0);
  return fd;
}

void send_to_path(int fd, const std::string& path, const std::vector<std::byte>& f) {
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, path.c_str(), sizeof(to.sun_path) - 1);
  REQUIRE(sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == ssize_t(f.size()));
}

// CPU time this thread has used, in ms.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1000 + double(ts.tv_nsec) / 1e6;
}

// Runs the loop for `ms` of wall time, blocking in it as a server would.
void run_for(Loop& l, uint64_t ms) {
  uv_timer_t stop;
  uv_timer_init(&l.loop, &stop);
  uv_timer_start(&stop, [](uv_timer_t* t) { uv_stop(t->loop); }, ms, 0);
  for (int i = 0; i < 1000000; ++i) {
    uv_run(&l.loop, UV_RUN_ONCE);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&stop))) break;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
  l.spin(1);
}

}  // namespace

TEST_CASE("dgram: a frontend that stops reading costs no CPU; its frames wait, bounded, and flow when it reads",
          "[dgram]") {
  Loop l;
  auto path = temp_path("dgram-paused.sock");
  auto port = DgramPort::bind(&l.loop, path, 1500);
  port->set_sink([](Frame) {});
  auto mine = temp_path("dgram-paused-peer.sock");
  int fd = bind_frontend(mine);
  send_to_path(fd, path, frame_of(60, 0));  // the port learns where the frontend is
  l.spin();
  REQUIRE(port->has_peer());
  // The frontend does not read (a paused VM): its queue fills, then ours
  // (beyond its bound of kMaxQueuedFrames).
  const size_t total = DgramPort::kMaxQueuedFrames + 2000;
  for (size_t i = 0; i < total; ++i) {
    auto f = frame_of(1000, int(i));
    slipway::wire::store32(f, 0, uint32_t(i));
    port->send(f);
  }
  CHECK(port->stats().tx_dropped > 0);  // beyond the bounded queue
  const uint64_t retries_before = port->send_retries();
  double cpu0 = thread_cpu_ms();
  run_for(l, 500);
  double cpu = thread_cpu_ms() - cpu0;
  INFO("CPU " << cpu << " ms and " << port->send_retries() - retries_before << " failed sends in 500 ms");
  CHECK(cpu < 100);  // retrying at once on "writable" spun at ~100 %
  CHECK(port->send_retries() - retries_before < 50);
  // The frontend reads again: what waited arrives, in order.
  std::vector<uint32_t> seen;
  for (int round = 0; round < 2000 && seen.size() < total; ++round) {
    std::vector<std::byte> buf(2000);
    ssize_t n;
    while ((n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT)) > 0) seen.push_back(slipway::wire::load32(buf, 0));
    l.spin(1);
    if (round > 50 && n < 0 && port->stats().tx_frames + port->stats().tx_dropped >= total) {
      // Everything was either sent or dropped: nothing more will come.
      while ((n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT)) > 0) seen.push_back(slipway::wire::load32(buf, 0));
      break;
    }
    usleep(200);
  }
  CHECK(seen.size() == port->stats().tx_frames);
  CHECK(seen.size() + port->stats().tx_dropped == total);
  CHECK(seen.size() >= DgramPort::kMaxQueuedFrames);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  close(fd);
  unlink(mine.c_str());
}

TEST_CASE("dgram: a frontend restarted at the same path is served again", "[dgram]") {
  Loop l;
  auto path = temp_path("dgram-restart.sock");
  auto port = DgramPort::bind(&l.loop, path, 1500);
  size_t got = 0;
  port->set_sink([&](Frame) { got++; });
  auto mine = temp_path("dgram-restart-peer.sock");
  for (int run = 0; run < 2; ++run) {
    int fd = bind_frontend(mine);
    send_to_path(fd, path, frame_of(60, run));
    l.spin();
    REQUIRE(got == size_t(run + 1));
    // Past the reconnect interval, so that a send to the old socket may reconnect.
    usleep((DgramPort::kReconnectMs + 20) * 1000);
    uv_update_time(&l.loop);
    auto reply = frame_of(80, run);
    CHECK(port->send(reply));
    std::vector<std::byte> buf(2000);
    pollfd p{fd, POLLIN, 0};
    REQUIRE(poll(&p, 1, 1000) == 1);
    CHECK(recv(fd, buf.data(), buf.size(), 0) == 80);
    close(fd);  // the frontend goes away; the next one binds the same path
  }
  unlink(mine.c_str());
}
