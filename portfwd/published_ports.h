// PublishedPorts: guest ports published on host addresses (static, API and
// automatic forwards), as host listeners that feed the engine.
//
// Host side: IPv4 and IPv6 literal addresses ("127.0.0.1", "0.0.0.0", "::1",
// "::", any other). IPv6 listeners are bound IPV6_V6ONLY, so that "::" and
// "0.0.0.0" on the same port are two listeners that coexist (as docker and
// WSL2 publish them) and an IPv6 listener never sees IPv4-mapped clients.
// Guest side: every published connection goes to an IPv4 address of the
// guest, whatever the family of the host listener or client: the rule's
// guest (a name or address, see rule.h) as the resolver says at the moment
// the connection arrives (a lease may move), else the default guest. A
// connection for a guest that cannot be resolved is accepted and closed at
// once (counted: unresolved). That reaches
// guest sockets bound to 0.0.0.0 and dual-stack [::] sockets alike; a guest
// socket bound to [::] with IPV6_V6ONLY, or to a loopback address, is not
// reached.
//
// TCP: one listening socket per host port; each accepted connection becomes
// a guest connection (Engine::accept_inbound_tcp) whose source the guest
// sees as the client's address (loopback clients appear as the gateway; an
// IPv6 client, which the IPv4 guest cannot be shown, as the gateway too), or
// as the gateway address with source_gateway (slirp's behaviour).
// UDP: one socket per host port; each client (address, port) gets a session
// in the engine, so the guest's replies to the client's mapped address go
// back out of this socket to that client (IPv6 clients included). Sessions
// expire when idle.
//
// An engine that listens on host ports itself (Engine::owns_host_listeners,
// libslirp's host forwards) gets each host port through add_host_forward()
// instead, with the rule's guest resolved then; a named guest without a
// lease yet gets its ports when it gets one, and a guest whose lease moves
// takes its ports along (guests_changed()).
//
// Limits: a host port that cannot be bound (already taken) is reported as an
// error for that rule, which is then not added (all or nothing per rule).
// Accepts per wake-up are bounded by libuv. Handles are heap blocks freed in
// their close callbacks.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netstack/engine/engine.h"
#include "netstack/wire/bytes.h"
#include "portfwd/rule.h"

namespace slipway::portfwd {

class PublishedPorts {
 public:
  // Where a forward came from: the command line or config, the control API,
  // or automatic discovery of the guest's listening sockets.
  enum class Origin { kStatic, kApi, kAuto };
  struct Forward {
    Rule rule;
    Origin origin;
    std::string error;  // why it is not listening (automatic forwards only)
  };

  // The IPv4 address of a guest named in a rule (a lease name or an address
  // literal), if there is one now.
  using GuestResolver = std::function<std::optional<wire::Ipv4Addr>(const std::string& guest)>;

  PublishedPorts(uv_loop_t* loop, engine::Engine& engine, wire::Ipv4Addr guest, bool source_gateway,
                 GuestResolver resolver = {});
  ~PublishedPorts();
  PublishedPorts(const PublishedPorts&) = delete;
  PublishedPorts& operator=(const PublishedPorts&) = delete;

  // Opens every port of the rule; returns "" on success, else why not (and
  // nothing of the rule stays open). An automatic forward that fails is still
  // recorded, with its error, so that list() reports it.
  std::string add(const Rule& rule, Origin origin = Origin::kStatic);
  // Closes the rule's listeners; false if no such rule.
  bool remove(const Rule& rule);
  std::vector<Forward> list() const;
  // Leases changed: an engine's own host forwards follow their guests.
  void guests_changed();
  uint64_t unresolved() const { return unresolved_; }

 private:
  struct Listener;
  struct Entry {
    Forward forward;
    std::vector<Listener*> listeners;
  };
  std::string open_port(const Rule& rule, uint16_t host_port, uint16_t guest_port, Entry& entry);
  void close_entry(Entry& entry);

  uv_loop_t* loop_;
  engine::Engine& engine_;
  // The guest a rule's connections go to now.
  std::optional<wire::Ipv4Addr> target(const std::string& guest) const;

  wire::Ipv4Addr guest_;
  bool source_gateway_;
  GuestResolver resolver_;
  uint64_t unresolved_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace slipway::portfwd
