// EmbeddedStack: the stack behind a slipway_t, in its two modes.
//
// Theory of operation
//   StackCore is the data path on one loop: a stack::Stack whose transport
//   is a CallbackPort (the embedder's side of the guest link), as the
//   `slipway` program's is a TAP or a VM socket. Its published ports are
//   strict, so that one it cannot bind fails the creation (ResourceError)
//   instead of only being logged.
//
//   LoopStack runs a StackCore on the caller's loop. Every call must come
//   from the thread that created it (checked: kWrongState otherwise); input
//   goes straight into the gateway, so the output callback may run inside
//   slipway_input. Input and free are refused from inside the output
//   callback, where they would re-enter or destroy the gateway under itself.
//
//   ThreadedStack owns a loop and runs it on a thread it starts. The
//   StackCore is built on the caller's thread before the thread starts (so
//   configuration errors are reported synchronously) and used only on the
//   loop thread afterwards. Other threads talk to it through one mutex and
//   one uv_async_t:
//     - frames: copied into a bounded queue (queue_frames; beyond that
//       dropped and counted), at most kFramesPerWake handed to the gateway
//       per wake-up, the async re-armed while frames remain;
//     - commands (add/remove forward): queued closures the caller waits for
//       on a condition variable; from the loop thread itself (the output
//       callback) they run at once;
//     - stop: the destructor sets `stopping`, wakes the loop and joins. The
//       loop thread then disables output, destroys the core, closes the
//       async handle and stops the loop; whatever handle is left is closed
//       and the loop is run until every close callback has run.
//   States (under the mutex): running -> stopping (set by the destructor;
//   input and commands get kWrongState) -> closed (the async handle is gone;
//   nothing may be sent to it). uv_async_send is called under the mutex so
//   that it never races the close.
//
// Limits: one stack per process (lwIP), enforced by the C layer. The frame
// queue holds copies: one allocation per frame in threaded mode.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "netstack/capi/callback_port.h"
#include "netstack/capi/capi_config.h"
#include "netstack/stack/stack.h"
#include "portfwd/rule.h"

namespace slipway::capi {

// A host resource could not be had (a port, a loop, a thread).
class ResourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The result of one call: a slipway_error code and, when it is not
// SLIPWAY_OK, why.
struct Outcome {
  int code = SLIPWAY_OK;
  std::string message;
};

struct Counters {
  std::atomic<uint64_t> input_frames{0};
  std::atomic<uint64_t> input_dropped{0};
  std::atomic<uint64_t> output_frames{0};
};

class StackCore {
 public:
  // Throws ResourceError when a published port cannot be bound.
  StackCore(uv_loop_t* loop, const EmbeddedConfig& config, slipway_output_fn output, void* opaque,
            std::atomic<uint64_t>& output_frames);
  // Output is disabled before the gateway goes: no callback from here on.
  ~StackCore();
  StackCore(const StackCore&) = delete;
  StackCore& operator=(const StackCore&) = delete;

  void input(link::Frame frame) { port_->input(frame); }
  Outcome add_forward(const portfwd::Rule& rule);
  Outcome remove_forward(const portfwd::Rule& rule);
  bool in_callback() const { return port_->in_callback(); }

 private:
  CallbackPort* port_;  // owned by the stack, as its transport
  std::unique_ptr<stack::Stack> stack_;
};

class EmbeddedStack {
 public:
  virtual ~EmbeddedStack() = default;
  EmbeddedStack() = default;
  EmbeddedStack(const EmbeddedStack&) = delete;
  EmbeddedStack& operator=(const EmbeddedStack&) = delete;

  // frame.size() is checked against max_frame() by the caller.
  virtual Outcome input(link::Frame frame) = 0;
  virtual Outcome add_forward(const portfwd::Rule& rule) = 0;
  virtual Outcome remove_forward(const portfwd::Rule& rule) = 0;
  // Whether the destructor may run on the calling thread now.
  virtual Outcome can_free_here() const = 0;

  size_t max_frame() const { return max_frame_; }
  const Counters& counters() const { return counters_; }

 protected:
  Counters counters_;
  size_t max_frame_ = 0;
};

class LoopStack : public EmbeddedStack {
 public:
  LoopStack(uv_loop_t* loop, const EmbeddedConfig& config, slipway_output_fn output, void* opaque);

  Outcome input(link::Frame frame) override;
  Outcome add_forward(const portfwd::Rule& rule) override;
  Outcome remove_forward(const portfwd::Rule& rule) override;
  Outcome can_free_here() const override;

 private:
  Outcome check_thread() const;

  std::thread::id owner_;
  StackCore core_;
};

class ThreadedStack : public EmbeddedStack {
 public:
  static constexpr size_t kFramesPerWake = 256;

  // Throws ResourceError (loop, thread, published port) or std::bad_alloc.
  ThreadedStack(const EmbeddedConfig& config, slipway_output_fn output, void* opaque);
  // Stops the loop and joins the thread; must not run on that thread.
  ~ThreadedStack() override;

  Outcome input(link::Frame frame) override;
  Outcome add_forward(const portfwd::Rule& rule) override;
  Outcome remove_forward(const portfwd::Rule& rule) override;
  Outcome can_free_here() const override;

 private:
  static void on_async(uv_async_t* handle);
  void drain();
  void run();
  // Closes what is open on the loop, runs it until every close callback has
  // run, and closes it. On the loop's thread (or before it started).
  void close_loop();
  // Runs fn on the loop thread and waits for its outcome.
  Outcome call(const std::function<Outcome()>& fn);
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  uv_loop_t loop_{};
  uv_async_t* async_ = nullptr;  // heap: freed in its close callback
  std::unique_ptr<StackCore> core_;
  std::thread thread_;
  size_t queue_frames_;

  std::mutex mu_;
  std::condition_variable answered_;
  std::deque<std::vector<std::byte>> frames_;    // guarded by mu_
  std::deque<std::function<void()>> commands_;   // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  bool closed_ = false;                          // guarded by mu_: async_ is closed
};

}  // namespace slipway::capi
