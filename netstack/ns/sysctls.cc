// The interface's IPv6 sysctls: see sysctls.h.
#include "netstack/ns/sysctls.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace slipway::ns {
namespace {

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

}  // namespace

std::vector<Sysctl> ipv6_sysctls(const GuestInterface& iface) {
  if (!iface.ipv6) return {{"disable_ipv6", "1"}};
  return {{"accept_dad", "0"}, {"accept_ra", iface.ipv6_slaac ? "1" : "0"},
          {"autoconf", iface.ipv6_slaac ? "1" : "0"}, {"disable_ipv6", "0"}};
}

std::string sysctl_path(const GuestInterface& iface, const Sysctl& sysctl) {
  return std::string(kIpv6SysctlDir) + "/conf/" + iface.name + "/" + sysctl.name;
}

SysctlPlan sysctl_plan(const GuestInterface& iface) {
  SysctlPlan plan;
  for (const auto& sysctl : ipv6_sysctls(iface)) plan.emplace_back(sysctl_path(iface, sysctl), sysctl.value);
  return plan;
}

bool set_ipv6_sysctls(const GuestInterface& iface, const SysctlPlan& plan, Report& report) {
  if (access(kIpv6SysctlDir, F_OK) < 0 && errno == ENOENT) {
    // No IPv6 in this kernel: off is what we have; on cannot be.
    return iface.ipv6 ? fail(report, Step::kIpv6Unavailable) : true;
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    if (write_sysctl(plan[i].first.c_str(), plan[i].second)) continue;
    if (!iface.ipv6) {
      warn(report, Step::kDisableIpv6);
      return true;
    }
    return fail_at(report, Step::kIpv6Sysctl, i);
  }
  return true;
}

}  // namespace slipway::ns
