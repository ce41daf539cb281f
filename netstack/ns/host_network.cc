// Reading the host's primary interface over rtnetlink: theory of operation.
//
// One NETLINK_ROUTE socket (sys::netlink::open_socket(): bound, so the
// kernel assigns our port id) serves three dumps, one after another, through
// sys::netlink::Dumper (see netstack/sys/netlink.h for how a dump is read
// and checked):
//
//   1. RTM_GETROUTE, all families: the default routes of the main table,
//      from which the primary interface and its gateways are chosen (rules in
//      host_network.h).
//   2. RTM_GETLINK: the name and MTU of that interface.
//   3. RTM_GETADDR, all families: its addresses.
//
// Bounds (kDumpLimits)
//
//   - Replies are read into one 32 KiB buffer: the kernel fills a dump
//     datagram up to the size of the reader's buffer but never beyond
//     32 KiB, so every datagram fits; one that did not (MSG_TRUNC) is an
//     error.
//   - Each datagram is waited for at most 5 s (kReceiveTimeoutSeconds); a
//     silent kernel is an error, not a hang.
//   - A dump reads at most 16384 datagrams (512 MiB, several full Internet
//     routing tables) and takes at most 30 s; beyond that it is an error.
//   - A dump whose messages carry NLM_F_DUMP_INTR (the table changed while
//     it was being read) is repeated, at most kDumpAttempts (4) times in all.
//
// Parsing
//
//   The kernel is trusted to be the kernel, but every read is still checked
//   against the received length: a message header that lies about its length
//   is an error ("malformed reply"); an attribute walk stops at the first
//   attribute that does not fit; a fixed header (rtmsg, ifinfomsg,
//   ifaddrmsg) shorter than the kernel's struct makes the message skipped;
//   an attribute of the wrong size for its type is ignored. Fields are read
//   with explicit loads (sys::netlink's value types), never by laying a
//   struct over the buffer.
//
// The socket is closed by its owner (sys::Fd) on every path, exceptions
// included.
#include "netstack/ns/host_network.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <span>
#include <sstream>
#include <stdexcept>

#include "netstack/sys/error.h"
#include "netstack/sys/fd.h"
#include "netstack/sys/netlink.h"

