// The mount-namespace part of `slipway run`: see mounts.h.
#include "netstack/ns/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "netstack/ns/describe.h"
#include "netstack/sys/fd.h"

namespace slipway::ns {
namespace {

constexpr const char* kScratchDir = "/tmp";
constexpr const char* kScratchSysfs = "/tmp/sys";
constexpr const char* kScratchResolvConf = "/tmp/resolv.conf";

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

// Step 3. Failure is a warning: the network works without it.
void rebind_sysfs_net(Report& report) {
  sys::Fd class_net(open("/sys/class/net", O_PATH | O_DIRECTORY | O_CLOEXEC));
  sys::Fd virtual_net(open("/sys/devices/virtual/net", O_PATH | O_DIRECTORY | O_CLOEXEC));
  char path[32];
  if (!class_net || !virtual_net) {
    warn(report, Step::kSysfs);
  } else if (mkdir(kScratchSysfs, 0755) < 0 ||
             mount("sysfs", kScratchSysfs, "sysfs", sysfs_mount_flags(), nullptr) < 0) {
    warn(report, Step::kSysfs);
  } else {
    if (mount("/tmp/sys/class/net", fd_path(path, class_net.get()), nullptr, MS_BIND, nullptr) < 0 ||
        mount("/tmp/sys/devices/virtual/net", fd_path(path, virtual_net.get()), nullptr, MS_BIND, nullptr) < 0) {
      warn(report, Step::kSysfs);
    }
    umount2(kScratchSysfs, MNT_DETACH);
  }
}

// Step 4: writes `content` to the scratch tmpfs and binds it over `target`.
bool bind_resolv_conf(int target, const std::string& content, Report& report) {
  sys::Fd fd(open(kScratchResolvConf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail(report, Step::kResolvConfWrite);
  ssize_t n = write(fd.get(), content.data(), content.size());
  if (n != static_cast<ssize_t>(content.size())) {
    if (n >= 0) errno = EIO;
    return fail(report, Step::kResolvConfWrite);
  }
  fd.reset();
  char path[32];
  if (mount(kScratchResolvConf, fd_path(path, target), nullptr, MS_BIND, nullptr) < 0) {
    return fail(report, Step::kResolvConfBind);
  }
  return true;
}

}  // namespace

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

bool set_up_mounts(const GuestInterface& iface, const std::string& resolv_conf, Report& report) {
  // Step 1: /etc/resolv.conf, or what a symlink there points to.
  sys::Fd resolv_target;
  if (iface.configure) {
    resolv_target.reset(open("/etc/resolv.conf", O_PATH | O_CLOEXEC));
    if (!resolv_target && errno != ENOENT) return fail(report, Step::kResolvConfOpen);
    // No /etc/resolv.conf at all: nothing to replace; the command has no DNS
    // configuration either way.
    if (!resolv_target) warn(report, Step::kResolvConfOpen);
  }
  // Step 2.
  if (mount("tmpfs", kScratchDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") < 0) {
    return fail(report, Step::kScratchMount);
  }
  rebind_sysfs_net(report);
  bool ok = !resolv_target || bind_resolv_conf(resolv_target.get(), resolv_conf, report);
  // Step 5.
  umount2(kScratchDir, MNT_DETACH);
  return ok;
}

}  // namespace slipway::ns
