// The C API (include/slipway.h): the boundary between C callers and the
// C++ stack.
//
// Theory of operation
//   Each function checks its arguments (NULL pointers, zero or too-long
//   lengths, the err/errlen pair), then calls into an EmbeddedStack
//   (LoopStack or ThreadedStack) inside a try block: no exception crosses
//   this file. Exceptions map to codes: ConfigError -> SLIPWAY_EINVAL,
//   ResourceError -> SLIPWAY_EIO, std::bad_alloc -> SLIPWAY_ENOMEM, anything
//   else -> SLIPWAY_EINTERNAL. Every failure also records a sentence in a
//   thread-local string (slipway_last_error) and, for creation, the log.
//
//   One stack per process: lwIP's state is global. A process-wide flag,
//   taken under a mutex by slipway_new_* and given back by slipway_free (or
//   by a creation that fails), turns a second creation into SLIPWAY_EBUSY.
//
//   Logging: the stack logs through spdlog's default logger. Unless the
//   process has installed its own default logger, slipway installs one
//   named "slipway" writing to stderr, and sets its level from the
//   configuration.
//
// Only the functions declared with SLIPWAY_API are exported from the shared
// library (-fvisibility=hidden and a version script).
#include "slipway.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>

#include "netstack/capi/capi_config.h"
#include "netstack/capi/embedded_stack.h"
#include "portfwd/rule.h"

#ifndef SLIPWAY_VERSION_STRING
#define SLIPWAY_VERSION_STRING "0.0.0"
#endif

struct slipway_stack {
  std::unique_ptr<slipway::capi::EmbeddedStack> stack;
};

