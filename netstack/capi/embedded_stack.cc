// See embedded_stack.h.
#include "netstack/capi/embedded_stack.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <new>

namespace slipway::capi {
namespace {

using Origin = portfwd::PublishedPorts::Origin;

// Runs fn, turning an exception into an outcome (on the loop thread, where
// nothing may escape into libuv).
Outcome guarded(const std::function<Outcome()>& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return {SLIPWAY_ENOMEM, "out of memory"};
  } catch (const std::exception& e) {
    return {SLIPWAY_EINTERNAL, e.what()};
  }
}

std::string uv_message(const char* what, int err) { return std::string(what) + ": " + uv_strerror(err); }

}  // namespace

// ------------------------------------------------------------------ StackCore

StackCore::StackCore(uv_loop_t* loop, const EmbeddedConfig& config, slipway_output_fn output, void* opaque,
                     std::atomic<uint64_t>& output_frames) {
  auto port = std::make_unique<CallbackPort>(output, opaque, output_frames);
  port_ = port.get();
  // A stack that fails half-way destroys what it built, the port included,
  // before anything could send a frame (no flow exists yet, and the router
  // advertisement timer fires only from the loop): the embedder's callback
  // is never called from a failed creation.
  try {
    stack_ = std::make_unique<stack::Stack>(loop, std::move(port), config.stack);
  } catch (const stack::PublishError& e) {
    throw ResourceError(e.what());
  }
}

StackCore::~StackCore() {
  port_->disable();
  stack_.reset();
}

Outcome StackCore::add_forward(const portfwd::Rule& rule) {
  auto err = stack_->published().add(rule, Origin::kApi);
  if (!err.empty()) return {SLIPWAY_EIO, err};
  return {};
}

Outcome StackCore::remove_forward(const portfwd::Rule& rule) {
  if (!stack_->published().remove(rule)) return {SLIPWAY_ENOENT, "no forward " + rule.to_string()};
  return {};
}

// ------------------------------------------------------------------ LoopStack

LoopStack::LoopStack(uv_loop_t* loop, const EmbeddedConfig& config, slipway_output_fn output, void* opaque)
    : owner_(std::this_thread::get_id()), core_(loop, config, output, opaque, counters_.output_frames) {
  max_frame_ = config.max_frame;
}

Outcome LoopStack::check_thread() const {
  if (std::this_thread::get_id() != owner_)
    return {SLIPWAY_ESTATE, "a stack on the caller's loop is used only from the thread that created it"};
  return {};
}

Outcome LoopStack::input(link::Frame frame) {
  if (auto o = check_thread(); o.code != SLIPWAY_OK) return o;
  if (core_.in_callback()) return {SLIPWAY_ESTATE, "slipway_input from inside the output callback"};
  counters_.input_frames.fetch_add(1, std::memory_order_relaxed);
  core_.input(frame);
  return {};
}

Outcome LoopStack::add_forward(const portfwd::Rule& rule) {
  if (auto o = check_thread(); o.code != SLIPWAY_OK) return o;
  return core_.add_forward(rule);
}

Outcome LoopStack::remove_forward(const portfwd::Rule& rule) {
  if (auto o = check_thread(); o.code != SLIPWAY_OK) return o;
  return core_.remove_forward(rule);
}

Outcome LoopStack::can_free_here() const {
  if (auto o = check_thread(); o.code != SLIPWAY_OK) return o;
  if (core_.in_callback()) return {SLIPWAY_ESTATE, "slipway_free from inside the output callback"};
  return {};
}

// -------------------------------------------------------------- ThreadedStack

ThreadedStack::ThreadedStack(const EmbeddedConfig& config, slipway_output_fn output, void* opaque)
    : queue_frames_(config.queue_frames) {
  max_frame_ = config.max_frame;
  if (int err = uv_loop_init(&loop_); err != 0) throw ResourceError(uv_message("uv_loop_init", err));
  try {
    async_ = new uv_async_t;
    if (int err = uv_async_init(&loop_, async_, on_async); err != 0) {
      delete async_;
      async_ = nullptr;
      throw ResourceError(uv_message("uv_async_init", err));
    }
    async_->data = this;
    core_ = std::make_unique<StackCore>(&loop_, config, output, opaque, counters_.output_frames);
  } catch (...) {
    close_loop();
    throw;
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    close_loop();
    throw ResourceError(std::string("cannot start slipway's thread: ") + e.what());
  }
}

