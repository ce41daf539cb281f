// LineSession: a guest TCP connection to a port on the gateway address that
// the engine serves itself, delivering each line the guest sends (used by
// portfwd-agent, which reports the guest's listening sockets as JSON lines).
//
// Receive-only: nothing is written back. A line is at most kMaxLine bytes;
// a longer one resets the connection. The session ends when the guest closes
// or resets, or after kIdleTimeoutMs without data (engine housekeeping).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "netstack/engine/engine.h"
#include "netstack/sys/clock.h"

struct tcp_pcb;
struct pbuf;

namespace slipway::engine {

class LineSession {
 public:
  static constexpr size_t kMaxLine = 256 * 1024;
  static constexpr uint64_t kIdleTimeoutMs = 10 * 60'000;

  LineSession(struct tcp_pcb* pcb, LineHandler handler, std::function<void(LineSession*)> on_closed,
              const sys::Clock& clock);
  void start();
  void close();
  uint64_t last_active() const { return last_active_; }

 private:
  friend struct LineCallbacks;
  void received(struct pbuf* p, uint64_t now);
  struct tcp_pcb* detach();
  void finished();

  struct tcp_pcb* pcb_;
  const sys::Clock& clock_;
  LineHandler handler_;
  std::function<void(LineSession*)> on_closed_;
  uint64_t last_active_;
  std::string buf_;
  bool closed_ = false;
  // tcp_abort() was called on the pcb: lwIP's running callback must return
  // ERR_ABRT, or lwIP goes on using the freed pcb.
  bool aborted_ = false;
};

}  // namespace slipway::engine
