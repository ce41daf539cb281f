// See time_wait.h.
#include "netstack/engine/time_wait.h"

#include <algorithm>

namespace slipway::engine {

namespace {
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// a > b in sequence space (RFC 1982 arithmetic).
bool seq_after(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
}  // namespace

void TimeWaitTable::insert(const FlowKey& key, uint32_t snd_nxt, uint32_t rcv_nxt, uint64_t now) {
  if (capacity_ == 0) return;
  auto [it, added] = entries_.insert_or_assign(key, Entry{snd_nxt, rcv_nxt, now + kDurationMs});
  (void)it;
  if (added) order_.emplace_back(key, now + kDurationMs);
  while (entries_.size() > capacity_ && !order_.empty()) {
    entries_.erase(order_.front().first);
    order_.pop_front();
  }
}

TimeWaitTable::Verdict TimeWaitTable::check(const FlowKey& key, uint8_t flags, uint32_t seq, bool has_payload,
                                            uint64_t now, Entry* entry) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return Verdict::kNotFound;
  if (it->second.expires <= now) {
    entries_.erase(it);  // its place in order_ goes at the next expire()
    return Verdict::kNotFound;
  }
  if (flags & kRst) return Verdict::kDrop;
  if ((flags & (kSyn | kAck)) == kSyn && seq_after(seq, it->second.rcv_nxt)) {
    entries_.erase(it);
    return Verdict::kRecycle;
  }
  if (!(flags & (kSyn | kFin)) && !has_payload) return Verdict::kDrop;
  if (flags & kFin) it->second.expires = now + kDurationMs;
  if (entry != nullptr) *entry = it->second;
  return Verdict::kAck;
}

void TimeWaitTable::expire(uint64_t now) {
  while (!order_.empty() && order_.front().second <= now) {
    auto [key, when] = order_.front();
    order_.pop_front();
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;  // recycled or evicted already
    if (it->second.expires > now) {
      order_.emplace_back(key, it->second.expires);  // a FIN restarted its wait
    } else {
      entries_.erase(it);
    }
  }
  // Entries removed out of order (recycled) leave stale keys in order_:
  // bound them, so that order_ never grows past a multiple of the table.
  if (order_.size() > 2 * capacity_ + 64) {
    std::deque<std::pair<FlowKey, uint64_t>> live;
    for (const auto& [k, e] : entries_) live.emplace_back(k, e.expires);
    std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    order_.swap(live);
  }
}

}  // namespace slipway::engine
