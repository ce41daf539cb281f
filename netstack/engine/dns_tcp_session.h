// DnsTcpSession: a guest's TCP connection to the DNS address, port 53,
// terminated in lwIP and answered by the engine's DNS resolver.
//
// DNS over TCP frames each message with a 2-byte length (RFC 1035 4.2.2).
// The guest may pipeline queries; each goes to the resolver as it is
// complete and each answer is written back as it arrives, in any order (the
// IDs tell them apart, RFC 7766). Limits: a message is at most 65535 bytes by
// construction; at most kMaxOutstanding queries are in flight, beyond which
// the session stops acknowledging guest bytes (its window closes); answers
// that do not fit lwIP's send buffer wait in a queue bounded by
// kMaxQueuedBytes (beyond it the connection is reset). A session idle for
// kIdleTimeoutMs is closed by the engine's housekeeping.
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
  static constexpr size_t kMaxQueuedBytes = 1u << 20;
  static constexpr uint64_t kIdleTimeoutMs = 30'000;

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
  bool processing_ = false;
};

}  // namespace slipway::engine
