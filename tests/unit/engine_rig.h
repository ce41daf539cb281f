// An LwipEngine alone on a real libuv loop, with time driven by the test,
// and the host-side peers the engine tests talk to: what test_engine_*.cc
// share.
//
// EngineRig owns the loop, a ManualClock and the engine. Every IP packet the
// engine sends to the guest is copied into `out` (without the link-header
// headroom); the test hands guest packets in with input(). The loop only
// runs when the test pumps it (uv_run NOWAIT), in loops bounded in
// iterations and in wall time.
//
// The loop is kept alive by a handle of the rig's own, as a transport keeps
// a stack's loop alive: the engine's timers are unreferenced.
//
// Time: the engine and lwIP's sys_now() read the ManualClock, so lwIP's
// timers (delayed ACKs, retransmissions, persist probes) only fire when the
// test calls advance(). lwIP's timeouts are global and keep absolute times
// from whichever clock was current when they were armed; the rig rebases
// them to its own clock when the engine is built and back to the real
// monotonic clock (what sys_now() reads with no engine) once it is gone,
// after letting lwIP's TCP timer stop (it outlives the pcbs that armed it),
// so that neither this test's clock nor an earlier test's leaves lwIP's
// timers stalled or out of phase for the next engine in the process.
//
// Host peers use plain non-blocking sockets on 127.0.0.1 / ::1, serviced by
// the test between loop iterations (everything runs on one thread).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" {
#include "lwip/timeouts.h"
}

#include "netstack/engine/ip_addr.h"
#include "netstack/engine/lwip_engine.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/bytes.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/ipv6.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

namespace slipway::test {

using engine::IpAddr;

// The addresses of the engine's default NAT policy (nat.h).
inline const wire::Ipv4Addr kGuest4{10, 0, 2, 15};
inline const wire::Ipv4Addr kGateway4{10, 0, 2, 2};
inline const wire::Ipv6Addr kGuest6 = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 0x15});
inline const wire::Ipv6Addr kGateway6 = wire::Ipv6Addr::from_groups({0xfd00, 0, 0, 0, 0, 0, 0, 2});

inline engine::EngineConfig engine_config(bool ipv6 = false) {
  engine::EngineConfig c;
  c.nat.ipv6 = ipv6;
  return c;
}

// One packet the engine sent to the guest, with its addresses and where its
// upper layer starts.
struct GuestPacket {
  std::vector<std::byte> bytes;  // the IP packet
  IpAddr src, dst;
  uint8_t protocol = 0;  // TCP, UDP, ICMP or ICMPv6
  size_t l4_offset = 0;

  wire::Bytes l4() const { return wire::Bytes(bytes).subspan(l4_offset); }
  static std::optional<GuestPacket> parse(std::vector<std::byte> ip) {
    GuestPacket p;
    if (!ip.empty() && (static_cast<uint8_t>(ip[0]) >> 4) == 6) {
      auto v6 = wire::Ipv6Packet::parse(ip);
      auto ul = v6 ? v6->upper_layer() : std::nullopt;
      if (!ul) return std::nullopt;
      p.src = v6->src();
      p.dst = v6->dst();
      p.protocol = ul->protocol;
      p.l4_offset = ul->offset;
      size_t len = ul->offset + ul->data.size();
      ip.resize(len);
    } else {
      auto v4 = wire::Ipv4Packet::parse(ip);
      if (!v4) return std::nullopt;
      p.src = v4->src();
      p.dst = v4->dst();
      p.protocol = v4->protocol();
      p.l4_offset = v4->header_len();
      ip.resize(v4->total_len());
    }
    p.bytes = std::move(ip);
    return p;
  }
};

// The TCP or UDP checksum of a segment, as carried over src -> dst: true if
// it is valid.
inline bool l4_checksum_ok(const IpAddr& src, const IpAddr& dst, uint8_t protocol, wire::Bytes l4) {
  uint32_t pseudo = src.v6
                        ? wire::pseudo_header_sum_v6(src.v6addr, dst.v6addr, protocol, static_cast<uint32_t>(l4.size()))
                        : wire::pseudo_header_sum_v4(src.v4, dst.v4, protocol, static_cast<uint16_t>(l4.size()));
  return wire::checksum_fold(wire::checksum_add(l4, pseudo)) == 0;
}

