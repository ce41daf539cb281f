/* slipway.h: embed slipway's user-mode network stack in a process (a VMM, an
 * emulator, a test harness) through a C API.
 *
 * Theory of operation
 *   A stack is one virtual network for one guest NIC: the same gateway the
 *   `slipway` program runs (ARP, DHCP, ICMP echo, DNS at the DNS address, NAT
 *   of TCP and UDP over host sockets, published ports), with the guest link
 *   replaced by two calls. The embedder pushes every Ethernet frame its guest
 *   sends with slipway_input(); every frame for the guest comes back through
 *   the output callback given at creation. Frames are whole Ethernet frames
 *   without FCS (no virtio-net header), at most mtu + 14 bytes.
 *
 *   slipway runs on a libuv event loop, in one of two modes:
 *
 *   - On the caller's loop (slipway_new_on_loop): slipway adds its handles to
 *     the caller's uv_loop_t, and the caller runs that loop. Every call on
 *     the stack, slipway_free included, must be made on the thread that
 *     created it (the loop's thread); another thread gets SLIPWAY_ESTATE
 *     (slipway_free, which returns nothing, logs the error and leaves the
 *     stack alone).
 *     slipway_input() processes the frame at once, so the output callback
 *     may run inside slipway_input() (an ARP or ping reply does), as well as
 *     from the loop's callbacks. The callback must not call slipway_input()
 *     or slipway_free() (SLIPWAY_ESTATE); it may add or remove forwards.
 *
 *   - On a thread of its own (slipway_new_threaded): slipway owns a loop and
 *     runs it on a thread it starts. slipway_input() may then be called from
 *     any thread: it copies the frame into a bounded queue (queue_frames
 *     frames; beyond that the frame is dropped, counted in
 *     slipway_stats.input_dropped, and SLIPWAY_EAGAIN returned, as a full
 *     NIC ring would) and wakes slipway's thread with uv_async_send. The
 *     output callback runs on slipway's thread, never on the caller's.
 *     slipway_add_forward() and slipway_remove_forward() are handed to
 *     slipway's thread and wait for its answer. slipway_free() stops the
 *     loop and joins the thread: the output callback may run until
 *     slipway_free() returns (so do not hold, around slipway_free(), a lock
 *     the callback takes), and never after.
 *
 *   In both modes no callback runs after slipway_free() returns, and no call
 *   may be made with the handle after (or concurrently with) slipway_free().
 *
 * Limits
 *   - lwIP, the TCP/IP engine inside, keeps global state: there is one stack
 *     per process. A second slipway_new_* fails with SLIPWAY_EBUSY until the
 *     first is freed.
 *   - IPv4 only. The loop must be driven by the same (shared) libuv the
 *     library links (`pkg-config --libs libuv`).
 *   - Logs go to stderr through spdlog, as "slipway: LEVEL: text", unless the
 *     process has set spdlog's default logger itself; log_level sets the
 *     level of slipway's logger (process-wide, last stack wins).
 *
 * Errors
 *   Every function returning int returns SLIPWAY_OK (0) or a negative
 *   slipway_error. Pointer and length arguments are checked (NULL, zero
 *   length, a frame longer than mtu + 14 give SLIPWAY_EINVAL). No C++
 *   exception crosses this interface. slipway_last_error() gives a sentence
 *   about the last failing call on the calling thread.
 *
 * Usage (on the caller's loop)
 *   slipway_config cfg;
 *   slipway_config_init(&cfg);
 *   cfg.publish = rules; cfg.publish_count = 1;      // "8080:80/tcp"
 *   slipway_t *s;
 *   if (slipway_new_on_loop(&cfg, loop, on_frame, vmm, &s) != SLIPWAY_OK) ...
 *   ... slipway_input(s, frame, len) for each guest frame; uv_run(loop) ...
 *   slipway_free(s);
 */
#ifndef SLIPWAY_H
#define SLIPWAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#if defined(__GNUC__) || defined(__clang__)
#define SLIPWAY_API __attribute__((visibility("default")))
#else
#define SLIPWAY_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One stack: opaque. (The tag is not `slipway`, which C++ code may use as a
 * namespace name.) */
typedef struct slipway_stack slipway_t;

/* Return codes: 0 or negative. */
enum slipway_error {
  SLIPWAY_OK = 0,
  SLIPWAY_EINVAL = -1,    /* a bad argument or configuration value */
  SLIPWAY_EBUSY = -2,     /* a stack already exists in this process */
  SLIPWAY_ENOMEM = -3,    /* out of memory */
  SLIPWAY_ESTATE = -4,    /* not allowed now: wrong thread, inside the output callback, or stopping */
  SLIPWAY_EAGAIN = -5,    /* the input queue is full: the frame was dropped (and counted) */
  SLIPWAY_ENOENT = -6,    /* no such forward */
  SLIPWAY_EIO = -7,       /* a host resource failed: a port could not be bound, a loop or thread not started */
  SLIPWAY_EINTERNAL = -8  /* an unexpected internal error (a bug: see the log) */
};

