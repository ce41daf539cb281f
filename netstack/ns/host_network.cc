// Reading the host's primary interface over rtnetlink: theory of operation.
//
// One NETLINK_ROUTE socket (bound, so the kernel assigns our port id) serves
// three dumps, one after another:
//
//   1. RTM_GETROUTE, all families: the default routes of the main table,
//      from which the primary interface and its gateways are chosen (rules in
//      host_network.h).
//   2. RTM_GETLINK: the name and MTU of that interface.
//   3. RTM_GETADDR, all families: its addresses.
//
// Each request carries a fresh sequence number. Replies are read into one
// 32 KiB buffer (the kernel fills a dump datagram up to the size of the
// reader's buffer but never beyond 32 KiB, so every datagram fits; one that
// did not would be reported as MSG_TRUNC and is an error). A datagram not sent by the kernel (sender port id 0) is
// ignored, and so is a message whose sequence number or port id is not that
// of the current request (a late reply to an earlier one). A dump ends at
// NLMSG_DONE; an NLMSG_ERROR with a non-zero code, or a DONE that carries a
// negative code, aborts it with strerror. Control messages (types below
// NLMSG_MIN_TYPE) and message types we did not ask for are skipped.
//
// Bounds
//
//   The kernel is trusted to be the kernel, but every read is still checked
//   against the received length, in the manner of NLMSG_OK / RTA_OK: a
//   message header whose length is shorter than the header or longer than
//   what is left of the datagram is an error ("malformed reply"); an
//   attribute walk stops at the first attribute that does not fit; a fixed
//   header (rtmsg, ifinfomsg, ifaddrmsg) shorter than its struct makes the
//   message skipped; an attribute of the wrong size for its type is ignored.
//   Structs are copied out of the buffer with memcpy, never overlaid, so
//   alignment does not matter. The netlink macros themselves are not used:
//   they are C casts, and the walkers below are the same rules spelled out.
//
// Time
//
//   recvmsg() waits at most kReceiveTimeout (SO_RCVTIMEO) for each datagram;
//   a silent kernel is an error, not a hang. EINTR is retried. A dump whose
//   messages carry NLM_F_DUMP_INTR (the table changed while it was being
//   read) is repeated, at most kDumpAttempts times in all.
//
// The socket is closed by its destructor on every path, exceptions included.
#include "netstack/ns/host_network.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <span>
#include <sstream>
#include <stdexcept>

namespace slipway::ns {
namespace {

using wire::Bytes;
using wire::Ipv4Addr;
using wire::Ipv6Addr;

constexpr size_t kBufferSize = 32 * 1024;
constexpr int kReceiveTimeoutSeconds = 5;
constexpr int kDumpAttempts = 4;

std::string errno_text(int error) { return std::strerror(error); }

// ---- Checked walkers over netlink bytes. ------------------------------------

// NLMSG_ALIGN, RTA_ALIGN and RTNH_ALIGN are all this.
constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }

static_assert(sizeof(nlmsghdr) == align4(sizeof(nlmsghdr)), "NLMSG_HDRLEN is sizeof(nlmsghdr)");
static_assert(sizeof(rtattr) == 4 && sizeof(rtnexthop) == 8, "attribute and next-hop headers");

// Copies a T from the start of `b`; the caller has checked b.size().
template <class T>
T copy_struct(Bytes b) {
  T value;
  std::memcpy(&value, b.data(), sizeof value);
  return value;
}

// The attributes that follow a fixed header of `fixed_len` bytes.
Bytes after_fixed(Bytes payload, size_t fixed_len) {
  return payload.subspan(std::min(align4(fixed_len), payload.size()));
}

struct Message {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t seq = 0;
  uint32_t port = 0;
  Bytes payload;  // after the header, up to nlmsg_len
};

// The messages of one datagram (NLMSG_OK / NLMSG_NEXT). Fewer bytes than a
// header at the end are ignored as padding; a header that lies about its
// length stops the walk and sets malformed().
class MessageWalker {
 public:
  explicit MessageWalker(Bytes datagram) : rest_(datagram) {}

