// LogLimiter: at most one log line per key per interval, with a count of
// the lines held back.
//
// Theory of operation. A flood (SYNs refused at the flow limit, datagrams
// past the UDP mapping limit, a connection storm at EMFILE, control clients
// beyond the connection limit) would otherwise write one line per packet:
// one flood once wrote 65,932 lines. Each place that may log during a flood
// names its line with a key (a short string, usually a literal) and asks
// allow() before it formats anything; the first line for a key is allowed
// at once, then at most one per interval (10 s by default). An allowed line
// learns how many were held back since the previous one, and suffix() words
// that for the end of the line:
//
//   if (uint64_t held; limiter.allow("tcp-flow-limit", now, &held))
//     spdlog::warn("tcp: flow limit {} reached, refusing connections{}", n, LogLimiter::suffix(held));
//
// Time is passed in (ms, the caller's clock), so tests drive it. The
// limiter does not log by itself (sys/ does not depend on a logging
// library); a refused call costs a short scan of the keys and no
// allocation.
//
// Limits: at most kMaxKeys (64) keys; a new key beyond them is always
// refused (the keys are a fixed set of places in the code, so this is never
// reached in practice).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::sys {

class LogLimiter {
 public:
  static constexpr uint64_t kDefaultIntervalMs = 10'000;
  static constexpr size_t kMaxKeys = 64;

  explicit LogLimiter(uint64_t interval_ms = kDefaultIntervalMs) : interval_ms_(interval_ms) {}

  // True if a line for `key` may be logged at `now_ms`. When true and
  // `held_back` is given, *held_back is the number of lines for this key
  // that were refused since the previous allowed one.
  bool allow(std::string_view key, uint64_t now_ms, uint64_t* held_back = nullptr);

  // "" for 0; otherwise " (N more like it in the last S s)" for the end of
  // an allowed line.
  std::string suffix(uint64_t held_back) const;

  uint64_t interval_ms() const { return interval_ms_; }

 private:
  struct Entry {
    std::string key;
    uint64_t last_ms = 0;
    uint64_t held_back = 0;
  };
  uint64_t interval_ms_;
  std::vector<Entry> entries_;
};

}  // namespace slipway::sys
