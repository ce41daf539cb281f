// dns-proxy/message: parsing of queries and replies against byte vectors,
// every malformed case, compression loops, builders and UDP truncation.
#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "dns-proxy/message.h"

using namespace slipway::dns;

namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}
void append(std::vector<std::byte>& out, std::initializer_list<int> v) {
  for (int b : v) out.push_back(static_cast<std::byte>(b));
}

// A query for example.com A, ID 0x1234, RD.
std::vector<std::byte> example_query() {
  return bytes({0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
                0, 1, 0, 1});
}

// The same with an OPT record: UDP size 4096, DO set.
std::vector<std::byte> example_query_with_edns() {
  auto q = example_query();
  q[11] = std::byte{1};  // ARCOUNT 1
  append(q, {0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0});
  return q;
}

}  // namespace

TEST_CASE("dns: a plain query parses", "[dns]") {
  auto q = example_query();
  auto p = parse_query(q);
  REQUIRE(p.query);
  CHECK(p.query->header.id == 0x1234);
  CHECK(p.query->header.rd());
  CHECK(name_to_text(p.query->question.name) == "example.com.");
  CHECK(p.query->question.qtype == rrtype::kA);
  CHECK(p.query->question.qclass == kClassIn);
  CHECK_FALSE(p.query->edns);
  CHECK(p.query->max_udp_size() == 512);
}

TEST_CASE("dns: a query with EDNS0 reports its UDP size and DO bit", "[dns]") {
  auto q = example_query_with_edns();
  auto p = parse_query(q);
  REQUIRE(p.query);
  REQUIRE(p.query->edns);
  CHECK(p.query->edns->udp_size == 4096);
  CHECK(p.query->edns->dnssec_ok);
  CHECK(p.query->max_udp_size() == 4096);
}

TEST_CASE("dns: malformed queries are classified", "[dns]") {
  SECTION("short header") {
    auto p = parse_query(bytes({0x12, 0x34, 0x01}));
    CHECK(p.error == QueryError::kShort);
    CHECK_FALSE(p.header);
  }
  SECTION("QR=1") {
    auto q = example_query();
    q[2] = std::byte{0x81};
    CHECK(parse_query(q).error == QueryError::kResponse);
  }
  SECTION("opcode STATUS") {
    auto q = example_query();
    q[2] = std::byte{0x10};
    CHECK(parse_query(q).error == QueryError::kNotImpl);
  }
  SECTION("QDCOUNT 0 and 2") {
    auto q = example_query();
    q[5] = std::byte{0};
    CHECK(parse_query(q).error == QueryError::kQdCount);
    q[5] = std::byte{2};
    CHECK(parse_query(q).error == QueryError::kQdCount);
  }
  SECTION("label longer than the message") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 'b', 0, 0, 1, 0, 1});
    auto p = parse_query(q);
    CHECK(p.error == QueryError::kBadQuestion);
    CHECK(p.header);
  }
  SECTION("extended label type 0x40") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 'a', 0, 0, 1, 0, 1});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
  SECTION("compression pointer to itself (loop)") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
  SECTION("compression pointer out of range") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0, 1, 0, 1});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
  SECTION("compression pointer into the header") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 2, 0, 1, 0, 1});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
  SECTION("question without type and class") {
    auto q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
  SECTION("trailing garbage") {
    auto q = example_query();
    append(q, {0xde, 0xad});
    auto p = parse_query(q);
    CHECK(p.error == QueryError::kTrailing);
    CHECK(p.question);  // FORMERR can echo it
  }
  SECTION("ARCOUNT promises a record that is not there") {
    auto q = example_query();
    q[11] = std::byte{1};
    CHECK(parse_query(q).error == QueryError::kBadRecord);
  }
  SECTION("two OPT records") {
    auto q = example_query();
    q[11] = std::byte{2};
    append(q, {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0});
    append(q, {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0});
    CHECK(parse_query(q).error == QueryError::kBadOpt);
  }
  SECTION("name over 255 bytes") {
    std::vector<std::byte> q = bytes({1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
    for (int i = 0; i < 5; ++i) {
      q.push_back(std::byte{63});
      for (int j = 0; j < 63; ++j) q.push_back(std::byte{'x'});
    }
    append(q, {0, 0, 1, 0, 1});
    CHECK(parse_query(q).error == QueryError::kBadQuestion);
  }
}

TEST_CASE("dns: compressed names decode; a two-pointer loop is rejected", "[dns]") {
  // Header, then "a.b" at 12, then a name "c" + pointer to 12 at 17.
  auto m = bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 1, 'b', 0, 1, 'c', 0xc0, 12});
  auto n = read_name(m, 17);
  REQUIRE(n);
  CHECK(name_to_text(n->wire) == "c.a.b.");
  CHECK(n->end == 21);
  // 12: pointer to 14; 14: pointer to 12: forward pointer rejected, no loop.
  auto loop = bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0xc0, 12});
  CHECK_FALSE(read_name(loop, 12));
  CHECK_FALSE(read_name(loop, 14));
}

