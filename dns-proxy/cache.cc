// Answer cache with TTL decrement, RFC 2308 negative caching and an LRU
// bound. See cache.h for the theory of operation.
#include "dns-proxy/cache.h"

#include <algorithm>

namespace slipway::dns {

std::string Cache::key_of(const Query& query) {
  std::string key = name_lower(query.question.name);
  key.push_back(static_cast<char>(query.question.qtype >> 8));
  key.push_back(static_cast<char>(query.question.qtype & 0xff));
  key.push_back(static_cast<char>(query.question.qclass >> 8));
  key.push_back(static_cast<char>(query.question.qclass & 0xff));
  char bits = 0;
  if (query.edns && query.edns->dnssec_ok) bits |= 1;
  if (query.header.cd()) bits |= 2;
  key.push_back(bits);
  return key;
}

bool Cache::insert(const std::string& key, std::span<const std::byte> response, uint64_t now_ms) {
  if (capacity_ == 0) return false;
  auto info = parse_response(response);
  if (!info || !info->records_ok || info->header.tc()) return false;
  uint32_t ttl = 0;
  auto rcode = static_cast<Rcode>(info->header.rcode());
  if (rcode == Rcode::kNoError && info->header.ancount > 0) {
    ttl = std::min(info->min_ttl.value_or(0), kMaxTtl);
  } else if (rcode == Rcode::kNxDomain || rcode == Rcode::kNoError) {
    if (!info->soa_negative_ttl) return false;
    ttl = std::min(*info->soa_negative_ttl, kMaxNegativeTtl);
  } else {
    return false;
  }
  if (ttl == 0) return false;

  if (auto it = map_.find(key); it != map_.end()) erase(it->second);
  Entry e;
  e.key = key;
  e.response.assign(response.begin(), response.end());
  e.ttl_offsets = info->ttl_offsets;
  for (size_t off : e.ttl_offsets) e.ttls.push_back(wire::load32(response, off));
  // Zero when the question name itself uses compression (then never rewritten).
  bool plain = info->question_end - 4 - kHeaderSize == info->question.name.size();
  e.question_name_size = plain ? info->question.name.size() : 0;
  e.stored_ms = now_ms;
  e.expires_ms = now_ms + uint64_t{ttl} * 1000;
  lru_.push_front(std::move(e));
  map_[key] = lru_.begin();
  while (map_.size() > capacity_) erase(std::prev(lru_.end()));
  return true;
}

std::optional<std::vector<std::byte>> Cache::lookup(const std::string& key, const Query& query,
                                                    uint64_t now_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  auto entry = it->second;
  if (now_ms >= entry->expires_ms) {
    erase(entry);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  std::vector<std::byte> out = entry->response;
  uint64_t elapsed_s = (now_ms - entry->stored_ms) / 1000;
  for (size_t i = 0; i < entry->ttl_offsets.size(); ++i) {
    uint64_t ttl = entry->ttls[i];
    wire::store32(out, entry->ttl_offsets[i], static_cast<uint32_t>(ttl > elapsed_s ? ttl - elapsed_s : 0));
  }
  wire::store16(out, 0, query.header.id);
  // The client's spelling of the name (same length: the key matched it).
  if (entry->question_name_size != 0 && query.question.name.size() == entry->question_name_size) {
    for (size_t i = 0; i < entry->question_name_size; ++i)
      out[kHeaderSize + i] = static_cast<std::byte>(query.question.name[i]);
  }
  return out;
}

void Cache::clear() {
  map_.clear();
  lru_.clear();
}

void Cache::erase(List::iterator it) {
  map_.erase(it->key);
  lru_.erase(it);
}

}  // namespace slipway::dns
