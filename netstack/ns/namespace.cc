// Namespaces and the guest's TAP device: theory of operation.
//
// spawn_in_new_namespace() (slipway run)
//
//   The parent (slipway) forks a child; they talk over a SOCK_SEQPACKET
//   socketpair, one fixed-size Report per message:
//
//     1. child:  unshare(CLONE_NEWUSER); sends Report (ok, or the errno).
//     2. parent: writes the child's ID maps. As root it maps its own ID ranges
//                one to one (in the initial user namespace: "0 0 4294967295"),
//                so files keep their owners. As a normal user it writes
//                "deny" to setgroups and maps root in the namespace to its
//                own UID/GID ("0 UID 1"). Sends one "go" byte.
//     3. child:  unshare(CLONE_NEWNET | CLONE_NEWNS); makes every mount
//                private; creates the TAP and configures it (see "The link"
//                below). Rebinds /sys/class/net and
//                /sys/devices/virtual/net from a sysfs mounted in the new
//                namespace (so /sys shows the namespace's devices while
//                /sys/fs/cgroup and the rest stay as they were), and binds a
//                private resolv.conf over /etc/resolv.conf (following a
//                symlink). Sends Report plus the TAP fd (SCM_RIGHTS).
//     4. parent: receives the fd, makes it O_NONBLOCK, returns.
//     5. child:  closes every fd but 0, 1, 2, restores default signal
//                handling and an empty mask, sets PR_SET_PDEATHSIG(SIGTERM),
//                waits for SLAAC (below) and execs the command.
//
//   The scratch files (sysfs, resolv.conf) live on a tmpfs mounted over /tmp
//   in the child's mount namespace and detached again before exec; the bind
//   mounts keep what they need alive. Bind targets are opened with O_PATH
//   (/etc/resolv.conf before the tmpfs could hide where it points) and
//   mounted over through /proc/self/fd/N.
//
// open_tap_in_namespace() (slipway attach)
//
//   The parent opens the namespace file and, when it is not root, the
//   namespace's owning user namespace (NS_GET_USERNS). A forked child
//   setns()es into them, creates and configures the TAP, sends Report plus fd
//   and exits; the parent reaps it.
//
// The link (configure_link(), in this order)
//
//   MAC (only while the link is down), MTU, lo up; when configuring the IPv4
//   address and netmask. Then the interface's IPv6 sysctls in
//   /proc/sys/net/ipv6/conf/NAME/ (per network namespace: what the child
//   opens belongs to its own namespace): with IPv6 off only disable_ipv6=1,
//   so the link never gets even a link-local address; with IPv6 on
//   accept_dad=0, accept_ra and autoconf 1 with SLAAC (0 with static
//   addresses only, so no second default route arrives), disable_ipv6=0.
//   They must be
//   written before the link goes up: that is when the kernel forms the
//   link-local address and, with DAD off, at once sends a router
//   solicitation. Then the link up, the IPv4 default route (it needs the
//   connected subnet), and when configuring the static IPv6 addresses
//   (rtnetlink RTM_NEWADDR with IFA_F_NODAD, so they are usable even where
//   net.ipv6.conf.all.accept_dad is set) and the IPv6 default route
//   (RTM_NEWROUTE with the interface index, so a link-local gateway works).
//   The rest (the default route and MTU from the RA, accept_ra_defrtr,
//   rtr_solicits) is left to the kernel's defaults.
//
// Waiting for SLAAC (spawn only)
//
//   The router solicitation sent at link up waits in the TAP's queue until
//   the parent, which has the fd by then, answers it from its event loop.
//   So when IPv6 with SLAAC is configured the child, just before exec, polls
//   /proc/net/if_inet6 every kSlaacPollMs until the interface has a global
//   address that is neither tentative, failed DAD nor permanent (static
//   addresses are permanent; the RA's are not), or iface.slaac_wait has
//   passed (at most 60 s): then it writes a warning to the command's stderr
//   and starts it anyway. The kernel installs the RA's default route before
//   it adds the prefix's address, so the route is there too. Each poll
//   reads the file at most kMaxProcReads times through a stack buffer.
//
// Limits
//
//   - The forked child runs only system calls until exec (no allocation, no
//     logging): slipway may be multithreaded. Everything it needs is prepared
//     before fork; it reports failures as (step, errno) and the parent writes
//     the message.
//   - The parent waits at most kHandshakeTimeout for each Report.
//   - Failing to rebind /sys is a warning, not an error (for example in a
//     container whose /sys is partly masked); so is a host without any
//     /etc/resolv.conf. Anything else is an error.
//   - PR_SET_PDEATHSIG fires when the *thread* that called spawn exits.
//   - Opening /dev/net/tun as a normal user needs the usual mode 0666.
//   - Without IPv6 in the kernel (no /proc/sys/net/ipv6) asking for IPv6 is
//     an error; IPv6 off then needs nothing. Failing to write disable_ipv6=1
//     (a read-only /proc/sys in a container) is a warning: the interface
//     then keeps the kernel's defaults, as before IPv6 was configurable.
//   - The SLAAC address needs net.ipv6.conf.all.accept_dad < 1 as well to
//     skip DAD (the kernel's default, and always so in a new namespace);
//     in an attached namespace that sets it, DAD takes its usual second.
//   - accept_ra=1 takes RAs only while the namespace does not forward.
#include "netstack/ns/namespace.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace slipway::ns {
namespace {

constexpr int kHandshakeTimeoutSeconds = 10;
constexpr long kSlaacPollMs = 20;
constexpr int kMaxProcReads = 256;  // of 4 KiB: /proc/net/if_inet6 is far smaller
constexpr std::chrono::milliseconds kMaxSlaacWait{60000};
constexpr const char* kIpv6SysctlDir = "/proc/sys/net/ipv6";
constexpr const char* kScratchDir = "/tmp";
constexpr const char* kScratchSysfs = "/tmp/sys";
constexpr const char* kScratchResolvConf = "/tmp/resolv.conf";

// What the child was doing when it failed; the parent turns it into words.
enum class Step : uint32_t {
  kNone = 0,  // success
  kUnshareUser,
  kUnshareNetMount,
  kMakeMountsPrivate,
  kSetnsUser,
  kSetnsNet,
  kOpenTun,
  kCreateTap,
  kControlSocket,
  kSetMac,
  kSetMtu,
  kLoUp,
  kSetAddress,
  kSetNetmask,
  kTapUp,
  kDefaultRoute,
  kScratchMount,
  kSysfs,
  kResolvConfOpen,
  kResolvConfWrite,
  kResolvConfBind,
  kIpv6Unavailable,
  kIpv6Sysctl,     // Report::index: which of ipv6_sysctls()
  kDisableIpv6,    // a warning
  kNetlinkSocket,
  kInterfaceIndex,
  kSetIpv6Address,  // Report::index: which of iface.ipv6_addresses
  kIpv6DefaultRoute,
};

// One message from the child. Our own IPC between two copies of this
// program, so a plain struct is fine.
struct Report {
  Step step = Step::kNone;
  int32_t error = 0;
  Step warning = Step::kNone;  // a non-fatal failure, logged by the parent
  int32_t warning_error = 0;
  uint32_t index = 0;  // for the steps that say so: which item of a list failed
};

// One sysctl of the interface, under /proc/sys/net/ipv6/conf/NAME/.
struct Sysctl {
  const char* name;
  const char* value;
};

// The interface's IPv6 sysctls in the order the child writes them (see
// "The link"); disable_ipv6 comes last so that the rest is in place when
// IPv6 comes on.
std::vector<Sysctl> ipv6_sysctls(const GuestInterface& iface) {
  if (!iface.ipv6) return {{"disable_ipv6", "1"}};
  return {{"accept_dad", "0"}, {"accept_ra", iface.ipv6_slaac ? "1" : "0"},
          {"autoconf", iface.ipv6_slaac ? "1" : "0"}, {"disable_ipv6", "0"}};
}

std::string sysctl_path(const GuestInterface& iface, const Sysctl& sysctl) {
  return std::string(kIpv6SysctlDir) + "/conf/" + iface.name + "/" + sysctl.name;
}

// What the child needs for IPv6 beyond `iface`, prepared before fork.
struct Ipv6Plan {
  std::vector<std::pair<std::string, const char*>> sysctls;  // path, value
  long slaac_wait_ms = 0;     // spawn only; 0: do not wait
  std::string slaac_warning;  // for the command's stderr when the wait times out
};

// ---- Child side: system calls only, no allocation. -------------------------

bool fail(Report& report, Step step) {
  report.step = step;
  report.error = errno;
  return false;
}

bool fail_at(Report& report, Step step, size_t index) {
  report.index = static_cast<uint32_t>(index);
  return fail(report, step);
}

void warn(Report& report, Step step) {
  if (report.warning != Step::kNone) return;  // keep the first
  report.warning = step;
  report.warning_error = errno;
}

void close_quietly(int fd) {
  if (fd >= 0) close(fd);
}

void set_name(ifreq& ifr, const char* name) {
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
}

void set_ipv4(sockaddr& sa, uint32_t host_order) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(host_order);
  std::memcpy(&sa, &sin, sizeof sin);
}

