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
//                private; creates the TAP, sets its MAC and MTU, brings lo and
//                it up and, when configuring, sets the address, netmask and
//                default route. Rebinds /sys/class/net and
//                /sys/devices/virtual/net from a sysfs mounted in the new
//                namespace (so /sys shows the namespace's devices while
//                /sys/fs/cgroup and the rest stay as they were), and binds a
//                private resolv.conf over /etc/resolv.conf (following a
//                symlink). Sends Report plus the TAP fd (SCM_RIGHTS).
//     4. parent: receives the fd, makes it O_NONBLOCK, returns.
//     5. child:  closes every fd but 0, 1, 2, restores default signal
//                handling and an empty mask, sets PR_SET_PDEATHSIG(SIGTERM)
//                and execs the command.
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
//   - IPv6 on the TAP is left to the kernel's defaults.
#include "netstack/ns/namespace.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
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
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace slipway::ns {
namespace {

constexpr int kHandshakeTimeoutSeconds = 10;
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
};

// One message from the child. Our own IPC between two copies of this
// program, so a plain struct is fine.
struct Report {
  Step step = Step::kNone;
  int32_t error = 0;
  Step warning = Step::kNone;  // a non-fatal failure, logged by the parent
  int32_t warning_error = 0;
};

// ---- Child side: system calls only, no allocation. -------------------------

bool fail(Report& report, Step step) {
  report.step = step;
  report.error = errno;
  return false;
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

// MAC, MTU, lo up, address, netmask, up, default route; in that order
// because the MAC can only change while the link is down and the gateway
// must be on a connected subnet.
bool configure_link(const GuestInterface& iface, Report& report) {
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
    return true;
  }();
  close(sock);
  return ok;
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
    if (!configure_link(*plan.iface, report)) return false;
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
    return configure_link(*plan.iface, report);
  }();
  if (!send_report(plan.sock, report, ok ? tap : -1)) _exit(1);
  _exit(ok ? 0 : 1);
}

// ---- Parent side. ----------------------------------------------------------

std::string format_ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::string describe(Step step, int error, const GuestInterface& iface, const std::string& target) {
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
}

std::string resolv_conf_text(const GuestInterface& iface) {
  std::string text = "# Written by slipway for this network namespace.\n";
  if (iface.dns != 0) text += "nameserver " + format_ipv4(iface.dns) + "\n";
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
  std::vector<char*> child_argv;
  child_argv.reserve(argv.size() + 1);
  for (const auto& arg : argv) child_argv.push_back(const_cast<char*>(arg.c_str()));
  child_argv.push_back(nullptr);

  auto [parent_sock, child_sock] = make_socketpair();
  const SpawnPlan plan{&iface, &resolv_conf, child_argv.data(), getpid(), child_sock.get()};
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
    if (report.step != Step::kNone) throw std::runtime_error(describe(report.step, report.error, iface, ""));
    // Step 2.
    write_id_maps(pid);
    char go = 1;
    if (send(parent_sock.get(), &go, 1, MSG_NOSIGNAL) != 1) throw system_error("cannot talk to the namespace helper");
    // Step 4.
    if (!receive_report(parent_sock.get(), report, tap)) {
      throw std::runtime_error("the namespace helper exited unexpectedly");
    }
    if (report.step != Step::kNone) throw std::runtime_error(describe(report.step, report.error, iface, ""));
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
  const AttachPlan plan{&iface, user.get(), net.get(), child_sock.get()};
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
  if (report.step != Step::kNone) throw std::runtime_error(describe(report.step, report.error, iface, path));
  if (tap.get() < 0) throw std::runtime_error("the namespace helper sent no TAP fd");
  set_nonblocking(tap.get());
  spdlog::debug("created TAP {} in {}", iface.name, path);
  return tap.release();
}

}  // namespace slipway::ns
