// Listener discovery through NETLINK_SOCK_DIAG: theory of operation.
//
// Opening (open_sock_diag_in_netns)
//
//   sys::open_netns() opens the namespace (and, when we are not root, its
//   owning user namespace); sys::run_in_netns() forks a child that enters
//   them, creates the NETLINK_SOCK_DIAG socket and hands it back over
//   SCM_RIGHTS, then exits; the parent reaps it. The child runs only system
//   calls (the caller may be multithreaded). The parent waits at most
//   sys::kHelperTimeout (10 s). See netstack/sys/netns.h.
//
// Dumping (list_listeners)
//
//   Four requests, one after the other: {TCP, UDP} x {AF_INET, AF_INET6}.
//   TCP asks for state LISTEN; UDP for state CLOSE (unconnected; connected
//   UDP sockets are ESTABLISHED) and keeps only those with a local port and
//   no peer port. Each dump goes through sys::netlink::Dumper (see
//   netstack/sys/netlink.h), bounded by kDumpLimits: a 64 KiB receive
//   buffer, at most kMaxReceivesPerDump (4096) datagrams, at most
//   kDumpTimeoutSeconds (2 s) of waiting for each and kDumpDeadlineSeconds
//   (10 s) for the whole dump, so a confused kernel or a huge table cannot
//   hold us forever. Messages from another dump (the tail of one we gave up
//   on) are skipped; until that tail has been read, the kernel refuses new
//   dumps on the socket ("sock_diag request failed: Device or resource
//   busy"), and the next calls read it as they go. Every header and payload
//   is bounds-checked and read with explicit loads (no struct overlay on the
//   buffer, no alignment assumptions).
#include "portfwd/listeners.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"
#include "netstack/sys/netlink.h"
#include "netstack/sys/netns.h"

namespace slipway::portfwd {
namespace {

namespace netlink = sys::netlink;

constexpr int kDumpTimeoutSeconds = 2;
constexpr int kDumpDeadlineSeconds = 10;
constexpr int kMaxReceivesPerDump = 4096;  // x 64 KiB: far beyond any real table
constexpr size_t kReceiveBuffer = 64 * 1024;

constexpr netlink::DumpLimits kDumpLimits{kReceiveBuffer, std::chrono::seconds(kDumpTimeoutSeconds),
                                          std::chrono::seconds(kDumpDeadlineSeconds), kMaxReceivesPerDump};

constexpr sys::HelperNames kHelper{"sock_diag helper", "socket"};

// What the child reports beyond entering the namespace (our own IPC between
// two copies of this program, so a plain struct is fine).
struct Report {
  int32_t socket_error = 0;  // socket() failed with this errno
};

std::string address_text(int family, const void* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, text, sizeof text) == nullptr) return "?";
  return text;
}

bool set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

// The words for a failed dump.
std::string describe(const netlink::DumpResult& result) {
  switch (result.error) {
    case netlink::DumpError::kNone:
      break;
    case netlink::DumpError::kSend:
      return "cannot send a sock_diag request: " + sys::errno_text(result.code);
    case netlink::DumpError::kReceive:
      return "cannot read the sock_diag reply: " + sys::errno_text(result.code);
    case netlink::DumpError::kClosed:
      return "sock_diag socket closed";
    case netlink::DumpError::kTimeout:
      return "sock_diag dump timed out after " + std::to_string(kDumpTimeoutSeconds) + " s";
    case netlink::DumpError::kDeadline:
      return "sock_diag dump did not end within " + std::to_string(kDumpDeadlineSeconds) + " s";
    case netlink::DumpError::kTooLong:
      return "sock_diag dump did not end";
    case netlink::DumpError::kTruncated:
      return "sock_diag reply did not fit in " + std::to_string(kReceiveBuffer) + " bytes";
    case netlink::DumpError::kMalformed:
      if (result.malformed.reason == netlink::ParseError::kShortPayload) {
        return "malformed sock_diag reply: payload of " + std::to_string(result.malformed.length) + " bytes";
      }
      return "malformed sock_diag reply: message length " + std::to_string(result.malformed.length) + " with " +
             std::to_string(result.malformed.left) + " bytes left";
    case netlink::DumpError::kKernel:
      return "sock_diag request failed: " + sys::errno_text(result.code);
  }
  return "sock_diag request failed";
}

