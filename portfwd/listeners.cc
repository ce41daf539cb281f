// Listener discovery through NETLINK_SOCK_DIAG: theory of operation.
//
// Opening (open_sock_diag_in_netns)
//
//   The parent opens the namespace file and, when it is not root, the
//   namespace's owning user namespace (NS_GET_USERNS), skipped when that is
//   our own (setns() into it would fail), as netstack/ns/namespace.cc does
//   for `slipway attach`. A forked child setns()es into them, creates the
//   netlink socket and sends one Report plus the fd over a SOCK_SEQPACKET
//   socketpair (SCM_RIGHTS), then exits; the parent reaps it. The child runs
//   only system calls (the caller may be multithreaded). The parent waits at
//   most kHandshakeTimeoutSeconds.
//
// Dumping (list_listeners)
//
//   Four requests, one after the other: {TCP, UDP} x {AF_INET, AF_INET6}.
//   TCP asks for state LISTEN; UDP for state CLOSE (unconnected; connected
//   UDP sockets are ESTABLISHED) and keeps only those with a local port and
//   no peer port. Each reply is read with recv() into a 64 KiB buffer until
//   NLMSG_DONE, at most kMaxReceivesPerDump times and with a 2 s receive
//   timeout, so a confused kernel or a huge table cannot hold us forever.
//   Messages from another sequence number (the tail of a dump we gave up on)
//   are skipped. Every header and payload is bounds-checked and copied out
//   with memcpy (no struct overlay on the buffer, no alignment assumptions).
#include "portfwd/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace slipway::portfwd {
namespace {

constexpr int kHandshakeTimeoutSeconds = 10;
constexpr int kDumpTimeoutSeconds = 2;
constexpr int kMaxReceivesPerDump = 4096;  // x 64 KiB: far beyond any real table
constexpr size_t kReceiveBuffer = 64 * 1024;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// What the child was doing when it failed.
enum class Step : uint32_t { kNone = 0, kSetnsUser, kSetnsNet, kSocket };

// One message from the child (our own IPC between two copies of this
// program, so a plain struct is fine).
struct Report {
  Step step = Step::kNone;
  int32_t error = 0;
};

[[noreturn]] void child_main(int sock, int user_fd, int net_fd) {
  Report report;
  int diag = -1;
  if (user_fd >= 0 && setns(user_fd, CLONE_NEWUSER) < 0) {
    report = {Step::kSetnsUser, errno};
  } else if (setns(net_fd, CLONE_NEWNET) < 0) {
    report = {Step::kSetnsNet, errno};
  } else {
    diag = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag < 0) report = {Step::kSocket, errno};
  }
  iovec iov{&report, sizeof report};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (diag >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &diag, sizeof(int));
  }
  _exit(sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof report) ? 0 : 1);
}

std::string describe(Step step, int error, const std::string& path) {
  const std::string why = std::strerror(error);
  switch (step) {
    case Step::kSetnsUser:
      return "cannot enter the user namespace that owns " + path + ": " + why;
    case Step::kSetnsNet:
      return "cannot enter network namespace " + path + ": " + why;
    case Step::kSocket:
      return "cannot open a NETLINK_SOCK_DIAG socket in " + path + ": " + why;
    case Step::kNone:
      break;
  }
  return "sock_diag helper failed";
}

void reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

std::string address_text(int family, const void* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, text, sizeof text) == nullptr) return "?";
  return text;
}

bool set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

// Sends one dump request for (family, protocol, states).
void send_request(int fd, uint32_t seq, uint8_t family, uint8_t protocol, uint32_t states) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = seq;
  message.request.sdiag_family = family;
  message.request.sdiag_protocol = protocol;
  message.request.idiag_states = states;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, &message, sizeof message, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof message)) throw system_error("cannot send a sock_diag request");
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
  if (netns.empty()) throw std::runtime_error("no network namespace given");
  const bool is_pid = netns.find_first_not_of("0123456789") == std::string::npos;
  const std::string path = is_pid ? "/proc/" + netns + "/ns/net" : netns;

  Fd net(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (net.get() < 0) throw system_error("cannot open network namespace " + path);
  const int type = ioctl(net.get(), NS_GET_NSTYPE);
  if (type < 0 && errno == ENOTTY) throw std::runtime_error(path + " is not a namespace");
  if (type >= 0 && type != CLONE_NEWNET) throw std::runtime_error(path + " is not a network namespace");

  // As root we may enter any network namespace from where we are; otherwise
  // we need the capabilities its owning user namespace grants.
  Fd user;
  if (geteuid() != 0) {
    user.reset(ioctl(net.get(), NS_GET_USERNS));
    if (user.get() < 0) throw system_error("cannot find the user namespace that owns " + path);
    struct stat theirs {}, ours {};
    if (fstat(user.get(), &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
        theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
      user.reset();
    }
  }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw system_error("cannot create a socketpair");
  Fd parent_sock(sv[0]), child_sock(sv[1]);
  timeval timeout{kHandshakeTimeoutSeconds, 0};
  setsockopt(parent_sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

  const pid_t pid = fork();
  if (pid < 0) throw system_error("cannot fork");
  if (pid == 0) child_main(child_sock.get(), user.get(), net.get());
  child_sock.reset();

  Report report;
  iovec iov{&report, sizeof report};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(parent_sock.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  const int saved_errno = errno;
  Fd diag;
  if (n > 0) {
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
        int received = -1;
        std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
        diag.reset(received);
      }
    }
  }
  if (n < 0) kill(pid, SIGKILL);
  reap(pid);
  if (n < 0) {
    errno = saved_errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      throw std::runtime_error("the sock_diag helper did not answer within " + std::to_string(kHandshakeTimeoutSeconds) + " s");
    }
    throw system_error("cannot talk to the sock_diag helper");
  }
  if (n != static_cast<ssize_t>(sizeof report)) throw std::runtime_error("the sock_diag helper exited unexpectedly");
  if (report.step != Step::kNone) throw std::runtime_error(describe(report.step, report.error, path));
  if (diag.get() < 0) throw std::runtime_error("the sock_diag helper sent no socket");
  return diag.release();
}