ThreadedStack::~ThreadedStack() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (!closed_) uv_async_send(async_);
  }
  if (thread_.joinable()) thread_.join();
}

void ThreadedStack::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);  // until drain() sees `stopping` and stops it
  close_loop();
}

void ThreadedStack::close_loop() {
  core_.reset();
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  if (async_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(async_)))
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
  // The gateway closed its handles; anything still open is a leak, closed
  // here so that the loop can end.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) {
          spdlog::debug("closing a leftover libuv handle of type {}", uv_handle_type_name(h->type));
          uv_close(h, nullptr);
        }
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) spdlog::warn("embedded stack: loop closed with handles still open");
}

void ThreadedStack::on_async(uv_async_t* handle) { static_cast<ThreadedStack*>(handle->data)->drain(); }

void ThreadedStack::drain() {
  std::vector<std::vector<std::byte>> batch;
  std::deque<std::function<void()>> commands;
  bool stop = false;
  bool more = false;
  {
    std::lock_guard lock(mu_);
    size_t n = std::min(frames_.size(), kFramesPerWake);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(frames_.front()));
      frames_.pop_front();
    }
    commands.swap(commands_);
    stop = stopping_;
    more = !frames_.empty();
  }
  // Commands first: their callers are waiting.
  for (auto& c : commands) c();
  if (stop) {
    // Output off and the gateway gone before anything else; close_loop()
    // (after uv_run returns) closes the rest.
    core_.reset();
    uv_stop(&loop_);
    return;
  }
  for (const auto& f : batch) {
    try {
      core_->input(f);
    } catch (const std::exception& e) {
      spdlog::error("dropping a guest frame: {}", e.what());
    }
  }
  if (more) {
    std::lock_guard lock(mu_);
    if (!closed_) uv_async_send(async_);
  }
}

Outcome ThreadedStack::input(link::Frame frame) {
  std::lock_guard lock(mu_);
  if (stopping_) return {SLIPWAY_ESTATE, "the stack is stopping"};
  if (frames_.size() >= queue_frames_) {
    counters_.input_dropped.fetch_add(1, std::memory_order_relaxed);
    return {SLIPWAY_EAGAIN, "the input queue is full (" + std::to_string(queue_frames_) + " frames)"};
  }
  frames_.emplace_back(frame.begin(), frame.end());
  counters_.input_frames.fetch_add(1, std::memory_order_relaxed);
  // Wake only on the first frame of a batch: drain() re-arms itself while
  // frames remain, and uv_async_send coalesces anyway.
  if (frames_.size() == 1) uv_async_send(async_);
  return {};
}

Outcome ThreadedStack::call(const std::function<Outcome()>& fn) {
  if (on_loop_thread()) return guarded(fn);  // from the output callback
  Outcome result;
  bool done = false;
  std::unique_lock lock(mu_);
  if (stopping_) return {SLIPWAY_ESTATE, "the stack is stopping"};
  commands_.emplace_back([&] {
    Outcome r = guarded(fn);
    std::lock_guard inner(mu_);
    result = std::move(r);
    done = true;
    answered_.notify_all();
  });
  uv_async_send(async_);
  answered_.wait(lock, [&] { return done; });
  return result;
}

Outcome ThreadedStack::add_forward(const portfwd::Rule& rule) {
  return call([&] { return core_->add_forward(rule); });
}

Outcome ThreadedStack::remove_forward(const portfwd::Rule& rule) {
  return call([&] { return core_->remove_forward(rule); });
}

Outcome ThreadedStack::can_free_here() const {
  if (on_loop_thread()) return {SLIPWAY_ESTATE, "slipway_free on slipway's own thread (from the output callback)"};
  return {};
}

}  // namespace slipway::capi
