// LogLimiter: see log_limiter.h.
#include "netstack/sys/log_limiter.h"

namespace slipway::sys {

bool LogLimiter::allow(std::string_view key, uint64_t now_ms, uint64_t* held_back) {
  for (auto& e : entries_) {
    if (e.key != key) continue;
    if (now_ms - e.last_ms < interval_ms_) {
      e.held_back++;
      return false;
    }
    if (held_back != nullptr) *held_back = e.held_back;
    e.held_back = 0;
    e.last_ms = now_ms;
    return true;
  }
  if (entries_.size() >= kMaxKeys) return false;
  entries_.push_back(Entry{std::string(key), now_ms, 0});
  if (held_back != nullptr) *held_back = 0;
  return true;
}

std::string LogLimiter::suffix(uint64_t held_back) const {
  if (held_back == 0) return {};
  return " (" + std::to_string(held_back) + " more like it in the last " + std::to_string(interval_ms_ / 1000) +
         " s)";
}

}  // namespace slipway::sys
