// Fuzz target: DNS messages, both ways through the DNS proxy. An input is
// records (fuzz_common.h): [flags][guest query][upstream answer]. The query
// goes to dns::Proxy::resolve() as the guest's; the proxy's upstream is a
// socket of this target on the namespace's loopback, which takes the
// proxy's query and answers with the fuzzed answer (UDP, and over TCP when
// the proxy retries there after TC=1). Flag bits:
//   0  the guest's query came over TCP
//   1  the answer takes the upstream query's ID (else the fuzzed one)
//   2  the answer takes the upstream query's question after its header
//   3  resolve the same query again afterwards (the cache's path)
//   4  over TCP, send the answer bytes as they are (no length prefix added)
// The parsers behind it (parse_query, parse_response, truncate_for_udp,
// reply_matches) also see both messages directly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include <memory>

#include "dns-proxy/forwarder.h"
#include "dns-proxy/message.h"
#include "dns-proxy/proxy.h"
#include "fuzz_common.h"
#include "netstack/sys/clock.h"

using namespace slipway;

namespace {

int udp_fd = -1, tcp_fd = -1;
uint16_t port = 0;
uv_loop_t loop;
// FUZZ_VERBOSE=1: what each input did (to check that the seeds reach the upstream).
bool verbose = false;

void setup_upstream() {
  udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(udp_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  socklen_t len = sizeof a;
  getsockname(udp_fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(tcp_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(tcp_fd, 16) != 0) std::abort();
}

std::vector<std::byte> make_answer(std::span<const std::byte> fuzzed, std::span<const std::byte> query, uint8_t flags) {
  std::vector<std::byte> out(fuzzed.begin(), fuzzed.end());
  if (query.size() < 12) return out;
  if ((flags & 4) != 0 && out.size() >= 12) {
    if (auto name = dns::read_name(query, 12); name && name->end + 4 <= query.size()) {
      out.insert(out.begin() + 12, query.begin() + 12, query.begin() + static_cast<ptrdiff_t>(name->end + 4));
    }
  }
  if ((flags & 2) != 0 && out.size() >= 2) {
    out[0] = query[0];
    out[1] = query[1];
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet();
  verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  fuzz::isolate_network();
  uv_loop_init(&loop);
  setup_upstream();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  fuzz::Records records(data + 1, size - 1);
  std::span<const std::byte> query, answer;
  if (!records.next(query)) return 0;
  if (!records.next(answer)) answer = {};

  (void)dns::parse_query(query);
  if (auto r = dns::parse_response(answer)) (void)r;
  (void)dns::truncate_for_udp(answer, 512);
  if (auto q = dns::parse_query(query); q.query) {
    bool truncated = false;
    (void)dns::reply_matches(answer, q.query->header.id, q.query->question, truncated);
  }

  sys::ManualClock clock;
  dns::ProxyConfig config;
  config.upstreams = {{"127.0.0.1", port}};
  config.static_names["static.test"] = {"192.0.2.1", "2001:db8::1"};
  config.upstream_timeout_ms = 50;
  config.total_timeout_ms = 100;
  {
    dns::Proxy proxy(&loop, config, &clock);
    const auto transport = (flags & 1) != 0 ? dns::Transport::kTcp : dns::Transport::kUdp;
    int answered = 0;
    const int rounds = (flags & 8) != 0 ? 2 : 1;
    for (int round = 0; round < rounds; ++round) {
      bool done = !proxy.resolve(query, transport, [&](std::vector<std::byte>) { answered++; }, 0);
      int conn = -1;
      std::vector<std::byte> tcp_in;
      for (int i = 0; i < 50 && !done; ++i) {
        uv_run(&loop, UV_RUN_NOWAIT);
        std::byte buf[4096];
        ssize_t n;
        sockaddr_storage from{};
        socklen_t fromlen = sizeof from;
        while ((n = recvfrom(udp_fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromlen)) > 0) {
          auto reply = make_answer(answer, {buf, static_cast<size_t>(n)}, flags);
          sendto(udp_fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fromlen);
          fromlen = sizeof from;
        }
        if (conn < 0) conn = accept4(tcp_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) {
          while ((n = read(conn, buf, sizeof buf)) > 0) tcp_in.insert(tcp_in.end(), buf, buf + n);
          if (tcp_in.size() >= 2) {
            size_t len = (std::to_integer<size_t>(tcp_in[0]) << 8) | std::to_integer<size_t>(tcp_in[1]);
            if (tcp_in.size() >= 2 + len) {
              auto reply = make_answer(answer, std::span(tcp_in).subspan(2, len), flags);
              if ((flags & 16) == 0) {
                std::byte prefix[2] = {std::byte(reply.size() >> 8), std::byte(reply.size() & 0xff)};
                (void)!write(conn, prefix, 2);
              }
              (void)!write(conn, reply.data(), reply.size());
              shutdown(conn, SHUT_WR);
              tcp_in.clear();
            }
          }
        }
        if (answered > round || proxy.pending() == 0) done = true;
        clock.advance(5);
      }
      if (conn >= 0) close(conn);
    }
    if (verbose) {
      const auto& s = proxy.stats();
      std::fprintf(stderr, "dns: answered %d; queries %llu, cache hits %llu, upstream %llu, TCP fallbacks %llu, "
                   "SERVFAIL %llu, FORMERR %llu, dropped %llu\n", answered,
                   static_cast<unsigned long long>(s.queries), static_cast<unsigned long long>(s.cache_hits),
                   static_cast<unsigned long long>(s.upstream_queries), static_cast<unsigned long long>(s.tcp_fallbacks),
                   static_cast<unsigned long long>(s.servfail), static_cast<unsigned long long>(s.formerr),
                   static_cast<unsigned long long>(s.dropped));
    }
  }
  // The proxy is gone: let its handles close.
  fuzz::spin(&loop, 4);
  return 0;
}
