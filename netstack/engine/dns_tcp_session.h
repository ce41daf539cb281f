// DnsTcpSession: a guest's TCP connection to the DNS address, port 53,
// terminated in lwIP and answered by the engine's DNS resolver.
//
// DNS over TCP frames each message with a 2-byte length (RFC 1035 4.2.2).
// The guest may pipeline queries; each goes to the resolver as it is
// complete and each answer is written back as it arrives, in any order (the
// IDs tell them apart, RFC 7766). A query the resolver drops without an
// answer (shorter than a header, or a response: QR=1) frees its slot at
// once.
//
// Limits: a message is at most 65535 bytes by construction. The guest's
// window is kReceiveWindow (80 KiB: one whole query and a little, not
// lwIP's 2 MiB), so a session holds at most that much unread. At most
// kMaxOutstanding (16) queries are in flight, and no new one is taken while
// answers wait to be written or more than kMaxUnackedAnswerBytes (64 KiB)
// of them wait for the guest's acknowledgment; meanwhile the session stops
// acknowledging guest bytes (its window closes). Answers that do not fit
// lwIP's send buffer wait in a queue bounded by kMaxQueuedBytes (the
// answers to kMaxOutstanding queries; beyond it the connection is reset).
// So a session holds about 1.2 MiB at worst. A session with no complete
// query or answer for kIdleTimeoutMs (30 s) is closed by the engine's
// housekeeping: bytes that never make a query (a slow-loris client) do not
// keep it open. The engine bounds the number of sessions
// (LwipEngine::kMaxServedSessions).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "netstack/engine/engine.h"
#include "netstack/sys/clock.h"
#include "netstack/wire/bytes.h"

struct tcp_pcb;
struct pbuf;

namespace slipway::engine {

class DnsTcpSession : public std::enable_shared_from_this<DnsTcpSession> {
 public:
  static constexpr size_t kMaxOutstanding = 16;
  static constexpr size_t kMaxQueuedBytes = kMaxOutstanding * (2 + 0xffff);
  static constexpr uint64_t kIdleTimeoutMs = 30'000;
  static constexpr uint32_t kReceiveWindow = 80 * 1024;
  static constexpr size_t kMaxUnackedAnswerBytes = 64 * 1024;

  DnsTcpSession(struct tcp_pcb* pcb, DnsResolver resolver, std::function<void(DnsTcpSession*)> on_closed,
                const sys::Clock& clock);
  void start();
  void close();  // closes the pcb; on_closed runs
  uint64_t last_active() const { return last_active_; }

 private:
  friend struct DnsTcpCallbacks;
  void received(struct pbuf* p, uint64_t now);
  void guest_fin();
  void process();
  void answer(std::vector<std::byte> response);
  void flush();
  // Answers wait (queued, or unacknowledged beyond kMaxUnackedAnswerBytes).
  bool answers_backlogged() const;
  // The guest has sent FIN and every query it sent is answered.
  bool finished_after_fin() const;
  void finished();
  void abort();
  struct tcp_pcb* detach();  // clears lwIP's callbacks; returns the pcb

  struct tcp_pcb* pcb_;
  const sys::Clock& clock_;
  DnsResolver resolver_;
  std::function<void(DnsTcpSession*)> on_closed_;
  uint64_t last_active_;
  std::vector<std::byte> in_;       // bytes received, not yet a whole query
  size_t unacked_ = 0;              // bytes received but not yet tcp_recved
  std::vector<std::byte> out_;      // answers lwIP could not take yet
  size_t outstanding_ = 0;
  bool guest_fin_ = false;
  bool closed_ = false;
  // tcp_abort() was called on the pcb: a callback lwIP is running must
  // return ERR_ABRT, or lwIP goes on using the freed pcb.
  bool aborted_ = false;
  bool processing_ = false;
};

}  // namespace slipway::engine