// Appends the listener in one SOCK_DIAG_BY_FAMILY message (other types are
// skipped); refuses a payload too short for inet_diag_msg.
netlink::ParseError take_listener(const netlink::Message& m, Protocol proto, std::vector<Listener>& out) {
  if (m.type != SOCK_DIAG_BY_FAMILY) return netlink::ParseError::kNone;
  const auto diag = netlink::parse_inet_diag_msg(m.payload);
  if (!diag) return netlink::ParseError::kShortPayload;
  if (diag->family != AF_INET && diag->family != AF_INET6) return netlink::ParseError::kNone;
  if (proto == Protocol::kUdp && diag->destination_port != 0) return netlink::ParseError::kNone;  // connected
  if (diag->source_port == 0) return netlink::ParseError::kNone;
  Listener listener;
  listener.proto = proto;
  listener.family = diag->family;
  listener.address = address_text(diag->family, diag->source.data());
  listener.port = diag->source_port;
  out.push_back(std::move(listener));
  return netlink::ParseError::kNone;
}

// What a guest bind means for forwarding. IPv4-mapped IPv6 binds
// (::ffff:a.b.c.d) take IPv4 clients only, so they count as IPv4.
enum class Bind { kOther, kAny4, kLoopback4, kAny6, kLoopback6 };

Bind classify(const Listener& listener) {
  if (listener.family == AF_INET) {
    in_addr a{};
    if (inet_pton(AF_INET, listener.address.c_str(), &a) != 1) return Bind::kOther;
    const uint32_t host = ntohl(a.s_addr);
    if (host == 0) return Bind::kAny4;
    return (host >> 24) == 127 ? Bind::kLoopback4 : Bind::kOther;
  }
  in6_addr a{};
  if (inet_pton(AF_INET6, listener.address.c_str(), &a) != 1) return Bind::kOther;
  if (IN6_IS_ADDR_UNSPECIFIED(&a)) return Bind::kAny6;
  if (IN6_IS_ADDR_LOOPBACK(&a)) return Bind::kLoopback6;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    if ((a.s6_addr[12] | a.s6_addr[13] | a.s6_addr[14] | a.s6_addr[15]) == 0) return Bind::kAny4;
    if (a.s6_addr[12] == 127) return Bind::kLoopback4;
  }
  return Bind::kOther;
}

// The host addresses a bind is published on (see the table in the header).
std::vector<const char*> host_addresses_for(Bind bind, HostAddresses hosts) {
  const bool all = hosts == HostAddresses::kAll;
  switch (bind) {
    case Bind::kAny4:
      return {all ? "0.0.0.0" : "127.0.0.1"};
    case Bind::kLoopback4:
      return {"127.0.0.1"};
    case Bind::kAny6:
      return all ? std::vector<const char*>{"0.0.0.0", "::"} : std::vector<const char*>{"127.0.0.1", "::1"};
    case Bind::kLoopback6:
      return {"::1"};
    case Bind::kOther:
      break;
  }
  return {};
}

}  // namespace

std::string to_string(const Listener& listener) {
  const std::string addr = listener.family == AF_INET6 ? "[" + listener.address + "]" : listener.address;
  return std::string(to_string(listener.proto)) + " " + addr + ":" + std::to_string(listener.port);
}

int open_sock_diag_in_netns(const std::string& netns) {
  const sys::Netns ns = sys::open_netns(netns);
  auto handoff = sys::run_in_netns<Report>(ns, kHelper, [](Report& report) {
    const int diag = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag < 0) report.socket_error = errno;
    return diag;
  });
  if (handoff.report.socket_error != 0) {
    throw sys::SystemError("cannot open a NETLINK_SOCK_DIAG socket in " + ns.path, handoff.report.socket_error);
  }
  sys::require_fd(kHelper, handoff.fd);
  return handoff.fd.release();
}

