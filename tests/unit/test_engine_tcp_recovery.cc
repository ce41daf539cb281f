// The engine's TCP sender recovering from loss on the guest link
// (netstack/engine/lwip/patches/0004-loss-recovery.patch): SACK- and
// NewReno-based fast recovery, the loss probe, and the TCP timer's idle
// sleep. The guest (guest_tcp.h) keeps out-of-order data and ACKs every
// segment, as Linux does; the link loses the segments a test names. Where a
// test keeps the clock still, no lwIP timer can fire: whatever is recovered
// is recovered by fast recovery alone.
#include <catch2/catch.hpp>
#include <vector>

extern "C" {
#include "lwip/timeouts.h"
}

#include "engine_rig.h"
#include "guest_tcp.h"

using namespace slipway;
using namespace slipway::test;

namespace {

constexpr size_t kMss = 1000;
constexpr size_t kBytes = 100000;  // 100 segments: the window is wide open by the end

// A download from the host to the guest through the engine.
struct Download : GuestConnection {
  std::vector<std::byte> msg = pattern(kBytes, 11);
  size_t off = 0;

  void start(bool sack, std::set<size_t> drops) {
    g.mss = kMss;
    g.sack = sack;
    g.reassemble = true;
    g.drop_offsets = std::move(drops);
    open();
  }
  // Pumps the loop (the clock stands still) until every byte has arrived.
  bool run(int max_ms = 3000) {
    return rig.run_until(
        [&] {
          g.poll();
          host.write_some(msg, &off);
          return g.received.size() == msg.size();
        },
        max_ms);
  }
  // How often the engine sent the byte at stream offset `at`.
  size_t sends_of(size_t at) const {
    size_t n = 0;
    for (const auto& s : g.segments) {
      const size_t begin = s.seq - (g.irs + 1);
      if (s.len > 0 && begin <= at && at < begin + s.len) n++;
    }
    return n;
  }
  // Data segments sent more than once.
  size_t retransmitted_segments() const {
    std::set<uint32_t> seen;
    size_t n = 0;
    for (const auto& s : g.segments)
      if (s.len > 0 && !seen.insert(s.seq).second) n++;
    return n;
  }
};

}  // namespace

TEST_CASE_METHOD(Download, "engine recovery: two losses in the last window are recovered without a time-out (SACK)",
                 "[engine][tcp][recovery]") {
  // lwIP's Reno left the recovery at the partial ACK for the first hole;
  // with nothing sent after the second, only a time-out resent it.
  start(true, {90000, 95000});
  REQUIRE(run());
  CHECK(first_difference(g.received, msg) == kSame);
  CHECK(g.lost == 2);
  CHECK(sends_of(90000) == 2);
  CHECK(sends_of(95000) == 2);
  CHECK(retransmitted_segments() == 2);
  const auto& st = rig.engine().stats();
  CHECK(st.tcp_recoveries == 1);
  CHECK(st.tcp_recovery_retransmits == 2);
  CHECK(st.tcp_timeouts == 0);
  CHECK(st.tcp_loss_probes == 0);
}

TEST_CASE_METHOD(Download, "engine recovery: a partial ACK retransmits the next hole at once (NewReno, no SACK)",
                 "[engine][tcp][recovery]") {
  start(false, {90000, 95000});
  REQUIRE(run());
  CHECK(first_difference(g.received, msg) == kSame);
  CHECK(sends_of(90000) == 2);
  CHECK(sends_of(95000) == 2);
  CHECK(retransmitted_segments() == 2);
  const auto& st = rig.engine().stats();
  CHECK(st.tcp_recoveries == 1);
  CHECK(st.tcp_timeouts == 0);
}

