// DNS over TCP as the engine serves it (dns_tcp_session.h): a guest TCP
// played by hand against the engine's DNS address, with a resolver that
// answers or drops each query as the DNS proxy does. What a hostile guest
// may do: queries that are dropped, a client trickling bytes, many
// sessions at once. And the line service (portfwd-agent's reports), served
// the same way.
#include <catch2/catch.hpp>
#include <vector>

#include "engine_rig.h"
#include "guest_tcp.h"
#include "netstack/engine/dns_tcp_session.h"
#include "netstack/engine/line_session.h"

using namespace slipway;
using namespace slipway::test;

namespace {

constexpr uint16_t kDnsPort = 53;

// Length-prefixed DNS message of `len` bytes whose first two (the ID) are `id`.
std::vector<std::byte> framed(uint16_t id, size_t len) {
  std::vector<std::byte> m(2 + len);
  wire::store16(m, 0, static_cast<uint16_t>(len));
  if (len >= 2) wire::store16(m, 2, id);
  return m;
}

// As the proxy: a query shorter than a header is dropped (false), anything
// else is answered at once with itself.
void serve_dns(EngineRig& rig, size_t* answered, size_t* dropped) {
  rig.engine().set_dns_resolver([answered, dropped](wire::Bytes query, bool,
                                                    std::function<void(std::vector<std::byte>)> respond) {
    if (query.size() < 12) {
      (*dropped)++;
      return false;
    }
    (*answered)++;
    respond(std::vector<std::byte>(query.begin(), query.end()));
    return true;
  });
}

}  // namespace

TEST_CASE("engine: DNS over TCP: dropped queries free their slot, later queries are answered", "[engine][dns]") {
  EngineRig rig;
  size_t answered = 0, dropped = 0;
  serve_dns(rig, &answered, &dropped);
  GuestTcp g(rig, kGuest4, 41000, rig.engine().config().nat.dns, kDnsPort);
  g.syn(100);
  REQUIRE(rig.run_until([&] {
    g.poll();
    return g.established;
  }));
  // 40 queries too short to answer (more than the session's 16 slots)...
  for (int i = 0; i < 40; i++) g.send(framed(static_cast<uint16_t>(i), 4));
  // ...then one real one, which must still be answered.
  auto real = framed(0x4242, 12);
  g.send(real);
  CHECK(rig.run_until([&] {
    g.poll();
    return g.received.size() >= real.size();
  }));
  CHECK(dropped == 40);
  CHECK(answered == 1);
  CHECK(std::vector<std::byte>(g.received.begin(), g.received.begin() + 14) == real);
}