namespace slipway::ns {
namespace {

namespace netlink = sys::netlink;
using wire::Bytes;
using wire::Ipv4Addr;
using wire::Ipv6Addr;

constexpr size_t kBufferSize = 32 * 1024;
constexpr int kReceiveTimeoutSeconds = 5;
constexpr int kMaxDatagramsPerDump = 16384;
constexpr std::chrono::seconds kDumpDeadline{30};
constexpr int kDumpAttempts = 4;

constexpr netlink::DumpLimits kDumpLimits{kBufferSize, std::chrono::seconds(kReceiveTimeoutSeconds), kDumpDeadline,
                                          kMaxDatagramsPerDump};

// The words for a failed dump of `what` ("RTM_GETROUTE").
[[noreturn]] void fail(const char* what, const netlink::DumpResult& result) {
  const std::string dump = std::string("netlink ") + what + " dump";
  switch (result.error) {
    case netlink::DumpError::kSend:
    case netlink::DumpError::kReceive:
    case netlink::DumpError::kKernel:
      throw std::runtime_error(dump + " failed: " + sys::errno_text(result.code));
    case netlink::DumpError::kClosed:
      throw std::runtime_error(dump + " failed: the socket returned nothing");
    case netlink::DumpError::kTimeout:
      throw std::runtime_error(dump + ": no answer from the kernel within " + std::to_string(kReceiveTimeoutSeconds) +
                               " s");
    case netlink::DumpError::kDeadline:
      throw std::runtime_error(dump + ": not finished within " + std::to_string(kDumpDeadline.count()) + " s");
    case netlink::DumpError::kTooLong:
      throw std::runtime_error(dump + ": more than " + std::to_string(kMaxDatagramsPerDump) + " replies");
    case netlink::DumpError::kTruncated:
      throw std::runtime_error(dump + ": a reply did not fit in " + std::to_string(kBufferSize) + " bytes");
    case netlink::DumpError::kMalformed:
    case netlink::DumpError::kNone:
      break;
  }
  throw std::runtime_error(dump + ": malformed reply from the kernel");
}

// Runs a dump into a fresh Result until the kernel reports it consistent.
// `parse(result, message)` takes each message.
template <class Result, class Parse>
Result dump_consistent(netlink::Dumper& dumper, const netlink::Request& request, const char* what, Parse parse) {
  for (int attempt = 1;; ++attempt) {
    Result result;
    const auto status = dumper.dump(request, [&](const netlink::Message& m) {
      parse(result, m);
      return netlink::ParseError::kNone;
    });
    if (!status.ok()) fail(what, status);
    if (!status.interrupted) return result;
    if (attempt == kDumpAttempts) {
      throw std::runtime_error(std::string("netlink ") + what + " dump: the tables kept changing while read (" +
                               std::to_string(kDumpAttempts) + " attempts)");
    }
  }
}

// A dump request of `type` for all address families.
template <class Fixed>
netlink::Request dump_request(uint16_t type) {
  netlink::Request request(type, NLM_F_DUMP);
  Fixed fixed;
  fixed.family = AF_UNSPEC;
  netlink::emit(request, fixed);
  return request;
}

std::optional<Ipv4Addr> attr_ipv4(Bytes data) {  // network order
  if (!netlink::attr_4(data)) return std::nullopt;
  return Ipv4Addr::load(data, 0);
}
std::optional<Ipv6Addr> attr_ipv6(Bytes data) {
  if (!netlink::attr_16(data)) return std::nullopt;
  return Ipv6Addr::load(data, 0);
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
  netlink::Walker<netlink::RtNextHop> hops(multipath);
  while (auto hop = hops.next()) {
    if ((hop->flags & RTNH_F_DEAD) != 0 || hop->ifindex <= 0) continue;
    route.ifindex = static_cast<unsigned>(hop->ifindex);
    netlink::AttributeWalker attrs(hop->attributes);
    while (auto a = attrs.next()) {
      if (a->type == RTA_GATEWAY) read_gateway(route, family, a->data);
    }
    return true;
  }
  return false;
}

void parse_route(DefaultRoutes& routes, const netlink::Message& m) {
  if (m.type != RTM_NEWROUTE) return;
  const auto rt = netlink::parse_rtmsg(m.payload);
  if (!rt || (rt->family != AF_INET && rt->family != AF_INET6)) return;
  // A default route: no destination and no source prefix (IPv6
  // source-specific routes are not defaults for everyone), unicast, not a
  // cached clone, not dead.
  if (rt->dst_len != 0 || rt->src_len != 0 || rt->type != RTN_UNICAST) return;
  if ((rt->flags & (RTM_F_CLONED | RTNH_F_DEAD)) != 0) return;

  uint32_t table = rt->table;
  DefaultRoute route;
  Bytes multipath;
  netlink::AttributeWalker attrs(netlink::attributes_after(m.payload, netlink::RtMsg::kSize));
  while (auto a = attrs.next()) {
    switch (a->type) {
      case RTA_TABLE:
        if (auto v = netlink::attr_u32(a->data)) table = *v;
        break;
      case RTA_OIF:
        if (auto v = netlink::attr_u32(a->data)) route.ifindex = *v;
        break;
      case RTA_PRIORITY:
        if (auto v = netlink::attr_u32(a->data)) route.metric = *v;
        break;
      case RTA_GATEWAY:
        read_gateway(route, rt->family, a->data);
        break;
      case RTA_MULTIPATH:
        multipath = a->data;
        break;
      default:
        break;
    }
  }
  if (table != RT_TABLE_MAIN) return;
  if (route.ifindex == 0 && !read_first_next_hop(route, rt->family, multipath)) return;
  (rt->family == AF_INET ? routes.v4 : routes.v6).push_back(route);
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

void parse_link(Link& link, unsigned ifindex, const netlink::Message& m) {
  if (m.type != RTM_NEWLINK) return;
  const auto info = netlink::parse_ifinfomsg(m.payload);
  if (!info || info->index <= 0 || static_cast<unsigned>(info->index) != ifindex) return;
  link.found = true;
  netlink::AttributeWalker attrs(netlink::attributes_after(m.payload, netlink::IfInfoMsg::kSize));
  while (auto a = attrs.next()) {
    if (a->type == IFLA_IFNAME) {
      link.name = netlink::attr_string(a->data);
    } else if (a->type == IFLA_MTU) {
      if (auto v = netlink::attr_u32(a->data)) link.mtu = *v;
    }
  }
}

struct Addresses {
  std::vector<HostAddress4> v4;
  std::vector<std::pair<HostAddress6, bool>> v6;  // with "deprecated"
};

void parse_address(Addresses& out, unsigned ifindex, const netlink::Message& m) {
  if (m.type != RTM_NEWADDR) return;
  const auto ifa = netlink::parse_ifaddrmsg(m.payload);
  if (!ifa || ifa->index != ifindex) return;
  uint32_t flags = ifa->flags;
  Bytes local, address;
  netlink::AttributeWalker attrs(netlink::attributes_after(m.payload, netlink::IfAddrMsg::kSize));
  while (auto a = attrs.next()) {
    if (a->type == IFA_FLAGS) {
      if (auto v = netlink::attr_u32(a->data)) flags = *v;  // the full 32 bits
    } else if (a->type == IFA_LOCAL) {
      local = a->data;
    } else if (a->type == IFA_ADDRESS) {
      address = a->data;
    }
  }
  // On a point-to-point address IFA_ADDRESS is the peer and IFA_LOCAL ours;
  // otherwise only IFA_ADDRESS may be present.
  Bytes ours = local.empty() ? address : local;
  if (ifa->family == AF_INET) {
    auto a = attr_ipv4(ours);
    if (a && ifa->prefix_len <= 32) out.v4.push_back({*a, ifa->prefix_len});
  } else if (ifa->family == AF_INET6) {
    if (ifa->scope != RT_SCOPE_UNIVERSE) return;
    if ((flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) != 0) return;
    auto a = attr_ipv6(ours);
    if (a && ifa->prefix_len <= 128 && !a->is_link_local()) {
      out.v6.push_back({{*a, ifa->prefix_len}, (flags & IFA_F_DEPRECATED) != 0});
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
  const sys::Fd sock = netlink::open_socket(NETLINK_ROUTE);
  netlink::Dumper dumper(sock.get(), kDumpLimits);

  auto routes = dump_consistent<DefaultRoutes>(dumper, dump_request<netlink::RtMsg>(RTM_GETROUTE), "RTM_GETROUTE",
                                               parse_route);
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

  auto link = dump_consistent<Link>(dumper, dump_request<netlink::IfInfoMsg>(RTM_GETLINK), "RTM_GETLINK",
                                    [&](Link& l, const netlink::Message& m) { parse_link(l, net.ifindex, m); });
  if (!link.found) {
    throw std::runtime_error("the default route's interface (index " + std::to_string(net.ifindex) +
                             ") disappeared while it was being read");
  }
  net.interface = link.name;
  net.mtu = link.mtu;

  auto addresses =
      dump_consistent<Addresses>(dumper, dump_request<netlink::IfAddrMsg>(RTM_GETADDR), "RTM_GETADDR",
                                 [&](Addresses& a, const netlink::Message& m) { parse_address(a, net.ifindex, m); });
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
