// TimeWaitTable (engine/time_wait.h): the TIME-WAIT answers of RFC 793 and
// RFC 1337, recycling by a newer SYN, expiry and the bound, with time driven
// by the test.
#include <catch2/catch.hpp>

#include "netstack/engine/time_wait.h"

using slipway::engine::FlowKey;
using slipway::engine::IpAddr;
using slipway::engine::TimeWaitTable;
using slipway::wire::Ipv4Addr;

namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint64_t kT0 = 1'000'000;

FlowKey key(uint16_t guest_port) {
  return FlowKey{IpAddr(Ipv4Addr{10, 0, 2, 15}), guest_port, IpAddr(Ipv4Addr{10, 0, 2, 2}), 80};
}

}  // namespace

TEST_CASE("time-wait: answers as RFC 793 and RFC 1337 say", "[engine][timewait]") {
  TimeWaitTable t(16);
  t.insert(key(40000), 5000, 9000, kT0);
  TimeWaitTable::Entry e;
  CHECK(t.check(key(40001), kAck, 1, false, kT0, &e) == TimeWaitTable::Verdict::kNotFound);
  // A retransmitted FIN is acknowledged with the old numbers.
  REQUIRE(t.check(key(40000), kFin | kAck, 8999, false, kT0 + 10, &e) == TimeWaitTable::Verdict::kAck);
  CHECK(e.snd_nxt == 5000);
  CHECK(e.rcv_nxt == 9000);
  // Data too; a bare ACK and a RST get nothing.
  CHECK(t.check(key(40000), kAck, 9000, true, kT0 + 20, &e) == TimeWaitTable::Verdict::kAck);
  CHECK(t.check(key(40000), kAck, 9000, false, kT0 + 20, &e) == TimeWaitTable::Verdict::kDrop);
  CHECK(t.check(key(40000), kRst, 9000, false, kT0 + 20, &e) == TimeWaitTable::Verdict::kDrop);
  // A SYN at or before what the old connection received is an old
  // duplicate: acknowledged, the entry kept.
  CHECK(t.check(key(40000), kSyn, 9000, false, kT0 + 30, &e) == TimeWaitTable::Verdict::kAck);
  CHECK(t.check(key(40000), kSyn, 8000, false, kT0 + 30, &e) == TimeWaitTable::Verdict::kAck);
  CHECK(t.size() == 1);
}

TEST_CASE("time-wait: a newer SYN ends the TIME-WAIT at once, across the sequence wrap", "[engine][timewait]") {
  TimeWaitTable t(16);
  t.insert(key(40000), 5000, 0xfffffff0, kT0);
  CHECK(t.check(key(40000), kSyn, 0x10, false, kT0 + 1, nullptr) == TimeWaitTable::Verdict::kRecycle);
  CHECK(t.size() == 0);
  CHECK(t.check(key(40000), kSyn, 0x10, false, kT0 + 1, nullptr) == TimeWaitTable::Verdict::kNotFound);
}

TEST_CASE("time-wait: entries last 2 MSL from the last FIN", "[engine][timewait]") {
  TimeWaitTable t(16);
  t.insert(key(1), 1, 1, kT0);
  t.insert(key(2), 1, 1, kT0 + 5'000);
  t.expire(kT0 + TimeWaitTable::kDurationMs - 1);
  CHECK(t.size() == 2);
  // A FIN at 15 s restarts key(1)'s wait: it outlives its first deadline.
  CHECK(t.check(key(1), kFin | kAck, 0, false, kT0 + 15'000, nullptr) == TimeWaitTable::Verdict::kAck);
  t.expire(kT0 + TimeWaitTable::kDurationMs);
  CHECK(t.size() == 2);
  t.expire(kT0 + 5'000 + TimeWaitTable::kDurationMs);
  CHECK(t.size() == 1);  // key(2) is gone
  CHECK(t.check(key(2), kFin, 0, false, kT0 + 25'000, nullptr) == TimeWaitTable::Verdict::kNotFound);
  t.expire(kT0 + 15'000 + TimeWaitTable::kDurationMs);
  CHECK(t.size() == 0);
  // An entry past its time is not answered even before expire() runs.
  t.insert(key(3), 1, 1, kT0);
  CHECK(t.check(key(3), kFin, 0, false, kT0 + TimeWaitTable::kDurationMs, nullptr) ==
        TimeWaitTable::Verdict::kNotFound);
}

TEST_CASE("time-wait: at most `capacity` entries, the oldest dropped first", "[engine][timewait]") {
  TimeWaitTable t(100);
  for (uint16_t p = 1; p <= 150; ++p) t.insert(key(p), 1, 1, kT0 + p);
  CHECK(t.size() == 100);
  CHECK(t.check(key(50), kFin, 0, false, kT0 + 200, nullptr) == TimeWaitTable::Verdict::kNotFound);
  CHECK(t.check(key(51), kFin, 0, false, kT0 + 200, nullptr) == TimeWaitTable::Verdict::kAck);
  // Churn (recycled entries leave stale places in the queue) stays bounded.
  for (int round = 0; round < 50; ++round) {
    for (uint16_t p = 1000; p < 1100; ++p) {
      t.insert(key(p), 1, 1, kT0 + 300 + static_cast<uint64_t>(round));
      t.check(key(p), kSyn, 2, false, kT0 + 300 + static_cast<uint64_t>(round), nullptr);
    }
    t.expire(kT0 + 300 + static_cast<uint64_t>(round));
  }
  CHECK(t.size() <= 100);
  TimeWaitTable none(0);
  none.insert(key(1), 1, 1, kT0);
  CHECK(none.size() == 0);
}
