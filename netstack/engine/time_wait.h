// TimeWaitTable: the TIME-WAIT state of connections the engine's side closed
// first, kept in a hash table instead of lwIP's list.
//
// Theory of operation
//   When lwIP's side of a connection closes first (the host closed its
//   socket: an HTTP server answering "Connection: close"), lwIP keeps the
//   4-tuple in TIME-WAIT for 2 * TCP_MSL so that a retransmitted FIN from the
//   guest is acknowledged again rather than reset. lwIP keeps those pcbs in
//   a linked list that every guest segment without a live connection is
//   matched against, and that its timer walks: at thousands of connections a
//   second the list grows to tens of thousands and every new SYN pays for
//   all of them. So at the end of every loop iteration the engine moves the
//   pcbs that entered TIME-WAIT out of lwIP into this table (4-tuple ->
//   the sequence numbers to answer with) and frees them; guest segments for
//   a 4-tuple in the table are answered here, as lwIP's tcp_timewait_input
//   would (RFC 793, with RFC 1337's rule for RST):
//     - a SYN (without ACK) whose sequence number lies beyond what the old
//       connection received ends the TIME-WAIT at once and starts the new
//       connection (as BSD and Linux do): kRecycle;
//     - a RST is ignored (RFC 1337): kDrop;
//     - a segment carrying data, FIN or an older SYN is answered with an ACK
//       (a FIN also restarts the 2 * MSL wait): kAck;
//     - a bare ACK is dropped: kDrop.
//
// Limits: entries expire kDuration after their last FIN (2 * TCP_MSL = 20 s,
// lwIP's own); at most `capacity` entries, the oldest dropped first when a
// new one does not fit. Time is passed in (ms).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "netstack/engine/flow_key.h"

namespace slipway::engine {

class TimeWaitTable {
 public:
  static constexpr uint64_t kDurationMs = 20'000;  // 2 * TCP_MSL

  struct Entry {
    uint32_t snd_nxt = 0;  // our next sequence number (after our FIN)
    uint32_t rcv_nxt = 0;  // what we acknowledge (after the guest's FIN)
    uint64_t expires = 0;
  };
  enum class Verdict { kNotFound, kRecycle, kAck, kDrop };

  explicit TimeWaitTable(size_t capacity) : capacity_(capacity) {}

  // `key` is the guest's view (guest address and port, remote address and
  // port), as FlowKey elsewhere.
  void insert(const FlowKey& key, uint32_t snd_nxt, uint32_t rcv_nxt, uint64_t now);
  // What to do with a guest segment for `key`; *entry (kAck) is what to
  // acknowledge with. kRecycle and expired entries are removed.
  Verdict check(const FlowKey& key, uint8_t tcp_flags, uint32_t seq, bool has_payload, uint64_t now,
                Entry* entry);
  // Drops entries whose time is up.
  void expire(uint64_t now);
  size_t size() const { return entries_.size(); }

 private:
  size_t capacity_;
  std::unordered_map<FlowKey, Entry, FlowKeyHash> entries_;
  // Insertion order, for expiry and eviction: (key, expires at insertion).
  // An entry whose FIN restarted its wait has a later `expires` than its
  // place here says; expire() re-queues it when it comes up.
  std::deque<std::pair<FlowKey, uint64_t>> order_;
};

}  // namespace slipway::engine