uint32_t prefix_to_mask(unsigned prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

bool bring_up(int sock, const char* name) {
  ifreq ifr{};
  set_name(ifr, name);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
}

// Opens /dev/net/tun and creates the TAP device in the current network
// namespace (the one the fd is opened in). Returns the fd or -1.
int create_tap(const GuestInterface& iface, Report& report) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    fail(report, Step::kOpenTun);
    return -1;
  }
  ifreq ifr{};
  set_name(ifr, iface.name.c_str());
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fail(report, Step::kCreateTap);
    close(fd);
    return -1;
  }
  return fd;
}

// Writes `value` to the sysctl file at `path`. False with errno set.
bool write_sysctl(const char* path, const char* value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = std::strlen(value);
  ssize_t n = write(fd, value, len);
  int error = errno;
  close(fd);
  if (n == static_cast<ssize_t>(len)) return true;
  errno = n >= 0 ? EIO : error;
  return false;
}

// The interface's IPv6 sysctls (see "The link"); before the link goes up.
bool set_ipv6_sysctls(const GuestInterface& iface, const Ipv6Plan& plan, Report& report) {
  if (access(kIpv6SysctlDir, F_OK) < 0 && errno == ENOENT) {
    // No IPv6 in this kernel: off is what we have; on cannot be.
    return iface.ipv6 ? fail(report, Step::kIpv6Unavailable) : true;
  }
  for (size_t i = 0; i < plan.sysctls.size(); ++i) {
    if (write_sysctl(plan.sysctls[i].first.c_str(), plan.sysctls[i].second)) continue;
    if (!iface.ipv6) {
      warn(report, Step::kDisableIpv6);
      return true;
    }
    return fail_at(report, Step::kIpv6Sysctl, i);
  }
  return true;
}