TEST_CASE("dns: name helpers", "[dns]") {
  auto a = *name_from_text("Host.Internal");
  auto b = *name_from_text("host.internal.");
  CHECK(name_equal(a, b));
  CHECK(name_in_zone(*name_from_text("a.corp.example"), *name_from_text("corp.example")));
  CHECK(name_in_zone(*name_from_text("corp.example"), *name_from_text("corp.example")));
  CHECK_FALSE(name_in_zone(*name_from_text("xcorp.example"), *name_from_text("corp.example")));
  CHECK(name_in_zone(*name_from_text("anything"), *name_from_text(".")));
  CHECK_FALSE(name_from_text("a..b"));
  CHECK_FALSE(name_from_text(std::string(64, 'x')));
  CHECK(name_to_text(*name_from_text("")) == ".");
}

TEST_CASE("dns: FORMERR and answers are built from the query", "[dns]") {
  auto q = example_query();
  auto p = parse_query(q);
  REQUIRE(p.query);
  auto err = build_error(*p.header, nullptr, Rcode::kFormErr);
  REQUIRE(err.size() == 12);
  auto h = *Header::parse(err);
  CHECK(h.id == 0x1234);
  CHECK(h.qr());
  CHECK(h.rd());
  CHECK(h.rcode() == 1);
  CHECK(h.qdcount == 0);

  Record r{rrtype::kA, 60, bytes({10, 0, 2, 2})};
  auto ans = build_answer(*p.query, Rcode::kNoError, true, std::span<const Record>(&r, 1));
  auto info = parse_response(ans);
  REQUIRE(info);
  CHECK(info->records_ok);
  CHECK(info->header.aa());
  CHECK(info->header.ancount == 1);
  CHECK(info->min_ttl == 60u);
  CHECK(same_question(info->question, p.query->question));
  CHECK(ans.size() == q.size() + 16);
  CHECK(static_cast<int>(ans.back()) == 2);
}

TEST_CASE("dns: answers and errors byte by byte", "[dns]") {
  auto q = example_query_with_edns();
  auto p = parse_query(q);
  REQUIRE(p.query);
  const auto question = bytes({7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1});

  Record r{rrtype::kA, 60, bytes({10, 0, 2, 2})};
  auto expected = bytes({0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 1});  // QR AA RD RA, 1 1 0 1
  expected.insert(expected.end(), question.begin(), question.end());
  append(expected, {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 2, 2});  // A 60 10.0.2.2
  append(expected, {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0});              // OPT 1232, DO
  CHECK(build_answer(*p.query, Rcode::kNoError, true, std::span<const Record>(&r, 1)) == expected);

  expected = bytes({0x12, 0x34, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0});  // QR RD RA SERVFAIL, 1 0 0 0
  expected.insert(expected.end(), question.begin(), question.end());
  CHECK(build_error(p.query->header, &p.query->question, Rcode::kServFail) == expected);
}

TEST_CASE("dns: TCP frames carry a big-endian length", "[dns]") {
  CHECK(tcp_framed(bytes({0xaa, 0xbb, 0xcc})) == bytes({0, 3, 0xaa, 0xbb, 0xcc}));
  CHECK(tcp_framed({}) == bytes({0, 0}));
  std::vector<std::byte> big(300, std::byte{7});
  auto framed = tcp_framed(big);
  REQUIRE(framed.size() == 302);
  CHECK(framed[0] == std::byte{1});
  CHECK(framed[1] == std::byte{44});
}

TEST_CASE("dns: negative answers carry the SOA minimum", "[dns]") {
  auto q = example_query();
  auto p = parse_query(q);
  auto ans = build_answer(*p.query, Rcode::kNxDomain, false);
  // Authority: example.com SOA, TTL 3600, minimum 300.
  ans[9] = std::byte{1};
  append(ans, {0xc0, 12, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 27,
               2, 'n', 's', 0xc0, 12, 0xc0, 12,
               0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0x01, 0x2c});
  auto info = parse_response(ans);
  REQUIRE(info);
  CHECK(info->records_ok);
  CHECK(info->soa_negative_ttl == 300u);
  CHECK(info->header.rcode() == 3);
}

TEST_CASE("dns: UDP truncation keeps the question and OPT, sets TC", "[dns]") {
  auto q = example_query();
  q[11] = std::byte{1};
  append(q, {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});
  auto p = parse_query(q);
  REQUIRE(p.query);
  std::vector<Record> recs;
  for (int i = 0; i < 60; ++i) recs.push_back(Record{rrtype::kA, 60, bytes({10, 0, 0, i})});
  auto big = build_answer(*p.query, Rcode::kNoError, false, recs);
  REQUIRE(big.size() > 512);
  CHECK(truncate_for_udp(big, 4096) == big);
  auto cut = truncate_for_udp(big, 512);
  CHECK(cut.size() <= 512);
  auto info = parse_response(cut);
  REQUIRE(info);
  CHECK(info->records_ok);
  CHECK(info->header.tc());
  CHECK(info->header.ancount == 0);
  CHECK(info->header.arcount == 1);
  CHECK(info->opt_offset);
  CHECK(same_question(info->question, p.query->question));
}

TEST_CASE("dns: address literals become A or AAAA rdata", "[dns]") {
  auto a = address_rdata("10.0.2.2");
  REQUIRE(a);
  CHECK(a->type == rrtype::kA);
  CHECK(a->rdata.size() == 4);
  auto aaaa = address_rdata("fd00::2");
  REQUIRE(aaaa);
  CHECK(aaaa->type == rrtype::kAaaa);
  CHECK(aaaa->rdata.size() == 16);
  CHECK_FALSE(address_rdata("host"));
}
