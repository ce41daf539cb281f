// dns-proxy/proxy on a real libuv loop with a scripted upstream on
// 127.0.0.1 (a UDP socket the test answers from): static names, FORMERR and
// drops, relaying with ID rewriting, spoofed replies ignored, cache hits,
// SERVFAIL on silence, TC=1 for clients that take less.
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <vector>

#include "dns-proxy/proxy.h"

using namespace slipway::dns;

namespace {

std::vector<std::byte> query_bytes(const std::string& name, uint16_t id, uint16_t type, bool edns = false) {
  Query q;
  q.header.id = id;
  q.header.flags = kFlagRd;
  q.header.qdcount = 1;
  q.question = Question{*name_from_text(name), type, kClassIn};
  // build_answer makes a response; clear QR/RA and the rcode to get a query.
  auto msg = build_answer(q, Rcode::kNoError, false);
  slipway::wire::store16(msg, 2, kFlagRd);
  if (edns) {
    slipway::wire::store16(msg, 10, 1);
    for (int b : {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0}) msg.push_back(static_cast<std::byte>(b));
  }
  return msg;
}

// A UDP socket on 127.0.0.1 that hands each query to `on_query`, which
// returns the datagrams to send back.
struct FakeUpstream {
  uv_udp_t udp{};
  uint16_t port = 0;
  int queries = 0;
  std::vector<uint16_t> ids;
  std::function<std::vector<std::vector<std::byte>>(const std::vector<std::byte>&)> on_query;
  std::vector<std::byte> buf = std::vector<std::byte>(65536);

  explicit FakeUpstream(uv_loop_t* loop) {
    uv_udp_init(loop, &udp);
    udp.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    REQUIRE(uv_udp_bind(&udp, reinterpret_cast<const sockaddr*>(&a), 0) == 0);
    sockaddr_in bound{};
    int len = sizeof bound;
    uv_udp_getsockname(&udp, reinterpret_cast<sockaddr*>(&bound), &len);
    port = ntohs(bound.sin_port);
    uv_udp_recv_start(
        &udp,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* self = static_cast<FakeUpstream*>(h->data);
          *b = uv_buf_init(reinterpret_cast<char*>(self->buf.data()), static_cast<unsigned>(self->buf.size()));
        },
        [](uv_udp_t* u, ssize_t n, const uv_buf_t* b, const sockaddr* from, unsigned) {
          auto* self = static_cast<FakeUpstream*>(u->data);
          if (n <= 0 || !from) return;
          std::vector<std::byte> q(reinterpret_cast<std::byte*>(b->base), reinterpret_cast<std::byte*>(b->base) + n);
          ++self->queries;
          self->ids.push_back(slipway::wire::load16(q, 0));
          if (!self->on_query) return;
          for (auto& reply : self->on_query(q)) {
            uv_buf_t out = uv_buf_init(reinterpret_cast<char*>(reply.data()), static_cast<unsigned>(reply.size()));
            uv_udp_try_send(u, &out, 1, from);
          }
        });
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr); }
};

// The reply an authoritative server would give: the query turned into an
// answer with `count` A records of TTL 300.
std::vector<std::byte> answer_for(const std::vector<std::byte>& query, int count) {
  auto p = parse_query(query);
  std::vector<Record> recs;
  for (int i = 0; i < count; ++i)
    recs.push_back(Record{rrtype::kA, 300, {std::byte{192}, std::byte{0}, std::byte{2}, static_cast<std::byte>(i)}});
  return build_answer(*p.query, Rcode::kNoError, true, recs);
}

struct Result {
  std::optional<std::vector<std::byte>> reply;
  uint64_t at_ms = 0;
};

// Runs the loop until the proxy answered (or `limit_ms` passed).
Result ask(uv_loop_t* loop, Proxy& proxy, const std::vector<std::byte>& q, Transport t = Transport::kUdp,
           uint64_t limit_ms = 3000) {
  Result r;
  uint64_t start = uv_now(loop);
  proxy.resolve(q, t, [&](std::vector<std::byte> reply) {
    r.reply = std::move(reply);
    r.at_ms = uv_now(loop) - start;
  });
  uv_update_time(loop);
  while (!r.reply && uv_now(loop) - start < limit_ms) {
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
  }
  return r;
}