// Where a netlink message's fixed part starts (NLMSG_DATA, without its
// C-style cast).
constexpr size_t kNetlinkHeaderLen = NLMSG_ALIGN(sizeof(nlmsghdr));

// A netlink request built in place: the kernel's own structs, as rtnetlink
// defines its ABI.
struct NetlinkRequest {
  alignas(nlmsghdr) char buf[256];

  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf); }
  // Starts a message of `type` whose fixed part (ifaddrmsg, rtmsg) is
  // `body`; returns it, zeroed.
  template <typename Body>
  Body* start(uint16_t type, uint16_t flags) {
    std::memset(buf, 0, sizeof buf);
    header()->nlmsg_len = NLMSG_LENGTH(sizeof(Body));
    header()->nlmsg_type = type;
    header()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    header()->nlmsg_seq = 1;
    return reinterpret_cast<Body*>(buf + kNetlinkHeaderLen);
  }
  // Our messages are a few fixed attributes, far below sizeof buf.
  void add(uint16_t type, const void* data, size_t size) {
    size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    auto* attr = reinterpret_cast<rtattr*>(buf + at);
    attr->rta_type = type;
    attr->rta_len = static_cast<uint16_t>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(attr), data, size);
    header()->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(attr->rta_len));
  }
};

// Sends `request` to the kernel and reads its acknowledgement. The kernel
// handles rtnetlink requests within sendto(), so the answer is already
// queued: recv() does not block. False with errno set.
bool netlink_talk(int sock, NetlinkRequest& request) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock, request.buf, request.header()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) < 0) {
    return false;
  }
  alignas(nlmsghdr) char reply[1024];
  ssize_t n = recv(sock, reply, sizeof reply, MSG_DONTWAIT);
  if (n < 0) return false;
  const auto* header = reinterpret_cast<const nlmsghdr*>(reply);
  if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) || header->nlmsg_type != NLMSG_ERROR) {
    errno = EPROTO;
    return false;
  }
  const auto* ack = reinterpret_cast<const nlmsgerr*>(reply + kNetlinkHeaderLen);
  if (ack->error == 0) return true;
  errno = -ack->error;
  return false;
}

// The static IPv6 addresses and default route; after the link is up (a
// route through a down link is refused).
bool configure_ipv6_static(const GuestInterface& iface, int control_sock, Report& report) {
  if (iface.ipv6_addresses.empty() && iface.ipv6_gateway.is_unspecified()) return true;
  ifreq ifr{};
  set_name(ifr, iface.name.c_str());
  if (ioctl(control_sock, SIOCGIFINDEX, &ifr) < 0) return fail(report, Step::kInterfaceIndex);
  const int ifindex = ifr.ifr_ifindex;

  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0) return fail(report, Step::kNetlinkSocket);
  bool ok = [&] {
    NetlinkRequest request;
    for (size_t i = 0; i < iface.ipv6_addresses.size(); ++i) {
      const auto& [address, prefix] = iface.ipv6_addresses[i];
      auto* msg = request.start<ifaddrmsg>(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
      msg->ifa_family = AF_INET6;
      msg->ifa_prefixlen = static_cast<uint8_t>(prefix);
      msg->ifa_flags = IFA_F_NODAD;
      msg->ifa_index = static_cast<uint32_t>(ifindex);
      request.add(IFA_ADDRESS, address.octets.data(), address.octets.size());
      uint32_t flags = IFA_F_NODAD;
      request.add(IFA_FLAGS, &flags, sizeof flags);
      if (!netlink_talk(sock, request)) return fail_at(report, Step::kSetIpv6Address, i);
    }
    if (!iface.ipv6_gateway.is_unspecified()) {
      // Plain NLM_F_CREATE, like `route add`: a default route that is
      // already there (an attached namespace's) stays.
      auto* msg = request.start<rtmsg>(RTM_NEWROUTE, NLM_F_CREATE);
      msg->rtm_family = AF_INET6;
      msg->rtm_table = RT_TABLE_MAIN;
      msg->rtm_protocol = RTPROT_BOOT;
      msg->rtm_scope = RT_SCOPE_UNIVERSE;
      msg->rtm_type = RTN_UNICAST;
      request.add(RTA_GATEWAY, iface.ipv6_gateway.octets.data(), iface.ipv6_gateway.octets.size());
      request.add(RTA_OIF, &ifindex, sizeof ifindex);
      if (!netlink_talk(sock, request)) return fail(report, Step::kIpv6DefaultRoute);
    }
    return true;
  }();
  close(sock);
  return ok;
}