DumpStatus parse_sock_diag_dump(std::span<const std::byte> buffer, uint32_t seq, Protocol proto,
                                std::vector<Listener>& out, std::string* error) {
  size_t offset = 0;
  while (buffer.size() - offset >= sizeof(nlmsghdr)) {
    nlmsghdr header;
    std::memcpy(&header, buffer.data() + offset, sizeof header);
    const size_t remaining = buffer.size() - offset;
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > remaining) {
      set_error(error, "malformed sock_diag reply: message length " + std::to_string(header.nlmsg_len) +
                           " with " + std::to_string(remaining) + " bytes left");
      return DumpStatus::kError;
    }
    const std::span<const std::byte> payload = buffer.subspan(offset + sizeof(nlmsghdr), header.nlmsg_len - sizeof(nlmsghdr));
    offset += std::min<size_t>(NLMSG_ALIGN(header.nlmsg_len), remaining);
    if (header.nlmsg_seq != seq) continue;  // the tail of an earlier, abandoned dump

    if (header.nlmsg_type == NLMSG_DONE) return DumpStatus::kDone;
    if (header.nlmsg_type == NLMSG_ERROR) {
      int32_t code = 0;
      if (payload.size() >= sizeof code) std::memcpy(&code, payload.data(), sizeof code);
      set_error(error, code < 0 ? std::string("sock_diag request failed: ") + std::strerror(-code)
                                : std::string("sock_diag request failed"));
      return DumpStatus::kError;
    }
    if (header.nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    if (payload.size() < sizeof(inet_diag_msg)) {
      set_error(error, "malformed sock_diag reply: payload of " + std::to_string(payload.size()) + " bytes");
      return DumpStatus::kError;
    }
    inet_diag_msg diag;
    std::memcpy(&diag, payload.data(), sizeof diag);
    if (diag.idiag_family != AF_INET && diag.idiag_family != AF_INET6) continue;
    if (proto == Protocol::kUdp && diag.id.idiag_dport != 0) continue;  // connected
    const uint16_t port = ntohs(diag.id.idiag_sport);
    if (port == 0) continue;
    Listener listener;
    listener.proto = proto;
    listener.family = diag.idiag_family;
    listener.address = address_text(diag.idiag_family, diag.id.idiag_src);
    listener.port = port;
    out.push_back(std::move(listener));
  }
  return DumpStatus::kMore;
}

std::vector<Listener> list_listeners(int sock_diag_fd) {
  timeval timeout{kDumpTimeoutSeconds, 0};
  if (setsockopt(sock_diag_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) {
    throw system_error("cannot use the sock_diag socket");
  }
  // Each dump gets its own sequence number, unique across calls, so that a
  // reply left over from an abandoned dump is recognised and skipped.
  static uint32_t next_seq = 1;
  std::vector<std::byte> buffer(kReceiveBuffer);
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
    const uint32_t seq = next_seq++;
    send_request(sock_diag_fd, seq, query.family, query.protocol, query.states);
    DumpStatus status = DumpStatus::kMore;
    for (int i = 0; i < kMaxReceivesPerDump && status == DumpStatus::kMore; ++i) {
      ssize_t n;
      do {
        n = recv(sock_diag_fd, buffer.data(), buffer.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        throw std::runtime_error("sock_diag dump timed out after " + std::to_string(kDumpTimeoutSeconds) + " s");
      }
      if (n < 0) throw system_error("cannot read the sock_diag reply");
      if (n == 0) throw std::runtime_error("sock_diag socket closed");
      std::string error;
      status = parse_sock_diag_dump(std::span(buffer).first(static_cast<size_t>(n)), seq, query.proto, listeners, &error);
      if (status == DumpStatus::kError) throw std::runtime_error(error);
    }
    if (status != DumpStatus::kDone) throw std::runtime_error("sock_diag dump did not end");
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