TEST_CASE_METHOD(Download, "engine recovery: the holes the SACK blocks show are retransmitted, nothing SACKed is",
                 "[engine][tcp][recovery]") {
  start(true, {80000, 84000, 88000, 92000});
  REQUIRE(run());
  CHECK(first_difference(g.received, msg) == kSame);
  CHECK(g.lost == 4);
  for (size_t at : {80000, 84000, 88000, 92000}) {
    INFO("offset " << at);
    CHECK(sends_of(at) == 2);
  }
  CHECK(retransmitted_segments() == 4);
  const auto& st = rig.engine().stats();
  CHECK(st.tcp_recovery_retransmits == 4);
  CHECK(st.tcp_timeouts == 0);
}

TEST_CASE_METHOD(Download, "engine recovery: a lost last segment is resent by a loss probe before the time-out",
                 "[engine][tcp][recovery]") {
  start(true, {kBytes - 1});
  // Everything but the last segment arrives; no duplicate ACK can follow.
  REQUIRE(rig.run_until([&] {
    g.poll();
    host.write_some(msg, &off);
    return g.lost == 1 && off == msg.size();
  }));
  rig.run_for(50, [&] { g.poll(); });
  REQUIRE(g.received.size() < msg.size());
  uint64_t waited = 0;
  REQUIRE(rig.run_until([&] {
    g.poll();
    if (g.received.size() == msg.size()) return true;
    rig.advance(25);
    waited += 25;
    return false;
  }));
  INFO("resent after " << waited << " ms");
  CHECK(waited >= 50);   // two 50 ms ticks without an ACK
  CHECK(waited < 200);   // the RTO is at least 200 ms
  CHECK(first_difference(g.received, msg) == kSame);
  CHECK(rig.engine().stats().tcp_loss_probes == 1);
  CHECK(rig.engine().stats().tcp_timeouts == 0);
}

TEST_CASE_METHOD(Download, "engine recovery: a guest SACKing data it lacks only delays it until the time-out",
                 "[engine][tcp][recovery]") {
  // The segment at 90000 is lost, and the guest claims it all the same:
  // fast recovery skips it, the time-out forgets the claim and resends it.
  g.false_sacks = {{90000, 91000}};
  start(true, {90000});
  REQUIRE(rig.run_until([&] {
    g.poll();
    host.write_some(msg, &off);
    return g.lost == 1 && off == msg.size() && g.received.size() >= 90000;
  }));
  rig.run_for(50, [&] { g.poll(); });
  REQUIRE(g.received.size() == 90000);
  REQUIRE(rig.run_until(
      [&] {
        g.poll();
        if (g.received.size() == msg.size()) return true;
        rig.advance(25);
        return false;
      },
      5000));
  CHECK(first_difference(g.received, msg) == kSame);
  CHECK(rig.engine().stats().tcp_timeouts >= 1);
}

TEST_CASE_METHOD(GuestConnection, "engine recovery: the TCP timer ticks every 25 ms only while a flow needs it",
                 "[engine][tcp][recovery]") {
  open();
  // A quiet, established connection: the timer sleeps 250 ms at a time.
  rig.advance_in_steps(1000);
  rig.run_for(20, [&] { g.poll(); });
  CHECK(sys_timeouts_sleeptime() > 100);
  CHECK(sys_timeouts_sleeptime() <= 250);
  // Data in flight (the guest does not ACK): a retransmission timer runs,
  // so the timer ticks every 25 ms.
  g.auto_ack = false;
  const auto msg = pattern(3000, 5);
  size_t off = 0;
  host.write_some(msg, &off);
  REQUIRE(rig.run_until([&] {
    g.poll();
    return !g.segments.empty() && g.segments.back().len > 0;
  }));
  rig.pump();
  CHECK(sys_timeouts_sleeptime() <= 25);
  // Acknowledged: quiet again after the next tick.
  g.auto_ack = true;
  g.ack();
  rig.advance_in_steps(100, 25);
  rig.run_for(20, [&] { g.poll(); });
  CHECK(sys_timeouts_sleeptime() > 100);
}