// See "The link" above for the order.
bool configure_link(const GuestInterface& iface, const Ipv6Plan& ipv6, Report& report) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return fail(report, Step::kControlSocket);
  const char* name = iface.name.c_str();
  bool ok = [&] {
    ifreq ifr{};
    set_name(ifr, name);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(ifr.ifr_hwaddr.sa_data, iface.mac.data(), iface.mac.size());
    if (ioctl(sock, SIOCSIFHWADDR, &ifr) < 0) return fail(report, Step::kSetMac);

    ifr = {};
    set_name(ifr, name);
    ifr.ifr_mtu = static_cast<int>(iface.mtu);
    if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) return fail(report, Step::kSetMtu);

    if (!bring_up(sock, "lo")) return fail(report, Step::kLoUp);

    if (iface.configure) {
      ifr = {};
      set_name(ifr, name);
      set_ipv4(ifr.ifr_addr, iface.address);
      if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) return fail(report, Step::kSetAddress);
      ifr = {};
      set_name(ifr, name);
      set_ipv4(ifr.ifr_netmask, prefix_to_mask(iface.prefix));
      if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0) return fail(report, Step::kSetNetmask);
    }

    if (!set_ipv6_sysctls(iface, ipv6, report)) return false;

    if (!bring_up(sock, name)) return fail(report, Step::kTapUp);

    if (iface.configure && iface.gateway != 0) {
      rtentry rt{};
      set_ipv4(rt.rt_dst, 0);
      set_ipv4(rt.rt_genmask, 0);
      set_ipv4(rt.rt_gateway, iface.gateway);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      char dev[IFNAMSIZ] = {};
      std::strncpy(dev, name, IFNAMSIZ - 1);
      rt.rt_dev = dev;
      if (ioctl(sock, SIOCADDRT, &rt) < 0) return fail(report, Step::kDefaultRoute);
    }

    if (iface.ipv6 && iface.configure) return configure_ipv6_static(iface, sock, report);
    return true;
  }();
  close(sock);
  return ok;
}

// ---- Waiting for SLAAC: /proc/net/if_inet6 through a stack buffer. ---------

// Parses the hex number in [p, end); false if it is empty or not hex.
bool parse_hex(const char* p, const char* end, unsigned long& value) {
  if (p == end) return false;
  value = 0;
  for (; p < end; ++p) {
    char c = *p;
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value << 4 | digit;
  }
  return true;
}

// True if one line of /proc/net/if_inet6 ("ADDRESS IFINDEX PREFIXLEN SCOPE
// FLAGS NAME", all hex but the name) is a global address on `name` that
// came from an RA and is ready: not tentative, not failed DAD, not
// permanent (static addresses are; SLAAC ones are not).
bool is_ready_slaac_address(const char* line, size_t len, const char* name) {
  constexpr unsigned long kTentative = 0x40, kDadFailed = 0x08, kPermanent = 0x80;
  const char* field[6];
  const char* field_end[6];
  const char* p = line;
  const char* end = line + len;
  for (int i = 0; i < 6; ++i) {
    while (p < end && *p == ' ') ++p;
    if (p == end) return false;
    field[i] = p;
    while (p < end && *p != ' ') ++p;
    field_end[i] = p;
  }
  unsigned long scope = 0, flags = 0;
  if (field_end[0] - field[0] != 32) return false;
  if (!parse_hex(field[3], field_end[3], scope) || !parse_hex(field[4], field_end[4], flags)) return false;
  size_t name_len = static_cast<size_t>(field_end[5] - field[5]);
  if (name_len != std::strlen(name) || std::memcmp(field[5], name, name_len) != 0) return false;
  return scope == 0 && (flags & (kTentative | kDadFailed | kPermanent)) == 0;
}

bool has_slaac_address(const char* name) {
  int fd = open("/proc/net/if_inet6", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  size_t have = 0;
  bool found = false;
  for (int reads = 0; reads < kMaxProcReads && !found; ++reads) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n <= 0) break;  // end of file, or an error: not found this time
    have += static_cast<size_t>(n);
    size_t line = 0;
    for (size_t i = 0; i < have && !found; ++i) {
      if (buf[i] != '\n') continue;
      found = is_ready_slaac_address(buf + line, i - line, name);
      line = i + 1;
    }
    // Keep a partial last line for the next read; a line that fills the
    // whole buffer is not one of the kernel's and is dropped.
    if (line == 0 && have == sizeof buf) line = have;
    std::memmove(buf, buf + line, have - line);
    have -= line;
  }
  close(fd);
  return found;
}

long monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Polls until `name` has an address from the RA or `limit_ms` has passed.
bool wait_for_slaac_address(const char* name, long limit_ms) {
  const long deadline = monotonic_ms() + limit_ms;
  for (;;) {
    if (has_slaac_address(name)) return true;
    long left = deadline - monotonic_ms();
    if (left <= 0) return false;
    long nap = left < kSlaacPollMs ? left : kSlaacPollMs;
    timespec ts{0, nap * 1000000};
    nanosleep(&ts, nullptr);
  }
}

// "/proc/self/fd/N" into buf, without allocating.
const char* fd_path(char (&buf)[32], int fd) {
  const char prefix[] = "/proc/self/fd/";
  std::memcpy(buf, prefix, sizeof prefix - 1);
  char digits[12];
  int n = 0;
  unsigned value = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  size_t pos = sizeof prefix - 1;
  while (n > 0) buf[pos++] = digits[--n];
  buf[pos] = '\0';
  return buf;
}

