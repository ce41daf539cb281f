// udp_pps: small-datagram rate for bench/run.sh (figure "UDP small packets").
//
// iperf3's UDP receiver reads one datagram per select() and tops out at a
// few tens of thousands of 64-byte datagrams per second on this machine, so
// it would measure itself rather than the network in between. udp_pps
// sends with sendmmsg() and receives with recvmmsg() in batches of 64, so the
// path under test (a user-mode stack, veth, loopback) is the bottleneck.
//
//   udp_pps server --port P --role recv|send --seconds S [--size N]
//   udp_pps client --to ADDR:PORT --role send|recv --seconds S [--size N]
//
// The server runs on the benchmark host, the client in the guest, so a NAT
// in between (slirp4netns, slipway) sees the guest speak first, as with
// iperf3 -u / -R:
//   - upload: the client sends for S seconds; the server receives.
//   - download: the client sends a 1-byte "hello" every 100 ms until data
//     arrives; the server waits for the first hello, then sends to its
//     source address for S seconds.
// The receiving side prints one line:
//   packets=N seconds=T pps=R
// counting datagrams of --size bytes between the first and the last one it
// got (T is that span). It stops 0.5 s after the last datagram, or at S + 10 s
// (S + 20 s for a server waiting for its hello) whatever happens. The sender
// prints `sent=N seconds=T` to stderr. Exit 0 when datagrams were received
// (receiver) or sent (sender), 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBatch = 64;              // datagrams per sendmmsg/recvmmsg
constexpr int kMaxSize = 1472;          // one Ethernet frame's UDP payload
constexpr auto kIdleEnd = std::chrono::milliseconds(500);

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "udp_pps: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: udp_pps server --port P --role recv|send --seconds S [--size N]\n"
               "       udp_pps client --to ADDR:PORT --role send|recv --seconds S [--size N]\n");
  std::exit(2);
}

// A sockaddr for "ADDR:PORT" or "[ADDR6]:PORT".
bool parse_endpoint(const std::string& s, sockaddr_storage& out, socklen_t& len) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  std::memset(&out, 0, sizeof out);
  auto p = static_cast<uint16_t>(std::atoi(port.c_str()));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(p);
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(p);
    len = sizeof *v6;
    return true;
  }
  return false;
}

// Waits up to `ms` for fd to become readable.
bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

// Receives datagrams of `size` bytes until 0.5 s after the last one or until
// `deadline`, then prints the rate.
int receive(int fd, int size, Clock::time_point deadline) {
  std::vector<std::array<char, kMaxSize>> bufs(kBatch);
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  for (int i = 0; i < kBatch; ++i) {
    iov[i] = {bufs[i].data(), bufs[i].size()};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long long packets = 0;
  Clock::time_point first{};
  Clock::time_point last{};
  while (Clock::now() < deadline) {
    if (!readable(fd, 100)) {
      if (packets > 0 && Clock::now() - last > kIdleEnd) break;
      continue;
    }
    int n = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("recvmmsg");
    }
    auto now = Clock::now();
    for (int i = 0; i < n; ++i) {
      if (static_cast<int>(msgs[i].msg_len) != size) continue;  // a hello
      if (packets == 0) first = now;
      ++packets;
      last = now;
    }
  }
  double span = packets > 1 ? seconds_between(first, last) : 0.0;
  std::printf("packets=%lld seconds=%.3f pps=%.0f\n", packets, span, span > 0 ? packets / span : 0.0);
  return packets > 0 ? 0 : 1;
}

// Sends datagrams of `size` bytes to `to` (or to the connected peer) for
// `seconds`.
int send_for(int fd, int size, double seconds, const sockaddr_storage* to, socklen_t to_len) {
  std::array<char, kMaxSize> payload{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  for (int i = 0; i < kBatch; ++i) {
    iov[i] = {payload.data(), static_cast<size_t>(size)};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (to != nullptr) {
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr_storage*>(to);
      msgs[i].msg_hdr.msg_namelen = to_len;
    }
  }
  long long sent = 0;
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    int n = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n < 0) {
      // A full queue or a transient ICMP error: the receiver's count is
      // what the figure reports, so keep sending.
      if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) continue;
      die("sendmmsg");
    }
    sent += n;
  }
  std::fprintf(stderr, "sent=%lld seconds=%.3f\n", sent, seconds_between(start, Clock::now()));
  return sent > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  std::string mode = argv[1];
  std::string role;
  std::string to;
  int port = -1;
  int size = 64;
  double seconds = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--port") port = std::atoi(v.c_str());
    else if (k == "--role") role = v;
    else if (k == "--to") to = v;
    else if (k == "--size") size = std::atoi(v.c_str());
    else if (k == "--seconds") seconds = std::atof(v.c_str());
    else usage();
  }
  if ((role != "send" && role != "recv") || seconds <= 0 || size < 2 || size > kMaxSize) usage();
  auto limit = [&](int extra) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds + extra));
  };
  int rcvbuf = 4 << 20;

  if (mode == "server") {
    if (port <= 0 || port > 65535) usage();
    // One dual-stack socket on [::]:P serves IPv4 and IPv6 guests.
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    a.sin6_addr = in6addr_any;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) die("bind");
    if (role == "recv") return receive(fd, size, limit(10));
    // Send: wait for the client's hello to learn where the guest is.
    auto deadline = limit(20);
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    char hello[16];
    while (true) {
      if (Clock::now() >= deadline) {
        std::fprintf(stderr, "udp_pps: no hello from the client\n");
        return 1;
      }
      if (!readable(fd, 100)) continue;
      peer_len = sizeof peer;
      if (recvfrom(fd, hello, sizeof hello, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len) >= 0) break;
    }
    return send_for(fd, size, seconds, &peer, peer_len);
  }

  if (mode == "client") {
    sockaddr_storage dst{};
    socklen_t dst_len = 0;
    if (!parse_endpoint(to, dst, dst_len)) usage();
    int fd = socket(dst.ss_family, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), dst_len) < 0) die("connect");
    if (role == "send") return send_for(fd, size, seconds, nullptr, 0);
    // Receive: say hello every 100 ms until the first datagram arrives.
    auto deadline = limit(20);
    while (Clock::now() < deadline) {
      if (send(fd, "h", 1, 0) < 0 && errno != ECONNREFUSED) die("send");
      if (readable(fd, 100)) return receive(fd, size, limit(10));
    }
    std::fprintf(stderr, "udp_pps: no data from the server\n");
    return 1;
  }
  usage();
}