  std::optional<Message> next() {
    if (rest_.size() < sizeof(nlmsghdr)) return std::nullopt;
    auto header = copy_struct<nlmsghdr>(rest_);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > rest_.size()) {
      malformed_ = true;
      rest_ = {};
      return std::nullopt;
    }
    Message m{header.nlmsg_type, header.nlmsg_flags, header.nlmsg_seq, header.nlmsg_pid,
              rest_.subspan(sizeof(nlmsghdr), header.nlmsg_len - sizeof(nlmsghdr))};
    rest_ = rest_.subspan(std::min(align4(header.nlmsg_len), rest_.size()));
    return m;
  }
  bool malformed() const { return malformed_; }

 private:
  Bytes rest_;
  bool malformed_ = false;
};

struct Attribute {
  uint16_t type = 0;  // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
  Bytes data;
};

// The attributes in `bytes` (RTA_OK / RTA_NEXT); stops at the first one that
// does not fit.
class AttributeWalker {
 public:
  explicit AttributeWalker(Bytes bytes) : rest_(bytes) {}

  std::optional<Attribute> next() {
    if (rest_.size() < sizeof(rtattr)) return std::nullopt;
    auto header = copy_struct<rtattr>(rest_);
    if (header.rta_len < sizeof(rtattr) || header.rta_len > rest_.size()) return std::nullopt;
    Attribute a{static_cast<uint16_t>(header.rta_type & NLA_TYPE_MASK),
                rest_.subspan(sizeof(rtattr), header.rta_len - sizeof(rtattr))};
    rest_ = rest_.subspan(std::min(align4(header.rta_len), rest_.size()));
    return a;
  }

 private:
  Bytes rest_;
};

// Attribute payloads, by type; nullopt when the size is wrong.
std::optional<uint32_t> attr_u32(Bytes data) {  // host order
  if (data.size() != sizeof(uint32_t)) return std::nullopt;
  return copy_struct<uint32_t>(data);
}
std::optional<Ipv4Addr> attr_ipv4(Bytes data) {  // network order
  if (data.size() != 4) return std::nullopt;
  return Ipv4Addr::load(data, 0);
}
std::optional<Ipv6Addr> attr_ipv6(Bytes data) {
  if (data.size() != 16) return std::nullopt;
  return Ipv6Addr::load(data, 0);
}
std::string attr_string(Bytes data) {  // NUL-terminated, or not
  std::string s;
  for (std::byte b : data) {
    if (b == std::byte{0}) break;
    s.push_back(static_cast<char>(b));
  }
  return s;
}

// ---- The socket. --------------------------------------------------------------