// Mount flags a new sysfs must carry to be allowed next to the existing one
// in a user namespace: at least as read-only, and the same atime handling.
unsigned long sysfs_mount_flags() {
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  struct statvfs st {};
  if (statvfs("/sys", &st) == 0) {
    if (st.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  return flags;
}

// Binds the namespace-tagged directories of a fresh sysfs over the host's
// view. Failure is a warning: the network works without it.
void rebind_sysfs_net(Report& report) {
  int class_net = open("/sys/class/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int virtual_net = open("/sys/devices/virtual/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char path[32];
  if (class_net < 0 || virtual_net < 0) {
    warn(report, Step::kSysfs);
  } else if (mkdir(kScratchSysfs, 0755) < 0 ||
             mount("sysfs", kScratchSysfs, "sysfs", sysfs_mount_flags(), nullptr) < 0) {
    warn(report, Step::kSysfs);
  } else {
    if (mount("/tmp/sys/class/net", fd_path(path, class_net), nullptr, MS_BIND, nullptr) < 0 ||
        mount("/tmp/sys/devices/virtual/net", fd_path(path, virtual_net), nullptr, MS_BIND,
              nullptr) < 0) {
      warn(report, Step::kSysfs);
    }
    umount2(kScratchSysfs, MNT_DETACH);
  }
  close_quietly(class_net);
  close_quietly(virtual_net);
}

// Opens what a private resolv.conf is bound over: /etc/resolv.conf, or what
// a symlink there points to. -1 with errno set if there is none.
int open_resolv_conf_target() { return open("/etc/resolv.conf", O_PATH | O_CLOEXEC); }

// Writes `content` to the scratch tmpfs and binds it over `target`.
bool bind_resolv_conf(int target, const std::string& content, Report& report) {
  int fd = open(kScratchResolvConf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(report, Step::kResolvConfWrite);
  ssize_t n = write(fd, content.data(), content.size());
  if (n != static_cast<ssize_t>(content.size())) {
    if (n >= 0) errno = EIO;
    fail(report, Step::kResolvConfWrite);
    close(fd);
    return false;
  }
  close(fd);
  char path[32];
  if (mount(kScratchResolvConf, fd_path(path, target), nullptr, MS_BIND, nullptr) < 0) {
    return fail(report, Step::kResolvConfBind);
  }
  return true;
}

// The mount-namespace part of step 3: private tmpfs over /tmp, sysfs,
// resolv.conf, tmpfs detached again.
bool set_up_mounts(const GuestInterface& iface, const std::string& resolv_conf, Report& report) {
  // Open the bind target before the tmpfs could hide it (/etc/resolv.conf
  // might point into /tmp, however unlikely).
  int resolv_target = -1;
  if (iface.configure) {
    resolv_target = open_resolv_conf_target();
    if (resolv_target < 0 && errno != ENOENT) return fail(report, Step::kResolvConfOpen);
    // No /etc/resolv.conf at all: nothing to replace; the command has no DNS
    // configuration either way.
    if (resolv_target < 0) warn(report, Step::kResolvConfOpen);
  }
  if (mount("tmpfs", kScratchDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") < 0) {
    fail(report, Step::kScratchMount);
    close_quietly(resolv_target);
    return false;
  }
  rebind_sysfs_net(report);
  bool ok = resolv_target < 0 || bind_resolv_conf(resolv_target, resolv_conf, report);
  umount2(kScratchDir, MNT_DETACH);
  close_quietly(resolv_target);
  return ok;
}

bool send_report(int sock, const Report& report, int fd_to_pass) {
  iovec iov{const_cast<Report*>(&report), sizeof report};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd_to_pass, sizeof(int));
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof report);
}

void close_fds_from(unsigned first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  rlimit limit{};
  rlim_t last = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) last = limit.rlim_cur;
  for (rlim_t fd = first; fd < last; ++fd) close(static_cast<int>(fd));
}

void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
}

void write_stderr(const char* s) {
  ssize_t ignored = write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

struct SpawnPlan {
  const GuestInterface* iface;
  const Ipv6Plan* ipv6;
  const std::string* resolv_conf;
  char* const* argv;
  pid_t parent;
  int sock;
};

[[noreturn]] void spawn_child(const SpawnPlan& plan) {
  Report report;
  // Step 1.
  if (unshare(CLONE_NEWUSER) < 0) {
    fail(report, Step::kUnshareUser);
    send_report(plan.sock, report, -1);
    _exit(1);
  }
  if (!send_report(plan.sock, report, -1)) _exit(1);
  // Wait for the ID maps (step 2). EOF: the parent gave up or died.
  char go = 0;
  if (recv(plan.sock, &go, 1, 0) != 1) _exit(1);

  // Step 3.
  int tap = -1;
  bool ok = [&] {
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) return fail(report, Step::kUnshareNetMount);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
      return fail(report, Step::kMakeMountsPrivate);
    }
    tap = create_tap(*plan.iface, report);
    if (tap < 0) return false;
    if (!configure_link(*plan.iface, *plan.ipv6, report)) return false;
    return set_up_mounts(*plan.iface, *plan.resolv_conf, report);
  }();
  if (!ok) {
    send_report(plan.sock, report, -1);
    _exit(1);
  }
  if (!send_report(plan.sock, report, tap)) _exit(1);

  // Step 5. The TAP fd and the socket go with everything else but stdio.
  close_fds_from(3);
  reset_signals();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != plan.parent) _exit(1);  // the parent died before prctl
  if (plan.ipv6->slaac_wait_ms > 0 && !wait_for_slaac_address(plan.iface->name.c_str(), plan.ipv6->slaac_wait_ms)) {
    write_stderr(plan.ipv6->slaac_warning.c_str());
  }
  execvp(plan.argv[0], plan.argv);
  int error = errno;
  write_stderr("slipway: cannot run '");
  write_stderr(plan.argv[0]);
  write_stderr("': ");
  write_stderr(strerror(error));
  write_stderr("\n");
  _exit(127);
}

