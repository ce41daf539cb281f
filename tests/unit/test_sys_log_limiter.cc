// sys::LogLimiter: the first line for a key is allowed at once, then one per
// interval with the count of those held back; keys are independent.
#include <catch2/catch.hpp>

#include "netstack/sys/log_limiter.h"

using slipway::sys::LogLimiter;

TEST_CASE("LogLimiter allows one line per key per interval and counts the rest", "[sys]") {
  LogLimiter limiter(10'000);
  uint64_t held = 99;
  REQUIRE(limiter.allow("a", 1000, &held));
  CHECK(held == 0);
  CHECK(limiter.suffix(held).empty());
  for (int i = 0; i < 5000; ++i) CHECK_FALSE(limiter.allow("a", 1000 + i));
  // Another key is not held back by the first.
  CHECK(limiter.allow("b", 2000));
  CHECK_FALSE(limiter.allow("a", 10'999));
  REQUIRE(limiter.allow("a", 11'000, &held));
  CHECK(held == 5001);
  CHECK(limiter.suffix(held) == " (5001 more like it in the last 10 s)");
  CHECK_FALSE(limiter.allow("a", 11'001));
  REQUIRE(limiter.allow("a", 30'000, &held));
  CHECK(held == 1);
}

TEST_CASE("LogLimiter holds a bounded number of keys", "[sys]") {
  LogLimiter limiter;
  for (size_t i = 0; i < LogLimiter::kMaxKeys; ++i) CHECK(limiter.allow("key" + std::to_string(i), 0));
  CHECK_FALSE(limiter.allow("one-too-many", 0));
  CHECK_FALSE(limiter.allow("key0", 1));
}