enum slipway_log_level {
  SLIPWAY_LOG_TRACE = 0,
  SLIPWAY_LOG_DEBUG = 1,
  SLIPWAY_LOG_INFO = 2,
  SLIPWAY_LOG_WARN = 3,
  SLIPWAY_LOG_ERROR = 4,
  SLIPWAY_LOG_CRITICAL = 5,
  SLIPWAY_LOG_OFF = 6
};

/* The guest's network. Fill it with slipway_config_init() first, then change
 * what differs. Strings are read during slipway_new_* only (they are copied).
 * The layout may change while the library's SOVERSION is 0. */
typedef struct slipway_config {
  const char *address; /* guest IPv4 address: "10.0.2.15" */
  unsigned prefix;     /* guest prefix length, 8..30: 24 */
  const char *gateway; /* gateway address (in the guest subnet): "10.0.2.2" */
  const char *dns;     /* DNS address announced to the guest: "10.0.2.3" */
  const char *mac;     /* guest MAC: "52:54:00:12:34:56" (checked to be unicast;
                          the gateway learns the guest's MAC from its frames) */
  unsigned mtu;        /* guest MTU, 576..65520: 65520 */
  int host_loopback;   /* nonzero: connections to the gateway address reach the
                          host's 127.0.0.1 (default 1); zero refuses them */
  /* DNS servers "ADDR[:PORT]" the gateway relays the guest's queries to;
   * none (the default): the host's /etc/resolv.conf. */
  const char *const *dns_upstreams;
  size_t dns_upstream_count;
  /* Published ports, as `slipway -p`: "[HOSTADDR:]HOSTPORT[-END]:GUESTPORT[-END][/tcp|/udp]",
   * HOSTADDR defaulting to 127.0.0.1. A rule that cannot be parsed gives
   * SLIPWAY_EINVAL, one whose host port cannot be bound SLIPWAY_EIO. */
  const char *const *publish;
  size_t publish_count;
  int log_level;       /* a slipway_log_level: SLIPWAY_LOG_WARN */
  size_t queue_frames; /* threaded mode: most frames waiting for slipway's thread: 1024 */
} slipway_config;

/* Counters, readable from any thread at any time. */
typedef struct slipway_stats {
  uint64_t input_frames;  /* frames accepted by slipway_input() */
  uint64_t input_dropped; /* frames refused because the input queue was full */
  uint64_t output_frames; /* frames handed to the output callback */
} slipway_stats;

/* Receives one frame for the guest; `frame` is valid only during the call. */
typedef void (*slipway_output_fn)(void *opaque, const void *frame, size_t len);

/* Fills the defaults: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3, MTU
 * 65520, MAC 52:54:00:12:34:56, host loopback on, no upstreams or published
 * ports, log level warn, 1024 queued frames. Does nothing if cfg is NULL. */
SLIPWAY_API void slipway_config_init(slipway_config *cfg);

/* A stack on the caller's loop. On success *out is the stack; on failure
 * *out is NULL. */
SLIPWAY_API int slipway_new_on_loop(const slipway_config *cfg, uv_loop_t *loop, slipway_output_fn output,
                                    void *opaque, slipway_t **out);

/* A stack on a thread of its own (see the top of this file). */
SLIPWAY_API int slipway_new_threaded(const slipway_config *cfg, slipway_output_fn output, void *opaque,
                                     slipway_t **out);

/* One frame from the guest. The frame is copied or consumed before the call
 * returns. SLIPWAY_EAGAIN: dropped on a full queue (threaded mode). */
SLIPWAY_API int slipway_input(slipway_t *s, const void *frame, size_t len);

/* Publishes a guest port, as a `publish` rule ("127.0.0.1:8080:80/tcp").
 * On failure, if err is not NULL, a NUL-terminated reason (truncated to
 * errlen) is written there; err and errlen are both given or both NULL/0. */
SLIPWAY_API int slipway_add_forward(slipway_t *s, const char *rule, char *err, size_t errlen);

/* Closes a forward added by either way; SLIPWAY_ENOENT if there is none
 * equal to rule (after parsing: "8080:80" names "127.0.0.1:8080:80/tcp"). */
SLIPWAY_API int slipway_remove_forward(slipway_t *s, const char *rule, char *err, size_t errlen);

/* Copies the counters to *out. */
SLIPWAY_API int slipway_get_stats(const slipway_t *s, slipway_stats *out);

/* Stops and frees the stack (joins its thread in threaded mode). NULL is a
 * no-op. Called from the output callback it does nothing but log an error
 * (and sets slipway_last_error): a stack cannot free itself from inside. */
SLIPWAY_API void slipway_free(slipway_t *s);

/* A static English sentence for a return code. */
SLIPWAY_API const char *slipway_strerror(int code);

/* Why the last failing call on this thread failed ("" if none); valid until
 * the next slipway call on this thread. */
SLIPWAY_API const char *slipway_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH". */
SLIPWAY_API const char *slipway_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SLIPWAY_H */