TEST_CASE("engine: DNS over TCP: a client trickling bytes that never make a query is closed after the idle timeout",
          "[engine][dns]") {
  EngineRig rig;
  size_t answered = 0, dropped = 0;
  serve_dns(rig, &answered, &dropped);
  GuestTcp g(rig, kGuest4, 41001, rig.engine().config().nat.dns, kDnsPort);
  g.syn(100);
  REQUIRE(rig.run_until([&] {
    g.poll();
    return g.established;
  }));
  // A length of 1000, then one byte every 10 s: never a whole query.
  std::vector<std::byte> head(2);
  wire::store16(head, 0, 1000);
  g.send(head);
  rig.run_for(20, [&] { g.poll(); });
  const uint64_t start = rig.clock.now_ms();
  while (rig.clock.now_ms() - start < engine::DnsTcpSession::kIdleTimeoutMs + 15'000 && !g.got_rst && !g.got_fin) {
    rig.advance_in_steps(10'000, 1000);
    g.send(std::vector<std::byte>{std::byte{0x41}});
    rig.engine().housekeeping(rig.clock.now_ms());
    rig.run_for(20, [&] { g.poll(); });
  }
  CHECK((g.got_rst || g.got_fin));
  CHECK(rig.clock.now_ms() - start <= engine::DnsTcpSession::kIdleTimeoutMs + 11'000);
  CHECK(rig.engine().served_session_count() == 0);
}

TEST_CASE("engine: DNS over TCP: sessions past the limit get RST at once, and count toward max_tcp_flows",
          "[engine][dns]") {
  EngineRig rig;
  size_t answered = 0, dropped = 0;
  serve_dns(rig, &answered, &dropped);
  std::vector<std::unique_ptr<GuestTcp>> clients;
  const size_t limit = engine::LwipEngine::kMaxServedSessions;
  for (size_t i = 0; i < limit; i++) {
    clients.push_back(std::make_unique<GuestTcp>(rig, kGuest4, static_cast<uint16_t>(42000 + i),
                                                 rig.engine().config().nat.dns, kDnsPort));
    clients.back()->syn(1000);
  }
  REQUIRE(rig.run_until([&] {
    bool all = true;
    for (auto& c : clients) {
      c->poll();
      all = all && c->established;
    }
    return all;
  }));
  CHECK(rig.engine().served_session_count() == limit);
  GuestTcp extra(rig, kGuest4, 43000, rig.engine().config().nat.dns, kDnsPort);
  extra.syn(7000);
  REQUIRE(rig.run_until([&] {
    extra.poll();
    return extra.got_rst;
  }));
  CHECK_FALSE(extra.got_syn_ack);
  CHECK(rig.stats().dns_tcp_refused == 1);
  // The sessions that are open still answer.
  auto q = framed(7, 12);
  clients[0]->send(q);
  REQUIRE(rig.run_until([&] {
    clients[0]->poll();
    return clients[0]->received.size() >= q.size();
  }));
  // One closes: its place is free for a new one.
  clients[1]->rst();
  rig.run_for(20, [&] { clients[1]->poll(); });
  GuestTcp again(rig, kGuest4, 43001, rig.engine().config().nat.dns, kDnsPort);
  again.syn(9000);
  CHECK(rig.run_until([&] {
    again.poll();
    return again.established;
  }));
}

TEST_CASE("engine: DNS over TCP: a FIN after part of a query resets the session without touching a freed pcb",
          "[engine][dns]") {
  // The session aborts its pcb inside lwIP's receive callback (unread input
  // makes it reset); the callback must then say ERR_ABRT, or lwIP goes on
  // using the freed pcb (found by fuzz_frame under ASan).
  EngineRig rig;
  size_t answered = 0, dropped = 0;
  serve_dns(rig, &answered, &dropped);
  GuestTcp g(rig, kGuest4, 41002, rig.engine().config().nat.dns, kDnsPort);
  g.syn(100);
  REQUIRE(rig.run_until([&] {
    g.poll();
    return g.established;
  }));
  g.send(std::vector<std::byte>{std::byte{0}});  // half a length prefix
  g.fin();
  CHECK(rig.run_until([&] {
    g.poll();
    return g.got_rst;
  }));
  CHECK(rig.engine().served_session_count() == 0);
  // The engine still serves DNS over TCP.
  GuestTcp h(rig, kGuest4, 41003, rig.engine().config().nat.dns, kDnsPort);
  h.syn(500);
  auto q = framed(9, 12);
  h.send(q);
  CHECK(rig.run_until([&] {
    h.poll();
    return h.received.size() >= q.size();
  }));
}

TEST_CASE("engine: line service: a line over the bound resets the session without touching a freed pcb",
          "[engine][dns]") {
  // The same pattern as DNS over TCP: the session aborts inside lwIP's
  // receive callback, which must then say ERR_ABRT.
  EngineRig rig;
  size_t lines = 0;
  constexpr uint16_t kLinePort = 7777;
  rig.engine().set_line_service(kLinePort, [&](std::string_view) { lines++; });
  GuestTcp g(rig, kGuest4, 41010, rig.engine().config().nat.gateway, kLinePort);
  g.syn(100);
  REQUIRE(rig.run_until([&] {
    g.poll();
    return g.established;
  }));
  g.send(std::vector<std::byte>(engine::LineSession::kMaxLine + 4096, std::byte{'x'}));
  CHECK(rig.run_until([&] {
    g.poll();
    return g.got_rst;
  }));
  CHECK(lines == 0);
  CHECK(rig.engine().served_session_count() == 0);
}