struct AttachPlan {
  const GuestInterface* iface;
  const Ipv6Plan* ipv6;
  int user_fd;  // -1: stay in our user namespace
  int net_fd;
  int sock;
};

[[noreturn]] void attach_child(const AttachPlan& plan) {
  Report report;
  int tap = -1;
  bool ok = [&] {
    if (plan.user_fd >= 0 && setns(plan.user_fd, CLONE_NEWUSER) < 0) return fail(report, Step::kSetnsUser);
    if (setns(plan.net_fd, CLONE_NEWNET) < 0) return fail(report, Step::kSetnsNet);
    tap = create_tap(*plan.iface, report);
    if (tap < 0) return false;
    return configure_link(*plan.iface, *plan.ipv6, report);
  }();
  if (!send_report(plan.sock, report, ok ? tap : -1)) _exit(1);
  _exit(ok ? 0 : 1);
}

// ---- Parent side. ----------------------------------------------------------

std::string format_ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

// `index` is Report::index, for the steps that use it.
std::string describe(Step step, int error, const GuestInterface& iface, const std::string& target,
                     uint32_t index = 0) {
  std::string what;
  switch (step) {
    case Step::kNone: what = "no error"; break;
    case Step::kUnshareUser: what = "user namespaces are not available"; break;
    case Step::kUnshareNetMount: what = "cannot create network and mount namespaces"; break;
    case Step::kMakeMountsPrivate: what = "cannot make mounts private in the new mount namespace"; break;
    case Step::kSetnsUser: what = "cannot enter the user namespace that owns " + target; break;
    case Step::kSetnsNet: what = "cannot enter network namespace " + target; break;
    case Step::kOpenTun: what = "cannot open /dev/net/tun"; break;
    case Step::kCreateTap: what = "cannot create TAP device " + iface.name; break;
    case Step::kControlSocket: what = "cannot create a socket to configure " + iface.name; break;
    case Step::kSetMac: what = "cannot set the MAC address of " + iface.name; break;
    case Step::kSetMtu: what = "cannot set the MTU of " + iface.name + " to " + std::to_string(iface.mtu); break;
    case Step::kLoUp: what = "cannot bring up lo"; break;
    case Step::kSetAddress:
      what = "cannot set address " + format_ipv4(iface.address) + " on " + iface.name;
      break;
    case Step::kSetNetmask: what = "cannot set prefix /" + std::to_string(iface.prefix) + " on " + iface.name; break;
    case Step::kTapUp: what = "cannot bring up " + iface.name; break;
    case Step::kDefaultRoute: what = "cannot add a default route via " + format_ipv4(iface.gateway); break;
    case Step::kScratchMount: what = "cannot mount a private tmpfs on /tmp in the new mount namespace"; break;
    case Step::kSysfs: what = "cannot show the namespace's devices in /sys/class/net"; break;
    case Step::kResolvConfOpen: what = "cannot open /etc/resolv.conf"; break;
    case Step::kResolvConfWrite: what = "cannot write the private resolv.conf"; break;
    case Step::kResolvConfBind: what = "cannot bind-mount the private resolv.conf over /etc/resolv.conf"; break;
    case Step::kIpv6Unavailable:
      what = std::string("IPv6 is not available in this kernel (no ") + kIpv6SysctlDir +
             "; booted with ipv6.disable=1?)";
      break;
    case Step::kIpv6Sysctl: {
      auto sysctls = ipv6_sysctls(iface);
      if (index < sysctls.size()) {
        what = std::string("cannot set ") + sysctls[index].name + "=" + sysctls[index].value + " for IPv6 on " +
               iface.name + " (" + sysctl_path(iface, sysctls[index]) + ")";
      } else {
        what = "cannot set the IPv6 sysctls of " + iface.name;
      }
      break;
    }
    case Step::kDisableIpv6:
      what = "cannot disable IPv6 on " + iface.name + " (" + sysctl_path(iface, {"disable_ipv6", "1"}) +
             "); it keeps the kernel's default IPv6 settings";
      break;
    case Step::kNetlinkSocket: what = "cannot open a netlink socket to configure IPv6 on " + iface.name; break;
    case Step::kInterfaceIndex: what = "cannot find the interface index of " + iface.name; break;
    case Step::kSetIpv6Address:
      if (index < iface.ipv6_addresses.size()) {
        const auto& [address, prefix] = iface.ipv6_addresses[index];
        what = "cannot add IPv6 address " + address.to_string() + "/" + std::to_string(prefix) + " to " + iface.name;
      } else {
        what = "cannot add an IPv6 address to " + iface.name;
      }
      break;
    case Step::kIpv6DefaultRoute:
      what = "cannot add an IPv6 default route via " + iface.ipv6_gateway.to_string() + " dev " + iface.name;
      break;
  }
  what += ": ";
  what += std::strerror(error);
  if (step == Step::kUnshareUser && (error == EPERM || error == ENOSPC || error == EUSERS)) {
    what += " (check kernel.unprivileged_userns_clone and user.max_user_namespaces)";
  }
  if (step == Step::kUnshareNetMount && error == EPERM) {
    what += " (is kernel.apparmor_restrict_unprivileged_userns set?)";
  }
  if (step == Step::kOpenTun && error == EACCES) {
    what += " (it should be mode 0666)";
  }
  if ((step == Step::kIpv6Sysctl || step == Step::kDisableIpv6) && error == EROFS) {
    what += " (/proc/sys is mounted read-only here)";
  }
  return what;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

void reap(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  reap(pid);
}

// Receives one Report (and an fd, if one came along). False on EOF.
bool receive_report(int sock, Report& report, Fd& fd) {
  iovec iov{&report, sizeof report};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    throw std::runtime_error("the namespace helper did not answer within " +
                             std::to_string(kHandshakeTimeoutSeconds) + " s");
  }
  if (n < 0) throw system_error("cannot talk to the namespace helper");
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
      fd.reset(received);
    }
  }
  return n == static_cast<ssize_t>(sizeof report);
}

