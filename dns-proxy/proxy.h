// The DNS proxy: answers wire-format queries from static names, the cache,
// or the upstream servers, exactly as the upstream answered.
//
// Theory of operation
// - resolve() takes one query from a client (the guest at the DNS address,
//   or a Server's listeners) and calls `respond` at most once:
//     garbage (shorter than a header, or QR=1)      dropped, no call
//     malformed (see message.h QueryError)           FORMERR
//     opcode other than QUERY                        NOTIMP
//     a static name (config or hosts file), class IN AA answer from config;
//                                                    other types NOERROR/no data
//     a fresh cache entry                            the cached reply, TTLs
//                                                    decremented, client's ID
//     otherwise                                      the upstream's reply,
//                                                    byte for byte but the ID
//   Over UDP, a reply bigger than the client takes (512, its EDNS0 size, or
//   `max_udp_size` if smaller) is cut to its question with TC=1.
// - Upstream: the query is sent as received (EDNS0 and all) with a fresh
//   random ID (getrandom) over UDP from a fresh socket (forwarder.h). Servers
//   are tried in order: a new attempt starts when the previous one fails or
//   after `upstream_timeout_ms` without an answer (the earlier attempt keeps
//   listening: the first matching answer wins). A reply with TC=1 is retried
//   over TCP to the same server. At `total_timeout_ms` (< 2 s) the client
//   gets SERVFAIL; it also gets SERVFAIL at once when every server refused.
//   At most max(3, servers) attempts per query.
// - Pending queries are bounded (`max_pending`); beyond it, SERVFAIL.
// - Configuration files: resolv.conf (when no upstream is given) and the hosts
//   file are stat()ed at most once a second when queries arrive and re-read
//   when they changed; reload() re-reads them now; reconfigure() takes a
//   whole new configuration. Each is read only if it is a regular file
//   within its bound (upstreams.h: 1 MiB and 8 MiB), never a FIFO, a device
//   or a directory; a hosts file that cannot be read is an error at
//   construction and a warning on a re-read.
// - Lifetime: the Proxy owns every timer and exchange; its destructor aborts
//   them, so no callback (and no `respond`) runs after it. `respond` may be
//   called before resolve() returns and may call resolve() again, but must not
//   destroy the Proxy.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <sys/stat.h>
#include <unordered_map>
#include <vector>

#include "dns-proxy/cache.h"
#include "dns-proxy/forwarder.h"
#include "dns-proxy/message.h"
#include "dns-proxy/upstreams.h"
#include "netstack/sys/clock.h"

namespace slipway::dns {

struct ProxyConfig {
  std::vector<Upstream> upstreams;  // empty: from resolv_conf_path
  std::string resolv_conf_path = "/etc/resolv.conf";
  std::vector<Route> routes;
  std::map<std::string, std::vector<std::string>> static_names;  // name -> addresses (A or AAAA by literal)
  std::string hosts_file;                                         // optional hosts-style file
  bool cache = true;
  size_t cache_entries = 4096;
  uint64_t upstream_timeout_ms = 700;  // per attempt
  uint64_t total_timeout_ms = 1500;    // answer or SERVFAIL within this (< 2000)
  size_t max_pending = 4096;           // queries waiting for upstreams
  uint32_t static_ttl = 60;            // TTL of static answers
};

struct ProxyStats {
  uint64_t queries = 0;
  uint64_t cache_hits = 0;
  uint64_t upstream_queries = 0;
  uint64_t upstream_timeouts = 0;
  uint64_t servfail = 0;
  uint64_t formerr = 0;
  uint64_t dropped = 0;
  uint64_t tcp_fallbacks = 0;
  uint64_t static_answers = 0;
  uint64_t truncated = 0;  // UDP answers cut to TC=1 for the client
};

class Proxy {
 public:
  using Respond = std::function<void(std::vector<std::byte>)>;

  // Throws std::runtime_error on a bad config. `clock` (the stack's, which
  // outlives the proxy) times the cache and the deadlines; null: the loop's.
  Proxy(uv_loop_t* loop, ProxyConfig config, const sys::Clock* clock = nullptr);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // See the top of this file. `max_udp_size` (0: no limit of its own) caps
  // the client's advertised size, e.g. by the path MTU; ignored for TCP.
  // Returns false when the query was dropped as garbage (`respond` is never
  // called), true when `respond` was or will be called.
  bool resolve(std::span<const std::byte> query, Transport transport, Respond respond,
               size_t max_udp_size = 0);
  const ProxyStats& stats() const { return stats_; }
  // Re-reads resolv.conf (when it supplies the upstreams) and the hosts file.
  void reload();
  // Takes a new configuration (a SIGHUP with a changed file): upstreams,
  // routes, static names, hosts file, cache. Throws std::runtime_error like
  // the constructor and then keeps the old one. The cache is emptied when
  // the upstreams, routes or cache settings change; queries in flight finish
  // with the servers they started with.
  void reconfigure(ProxyConfig config);
  // Names that come and go while the proxy runs (a guest's NAME.internal
  // when it gets a DHCP lease): answered like static names, kept across
  // reload() and reconfigure(). No addresses: the name is removed.
  void set_local_name(const std::string& name, const std::vector<std::string>& addresses);

  size_t pending() const { return pending_.size(); }
  size_t cache_size() const { return cache_.size(); }
  const std::vector<ResolvedUpstream>& default_upstreams() const { return upstreams_.defaults(); }

 private:
  struct Pending;
  struct FileStamp {
    bool exists = false;
    struct timespec mtime {};
    off_t size = 0;
    ino_t ino = 0;
    friend bool operator==(const FileStamp& a, const FileStamp& b) {
      return a.exists == b.exists && a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec &&
             a.size == b.size && a.ino == b.ino;
    }
  };
  static FileStamp stamp_of(const std::string& path);

  void load_resolv_conf();
  void load_statics();
  void maybe_refresh(uint64_t now);
  std::optional<std::vector<std::byte>> answer_static(const Query& q);
  void start_attempt(Pending& p, uint64_t now);
  void arm_timer(Pending& p, uint64_t now);
  void on_timer(uint64_t id);
  void on_reply(uint64_t id, const ResolvedUpstream& server, Transport transport,
                Exchange::Outcome outcome, std::vector<std::byte> reply);
  void finish(uint64_t id, std::vector<std::byte> reply, bool from_upstream);
  void fail(uint64_t id);
  void send(const Respond& respond, std::vector<std::byte> reply, Transport transport, size_t udp_limit);
  uint16_t random_id();

  uv_loop_t* loop_;
  sys::LoopClock loop_clock_;
  const sys::Clock* clock_;
  ProxyConfig config_;
  UpstreamSet upstreams_;
  FileStamp resolv_stamp_, hosts_stamp_;
  uint64_t last_refresh_ms_ = 0;
  // lower-case wire name -> address records
  std::unordered_map<std::string, std::vector<AddressRdata>> statics_;
  std::unordered_map<std::string, std::vector<AddressRdata>> locals_;  // set_local_name()
  Cache cache_;
  ProxyStats stats_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Pending>> pending_;
  std::vector<uint16_t> random_pool_;
};

}  // namespace slipway::dns
