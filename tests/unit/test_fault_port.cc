// FaultPort (--link-faults): the spec's parsing, and over 100,000 numbered
// frames each way with a seed, the rates of loss, duplication, reordering
// and corruption it reports and that the receiver sees, the same run for
// the same seed, and the delay on a real loop.
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "netstack/link/fault_port.h"
#include "netstack/link/memory_port.h"

using namespace slipway;
using link::FaultPort;
using link::FaultStats;
using link::LinkFaults;

namespace {

// A 64-byte frame whose bytes 14..21 hold `n`, 22..29 its complement, and
// the rest a pattern.
std::vector<std::byte> numbered(uint64_t n) {
  std::vector<std::byte> f(64);
  for (size_t i = 0; i < f.size(); ++i) f[i] = std::byte(i * 7);
  std::memcpy(f.data() + 14, &n, 8);
  uint64_t c = ~n;
  std::memcpy(f.data() + 22, &c, 8);
  return f;
}

struct Received {
  std::vector<uint64_t> numbers;
  uint64_t damaged = 0;
  void add(link::Frame f) {
    uint64_t n = 0;
    if (f.size() == 64) std::memcpy(&n, f.data() + 14, 8);
    if (f.size() != 64 || !std::equal(f.begin(), f.end(), numbered(n).begin())) {
      damaged++;
      return;
    }
    numbers.push_back(n);
  }
};

struct Run {
  uint64_t lost = 0, dup = 0, reordered = 0, damaged = 0;
  std::vector<uint64_t> order;
};

// Sends `count` frames through a FaultPort on one end of a memory pair,
// toward the inner port's peer, and the same count the other way.
Run run(const LinkFaults& faults, uint64_t count, FaultStats* to_inner = nullptr) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto [inner, peer] = link::MemoryPort::make_pair();
  Received at_peer, at_top;
  {
    FaultPort port(&loop, *inner, faults);
    peer->set_sink([&](link::Frame f) { at_peer.add(f); });
    port.set_sink([&](link::Frame f) { at_top.add(f); });
    for (uint64_t i = 0; i < count; ++i) {
      auto f = numbered(i);
      port.send(f);
      peer->send(f);
      peer->poll();
      inner->poll();
    }
    // A frame still held for reordering comes out after kReorderHoldMs.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (uv_loop_alive(&loop) != 0 && std::chrono::steady_clock::now() < until) {
      uv_run(&loop, UV_RUN_ONCE);
      peer->poll();
      inner->poll();
    }
    if (to_inner != nullptr) *to_inner = port.to_inner_stats();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
  Run r;
  r.order = at_peer.numbers;
  r.damaged = at_peer.damaged;
  std::map<uint64_t, int> seen;
  for (auto n : at_peer.numbers) seen[n]++;
  for (uint64_t i = 0; i < count; ++i) {
    auto it = seen.find(i);
    if (it == seen.end()) r.lost++;
    else if (it->second > 1) r.dup += static_cast<uint64_t>(it->second - 1);
  }
  for (size_t i = 1; i < at_peer.numbers.size(); ++i)
    if (at_peer.numbers[i] < at_peer.numbers[i - 1]) r.reordered++;
  (void)at_top;
  return r;
}

}  // namespace

TEST_CASE("link faults parse from the command line's spec", "[faults]") {
  std::string err;
  auto f = LinkFaults::parse("loss=1%,dup=0.5%,reorder=1%,corrupt=0.1%,delay=5ms,seed=42", &err);
  REQUIRE(f);
  CHECK(f->loss == Approx(0.01));
  CHECK(f->dup == Approx(0.005));
  CHECK(f->corrupt == Approx(0.001));
  CHECK(f->delay_ms == 5);
  CHECK(f->seed == 42);
  CHECK(f->any());
  CHECK(LinkFaults::parse("loss=0.02", &err)->loss == Approx(0.02));
  CHECK_FALSE(LinkFaults::parse("", &err)->any());
  CHECK_FALSE(LinkFaults::parse("loss=101%", &err));
  CHECK(err.find("loss") != std::string::npos);
  CHECK_FALSE(LinkFaults::parse("jitter=1ms", &err));
  CHECK(err.find("expected loss=") != std::string::npos);
  CHECK_FALSE(LinkFaults::parse("delay=20000ms", &err));
  CHECK_FALSE(LinkFaults::parse("seed=x", &err));
  auto round = LinkFaults::parse(f->to_string(), &err);
  REQUIRE(round);
  CHECK(round->to_string() == f->to_string());
}

TEST_CASE("a fault port loses, duplicates, reorders and corrupts at its rates, the same for the same seed",
          "[faults]") {
  LinkFaults f;
  f.loss = 0.01;
  f.dup = 0.01;
  f.reorder = 0.01;
  f.corrupt = 0.001;
  f.seed = 7;
  constexpr uint64_t kFrames = 100'000;
  FaultStats st;
  Run a = run(f, kFrames, &st);
  // What the port reports...
  CHECK(st.frames == kFrames);
  CHECK(st.lost > 800);
  CHECK(st.lost < 1200);
  CHECK(st.duplicated > 800);
  CHECK(st.duplicated < 1200);
  CHECK(st.reordered > 800);
  CHECK(st.reordered < 1200);
  CHECK(st.corrupted > 60);
  CHECK(st.corrupted < 140);
  // ... is what the receiver sees: every lost number missing (and no
  // other; a corrupted frame is damaged, not lost), every duplicate twice,
  // every held frame after its successor, every corrupted frame damaged.
  CHECK(a.lost == st.lost + st.corrupted);
  CHECK(a.damaged >= st.corrupted);  // a corrupted frame that was duplicated is damaged twice
  CHECK(a.damaged <= st.corrupted + 10);
  CHECK(a.dup <= st.duplicated);
  CHECK(a.dup + 20 >= st.duplicated);  // a duplicate of a corrupted frame is damaged twice
  // (a frame held behind a corrupted one shows no inversion)
  CHECK(a.reordered <= st.reordered);
  CHECK(a.reordered + 20 >= st.reordered);

  Run b = run(f, kFrames);
  CHECK(b.order == a.order);
  f.seed = 8;
  Run c = run(f, kFrames);
  CHECK(c.order != a.order);

  // No faults configured: every frame, in order.
  Run clean = run(LinkFaults{}, 1000);
  CHECK(clean.lost == 0);
  CHECK(clean.order.size() == 1000);
  CHECK(clean.reordered == 0);
}

TEST_CASE("a fault port delays every frame by its delay, in order", "[faults]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto [inner, peer] = link::MemoryPort::make_pair();
  std::vector<std::pair<uint64_t, uint64_t>> arrivals;  // number, ms after start
  auto t0 = std::chrono::steady_clock::now();
  {
    LinkFaults f;
    f.delay_ms = 30;
    FaultPort port(&loop, *inner, f);
    peer->set_sink([&](link::Frame fr) {
      uint64_t n = 0;
      std::memcpy(&n, fr.data() + 14, 8);
      arrivals.emplace_back(n, std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - t0).count());
    });
    for (uint64_t i = 0; i < 10; ++i) port.send(numbered(i));
    peer->poll();
    CHECK(arrivals.empty());
    auto until = t0 + std::chrono::seconds(5);
    while (arrivals.size() < 10 && std::chrono::steady_clock::now() < until) {
      uv_run(&loop, UV_RUN_ONCE);
      peer->poll();
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
  REQUIRE(arrivals.size() == 10);
  for (uint64_t i = 0; i < 10; ++i) {
    CHECK(arrivals[i].first == i);
    CHECK(arrivals[i].second >= 29);
  }
}