namespace slipway::capi {
namespace {

thread_local std::string t_last_error;

std::mutex g_stack_mu;
bool g_stack_exists = false;  // guarded by g_stack_mu

int fail(int code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

int ok() {
  t_last_error.clear();
  return SLIPWAY_OK;
}

// err and errlen are both given or both absent.
bool err_args_ok(const char* err, size_t errlen) { return (err == nullptr) == (errlen == 0); }

void write_err(char* err, size_t errlen, const std::string& message) {
  if (err == nullptr || errlen == 0) return;
  size_t n = std::min(message.size(), errlen - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// Fails with code and message, also into the caller's buffer.
int fail_to(char* err, size_t errlen, int code, std::string message) {
  write_err(err, errlen, message);
  return fail(code, std::move(message));
}

void configure_logging(int level) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  auto logger = spdlog::get("slipway");
  if (!logger) {
    auto current = spdlog::default_logger();
    if (current && !current->name().empty()) return;  // the process has its own logger
    logger = spdlog::stderr_color_mt("slipway");
    logger->set_pattern("slipway: %^%l%$: %v");
    spdlog::set_default_logger(logger);
  }
  if (spdlog::default_logger() == logger) logger->set_level(static_cast<spdlog::level::level_enum>(level));
}

// Runs the creation `make` under the one-stack guard.
template <class Make>
int create(const slipway_config* cfg, slipway_output_fn output, slipway_t** out, Make make) {
  std::unique_lock lock(g_stack_mu);
  if (g_stack_exists) return fail(SLIPWAY_EBUSY, "a slipway stack already exists in this process");
  try {
    // Logging first, so that what follows logs at the configured level
    // (embedded_config_from rejects a level out of range).
    if (cfg->log_level >= SLIPWAY_LOG_TRACE && cfg->log_level <= SLIPWAY_LOG_OFF) configure_logging(cfg->log_level);
    EmbeddedConfig config = embedded_config_from(*cfg);
    auto handle = std::make_unique<slipway_stack>();
    handle->stack = make(config, output);
    g_stack_exists = true;
    *out = handle.release();
    return ok();
  } catch (const ConfigError& e) {
    spdlog::error("invalid configuration: {}", e.what());
    return fail(SLIPWAY_EINVAL, e.what());
  } catch (const ResourceError& e) {
    spdlog::error("{}", e.what());
    return fail(SLIPWAY_EIO, e.what());
  } catch (const std::bad_alloc&) {
    return fail(SLIPWAY_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    // The gateway's constructor throws std::system_error and friends when a
    // host resource (a socket, the resolver configuration) fails.
    spdlog::error("cannot start the stack: {}", e.what());
    return fail(SLIPWAY_EIO, e.what());
  } catch (...) {
    return fail(SLIPWAY_EINTERNAL, "unknown exception");
  }
}

// Maps the exceptions of a call on an existing stack.
template <class Fn>
int guarded_call(char* err, size_t errlen, Fn fn) {
  try {
    Outcome o = fn();
    if (o.code != SLIPWAY_OK) return fail_to(err, errlen, o.code, o.message);
    return ok();
  } catch (const std::bad_alloc&) {
    return fail_to(err, errlen, SLIPWAY_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail_to(err, errlen, SLIPWAY_EINTERNAL, e.what());
  } catch (...) {
    return fail_to(err, errlen, SLIPWAY_EINTERNAL, "unknown exception");
  }
}

template <class Op>
int forward_op(slipway_t* s, const char* rule, char* err, size_t errlen, Op op) {
  if (!err_args_ok(err, errlen)) return fail(SLIPWAY_EINVAL, "err and errlen must both be given or both be NULL/0");
  if (s == nullptr || rule == nullptr) return fail_to(err, errlen, SLIPWAY_EINVAL, "a NULL stack or rule");
  return guarded_call(err, errlen, [&]() -> Outcome {
    std::string why;
    auto r = portfwd::parse_rule(rule, &why);
    if (!r) return {SLIPWAY_EINVAL, why};
    return op(*s->stack, *r);
  });
}

}  // namespace
}  // namespace slipway::capi

using namespace slipway::capi;

extern "C" {

SLIPWAY_API void slipway_config_init(slipway_config* cfg) {
  if (cfg == nullptr) return;
  *cfg = slipway_config{};
  cfg->address = "10.0.2.15";
  cfg->prefix = 24;
  cfg->gateway = "10.0.2.2";
  cfg->dns = "10.0.2.3";
  cfg->mac = "52:54:00:12:34:56";
  cfg->mtu = 65520;
  cfg->host_loopback = 1;
  cfg->dns_upstreams = nullptr;
  cfg->dns_upstream_count = 0;
  cfg->publish = nullptr;
  cfg->publish_count = 0;
  cfg->log_level = SLIPWAY_LOG_WARN;
  cfg->queue_frames = 1024;
}

SLIPWAY_API int slipway_new_on_loop(const slipway_config* cfg, uv_loop_t* loop, slipway_output_fn output,
                                    void* opaque, slipway_t** out) {
  if (out == nullptr) return fail(SLIPWAY_EINVAL, "out is NULL");
  *out = nullptr;
  if (cfg == nullptr || loop == nullptr || output == nullptr)
    return fail(SLIPWAY_EINVAL, "cfg, loop and output must not be NULL");
  return create(cfg, output, out, [&](const EmbeddedConfig& c, slipway_output_fn fn) {
    return std::make_unique<LoopStack>(loop, c, fn, opaque);
  });
}

SLIPWAY_API int slipway_new_threaded(const slipway_config* cfg, slipway_output_fn output, void* opaque,
                                     slipway_t** out) {
  if (out == nullptr) return fail(SLIPWAY_EINVAL, "out is NULL");
  *out = nullptr;
  if (cfg == nullptr || output == nullptr) return fail(SLIPWAY_EINVAL, "cfg and output must not be NULL");
  return create(cfg, output, out, [&](const EmbeddedConfig& c, slipway_output_fn fn) {
    return std::make_unique<ThreadedStack>(c, fn, opaque);
  });
}

SLIPWAY_API int slipway_input(slipway_t* s, const void* frame, size_t len) {
  if (s == nullptr || frame == nullptr) return fail(SLIPWAY_EINVAL, "a NULL stack or frame");
  if (len == 0) return fail(SLIPWAY_EINVAL, "an empty frame");
  if (len > s->stack->max_frame())
    return fail(SLIPWAY_EINVAL, "a frame of " + std::to_string(len) + " bytes is longer than mtu + 14 (" +
                                    std::to_string(s->stack->max_frame()) + ")");
  return guarded_call(nullptr, 0, [&] {
    return s->stack->input(slipway::link::Frame(static_cast<const std::byte*>(frame), len));
  });
}

SLIPWAY_API int slipway_add_forward(slipway_t* s, const char* rule, char* err, size_t errlen) {
  return forward_op(s, rule, err, errlen,
                    [](EmbeddedStack& st, const slipway::portfwd::Rule& r) { return st.add_forward(r); });
}

SLIPWAY_API int slipway_remove_forward(slipway_t* s, const char* rule, char* err, size_t errlen) {
  return forward_op(s, rule, err, errlen,
                    [](EmbeddedStack& st, const slipway::portfwd::Rule& r) { return st.remove_forward(r); });
}

SLIPWAY_API int slipway_get_stats(const slipway_t* s, slipway_stats* out) {
  if (s == nullptr || out == nullptr) return fail(SLIPWAY_EINVAL, "a NULL stack or stats");
  const Counters& c = s->stack->counters();
  out->input_frames = c.input_frames.load(std::memory_order_relaxed);
  out->input_dropped = c.input_dropped.load(std::memory_order_relaxed);
  out->output_frames = c.output_frames.load(std::memory_order_relaxed);
  return ok();
}

SLIPWAY_API void slipway_free(slipway_t* s) {
  if (s == nullptr) return;
  try {
    Outcome o = s->stack->can_free_here();
    if (o.code != SLIPWAY_OK) {
      spdlog::error("slipway_free refused: {}", o.message);
      fail(o.code, o.message);
      return;
    }
    delete s;
  } catch (const std::exception& e) {
    // A destructor that throws is a bug; the stack is gone either way.
    spdlog::critical("slipway_free: {}", e.what());
  } catch (...) {
    spdlog::critical("slipway_free: unknown exception");
  }
  std::lock_guard lock(g_stack_mu);
  g_stack_exists = false;
  ok();
}

SLIPWAY_API const char* slipway_strerror(int code) {
  switch (code) {
    case SLIPWAY_OK:
      return "success";
    case SLIPWAY_EINVAL:
      return "invalid argument or configuration";
    case SLIPWAY_EBUSY:
      return "a slipway stack already exists in this process";
    case SLIPWAY_ENOMEM:
      return "out of memory";
    case SLIPWAY_ESTATE:
      return "not allowed in the current state or on this thread";
    case SLIPWAY_EAGAIN:
      return "input queue full: frame dropped";
    case SLIPWAY_ENOENT:
      return "no such forward";
    case SLIPWAY_EIO:
      return "a host resource failed";
    case SLIPWAY_EINTERNAL:
      return "internal error";
    default:
      return "unknown error code";
  }
}

SLIPWAY_API const char* slipway_last_error(void) { return t_last_error.c_str(); }

SLIPWAY_API const char* slipway_version(void) { return SLIPWAY_VERSION_STRING; }

}  // extern "C"
