// Clock: the one source of "now" in a stack.
//
// A Stack owns one clock and hands it to the parts that need time (gateway,
// engine, DNS sessions); they read it once where an event enters (a frame, a
// host socket callback, a timer) and pass `now` down as a value. Time is
// milliseconds on a monotonic timeline with an arbitrary origin: only
// differences mean anything.
//
// LoopClock reads libuv's cached loop time (uv_now: updated once per loop
// iteration, so every handler of one iteration sees the same now).
// ManualClock is set by tests, which thereby drive every timeout.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>

namespace slipway::sys {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Milliseconds since the clock's origin.
  virtual uint64_t now_ms() const = 0;
  // The same instant as a time point, for the parts that keep
  // std::chrono time (DHCP leases, router advertisements).
  TimePoint now() const { return TimePoint(std::chrono::milliseconds(now_ms())); }
};

class LoopClock final : public Clock {
 public:
  explicit LoopClock(uv_loop_t* loop) : loop_(loop) {}
  uint64_t now_ms() const override { return uv_now(loop_); }

 private:
  uv_loop_t* loop_;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_ms = 1'000'000) : now_(start_ms) {}
  uint64_t now_ms() const override { return now_; }
  void set(uint64_t ms) { now_ = ms; }
  void advance(uint64_t ms) { now_ += ms; }

 private:
  uint64_t now_;
};

}  // namespace slipway::sys