// An IP packet from the guest: header, then `l4` with its checksum (at
// `checksum_offset` inside l4) filled in.
inline std::vector<std::byte> guest_ip_packet(const IpAddr& src, const IpAddr& dst, uint8_t protocol,
                                              std::vector<std::byte> l4, size_t checksum_offset) {
  wire::store16(l4, checksum_offset, 0);
  uint32_t pseudo = src.v6
                        ? wire::pseudo_header_sum_v6(src.v6addr, dst.v6addr, protocol, static_cast<uint32_t>(l4.size()))
                        : wire::pseudo_header_sum_v4(src.v4, dst.v4, protocol, static_cast<uint16_t>(l4.size()));
  uint16_t sum = wire::checksum_fold(wire::checksum_add(l4, pseudo));
  if (protocol == wire::ipproto::kUdp && sum == 0) sum = 0xffff;
  wire::store16(l4, checksum_offset, sum);
  size_t hlen = src.v6 ? wire::Ipv6Header::kLen : wire::Ipv4Header::kLen;
  std::vector<std::byte> packet(hlen + l4.size());
  const auto len = static_cast<uint16_t>(l4.size());
  if (src.v6) {
    wire::Ipv6Header{.src = src.v6addr, .dst = dst.v6addr, .next_header = protocol, .payload_len = len}.emit(packet);
  } else {
    wire::Ipv4Header{.src = src.v4, .dst = dst.v4, .protocol = protocol, .payload_len = len}.emit(packet);
  }
  std::copy(l4.begin(), l4.end(), packet.begin() + static_cast<std::ptrdiff_t>(hlen));
  return packet;
}

inline std::vector<std::byte> guest_udp_packet(const IpAddr& src, uint16_t src_port, const IpAddr& dst,
                                               uint16_t dst_port, wire::Bytes payload) {
  std::vector<std::byte> l4(wire::UdpDatagram::kHeaderLen + payload.size());
  wire::emit_udp_unchecksummed(l4, src_port, dst_port, payload);
  return guest_ip_packet(src, dst, wire::ipproto::kUdp, std::move(l4), 6);
}

// Milliseconds of wall time since `start`.
inline int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

class EngineRig {
 public:
  uv_loop_t loop;
  sys::ManualClock clock;
  std::vector<std::vector<std::byte>> out;  // IP packets to the guest, in order

  explicit EngineRig(engine::EngineConfig config = engine_config()) {
    uv_loop_init(&loop);
    // The engine's own handles do not keep the loop alive (uv_unref: in a
    // stack the transport does), and uv_run does nothing on a loop that is
    // not alive; this handle stands in for the transport.
    uv_async_init(&loop, &alive_, nullptr);
    // Plain frames only (no link offloads are set): whole checksums.
    engine_ = std::make_unique<engine::LwipEngine>(&loop, clock, config,
                                                   [this](wire::MutBytes frame, const wire::Offload&) {
                                                     out.emplace_back(frame.begin() + wire::kEthernetHeaderLen,
                                                                      frame.end());
                                                   });
  }
  ~EngineRig() {
    if (!closed_) CHECK(shutdown());
  }
  EngineRig(const EngineRig&) = delete;
  EngineRig& operator=(const EngineRig&) = delete;

  engine::LwipEngine& engine() { return *engine_; }
  const engine::EngineStats& stats() const { return engine_->stats(); }

  // One packet from the guest (IPv4 or IPv6).
  void input(wire::Bytes ip) {
    if (!ip.empty() && (static_cast<uint8_t>(ip[0]) >> 4) == 6) {
      auto p = wire::Ipv6Packet::parse(ip);
      if (!p) FAIL("the test built a bad IPv6 packet");
      engine_->input6(*p);
    } else {
      auto p = wire::Ipv4Packet::parse(ip);
      if (!p) FAIL("the test built a bad IPv4 packet");
      engine_->input(*p);
    }
  }

  // One loop iteration that does not wait.
  void pump() { uv_run(&loop, UV_RUN_NOWAIT); }

  // Moves the manual clock and lets the loop run what falls due: lwIP's
  // timer is re-armed after an iteration (the engine's check handle), so
  // the next iteration fires it.
  void advance(uint64_t ms) {
    clock.advance(ms);
    for (int i = 0; i < 3; ++i) pump();
  }

  // Advances the clock by `ms` in steps of lwIP's timer interval, as real
  // time would pass: lwIP's TCP timers count ticks, and one large jump is
  // one tick to them.
  void advance_in_steps(uint64_t ms, uint64_t step = 250) {
    for (uint64_t done = 0; done < ms; done += step) advance(std::min(step, ms - done));
  }