// Owns a file descriptor. A member of its own, so that the descriptor is
// closed even when NetlinkSocket's constructor throws after opening it.
struct OwnedFd {
  int fd = -1;
  OwnedFd() = default;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

class NetlinkSocket {
 public:
  NetlinkSocket() : buffer_(kBufferSize) {
    fd_.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_.fd < 0) throw std::runtime_error("cannot open a netlink socket: " + errno_text(errno));
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd_.fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) < 0) {
      throw_errno("cannot bind the netlink socket");
    }
    socklen_t len = sizeof local;
    if (getsockname(fd_.fd, reinterpret_cast<sockaddr*>(&local), &len) < 0) {
      throw_errno("cannot read the netlink socket's address");
    }
    port_ = local.nl_pid;
    timeval timeout{};
    timeout.tv_sec = kReceiveTimeoutSeconds;
    if (setsockopt(fd_.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) {
      throw_errno("cannot set the netlink socket's timeout");
    }
  }
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  // Sends a dump request of `type` with the fixed header `request` and calls
  // `on_message` for every reply until NLMSG_DONE. Returns false if the
  // kernel marked the dump as interrupted (the caller starts over). Throws
  // std::runtime_error naming `what` on any failure.
  bool dump(uint16_t type, Bytes request, const char* what, const std::function<void(const Message&)>& on_message) {
    send_request(type, request, what);
    const uint32_t seq = seq_;
    bool consistent = true;
    for (;;) {
      Bytes datagram = receive(what);
      if (datagram.empty()) continue;  // not from the kernel
      MessageWalker walker(datagram);
      while (auto m = walker.next()) {
        if (m->seq != seq || m->port != port_) continue;  // a late reply to an earlier request
        if ((m->flags & NLM_F_DUMP_INTR) != 0) consistent = false;
        if (m->type == NLMSG_DONE) {
          // The DONE payload is the dump's return code (an int).
          if (m->payload.size() >= sizeof(int)) {
            int error = copy_struct<int>(m->payload);
            if (error < 0) fail(what, -error);
          }
          return consistent;
        }
        if (m->type == NLMSG_ERROR) {
          if (m->payload.size() < sizeof(int)) fail_malformed(what);
          int error = copy_struct<int>(m->payload);
          if (error == 0) continue;  // an acknowledgement; we did not ask for one
          fail(what, error < 0 ? -error : error);
        }
        if (m->type < NLMSG_MIN_TYPE) continue;  // NOOP, OVERRUN
        on_message(*m);
      }
      if (walker.malformed()) fail_malformed(what);
    }
  }

 private:
  [[noreturn]] void throw_errno(const char* doing) {
    throw std::runtime_error(std::string(doing) + ": " + errno_text(errno));
  }
  [[noreturn]] static void fail(const char* what, int error) {
    throw std::runtime_error(std::string("netlink ") + what + " dump failed: " + errno_text(error));
  }
  [[noreturn]] static void fail_malformed(const char* what) {
    throw std::runtime_error(std::string("netlink ") + what + " dump: malformed reply from the kernel");
  }

  void send_request(uint16_t type, Bytes request, const char* what) {
    std::array<std::byte, sizeof(nlmsghdr) + 32> message{};
    if (request.size() > message.size() - sizeof(nlmsghdr)) {
      throw std::logic_error("netlink request header too large");
    }
    nlmsghdr header{};
    header.nlmsg_len = static_cast<uint32_t>(sizeof header + request.size());
    header.nlmsg_type = type;
    header.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_DUMP);
    header.nlmsg_seq = ++seq_;
    header.nlmsg_pid = port_;
    std::memcpy(message.data(), &header, sizeof header);
    std::memcpy(message.data() + sizeof header, request.data(), request.size());
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
      ssize_t n = sendto(fd_.fd, message.data(), header.nlmsg_len, 0, reinterpret_cast<const sockaddr*>(&kernel),
                         sizeof kernel);
      if (n == static_cast<ssize_t>(header.nlmsg_len)) return;
      if (n < 0 && errno == EINTR) continue;
      fail(what, n < 0 ? errno : EMSGSIZE);
    }
  }

  // One datagram into buffer_; empty if it did not come from the kernel.
  Bytes receive(const char* what) {
    for (;;) {
      sockaddr_nl from{};
      iovec iov{buffer_.data(), buffer_.size()};
      msghdr header{};
      header.msg_name = &from;
      header.msg_namelen = sizeof from;
      header.msg_iov = &iov;
      header.msg_iovlen = 1;
      ssize_t n = recvmsg(fd_.fd, &header, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          throw std::runtime_error(std::string("netlink ") + what + " dump: no answer from the kernel within " +
                                   std::to_string(kReceiveTimeoutSeconds) + " s");
        }
        fail(what, errno);
      }
      if ((header.msg_flags & MSG_TRUNC) != 0) {
        throw std::runtime_error(std::string("netlink ") + what + " dump: a reply did not fit in " +
                                 std::to_string(kBufferSize) + " bytes");
      }
      if (from.nl_pid != 0) return {};
      return Bytes(buffer_.data(), static_cast<size_t>(n));
    }
  }

  OwnedFd fd_;
  uint32_t port_ = 0;
  uint32_t seq_ = 0;
  std::vector<std::byte> buffer_;
};