std::pair<Fd, Fd> make_socketpair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    throw system_error("cannot create a socketpair");
  }
  timeval timeout{kHandshakeTimeoutSeconds, 0};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return {Fd(sv[0]), Fd(sv[1])};
}

void validate(const GuestInterface& iface) {
  if (iface.name.empty() || iface.name.size() >= IFNAMSIZ || iface.name.find('/') != std::string::npos ||
      iface.name.find_first_of(" \t\n:") != std::string::npos) {
    throw std::runtime_error("invalid interface name '" + iface.name + "'");
  }
  if (iface.mtu < 68 || iface.mtu > 65535) {
    throw std::runtime_error("invalid MTU " + std::to_string(iface.mtu) + " (68..65535)");
  }
  if (iface.configure) {
    if (iface.prefix > 32) throw std::runtime_error("invalid prefix /" + std::to_string(iface.prefix));
    if (iface.address == 0) throw std::runtime_error("no guest address to configure");
  }
  for (const auto& domain : iface.search) {
    if (domain.empty() || domain.find_first_of(" \t\r\n") != std::string::npos) {
      throw std::runtime_error("invalid search domain '" + domain + "'");
    }
  }
  for (const auto& server : iface.nameservers) {
    in6_addr buf{};
    if (inet_pton(AF_INET, server.c_str(), &buf) != 1 && inet_pton(AF_INET6, server.c_str(), &buf) != 1) {
      throw std::runtime_error("invalid nameserver '" + server + "' (an IPv4 or IPv6 address is needed)");
    }
  }
  if (!iface.ipv6) {
    if (!iface.ipv6_addresses.empty() || !iface.ipv6_gateway.is_unspecified()) {
      throw std::runtime_error("IPv6 addresses or an IPv6 gateway are given for " + iface.name +
                               " but IPv6 is off");
    }
    return;
  }
  if (iface.mtu < 1280) {
    throw std::runtime_error("IPv6 needs an MTU of at least 1280 on " + iface.name + ", not " +
                             std::to_string(iface.mtu));
  }
  for (const auto& [address, prefix] : iface.ipv6_addresses) {
    if (prefix < 1 || prefix > 128) {
      throw std::runtime_error("invalid IPv6 prefix length /" + std::to_string(prefix) + " for " +
                               address.to_string() + " (1..128)");
    }
    if (address.is_unspecified() || address.is_multicast() || address.is_loopback()) {
      throw std::runtime_error("invalid IPv6 address " + address.to_string() + " for " + iface.name);
    }
  }
  if (iface.ipv6_gateway.is_multicast() || iface.ipv6_gateway.is_loopback()) {
    throw std::runtime_error("invalid IPv6 gateway " + iface.ipv6_gateway.to_string());
  }
  if (iface.slaac_wait < std::chrono::milliseconds(0) || iface.slaac_wait > kMaxSlaacWait) {
    throw std::runtime_error("invalid SLAAC wait of " + std::to_string(iface.slaac_wait.count()) +
                             " ms (0.." + std::to_string(kMaxSlaacWait.count()) + ")");
  }
}

// `spawn`: for spawn_in_new_namespace(), which waits for SLAAC.
Ipv6Plan ipv6_plan(const GuestInterface& iface, bool spawn) {
  Ipv6Plan plan;
  for (const auto& sysctl : ipv6_sysctls(iface)) {
    plan.sysctls.emplace_back(sysctl_path(iface, sysctl), sysctl.value);
  }
  if (spawn && iface.ipv6 && iface.ipv6_slaac && iface.configure) {
    plan.slaac_wait_ms = static_cast<long>(iface.slaac_wait.count());
    plan.slaac_warning = "slipway: warning: " + iface.name + " has no IPv6 address from a router advertisement after " +
                         std::to_string(plan.slaac_wait_ms) + " ms; starting the command anyway\n";
  }
  return plan;
}

std::string resolv_conf_text(const GuestInterface& iface) {
  std::string text = "# Written by slipway for this network namespace.\n";
  if (iface.dns != 0) text += "nameserver " + format_ipv4(iface.dns) + "\n";
  for (const auto& server : iface.nameservers) text += "nameserver " + server + "\n";
  if (!iface.search.empty()) {
    text += "search";
    for (const auto& domain : iface.search) text += " " + domain;
    text += "\n";
  }
  return text;
}

void write_proc_file(pid_t pid, const char* file, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) throw system_error("cannot open " + path);
  if (write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    throw system_error("cannot write '" + content.substr(0, content.find('\n')) + "' to " + path);
  }
}

// Our own ID ranges, mapped one to one ("0 0 4294967295" in the initial
// user namespace).
std::string identity_map(const char* own_map) {
  std::ifstream in(own_map);
  std::string out;
  unsigned long inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count) {
    out += std::to_string(inside) + " " + std::to_string(inside) + " " + std::to_string(count) + "\n";
  }
  if (out.empty()) throw std::runtime_error(std::string("cannot read ") + own_map);
  return out;
}