  // Pumps the loop until step() (called before every iteration, where the
  // test services its host peers and its guest) returns true; false after
  // max_ms of wall time or 200000 iterations.
  template <class Step>
  bool run_until(Step step, int max_ms = 3000) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200000; ++i) {
      if (step()) return true;
      pump();
      if (elapsed_ms(start) > max_ms) break;
      if (i % 4 == 3) usleep(200);
    }
    return step();
  }
  // Pumps the loop for `ms` of wall time, calling step() each time.
  template <class Step>
  void run_for(int ms, Step step) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200000 && elapsed_ms(start) < ms; ++i) {
      step();
      pump();
      usleep(200);
    }
  }

  // The packets the engine sent since `from` (an index into out).
  std::vector<GuestPacket> packets(size_t from = 0) const {
    std::vector<GuestPacket> r;
    for (size_t i = from; i < out.size(); ++i)
      if (auto p = GuestPacket::parse(out[i])) r.push_back(std::move(*p));
    return r;
  }

  // Destroys the engine and runs the loop until every close callback has
  // run; true if the loop then closes (no handle left behind).
  bool shutdown() {
    if (closed_) return true;
    engine_.reset();
    {
      // lwIP's TCP timer outlives the pcbs that armed it; let it run once
      // with none left, so that it stops as in a fresh process, instead of
      // firing at a phase of this test's clock in the next engine's life.
      // sys_now() needs an engine's clock: a short-lived one.
      sys::ManualClock flush_clock(clock.now_ms());
      engine::LwipEngine flush(&loop, flush_clock, engine_config(), [](wire::MutBytes, const wire::Offload&) {});
      flush_clock.advance(2000);
      sys_check_timeouts();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&alive_), nullptr);
    bool ok = false;
    for (int i = 0; i < 1000 && !ok; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      ok = uv_loop_close(&loop) == 0;
    }
    sys_restart_timeouts();  // no engine: sys_now() is the real monotonic clock again
    closed_ = ok;
    return ok;
  }

 private:
  uv_async_t alive_;
  std::unique_ptr<engine::LwipEngine> engine_;
  bool closed_ = false;
};

// ---- Host peers: non-blocking sockets on the loopback ----

inline void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

inline sockaddr_storage loopback_address(bool v6, uint16_t port) {
  return engine::to_sockaddr(v6 ? IpAddr(engine::NatPolicy::kHostLoopback6) : IpAddr(engine::NatPolicy::kHostLoopback),
                             port);
}
inline socklen_t sockaddr_len(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}
inline uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t l = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l);
  IpAddr a;
  uint16_t port = 0;
  engine::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), &a, &port);
  return port;
}

// The address and port of the connected socket's peer.
inline std::pair<IpAddr, uint16_t> peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t l = sizeof ss;
  std::pair<IpAddr, uint16_t> r{};
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &l) == 0)
    engine::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), &r.first, &r.second);
  return r;
}