// Runs a dump into a fresh Result until the kernel reports it consistent.
template <class Result, class Parse>
Result dump_consistent(NetlinkSocket& sock, uint16_t type, Bytes request, const char* what, Parse parse) {
  for (int attempt = 1;; ++attempt) {
    Result result;
    if (sock.dump(type, request, what, [&](const Message& m) { parse(result, m); })) return result;
    if (attempt == kDumpAttempts) {
      throw std::runtime_error(std::string("netlink ") + what + " dump: the tables kept changing while read (" +
                               std::to_string(kDumpAttempts) + " attempts)");
    }
  }
}

// ---- Routes. ------------------------------------------------------------------

struct DefaultRoute {
  unsigned ifindex = 0;
  uint32_t metric = 0;
  std::optional<Ipv4Addr> gateway4;
  std::optional<Ipv6Addr> gateway6;
};

struct DefaultRoutes {
  std::vector<DefaultRoute> v4, v6;  // in dump order
};

void read_gateway(DefaultRoute& route, uint8_t family, Bytes data) {
  if (family == AF_INET) {
    route.gateway4 = attr_ipv4(data);
  } else {
    route.gateway6 = attr_ipv6(data);
  }
}

// The first next hop of RTA_MULTIPATH that is not dead: its interface and
// gateway. False if there is none.
bool read_first_next_hop(DefaultRoute& route, uint8_t family, Bytes multipath) {
  while (multipath.size() >= sizeof(rtnexthop)) {
    auto hop = copy_struct<rtnexthop>(multipath);
    if (hop.rtnh_len < sizeof(rtnexthop) || hop.rtnh_len > multipath.size()) return false;
    if ((hop.rtnh_flags & RTNH_F_DEAD) == 0 && hop.rtnh_ifindex > 0) {
      route.ifindex = static_cast<unsigned>(hop.rtnh_ifindex);
      AttributeWalker attrs(multipath.subspan(sizeof(rtnexthop), hop.rtnh_len - sizeof(rtnexthop)));
      while (auto a = attrs.next()) {
        if (a->type == RTA_GATEWAY) read_gateway(route, family, a->data);
      }
      return true;
    }
    multipath = multipath.subspan(std::min(align4(hop.rtnh_len), multipath.size()));
  }
  return false;
}

void parse_route(DefaultRoutes& routes, const Message& m) {
  if (m.type != RTM_NEWROUTE || m.payload.size() < sizeof(rtmsg)) return;
  auto rt = copy_struct<rtmsg>(m.payload);
  if (rt.rtm_family != AF_INET && rt.rtm_family != AF_INET6) return;
  // A default route: no destination and no source prefix (IPv6
  // source-specific routes are not defaults for everyone), unicast, not a
  // cached clone, not dead.
  if (rt.rtm_dst_len != 0 || rt.rtm_src_len != 0 || rt.rtm_type != RTN_UNICAST) return;
  if ((rt.rtm_flags & (RTM_F_CLONED | RTNH_F_DEAD)) != 0) return;

  uint32_t table = rt.rtm_table;
  DefaultRoute route;
  Bytes multipath;
  AttributeWalker attrs(after_fixed(m.payload, sizeof(rtmsg)));
  while (auto a = attrs.next()) {
    switch (a->type) {
      case RTA_TABLE:
        if (auto v = attr_u32(a->data)) table = *v;
        break;
      case RTA_OIF:
        if (auto v = attr_u32(a->data)) route.ifindex = *v;
        break;
      case RTA_PRIORITY:
        if (auto v = attr_u32(a->data)) route.metric = *v;
        break;
      case RTA_GATEWAY:
        read_gateway(route, rt.rtm_family, a->data);
        break;
      case RTA_MULTIPATH:
        multipath = a->data;
        break;
      default:
        break;
    }
  }
  if (table != RT_TABLE_MAIN) return;
  if (route.ifindex == 0 && !read_first_next_hop(route, rt.rtm_family, multipath)) return;
  (rt.rtm_family == AF_INET ? routes.v4 : routes.v6).push_back(route);
}

