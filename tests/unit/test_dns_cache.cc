// dns-proxy/cache: TTL decrement and expiry, negative caching (RFC 2308),
// ID and name-case rewriting, what is not cached, and the LRU bound. Time is
// driven by the test.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dns-proxy/cache.h"

using namespace slipway::dns;

namespace {

Query make_query(const std::string& name, uint16_t id, uint16_t type = rrtype::kA) {
  Query q;
  q.header.id = id;
  q.header.flags = kFlagRd;
  q.header.qdcount = 1;
  q.question = Question{*name_from_text(name), type, kClassIn};
  return q;
}

std::vector<std::byte> positive(const Query& q, uint32_t ttl) {
  Record r{rrtype::kA, ttl, {std::byte{192}, std::byte{0}, std::byte{2}, std::byte{1}}};
  std::vector<Record> recs{r, r};
  recs[1].ttl = ttl + 100;
  return build_answer(q, Rcode::kNoError, false, recs);
}

std::vector<std::byte> negative(const Query& q, Rcode rc, uint32_t soa_ttl, uint32_t minimum) {
  auto ans = build_answer(q, rc, false);
  ans[9] = std::byte{1};
  auto put = [&](std::initializer_list<int> v) {
    for (int b : v) ans.push_back(static_cast<std::byte>(b));
  };
  put({0xc0, 12, 0, 6, 0, 1});
  put({int(soa_ttl >> 24), int((soa_ttl >> 16) & 0xff), int((soa_ttl >> 8) & 0xff), int(soa_ttl & 0xff)});
  put({0, 27, 2, 'n', 's', 0xc0, 12, 0xc0, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4});
  put({int(minimum >> 24), int((minimum >> 16) & 0xff), int((minimum >> 8) & 0xff), int(minimum & 0xff)});
  return ans;
}

uint32_t ttl_at(const std::vector<std::byte>& msg, size_t i) {
  return slipway::wire::load32(msg, parse_response(msg).value().ttl_offsets.at(i));
}

}  // namespace

TEST_CASE("dns cache: TTLs decrement with time and the entry expires", "[dns]") {
  Cache cache(16);
  auto q = make_query("www.example.com", 1);
  auto key = Cache::key_of(q);
  REQUIRE(cache.insert(key, positive(q, 30), 1000));

  auto client = make_query("WWW.Example.COM", 0xbeef);
  REQUIRE(Cache::key_of(client) == key);
  auto hit = cache.lookup(key, client, 1000 + 10'500);
  REQUIRE(hit);
  auto h = *Header::parse(*hit);
  CHECK(h.id == 0xbeef);
  CHECK(ttl_at(*hit, 0) == 20);   // 30 - 10 whole seconds
  CHECK(ttl_at(*hit, 1) == 120);  // 130 - 10
  // The client's spelling of the name.
  CHECK(parse_response(*hit)->question.name == client.question.name);

  CHECK(cache.lookup(key, client, 1000 + 29'999));
  CHECK_FALSE(cache.lookup(key, client, 1000 + 30'000));
  CHECK(cache.size() == 0);
}

TEST_CASE("dns cache: negative answers live for min(SOA TTL, SOA MINIMUM)", "[dns]") {
  Cache cache(16);
  auto q = make_query("nx.example.com", 1);
  auto key = Cache::key_of(q);
  REQUIRE(cache.insert(key, negative(q, Rcode::kNxDomain, 3600, 60), 0));
  auto hit = cache.lookup(key, q, 59'000);
  REQUIRE(hit);
  CHECK(Header::parse(*hit)->rcode() == 3);
  CHECK(ttl_at(*hit, 0) == 3600 - 59);
  CHECK_FALSE(cache.lookup(key, q, 60'000));

  // NODATA (NOERROR, no answer) with SOA: cached by the SOA TTL when smaller.
  auto q2 = make_query("v4only.example.com", 2, rrtype::kAaaa);
  REQUIRE(cache.insert(Cache::key_of(q2), negative(q2, Rcode::kNoError, 20, 300), 0));
  CHECK(cache.lookup(Cache::key_of(q2), q2, 19'999));
  CHECK_FALSE(cache.lookup(Cache::key_of(q2), q2, 20'000));
}

TEST_CASE("dns cache: what is never cached", "[dns]") {
  Cache cache(16);
  auto q = make_query("a.example", 1);
  auto key = Cache::key_of(q);
  CHECK_FALSE(cache.insert(key, build_answer(q, Rcode::kServFail, false), 0));
  CHECK_FALSE(cache.insert(key, build_answer(q, Rcode::kNxDomain, false), 0));  // no SOA
  CHECK_FALSE(cache.insert(key, positive(q, 0), 0));                            // TTL 0
  auto tc = positive(q, 60);
  tc[2] = static_cast<std::byte>(static_cast<int>(tc[2]) | 0x02);
  CHECK_FALSE(cache.insert(key, tc, 0));
  CHECK(cache.size() == 0);
  Cache off(0);
  CHECK_FALSE(off.insert(key, positive(q, 60), 0));
}

TEST_CASE("dns cache: bounded, least recently used goes first", "[dns]") {
  Cache cache(3);
  std::vector<Query> qs;
  for (int i = 0; i < 4; ++i) qs.push_back(make_query("n" + std::to_string(i) + ".example", 1));
  for (int i = 0; i < 3; ++i) REQUIRE(cache.insert(Cache::key_of(qs[i]), positive(qs[i], 60), 0));
  CHECK(cache.lookup(Cache::key_of(qs[0]), qs[0], 1));  // n0 is now the most recent
  REQUIRE(cache.insert(Cache::key_of(qs[3]), positive(qs[3], 60), 2));
  CHECK(cache.size() == 3);
  CHECK(cache.lookup(Cache::key_of(qs[0]), qs[0], 3));
  CHECK_FALSE(cache.lookup(Cache::key_of(qs[1]), qs[1], 3));  // evicted
  CHECK(cache.lookup(Cache::key_of(qs[2]), qs[2], 3));
  CHECK(cache.lookup(Cache::key_of(qs[3]), qs[3], 3));
}

TEST_CASE("dns cache: the DO bit is part of the key", "[dns]") {
  auto q = make_query("a.example", 1);
  auto q_do = q;
  q_do.edns = Edns{1232, true};
  CHECK(Cache::key_of(q) != Cache::key_of(q_do));
}