void write_id_maps(pid_t pid) {
  if (geteuid() == 0) {
    write_proc_file(pid, "uid_map", identity_map("/proc/self/uid_map"));
    write_proc_file(pid, "gid_map", identity_map("/proc/self/gid_map"));
    return;
  }
  // Kernels before 3.19 have no setgroups file (and need no "deny").
  std::string setgroups = "/proc/" + std::to_string(pid) + "/setgroups";
  if (access(setgroups.c_str(), F_OK) == 0) write_proc_file(pid, "setgroups", "deny");
  write_proc_file(pid, "uid_map", "0 " + std::to_string(geteuid()) + " 1");
  write_proc_file(pid, "gid_map", "0 " + std::to_string(getegid()) + " 1");
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw system_error("cannot make the TAP fd non-blocking");
  }
}

void log_warning(const Report& report, const GuestInterface& iface, const std::string& target) {
  if (report.warning == Step::kNone) return;
  spdlog::warn("{}", describe(report.warning, report.warning_error, iface, target));
}

}  // namespace

Child spawn_in_new_namespace(const GuestInterface& iface, const std::vector<std::string>& argv) {
  validate(iface);
  if (argv.empty() || argv[0].empty()) throw std::runtime_error("no command to run");

  // Everything the child needs, prepared before fork.
  const std::string resolv_conf = resolv_conf_text(iface);
  const Ipv6Plan ipv6 = ipv6_plan(iface, true);
  std::vector<char*> child_argv;
  child_argv.reserve(argv.size() + 1);
  for (const auto& arg : argv) child_argv.push_back(const_cast<char*>(arg.c_str()));
  child_argv.push_back(nullptr);

  auto [parent_sock, child_sock] = make_socketpair();
  const SpawnPlan plan{&iface, &ipv6, &resolv_conf, child_argv.data(), getpid(), child_sock.get()};
  pid_t pid = fork();
  if (pid < 0) throw system_error("cannot fork");
  if (pid == 0) {
    close(parent_sock.get());
    spawn_child(plan);
  }
  child_sock.reset();

  try {
    Report report;
    Fd tap;
    // Step 1: the child has its user namespace.
    if (!receive_report(parent_sock.get(), report, tap)) {
      throw std::runtime_error("the namespace helper exited unexpectedly");
    }
    if (report.step != Step::kNone) {
      throw std::runtime_error(describe(report.step, report.error, iface, "", report.index));
    }
    // Step 2.
    write_id_maps(pid);
    char go = 1;
    if (send(parent_sock.get(), &go, 1, MSG_NOSIGNAL) != 1) throw system_error("cannot talk to the namespace helper");
    // Step 4.
    if (!receive_report(parent_sock.get(), report, tap)) {
      throw std::runtime_error("the namespace helper exited unexpectedly");
    }
    if (report.step != Step::kNone) {
      throw std::runtime_error(describe(report.step, report.error, iface, "", report.index));
    }
    if (tap.get() < 0) throw std::runtime_error("the namespace helper sent no TAP fd");
    set_nonblocking(tap.get());
    log_warning(report, iface, "");
    spdlog::debug("started '{}' as pid {} in a new namespace with TAP {}", argv[0], pid, iface.name);
    return Child{pid, tap.release()};
  } catch (...) {
    kill_and_reap(pid);
    throw;
  }
}

int open_tap_in_namespace(const std::string& target, const GuestInterface& iface) {
  validate(iface);
  if (target.empty()) throw std::runtime_error("no network namespace given");
  const bool is_pid = target.find_first_not_of("0123456789") == std::string::npos;
  const std::string path = is_pid ? "/proc/" + target + "/ns/net" : target;

  Fd net(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (net.get() < 0) throw system_error("cannot open network namespace " + path);
  int type = ioctl(net.get(), NS_GET_NSTYPE);
  if (type < 0 && errno == ENOTTY) throw std::runtime_error(path + " is not a namespace");
  if (type >= 0 && type != CLONE_NEWNET) throw std::runtime_error(path + " is not a network namespace");

  // As root we may configure any namespace from where we are; otherwise we
  // need the capabilities its owning user namespace grants (slirp4netns does
  // the same). setns() into our own user namespace would fail, so skip it.
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

  auto [parent_sock, child_sock] = make_socketpair();
  const Ipv6Plan ipv6 = ipv6_plan(iface, false);
  const AttachPlan plan{&iface, &ipv6, user.get(), net.get(), child_sock.get()};
  pid_t pid = fork();
  if (pid < 0) throw system_error("cannot fork");
  if (pid == 0) {
    close(parent_sock.get());
    attach_child(plan);
  }
  child_sock.reset();

  Report report;
  Fd tap;
  try {
    if (!receive_report(parent_sock.get(), report, tap)) {
      throw std::runtime_error("the namespace helper exited unexpectedly");
    }
  } catch (...) {
    kill_and_reap(pid);
    throw;
  }
  reap(pid);
  if (report.step != Step::kNone) {
    throw std::runtime_error(describe(report.step, report.error, iface, path, report.index));
  }
  if (tap.get() < 0) throw std::runtime_error("the namespace helper sent no TAP fd");
  set_nonblocking(tap.get());
  spdlog::debug("created TAP {} in {}", iface.name, path);
  return tap.release();
}

}  // namespace slipway::ns