// The lowest-metric route, among those on `ifindex` if given; the first on a
// tie.
const DefaultRoute* lowest_metric(const std::vector<DefaultRoute>& routes, std::optional<unsigned> ifindex) {
  const DefaultRoute* best = nullptr;
  for (const auto& r : routes) {
    if (ifindex && r.ifindex != *ifindex) continue;
    if (best == nullptr || r.metric < best->metric) best = &r;
  }
  return best;
}

// ---- Links and addresses. -----------------------------------------------------

struct Link {
  bool found = false;
  std::string name;
  uint32_t mtu = 0;
};

void parse_link(Link& link, unsigned ifindex, const Message& m) {
  if (m.type != RTM_NEWLINK || m.payload.size() < sizeof(ifinfomsg)) return;
  auto info = copy_struct<ifinfomsg>(m.payload);
  if (info.ifi_index <= 0 || static_cast<unsigned>(info.ifi_index) != ifindex) return;
  link.found = true;
  AttributeWalker attrs(after_fixed(m.payload, sizeof(ifinfomsg)));
  while (auto a = attrs.next()) {
    if (a->type == IFLA_IFNAME) {
      link.name = attr_string(a->data);
    } else if (a->type == IFLA_MTU) {
      if (auto v = attr_u32(a->data)) link.mtu = *v;
    }
  }
}

struct Addresses {
  std::vector<HostAddress4> v4;
  std::vector<std::pair<HostAddress6, bool>> v6;  // with "deprecated"
};

void parse_address(Addresses& out, unsigned ifindex, const Message& m) {
  if (m.type != RTM_NEWADDR || m.payload.size() < sizeof(ifaddrmsg)) return;
  auto ifa = copy_struct<ifaddrmsg>(m.payload);
  if (ifa.ifa_index != ifindex) return;
  uint32_t flags = ifa.ifa_flags;
  Bytes local, address;
  AttributeWalker attrs(after_fixed(m.payload, sizeof(ifaddrmsg)));
  while (auto a = attrs.next()) {
    if (a->type == IFA_FLAGS) {
      if (auto v = attr_u32(a->data)) flags = *v;  // the full 32 bits
    } else if (a->type == IFA_LOCAL) {
      local = a->data;
    } else if (a->type == IFA_ADDRESS) {
      address = a->data;
    }
  }
  // On a point-to-point address IFA_ADDRESS is the peer and IFA_LOCAL ours;
  // otherwise only IFA_ADDRESS may be present.
  Bytes ours = local.empty() ? address : local;
  if (ifa.ifa_family == AF_INET) {
    auto a = attr_ipv4(ours);
    if (a && ifa.ifa_prefixlen <= 32) out.v4.push_back({*a, ifa.ifa_prefixlen});
  } else if (ifa.ifa_family == AF_INET6) {
    if (ifa.ifa_scope != RT_SCOPE_UNIVERSE) return;
    if ((flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) != 0) return;
    auto a = attr_ipv6(ours);
    if (a && ifa.ifa_prefixlen <= 128 && !a->is_link_local()) {
      out.v6.push_back({{*a, ifa.ifa_prefixlen}, (flags & IFA_F_DEPRECATED) != 0});
    }
  }
}

// ---- resolv.conf. -------------------------------------------------------------

constexpr std::string_view kBlanks = " \t\r\f\v";

