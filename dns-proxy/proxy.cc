// The DNS proxy. See proxy.h for the theory of operation.
#include "dns-proxy/proxy.h"

#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <algorithm>
#include <stdexcept>

#include "netstack/sys/read_file.h"

namespace slipway::dns {

namespace {

constexpr uint64_t kRefreshIntervalMs = 1000;
constexpr size_t kMinAttempts = 3;
constexpr size_t kRandomPool = 256;

}  // namespace

struct Proxy::Pending {
  uint64_t id = 0;
  Query query;  // the client's
  std::string cache_key;
  std::vector<std::byte> upstream_query;  // the client's bytes with our ID
  Transport transport = Transport::kUdp;
  size_t udp_limit = kClassicUdpSize;
  Respond respond;
  std::vector<ResolvedUpstream> servers;  // a copy: reload() may replace the set
  size_t attempts = 0;
  size_t max_attempts = kMinAttempts;
  size_t active = 0;  // exchanges that have not reported yet
  uint64_t attempt_deadline_ms = 0;
  uint64_t deadline_ms = 0;
  std::vector<std::byte> truncated_reply;  // a TC=1 reply kept while TCP runs
  std::unique_ptr<Timer> timer;
  std::vector<ExchangePtr> exchanges;
};

namespace {

// Throws std::runtime_error naming what is wrong in `config`; returns the
// upstream set its explicit upstreams and routes make.
UpstreamSet check_config(const ProxyConfig& config) {
  if (config.upstream_timeout_ms == 0 || config.total_timeout_ms == 0)
    throw std::runtime_error("dns-proxy: timeouts must be positive");
  if (config.total_timeout_ms >= 2000)
    throw std::runtime_error("dns-proxy: total_timeout_ms must be under 2000 (SERVFAIL within 2 s)");
  for (const auto& [name, addrs] : config.static_names) {
    if (!name_from_text(name)) throw std::runtime_error("dns-proxy: bad static name '" + name + "'");
    for (const auto& a : addrs)
      if (!address_rdata(a))
        throw std::runtime_error("dns-proxy: static name '" + name + "': bad address '" + a + "'");
  }
  if (!config.hosts_file.empty()) {
    if (auto f = sys::read_regular_file(config.hosts_file, kMaxHostsFileBytes); !f)
      throw std::runtime_error("dns-proxy: cannot read hosts file '" + config.hosts_file + "': " + f.why());
  }
  // Validates routes and explicit upstreams (throws with the bad entry).
  return UpstreamSet(config.upstreams, config.routes);
}

}  // namespace

Proxy::Proxy(uv_loop_t* loop, ProxyConfig config, const sys::Clock* clock)
    : loop_(loop),
      loop_clock_(loop),
      clock_(clock != nullptr ? clock : &loop_clock_),
      config_(std::move(config)),
      cache_(config_.cache ? config_.cache_entries : 0) {
  upstreams_ = check_config(config_);
  if (config_.upstreams.empty()) load_resolv_conf();
  load_statics();
  last_refresh_ms_ = clock_->now_ms();
}

void Proxy::reconfigure(ProxyConfig config) {
  auto upstreams = check_config(config);  // throws, leaving *this alone
  bool same_sources = config.upstreams == config_.upstreams && config.resolv_conf_path == config_.resolv_conf_path &&
                      config.routes == config_.routes;
  bool same_cache = config.cache == config_.cache && config.cache_entries == config_.cache_entries;
  config_ = std::move(config);
  upstreams_ = std::move(upstreams);
  if (config_.upstreams.empty()) load_resolv_conf();
  load_statics();
  // Answers from other servers may differ: start the cache afresh. Queries
  // in flight keep the servers they started with.
  if (!same_sources || !same_cache) cache_ = Cache(config_.cache ? config_.cache_entries : 0);
}

Proxy::~Proxy() = default;  // Pending: timers closed, exchanges aborted, no callbacks

Proxy::FileStamp Proxy::stamp_of(const std::string& path) {
  FileStamp s;
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mtime = st.st_mtim;
  s.size = st.st_size;
  s.ino = st.st_ino;
  return s;
}

void Proxy::load_resolv_conf() {
  resolv_stamp_ = stamp_of(config_.resolv_conf_path);
  auto text = sys::read_regular_file(config_.resolv_conf_path, kMaxResolvConfBytes);
  std::vector<Upstream> servers;
  if (!text) {
    spdlog::warn("dns-proxy: cannot read {}: {}: queries will get SERVFAIL until it is readable",
                 config_.resolv_conf_path, text.why());
  } else if (servers = parse_resolv_conf(text.text); servers.empty()) {
    spdlog::warn("dns-proxy: no nameserver in {}: queries will get SERVFAIL until it has one",
                 config_.resolv_conf_path);
  }
  try {
    upstreams_ = UpstreamSet(servers, config_.routes);
  } catch (const std::exception& e) {
    spdlog::warn("{} (in {})", e.what(), config_.resolv_conf_path);
  }
  spdlog::debug("dns-proxy: {} upstream(s) from {}", upstreams_.defaults().size(), config_.resolv_conf_path);
}

void Proxy::load_statics() {
  statics_.clear();
  auto add = [this](const std::string& name, const std::vector<std::string>& addrs) {
    auto wire = name_from_text(name);
    if (!wire) return;
    auto& recs = statics_[name_lower(*wire)];
    for (const auto& a : addrs)
      if (auto r = address_rdata(a)) recs.push_back(std::move(*r));
  };
  if (!config_.hosts_file.empty()) {
    hosts_stamp_ = stamp_of(config_.hosts_file);
    if (auto text = sys::read_regular_file(config_.hosts_file, kMaxHostsFileBytes)) {
      for (const auto& [name, addrs] : parse_hosts(text.text)) add(name, addrs);
    } else {
      spdlog::warn("dns-proxy: cannot read hosts file {}: {}", config_.hosts_file, text.why());
    }
  }
  // Configured names win over the file: they replace its records.
  for (const auto& [name, addrs] : config_.static_names) {
    if (auto wire = name_from_text(name)) statics_.erase(name_lower(*wire));
    add(name, addrs);
  }
}

void Proxy::reload() {
  if (config_.upstreams.empty()) load_resolv_conf();
  load_statics();
}

void Proxy::maybe_refresh(uint64_t now) {
  if (now - last_refresh_ms_ < kRefreshIntervalMs) return;
  last_refresh_ms_ = now;
  if (config_.upstreams.empty() && !(stamp_of(config_.resolv_conf_path) == resolv_stamp_)) {
    spdlog::info("dns-proxy: {} changed, re-reading it", config_.resolv_conf_path);
    load_resolv_conf();
  }
  if (!config_.hosts_file.empty() && !(stamp_of(config_.hosts_file) == hosts_stamp_)) {
    spdlog::info("dns-proxy: {} changed, re-reading it", config_.hosts_file);
    load_statics();
  }
}

uint16_t Proxy::random_id() {
  if (random_pool_.empty()) {
    random_pool_.resize(kRandomPool);
    size_t want = random_pool_.size() * sizeof(uint16_t);
    ssize_t got = getrandom(random_pool_.data(), want, 0);
    if (got != static_cast<ssize_t>(want)) throw std::runtime_error("dns-proxy: getrandom failed");
  }
  uint16_t v = random_pool_.back();
  random_pool_.pop_back();
  return v;
}

void Proxy::send(const Respond& respond, std::vector<std::byte> reply, Transport transport, size_t udp_limit) {
  if (transport == Transport::kUdp && reply.size() > udp_limit) {
    ++stats_.truncated;
    reply = truncate_for_udp(reply, udp_limit);
  }
  respond(std::move(reply));
}

void Proxy::set_local_name(const std::string& name, const std::vector<std::string>& addresses) {
  auto wire = name_from_text(name);
  if (!wire) return;
  std::string key = name_lower(*wire);
  if (addresses.empty()) {
    locals_.erase(key);
    return;
  }
  auto& recs = locals_[key];
  recs.clear();
  for (const auto& a : addresses)
    if (auto r = address_rdata(a)) recs.push_back(std::move(*r));
}

std::optional<std::vector<std::byte>> Proxy::answer_static(const Query& q) {
  if ((statics_.empty() && locals_.empty()) || (q.question.qclass != kClassIn && q.question.qclass != rrtype::kAny))
    return std::nullopt;
  std::string key = name_lower(q.question.name);
  const std::vector<AddressRdata>* records = nullptr;
  if (auto st = statics_.find(key); st != statics_.end()) {
    records = &st->second;
  } else if (auto lo = locals_.find(key); lo != locals_.end()) {
    records = &lo->second;
  } else {
    return std::nullopt;
  }
  std::vector<Record> answers;
  for (const auto& r : *records)
    if (q.question.qtype == r.type || q.question.qtype == rrtype::kAny)
      answers.push_back(Record{r.type, config_.static_ttl, r.rdata});
  ++stats_.static_answers;
  return build_answer(q, Rcode::kNoError, true, answers);
}

bool Proxy::resolve(std::span<const std::byte> query, Transport transport, Respond respond,
                    size_t max_udp_size) {
  ++stats_.queries;
  uint64_t now = clock_->now_ms();
  maybe_refresh(now);
  auto parsed = parse_query(query);
  if (!parsed.query) {
    QueryError err = *parsed.error;
    if (err == QueryError::kShort || err == QueryError::kResponse) {
      ++stats_.dropped;
      spdlog::debug("dns-proxy: dropped a query: {}", to_string(err));
      return false;
    }
    Rcode rc = err == QueryError::kNotImpl ? Rcode::kNotImp : Rcode::kFormErr;
    if (rc == Rcode::kFormErr) ++stats_.formerr;
    spdlog::debug("dns-proxy: {} for a query: {}", rc == Rcode::kFormErr ? "FORMERR" : "NOTIMP", to_string(err));
    respond(build_error(*parsed.header, parsed.question ? &*parsed.question : nullptr, rc));
    return true;
  }
  Query& q = *parsed.query;
  size_t udp_limit = q.max_udp_size();
  if (max_udp_size != 0) udp_limit = std::min(udp_limit, std::max(max_udp_size, kClassicUdpSize));
  if (transport == Transport::kTcp) udp_limit = SIZE_MAX;
  spdlog::trace("dns-proxy: query {} type {} over {}", name_to_text(q.question.name), q.question.qtype,
                transport == Transport::kUdp ? "udp" : "tcp");

  if (auto answer = answer_static(q)) {
    send(respond, std::move(*answer), transport, udp_limit);
    return true;
  }

  std::string key = Cache::key_of(q);
  if (config_.cache) {
    if (auto hit = cache_.lookup(key, q, now)) {
      ++stats_.cache_hits;
      send(respond, std::move(*hit), transport, udp_limit);
      return true;
    }
  }

  const auto& servers = upstreams_.select(q.question.name);
  if (servers.empty() || pending_.size() >= config_.max_pending) {
    ++stats_.servfail;
    spdlog::debug("dns-proxy: SERVFAIL for {}: {}", name_to_text(q.question.name),
                  servers.empty() ? "no upstream server" : "too many pending queries");
    send(respond, build_answer(q, Rcode::kServFail, false), transport, udp_limit);
    return true;
  }

  auto p = std::make_unique<Pending>();
  p->id = next_id_++;
  p->cache_key = std::move(key);
  p->upstream_query.assign(query.begin(), query.end());
  wire::store16(p->upstream_query, 0, random_id());
  p->transport = transport;
  p->udp_limit = udp_limit;
  p->respond = std::move(respond);
  p->servers = servers;
  p->max_attempts = std::max(kMinAttempts, servers.size());
  p->deadline_ms = now + config_.total_timeout_ms;
  p->query = std::move(q);
  uint64_t id = p->id;
  p->timer = std::make_unique<Timer>(loop_, [this, id] { on_timer(id); });
  Pending& ref = *p;
  pending_.emplace(id, std::move(p));
  start_attempt(ref, now);
  return true;
}

void Proxy::start_attempt(Pending& p, uint64_t now) {
  uint64_t id = p.id;
  while (p.attempts < p.max_attempts) {
    const ResolvedUpstream server = p.servers[p.attempts % p.servers.size()];
    ++p.attempts;
    ++stats_.upstream_queries;
    Exchange* e = Exchange::start(
        loop_, server, Transport::kUdp, p.upstream_query, p.query.question,
        [this, id, server](Exchange::Outcome o, std::vector<std::byte> reply) {
          on_reply(id, server, Transport::kUdp, o, std::move(reply));
        });
    if (e != nullptr) {
      p.exchanges.emplace_back(e);
      ++p.active;
      p.attempt_deadline_ms = std::min(now + config_.upstream_timeout_ms, p.deadline_ms);
      arm_timer(p, now);
      return;
    }
    spdlog::debug("dns-proxy: cannot open a socket to {}", server.to_string());
  }
  // No attempt left: wait for those still running, or give up now.
  if (p.active == 0) {
    fail(id);
    return;
  }
  p.attempt_deadline_ms = p.deadline_ms;
  arm_timer(p, now);
}

void Proxy::arm_timer(Pending& p, uint64_t now) {
  uint64_t at = std::min(p.attempt_deadline_ms, p.deadline_ms);
  p.timer->start(at > now ? at - now : 0);
}

void Proxy::on_timer(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  uint64_t now = clock_->now_ms();
  if (now >= p.deadline_ms) {
    ++stats_.upstream_timeouts;
    if (!p.truncated_reply.empty()) {
      finish(id, std::move(p.truncated_reply), false);
      return;
    }
    fail(id);
    return;
  }
  if (now >= p.attempt_deadline_ms) {
    ++stats_.upstream_timeouts;
    start_attempt(p, now);  // may finish the query
    return;
  }
  arm_timer(p, now);
}

void Proxy::on_reply(uint64_t id, const ResolvedUpstream& server, Transport transport,
                     Exchange::Outcome outcome, std::vector<std::byte> reply) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  if (p.active > 0) --p.active;
  uint64_t now = clock_->now_ms();
  switch (outcome) {
    case Exchange::Outcome::kAnswer:
      finish(id, std::move(reply), true);
      return;
    case Exchange::Outcome::kTruncated: {
      if (transport == Transport::kUdp && p.truncated_reply.empty()) {
        ++stats_.tcp_fallbacks;
        p.truncated_reply = std::move(reply);
        ++stats_.upstream_queries;
        Exchange* e = Exchange::start(
            loop_, server, Transport::kTcp, p.upstream_query, p.query.question,
            [this, id, server](Exchange::Outcome o, std::vector<std::byte> r) {
              on_reply(id, server, Transport::kTcp, o, std::move(r));
            });
        if (e != nullptr) {
          p.exchanges.emplace_back(e);
          ++p.active;
          // The TCP exchange may use all the time left.
          p.attempt_deadline_ms = p.deadline_ms;
          arm_timer(p, now);
          return;
        }
        finish(id, std::move(p.truncated_reply), false);
        return;
      }
      // A second TC=1 reply (from another UDP attempt) adds nothing.
      if (p.active == 0) finish(id, std::move(p.truncated_reply), false);
      return;
    }
    case Exchange::Outcome::kError:
      spdlog::debug("dns-proxy: upstream {} failed over {}", server.to_string(),
                    transport == Transport::kUdp ? "udp" : "tcp");
      if (!p.truncated_reply.empty()) {
        // TCP failed: hand the client the TC=1 reply, it retries over TCP.
        if (p.active == 0) finish(id, std::move(p.truncated_reply), false);
        return;
      }
      start_attempt(p, now);  // may finish the query
      return;
  }
}

void Proxy::finish(uint64_t id, std::vector<std::byte> reply, bool from_upstream) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> p = std::move(it->second);
  pending_.erase(it);
  if (from_upstream && config_.cache) cache_.insert(p->cache_key, reply, clock_->now_ms());
  wire::store16(reply, 0, p->query.header.id);
  Respond respond = std::move(p->respond);
  Transport transport = p->transport;
  size_t limit = p->udp_limit;
  p.reset();  // aborts the other exchanges and closes the timer
  send(respond, std::move(reply), transport, limit);
}

void Proxy::fail(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  ++stats_.servfail;
  spdlog::debug("dns-proxy: SERVFAIL for {}: no upstream answered",
                name_to_text(it->second->query.question.name));
  std::vector<std::byte> reply = build_answer(it->second->query, Rcode::kServFail, false);
  finish(id, std::move(reply), false);
}

}  // namespace slipway::dns