// The engine's own host socket for the TCP connection whose other end is
// `host_fd`, or -1. The engine runs in this process, so its socket is one
// of our fds: the one whose local address is host_fd's peer.
inline int engine_socket_of(int host_fd) {
  sockaddr_storage peer{};
  socklen_t pl = sizeof peer;
  if (getpeername(host_fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return -1;
  for (int fd = 0; fd < 4096; ++fd) {  // a test process has few fds
    sockaddr_storage local{};
    socklen_t ll = sizeof local;
    if (fd == host_fd || getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (ll == pl && std::memcmp(&local, &peer, pl) == 0) return fd;
  }
  return -1;
}

// A socket of `type` bound to the loopback (port 0: any), or -1.
inline int bind_loopback(bool v6, int type, uint16_t port = 0) {
  int s = socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage a = loopback_address(v6, port);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sockaddr_len(a)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// A TCP port on the loopback that was free a moment ago.
inline uint16_t free_loopback_port(bool v6) {
  int s = bind_loopback(v6, SOCK_STREAM);
  uint16_t port = local_port(s);
  close(s);
  return port;
}

// An fd closed with the object.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A TCP listener on the loopback whose accept() the test calls.
class HostListener {
 public:
  explicit HostListener(bool v6 = false, int backlog = 16) : fd_(bind_loopback(v6, SOCK_STREAM)) {
    REQUIRE(fd_);
    REQUIRE(listen(fd_.get(), backlog) == 0);
    set_nonblocking(fd_.get());
  }
  uint16_t port() const { return local_port(fd_.get()); }
  int fd() const { return fd_.get(); }
  // A connection waiting in the accept queue (non-blocking), or an empty Fd.
  Fd accept() {
    int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return Fd(c);
  }

 private:
  Fd fd_;
};

// One end of a host TCP connection: what it has read, and whether it saw
// EOF or an error.
struct HostConn {
  Fd fd;
  std::vector<std::byte> received;
  bool eof = false;
  int error = 0;  // errno of a failed read (ECONNRESET after a reset)

  // Reads what is there, at most `max` bytes; true if anything changed.
  bool read_some(size_t max = 8 << 20) {
    bool progress = false;
    std::byte buf[64 * 1024];
    for (size_t total = 0; total < max && !eof && error == 0;) {
      ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        received.insert(received.end(), buf, buf + n);
        total += static_cast<size_t>(n);
        progress = true;
      } else if (n == 0) {
        eof = progress = true;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          error = errno;
          progress = true;
        }
        break;
      }
    }
    return progress;
  }
  // Writes as much of `data` from `*offset` as the socket takes now.
  size_t write_some(wire::Bytes data, size_t* offset) {
    size_t before = *offset;
    while (*offset < data.size()) {
      ssize_t n = send(fd.get(), data.data() + *offset, data.size() - *offset, MSG_NOSIGNAL);
      if (n <= 0) break;
      *offset += static_cast<size_t>(n);
    }
    return *offset - before;
  }
};

// A host UDP socket on the loopback, non-blocking.
struct HostUdp {
  Fd fd;
  struct Datagram {
    std::vector<std::byte> payload;
    IpAddr from;
    uint16_t from_port = 0;
  };
  explicit HostUdp(bool v6 = false, const char* addr = nullptr) {
    if (addr == nullptr) {
      fd = Fd(bind_loopback(v6, SOCK_DGRAM));
    } else {  // another loopback address, e.g. 127.0.0.2
      fd = Fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      inet_pton(AF_INET, addr, &a.sin_addr);
      REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    REQUIRE(fd);
    set_nonblocking(fd.get());
  }
  uint16_t port() const { return local_port(fd.get()); }
  std::optional<Datagram> receive() {
    std::byte buf[65536];
    sockaddr_storage from{};
    socklen_t l = sizeof from;
    ssize_t n = recvfrom(fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &l);
    if (n < 0) return std::nullopt;
    Datagram d;
    d.payload.assign(buf, buf + n);
    engine::from_sockaddr(reinterpret_cast<sockaddr*>(&from), &d.from, &d.from_port);
    return d;
  }
  bool send_to(const IpAddr& to, uint16_t port, wire::Bytes payload) {
    sockaddr_storage a = engine::to_sockaddr(to, port);
    return sendto(fd.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&a), sockaddr_len(a)) ==
           static_cast<ssize_t>(payload.size());
  }
};

// ---- Data to move and check ----

inline std::vector<std::byte> bytes_of(std::string_view s) {
  return std::vector<std::byte>(reinterpret_cast<const std::byte*>(s.data()),
                                reinterpret_cast<const std::byte*>(s.data()) + s.size());
}

// `n` pseudo-random bytes (xorshift64*, seeded): the same seed gives the
// same bytes, so a mismatch shows where data was lost or reordered.
inline std::vector<std::byte> pattern(size_t n, uint64_t seed) {
  std::vector<std::byte> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t r = x * 0x2545f4914f6cdd1dull;
    for (size_t j = 0; j < 8 && i + j < n; ++j) v[i + j] = std::byte(static_cast<uint8_t>(r >> (8 * j)));
  }
  return v;
}

// The offset of the first byte where a and b differ (the shorter one's
// length if one is a prefix of the other), or kSame.
constexpr size_t kSame = static_cast<size_t>(-1);
inline size_t first_difference(wire::Bytes a, wire::Bytes b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  return a.size() == b.size() ? kSame : n;
}

// A sysctl's numbers (e.g. net/ipv4/tcp_wmem: min default max), or empty.
inline std::vector<uint64_t> read_sysctl(const char* path) {
  std::ifstream f(std::string("/proc/sys/") + path);
  std::vector<uint64_t> v;
  for (uint64_t x; f >> x;) v.push_back(x);
  return v;
}

}  // namespace slipway::test

// Addresses in Catch's failure messages.
namespace Catch {
template <>
struct StringMaker<slipway::engine::IpAddr> {
  static std::string convert(const slipway::engine::IpAddr& a) { return a.to_string(); }
};
}  // namespace Catch