DumpStatus parse_sock_diag_dump(std::span<const std::byte> buffer, uint32_t seq, Protocol proto,
                                std::vector<Listener>& out, std::string* error) {
  netlink::DumpResult result;
  const auto step = netlink::read_dump_datagram(
      buffer, seq, 0, [&](const netlink::Message& m) { return take_listener(m, proto, out); }, result);
  switch (step) {
    case netlink::DumpStep::kDone:
      return DumpStatus::kDone;
    case netlink::DumpStep::kMore:
      return DumpStatus::kMore;
    case netlink::DumpStep::kFailed:
      break;
  }
  set_error(error, describe(result));
  return DumpStatus::kError;
}

std::vector<Listener> list_listeners(int sock_diag_fd) {
  netlink::Dumper dumper(sock_diag_fd, kDumpLimits);
  std::vector<Listener> listeners;

  struct Query {
    Protocol proto;
    uint8_t family;
    uint8_t protocol;
    uint32_t states;
  };
  const std::array<Query, 4> queries{{
      {Protocol::kTcp, AF_INET, IPPROTO_TCP, 1u << TCP_LISTEN},
      {Protocol::kTcp, AF_INET6, IPPROTO_TCP, 1u << TCP_LISTEN},
      {Protocol::kUdp, AF_INET, IPPROTO_UDP, 1u << TCP_CLOSE},
      {Protocol::kUdp, AF_INET6, IPPROTO_UDP, 1u << TCP_CLOSE},
  }};
  for (const Query& query : queries) {
    netlink::Request request(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP);
    netlink::InetDiagReqV2 diag_request;
    diag_request.family = query.family;
    diag_request.protocol = query.protocol;
    diag_request.states = query.states;
    netlink::emit(request, diag_request);
    const auto result = dumper.dump(
        request, [&](const netlink::Message& m) { return take_listener(m, query.proto, listeners); });
    if (!result.ok()) throw std::runtime_error(describe(result));
  }
  std::sort(listeners.begin(), listeners.end());
  listeners.erase(std::unique(listeners.begin(), listeners.end()), listeners.end());
  return listeners;
}

std::vector<Rule> forwards_for_listeners(const std::vector<Listener>& listeners, std::span<const uint16_t> excluded,
                                         HostAddresses hosts) {
  std::vector<Rule> rules;
  for (const Listener& listener : listeners) {
    if (std::find(excluded.begin(), excluded.end(), listener.port) != excluded.end()) continue;
    for (const char* host : host_addresses_for(classify(listener), hosts)) {
      Rule rule;
      rule.proto = listener.proto;
      rule.host_port_first = rule.host_port_last = listener.port;
      rule.guest_port_first = rule.guest_port_last = listener.port;
      rule.host_addr = host;
      rules.push_back(rule);
    }
  }
  const auto key = [](const Rule& r) { return std::tuple(r.proto, r.host_port_first, r.host_addr); };
  std::sort(rules.begin(), rules.end(), [&](const Rule& a, const Rule& b) { return key(a) < key(b); });
  rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
  if (hosts == HostAddresses::kAll) {
    // 0.0.0.0 covers 127.0.0.1 and "::" covers "::1" on the same port.
    const auto covered = [&](const Rule& r) {
      const char* wildcard = r.host_addr == "127.0.0.1" ? "0.0.0.0" : r.host_addr == "::1" ? "::" : nullptr;
      if (wildcard == nullptr) return false;
      return std::any_of(rules.begin(), rules.end(), [&](const Rule& w) {
        return w.proto == r.proto && w.host_port_first == r.host_port_first && w.host_addr == wildcard;
      });
    };
    std::vector<Rule> kept;
    for (const Rule& r : rules)
      if (!covered(r)) kept.push_back(r);
    return kept;
  }
  return rules;
}

}  // namespace slipway::portfwd
