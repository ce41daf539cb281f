#include "portfwd/published_ports.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>


namespace slipway::portfwd {

struct PublishedPorts::Listener {
  union {
    uv_handle_t handle;
    uv_tcp_t tcp;
    uv_udp_t udp;
  };
  Protocol proto;
  uint16_t guest_port;
  std::string guest;  // the rule's
  PublishedPorts* owner;  // null once the owner is gone
  // The engine listens itself (Engine::owns_host_listeners): no handle.
  // It forwards to one guest address, fixed when the port is added: none
  // while the rule's guest has no lease (guests_changed() adds it then).
  bool in_engine = false;
  std::optional<wire::Ipv4Addr> engine_target;
  sockaddr_storage host{};

  static void on_close(uv_handle_t* h) { delete static_cast<Listener*>(h->data); }
};

PublishedPorts::PublishedPorts(uv_loop_t* loop, engine::Engine& engine, wire::Ipv4Addr guest, bool source_gateway,
                               GuestResolver resolver)
    : loop_(loop), engine_(engine), guest_(guest), source_gateway_(source_gateway), resolver_(std::move(resolver)) {}

std::optional<wire::Ipv4Addr> PublishedPorts::target(const std::string& guest) const {
  if (guest.empty()) return guest_;
  if (auto literal = wire::Ipv4Addr::parse(guest)) return literal;
  if (resolver_) return resolver_(guest);
  return std::nullopt;
}

PublishedPorts::~PublishedPorts() {
  for (auto& e : entries_) close_entry(e);
}

std::string PublishedPorts::add(const Rule& rule, Origin origin) {
  for (const auto& e : entries_) {
    const auto& r = e.forward.rule;
    if (r.proto != rule.proto || r.host_addr != rule.host_addr) continue;
    if (rule.host_port_first <= r.host_port_last && r.host_port_first <= rule.host_port_last)
      return "host ports of " + rule.to_string() + " overlap " + r.to_string();
  }
  Entry entry{Forward{rule, origin, ""}, {}};
  for (unsigned i = 0; i < rule.count(); ++i) {
    auto err = open_port(rule, static_cast<uint16_t>(rule.host_port_first + i),
                         static_cast<uint16_t>(rule.guest_port_first + i), entry);
    if (!err.empty()) {
      close_entry(entry);
      if (origin == Origin::kAuto) {
        spdlog::warn("automatic forward {}: {}", rule.to_string(), err);
        entry.forward.error = err;
        entries_.push_back(std::move(entry));
      }
      return err;
    }
  }
  spdlog::info("publishing {}", rule.to_string());
  entries_.push_back(std::move(entry));
  return "";
}

std::string PublishedPorts::open_port(const Rule& rule, uint16_t host_port, uint16_t guest_port,
                                      Entry& entry) {
  // The host address is a literal of either family; IPv6 listeners take
  // only IPv6 clients (V6ONLY), so that "::" and "0.0.0.0" can share a port.
  sockaddr_storage sa{};
  bool v6 = false;
  if (uv_ip4_addr(rule.host_addr.c_str(), host_port, reinterpret_cast<sockaddr_in*>(&sa)) != 0) {
    if (uv_ip6_addr(rule.host_addr.c_str(), host_port, reinterpret_cast<sockaddr_in6*>(&sa)) != 0)
      return "host address " + rule.host_addr + " is not an IPv4 or IPv6 address";
    v6 = true;
  }
  const std::string host = v6 ? "[" + rule.host_addr + "]" : rule.host_addr;
  std::string where = host + ":" + std::to_string(host_port) + "/" + std::string(to_string(rule.proto));
  if (engine_.owns_host_listeners()) {
    // The engine binds the port itself, for the guest of now; a named
    // guest without a lease yet gets its port when the lease comes.
    auto to = target(rule.guest);
    if (to) {
      auto err = engine_.add_host_forward(rule.proto == Protocol::kUdp, reinterpret_cast<const sockaddr*>(&sa), *to,
                                          guest_port);
      if (!err.empty()) return "cannot listen on " + where + ": " + err;
    } else {
      spdlog::info("published port {}: waiting for guest '{}' to get a lease", where, rule.guest);
    }
    auto* l = new Listener;
    l->proto = rule.proto;
    l->guest_port = guest_port;
    l->guest = rule.guest;
    l->owner = this;
    l->in_engine = true;
    l->engine_target = to;
    l->host = sa;
    entry.listeners.push_back(l);
    return "";
  }
  auto* l = new Listener;
  l->proto = rule.proto;
  l->guest_port = guest_port;
  l->guest = rule.guest;
  l->owner = this;
  int rc = 0;
  if (rule.proto == Protocol::kTcp) {
    uv_tcp_init(loop_, &l->tcp);
    l->handle.data = l;
    rc = uv_tcp_bind(&l->tcp, reinterpret_cast<const sockaddr*>(&sa), v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 512, [](uv_stream_t* s, int status) {
        auto* self = static_cast<Listener*>(s->data);
        if (status != 0 || self->owner == nullptr) return;
        PublishedPorts* o = self->owner;
        auto to = o->target(self->guest);
        if (!to) {
          // Take the connection off the queue and close it: nobody to give it to.
          o->unresolved_++;
          auto* c = new uv_tcp_t;
          uv_tcp_init(s->loop, c);
          if (uv_accept(s, reinterpret_cast<uv_stream_t*>(c)) == 0)
            spdlog::debug("published port: no guest '{}' now, closing a connection", self->guest);
          uv_close(reinterpret_cast<uv_handle_t*>(c), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
          return;
        }
        o->engine_.accept_inbound_tcp(s, *to, self->guest_port, o->source_gateway_);
      });
  } else {
    uv_udp_init(loop_, &l->udp);
    l->handle.data = l;
    rc = uv_udp_bind(&l->udp, reinterpret_cast<const sockaddr*>(&sa), v6 ? UV_UDP_IPV6ONLY : 0);
    if (rc == 0)
      rc = uv_udp_recv_start(
          &l->udp,
          [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* self = static_cast<Listener*>(h->data);
            auto& rb = self->owner->engine_.read_buffer();
            *buf = uv_buf_init(reinterpret_cast<char*>(rb.data()), static_cast<unsigned>(rb.size()));
          },
          [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
            auto* self = static_cast<Listener*>(u->data);
            if (nread < 0 || from == nullptr || self->owner == nullptr || (flags & UV_UDP_PARTIAL)) return;
            PublishedPorts* o = self->owner;
            auto to = o->target(self->guest);
            if (!to) {
              o->unresolved_++;
              return;
            }
            o->engine_.inbound_udp(u, from, *to, self->guest_port, o->source_gateway_,
                                   wire::Bytes(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)));
          });
  }
  if (rc != 0) {
    l->owner = nullptr;
    uv_close(&l->handle, Listener::on_close);
    return "cannot listen on " + where + ": " + uv_strerror(rc);
  }
  entry.listeners.push_back(l);
  return "";
}

void PublishedPorts::close_entry(Entry& entry) {
  for (Listener* l : entry.listeners) {
    if (l->in_engine) {
      if (l->engine_target)
        engine_.remove_host_forward(l->proto == Protocol::kUdp, reinterpret_cast<const sockaddr*>(&l->host));
      delete l;
      continue;
    }
    l->owner = nullptr;
    if (l->proto == Protocol::kUdp) engine_.forget_inbound_udp(&l->udp);
    uv_close(&l->handle, Listener::on_close);
  }
  entry.listeners.clear();
}

bool PublishedPorts::remove(const Rule& rule) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.forward.rule == rule; });
  if (it == entries_.end()) return false;
  close_entry(*it);
  spdlog::info("unpublished {}", rule.to_string());
  entries_.erase(it);
  return true;
}

void PublishedPorts::guests_changed() {
  for (auto& e : entries_) {
    for (Listener* l : e.listeners) {
      if (!l->in_engine) continue;
      auto to = target(l->guest);
      if (to == l->engine_target) continue;
      const bool udp = l->proto == Protocol::kUdp;
      const auto* host = reinterpret_cast<const sockaddr*>(&l->host);
      if (l->engine_target) engine_.remove_host_forward(udp, host);
      l->engine_target.reset();
      if (!to) continue;
      auto err = engine_.add_host_forward(udp, host, *to, l->guest_port);
      if (!err.empty()) {
        spdlog::error("published port for guest '{}' ({}): {}", l->guest, e.forward.rule.to_string(), err);
        e.forward.error = err;
        continue;
      }
      e.forward.error.clear();
      l->engine_target = to;
      spdlog::info("published port {} now reaches guest '{}' at {}", e.forward.rule.to_string(), l->guest,
                   to->to_string());
    }
  }
}

std::vector<PublishedPorts::Forward> PublishedPorts::list() const {
  std::vector<Forward> r;
  for (const auto& e : entries_) r.push_back(e.forward);
  return r;
}

}  // namespace slipway::portfwd
