// The words for the namespace helper's failures: see describe.h.
#include "netstack/ns/describe.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "netstack/ns/sysctls.h"

namespace slipway::ns {

std::string format_ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) +
         "." + std::to_string(a & 0xff);
}

std::string describe(Step step, int error, const GuestInterface& iface, uint32_t index) {
  std::string what;
  switch (step) {
    case Step::kNone: what = "no error"; break;
    case Step::kUnshareUser: what = "user namespaces are not available"; break;
    case Step::kUnshareNetMount: what = "cannot create network and mount namespaces"; break;
    case Step::kMakeMountsPrivate: what = "cannot make mounts private in the new mount namespace"; break;
    case Step::kOpenTun: what = "cannot open /dev/net/tun"; break;
    case Step::kCreateTap: what = "cannot create TAP device " + iface.name; break;
    case Step::kTapOffload: what = "cannot turn on checksum and segmentation offload on " + iface.name + " (try --no-offload)"; break;
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

void log_warning(const Report& report, const GuestInterface& iface) {
  if (report.warning == Step::kNone) return;
  spdlog::warn("{}", describe(report.warning, report.warning_error, iface));
}

}  // namespace slipway::ns