// Lets close callbacks run; other handles may stay active.
void drain(uv_loop_t* loop) {
  for (int i = 0; i < 4; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

}  // namespace

TEST_CASE("dns proxy: static names are answered authoritatively", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", 9}};
    cfg.static_names["host.internal"] = {"10.0.2.2", "fd00::2"};
    Proxy proxy(&loop, cfg);
    auto r = ask(&loop, proxy, query_bytes("Host.Internal", 7, rrtype::kA));
    REQUIRE(r.reply);
    auto info = parse_response(*r.reply);
    REQUIRE(info);
    CHECK(info->header.id == 7);
    CHECK(info->header.aa());
    CHECK(info->header.ancount == 1);
    auto r6 = ask(&loop, proxy, query_bytes("host.internal", 8, rrtype::kAaaa));
    CHECK(parse_response(*r6.reply)->header.ancount == 1);
    auto mx = ask(&loop, proxy, query_bytes("host.internal", 9, rrtype::kMx));
    auto mi = parse_response(*mx.reply);
    CHECK(mi->header.rcode() == 0);
    CHECK(mi->header.ancount == 0);
    CHECK(mi->header.aa());
    CHECK(proxy.stats().upstream_queries == 0);
    ProxyConfig bad = cfg;
    bad.static_names["x"] = {"not-an-ip"};
    CHECK_THROWS_AS(Proxy(&loop, bad), std::runtime_error);
    ProxyConfig bad_route = cfg;
    bad_route.routes = {Route{"corp", Upstream{"nonsense", 53}}};
    CHECK_THROWS_AS(Proxy(&loop, bad_route), std::runtime_error);
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: malformed queries get FORMERR or are dropped, and counted", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", 9}};
    Proxy proxy(&loop, cfg);
    int calls = 0;
    std::vector<std::byte> last;
    auto respond = [&](std::vector<std::byte> r) {
      ++calls;
      last = std::move(r);
    };
    std::vector<std::byte> shorty(5, std::byte{0});
    CHECK_FALSE(proxy.resolve(shorty, Transport::kUdp, respond));
    auto q = query_bytes("a.example", 0x4242, rrtype::kA);
    auto resp = q;
    resp[2] = std::byte{0x81};
    CHECK_FALSE(proxy.resolve(resp, Transport::kUdp, respond));
    CHECK(calls == 0);
    CHECK(proxy.stats().dropped == 2);
    auto trailing = q;
    trailing.push_back(std::byte{0});
    CHECK(proxy.resolve(trailing, Transport::kUdp, respond));
    REQUIRE(calls == 1);
    CHECK(Header::parse(last)->rcode() == 1);
    CHECK(Header::parse(last)->id == 0x4242);
    auto loop_q = query_bytes("a.example", 1, rrtype::kA);
    loop_q.resize(12);
    for (int b : {0xc0, 12, 0, 1, 0, 1}) loop_q.push_back(static_cast<std::byte>(b));
    proxy.resolve(loop_q, Transport::kTcp, respond);
    CHECK(calls == 2);
    CHECK(Header::parse(last)->rcode() == 1);
    CHECK(proxy.stats().formerr == 2);
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: relays with a random ID, ignores spoofs, caches", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    FakeUpstream up(&loop);
    up.on_query = [](const std::vector<std::byte>& q) {
      auto good = answer_for(q, 2);
      auto spoof_id = good;
      slipway::wire::store16(spoof_id, 0, static_cast<uint16_t>(slipway::wire::load16(good, 0) + 1));
      auto spoof_name = answer_for(q, 2);
      spoof_name[13] = std::byte{'z'};  // another name of the same length
      return std::vector<std::vector<std::byte>>{spoof_id, spoof_name, good};
    };
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", up.port}};
    Proxy proxy(&loop, cfg);
    auto q = query_bytes("www.example", 0x1111, rrtype::kA);
    auto r = ask(&loop, proxy, q);
    REQUIRE(r.reply);
    auto info = parse_response(*r.reply);
    REQUIRE(info);
    CHECK(info->header.id == 0x1111);
    CHECK(info->header.ancount == 2);
    CHECK(name_to_text(info->question.name) == "www.example.");
    REQUIRE(up.queries == 1);
    // The upstream saw our ID, not the client's (1 in 65536 to collide).
    CHECK(up.ids[0] != 0x1111);
    // Exact relay: the reply is the upstream's but for the ID.
    auto expected = answer_for(q, 2);
    CHECK(*r.reply == expected);

    auto r2 = ask(&loop, proxy, query_bytes("WWW.example", 0x2222, rrtype::kA));
    REQUIRE(r2.reply);
    CHECK(Header::parse(*r2.reply)->id == 0x2222);
    CHECK(up.queries == 1);
    CHECK(proxy.stats().cache_hits == 1);
    up.close();
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: a silent upstream gets SERVFAIL within the deadline", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    FakeUpstream up(&loop);  // never answers
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", up.port}};
    cfg.upstream_timeout_ms = 100;
    cfg.total_timeout_ms = 400;
    Proxy proxy(&loop, cfg);
    auto r = ask(&loop, proxy, query_bytes("slow.example", 5, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(Header::parse(*r.reply)->rcode() == 2);
    CHECK(r.at_ms < 1000);
    CHECK(up.queries == 3);  // three attempts
    CHECK(proxy.stats().servfail == 1);
    CHECK(proxy.pending() == 0);
    up.close();
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: a big answer is truncated for a UDP client that takes 512", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    FakeUpstream up(&loop);
    up.on_query = [](const std::vector<std::byte>& q) { return std::vector<std::vector<std::byte>>{answer_for(q, 60)}; };
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", up.port}};
    Proxy proxy(&loop, cfg);
    auto r = ask(&loop, proxy, query_bytes("big.example", 3, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(r.reply->size() <= 512);
    CHECK(Header::parse(*r.reply)->tc());
    // The same name over TCP (from the cache now) and with EDNS 4096: whole.
    auto t = ask(&loop, proxy, query_bytes("big.example", 4, rrtype::kA), Transport::kTcp);
    CHECK(parse_response(*t.reply)->header.ancount == 60);
    auto e = ask(&loop, proxy, query_bytes("big.example", 5, rrtype::kA, true));
    REQUIRE(e.reply);
    CHECK_FALSE(Header::parse(*e.reply)->tc());
    CHECK(up.queries == 1);  // both served from the cache
    up.close();
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: destroying it with queries in flight calls nothing", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    FakeUpstream up(&loop);
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", up.port}};
    bool called = false;
    {
      Proxy proxy(&loop, cfg);
      proxy.resolve(query_bytes("x.example", 1, rrtype::kA), Transport::kUdp, [&](std::vector<std::byte>) { called = true; });
      uv_run(&loop, UV_RUN_NOWAIT);
      CHECK(proxy.pending() == 1);
    }
    drain(&loop);
    CHECK_FALSE(called);
    up.close();
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: reconfigure switches upstreams and names, and refuses a bad config", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    FakeUpstream a(&loop), b(&loop);
    a.on_query = [](const std::vector<std::byte>& q) { return std::vector<std::vector<std::byte>>{answer_for(q, 1)}; };
    b.on_query = [](const std::vector<std::byte>& q) { return std::vector<std::vector<std::byte>>{answer_for(q, 3)}; };
    ProxyConfig cfg;
    cfg.upstreams = {Upstream{"127.0.0.1", a.port}};
    Proxy proxy(&loop, cfg);
    auto r = ask(&loop, proxy, query_bytes("www.example", 1, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(Header::parse(*r.reply)->ancount == 1);

    cfg.upstreams = {Upstream{"127.0.0.1", b.port}};
    cfg.static_names["new.test"] = {"192.0.2.99"};
    proxy.reconfigure(cfg);
    // The cached answer from the old upstream is gone: b answers.
    r = ask(&loop, proxy, query_bytes("www.example", 2, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(Header::parse(*r.reply)->ancount == 3);
    CHECK(b.queries == 1);
    r = ask(&loop, proxy, query_bytes("new.test", 3, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(Header::parse(*r.reply)->ancount == 1);
    CHECK(proxy.stats().static_answers == 1);

    auto bad = cfg;
    bad.static_names["bad.test"] = {"not-an-address"};
    CHECK_THROWS_WITH(proxy.reconfigure(bad), Catch::Contains("bad address"));
    // Still the good configuration.
    r = ask(&loop, proxy, query_bytes("new.test", 4, rrtype::kA));
    REQUIRE(r.reply);
    CHECK(proxy.stats().static_answers == 2);
    a.close();
    b.close();
  }
  drain(&loop);
  uv_loop_close(&loop);
}

TEST_CASE("dns proxy: a hosts file that is not a regular file, or too large, is refused at once", "[dns]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char dir[] = "/tmp/slipway-dns-hosts.XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string d = dir;
  REQUIRE(mkfifo((d + "/fifo").c_str(), 0600) == 0);
  {
    std::ofstream big(d + "/big");
    big << std::string(kMaxHostsFileBytes + 1, '#');
  }
  auto error_of = [&](const std::string& path) -> std::string {
    ProxyConfig c;
    c.upstreams = {Upstream{"127.0.0.1", 53}};
    c.hosts_file = path;
    try {
      Proxy p(&loop, c);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  };
  // /dev/zero once grew the process to 2 GB before failing; a FIFO blocked forever.
  auto start = std::chrono::steady_clock::now();
  CHECK(error_of("/dev/zero") ==
        "dns-proxy: cannot read hosts file '/dev/zero': not a regular file (a character device)");
  CHECK(error_of(d + "/fifo") == "dns-proxy: cannot read hosts file '" + d + "/fifo': not a regular file (a FIFO)");
  CHECK(error_of(d) == "dns-proxy: cannot read hosts file '" + d + "': not a regular file (a directory)");
  CHECK(error_of(d + "/big") == "dns-proxy: cannot read hosts file '" + d + "/big': larger than " +
                                    std::to_string(kMaxHostsFileBytes) + " bytes");
  CHECK(error_of("/nonexistent") == "dns-proxy: cannot read hosts file '/nonexistent': No such file or directory");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  std::remove((d + "/fifo").c_str());
  std::remove((d + "/big").c_str());
  rmdir(dir);
  drain(&loop);
  CHECK(uv_loop_close(&loop) == 0);
}
