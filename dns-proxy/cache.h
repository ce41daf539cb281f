// Answer cache: whole upstream replies keyed by question, served with their
// TTLs decremented and the client's ID.
//
// Theory of operation
// - Key: the question name (lower-cased wire form), type, class, and the DO
//   and CD bits of the query (a DNSSEC-aware client must not get an answer
//   stripped for a client that did not ask for signatures, and vice versa).
// - Lifetime: positive answers (NOERROR with records) live for the smallest
//   TTL of their records (OPT excluded); negative answers (NXDOMAIN, or
//   NOERROR with no answer: NODATA) live for min(SOA TTL, SOA MINIMUM) of the
//   SOA in the authority section (RFC 2308 section 5) and are not cached
//   without one. Lifetimes are capped (kMaxTtl, kMaxNegativeTtl). Replies
//   with TC=1, other rcodes, records that do not parse, or a lifetime of 0
//   are not cached.
// - Serving: every TTL field is lowered by the whole seconds elapsed since
//   the reply was stored; the ID is the client's; the question name bytes
//   are the client's (its case).
// - Bound: at most `capacity` entries; the least recently used goes first
//   (a list in use order and a hash map into it). Expired entries are dropped
//   when met.
// - Time is passed in (milliseconds, any monotonic origin); the cache never
//   reads a clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns-proxy/message.h"

namespace slipway::dns {

class Cache {
 public:
  static constexpr uint32_t kMaxTtl = 86400;
  static constexpr uint32_t kMaxNegativeTtl = 10800;

  explicit Cache(size_t capacity) : capacity_(capacity) {}

  // The key of a validated query.
  static std::string key_of(const Query& query);

  // Stores `response` (already checked to answer the query under `key`) if
  // it is cacheable; returns whether it was stored.
  bool insert(const std::string& key, std::span<const std::byte> response, uint64_t now_ms);

  // A fresh copy of the cached answer for `query` with decremented TTLs, the
  // query's ID and question name; nullopt on a miss or an expired entry.
  std::optional<std::vector<std::byte>> lookup(const std::string& key, const Query& query,
                                               uint64_t now_ms);

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }
  void clear();

 private:
  struct Entry {
    std::string key;
    std::vector<std::byte> response;
    std::vector<size_t> ttl_offsets;
    std::vector<uint32_t> ttls;
    size_t question_name_size = 0;
    uint64_t stored_ms = 0;
    uint64_t expires_ms = 0;
  };
  using List = std::list<Entry>;

  void erase(List::iterator it);

  size_t capacity_;
  List lru_;  // most recently used first
  std::unordered_map<std::string, List::iterator> map_;
};

}  // namespace slipway::dns