// Removes and returns the first blank-separated word of `line`.
std::string_view next_word(std::string_view& line) {
  size_t start = line.find_first_not_of(kBlanks);
  if (start == std::string_view::npos) {
    line = {};
    return {};
  }
  size_t end = line.find_first_of(kBlanks, start);
  std::string_view word = line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  line = end == std::string_view::npos ? std::string_view{} : line.substr(end);
  return word;
}

bool is_nameserver_address(std::string_view word) {
  if (word.find(':') == std::string_view::npos) return Ipv4Addr::parse(word).has_value();
  size_t percent = word.find('%');
  if (percent != std::string_view::npos) {
    size_t zone_len = word.size() - percent - 1;
    if (zone_len == 0 || zone_len >= IFNAMSIZ) return false;
    word = word.substr(0, percent);
  }
  in6_addr unused{};
  return inet_pton(AF_INET6, std::string(word).c_str(), &unused) == 1;
}

std::string read_file_or_empty(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> parse_nameservers(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    line = line.substr(0, line.find_first_of("#;"));
    if (next_word(line) != "nameserver") continue;
    std::string_view address = next_word(line);
    if (is_nameserver_address(address)) out.emplace_back(address);
  }
  return out;
}

HostNetwork read_host_network(const std::string& resolv_conf) {
  NetlinkSocket sock;

  rtmsg route_request{};
  route_request.rtm_family = AF_UNSPEC;
  auto routes = dump_consistent<DefaultRoutes>(sock, RTM_GETROUTE, std::as_bytes(std::span(&route_request, 1)),
                                               "RTM_GETROUTE", parse_route);
  const DefaultRoute* primary = lowest_metric(routes.v4, std::nullopt);
  if (primary == nullptr) primary = lowest_metric(routes.v6, std::nullopt);
  if (primary == nullptr) {
    throw std::runtime_error(
        "mirrored mode needs a default route on the host, and there is none in the main table "
        "(see `ip route` and `ip -6 route`)");
  }

  HostNetwork net;
  net.ifindex = primary->ifindex;
  if (const auto* r = lowest_metric(routes.v4, net.ifindex)) net.gateway4 = r->gateway4;
  if (const auto* r = lowest_metric(routes.v6, net.ifindex)) net.gateway6 = r->gateway6;

  ifinfomsg link_request{};
  link_request.ifi_family = AF_UNSPEC;
  auto link = dump_consistent<Link>(sock, RTM_GETLINK, std::as_bytes(std::span(&link_request, 1)), "RTM_GETLINK",
                                    [&](Link& l, const Message& m) { parse_link(l, net.ifindex, m); });
  if (!link.found) {
    throw std::runtime_error("the default route's interface (index " + std::to_string(net.ifindex) +
                             ") disappeared while it was being read");
  }
  net.interface = link.name;
  net.mtu = link.mtu;

  ifaddrmsg address_request{};
  address_request.ifa_family = AF_UNSPEC;
  auto addresses =
      dump_consistent<Addresses>(sock, RTM_GETADDR, std::as_bytes(std::span(&address_request, 1)), "RTM_GETADDR",
                                 [&](Addresses& a, const Message& m) { parse_address(a, net.ifindex, m); });
  net.ipv4 = std::move(addresses.v4);
  bool all_deprecated = std::all_of(addresses.v6.begin(), addresses.v6.end(), [](const auto& a) { return a.second; });
  for (const auto& [address, deprecated] : addresses.v6) {
    if (!deprecated || all_deprecated) net.ipv6.push_back(address);
  }

  net.nameservers = parse_nameservers(read_file_or_empty(resolv_conf));
  spdlog::debug("host network: primary interface {} (index {}), {} IPv4 and {} IPv6 addresses", net.interface,
                net.ifindex, net.ipv4.size(), net.ipv6.size());
  return net;
}

}  // namespace slipway::ns
