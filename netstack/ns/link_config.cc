// Creating and configuring the guest's TAP: see link_config.h.
#include "netstack/ns/link_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <span>

#include "netstack/sys/fd.h"
#include "netstack/sys/netlink.h"

namespace slipway::ns {
namespace {

namespace netlink = sys::netlink;

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

uint32_t prefix_to_mask(unsigned prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

bool bring_up(int sock, const char* name) {
  ifreq ifr{};
  set_name(ifr, name);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
}

// request_ack() with errno set from its answer; false on failure.
bool acknowledged(int sock, netlink::Request& request) {
  request.set_seq(1);
  const int error = netlink::request_ack(sock, request);
  if (error == 0) return true;
  errno = error;
  return false;
}

// Step 6: the static IPv6 addresses and default route.
bool configure_ipv6_static(const GuestInterface& iface, int control_sock, Report& report) {
  if (iface.ipv6_addresses.empty() && iface.ipv6_gateway.is_unspecified()) return true;
  ifreq ifr{};
  set_name(ifr, iface.name.c_str());
  if (ioctl(control_sock, SIOCGIFINDEX, &ifr) < 0) return fail(report, Step::kInterfaceIndex);
  const int ifindex = ifr.ifr_ifindex;

  sys::Fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock) return fail(report, Step::kNetlinkSocket);
  for (size_t i = 0; i < iface.ipv6_addresses.size(); ++i) {
    const auto& [address, prefix] = iface.ipv6_addresses[i];
    netlink::Request request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
    netlink::emit(request,
                  netlink::IfAddrMsg{AF_INET6, static_cast<uint8_t>(prefix), IFA_F_NODAD, 0, static_cast<uint32_t>(ifindex)});
    request.attribute(IFA_ADDRESS, std::as_bytes(std::span(address.octets)));
    const uint32_t flags = IFA_F_NODAD;
    request.attribute(IFA_FLAGS, std::as_bytes(std::span(&flags, 1)));
    if (!acknowledged(sock.get(), request)) return fail_at(report, Step::kSetIpv6Address, i);
  }
  if (!iface.ipv6_gateway.is_unspecified()) {
    // Plain NLM_F_CREATE, like `route add`: a default route that is already
    // there (an attached namespace's) stays.
    netlink::Request request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE);
    netlink::RtMsg route;
    route.family = AF_INET6;
    route.table = RT_TABLE_MAIN;
    route.protocol = RTPROT_BOOT;
    route.scope = RT_SCOPE_UNIVERSE;
    route.type = RTN_UNICAST;
    netlink::emit(request, route);
    request.attribute(RTA_GATEWAY, std::as_bytes(std::span(iface.ipv6_gateway.octets)));
    request.attribute(RTA_OIF, std::as_bytes(std::span(&ifindex, 1)));
    if (!acknowledged(sock.get(), request)) return fail(report, Step::kIpv6DefaultRoute);
  }
  return true;
}

}  // namespace

int create_tap(const GuestInterface& iface, Report& report) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    fail(report, Step::kOpenTun);
    return -1;
  }
  ifreq ifr{};
  set_name(ifr, iface.name.c_str());
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (iface.offload ? IFF_VNET_HDR : 0));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fail(report, Step::kCreateTap);
    close(fd);
    return -1;
  }
  if (iface.offload) {
    // Every frame is preceded by a 10-byte virtio-net header both ways, and
    // the guest's kernel may hand us frames with partial checksums and TCP
    // segments of up to 64 KiB (it segments nothing itself).
    int header = kTapVnetHeaderLen;
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &header) < 0 || ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
      fail(report, Step::kTapOffload);
      close(fd);
      return -1;
    }
  }
  return fd;
}

bool configure_link(const GuestInterface& iface, const SysctlPlan& sysctls, Report& report) {
  sys::Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return fail(report, Step::kControlSocket);
  const char* name = iface.name.c_str();

  ifreq ifr{};
  set_name(ifr, name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, iface.mac.data(), iface.mac.size());
  if (ioctl(sock.get(), SIOCSIFHWADDR, &ifr) < 0) return fail(report, Step::kSetMac);

  ifr = {};
  set_name(ifr, name);
  ifr.ifr_mtu = static_cast<int>(iface.mtu);
  if (ioctl(sock.get(), SIOCSIFMTU, &ifr) < 0) return fail(report, Step::kSetMtu);

  if (!bring_up(sock.get(), "lo")) return fail(report, Step::kLoUp);

  if (iface.configure) {
    ifr = {};
    set_name(ifr, name);
    set_ipv4(ifr.ifr_addr, iface.address);
    if (ioctl(sock.get(), SIOCSIFADDR, &ifr) < 0) return fail(report, Step::kSetAddress);
    ifr = {};
    set_name(ifr, name);
    set_ipv4(ifr.ifr_netmask, prefix_to_mask(iface.prefix));
    if (ioctl(sock.get(), SIOCSIFNETMASK, &ifr) < 0) return fail(report, Step::kSetNetmask);
  }

  if (!set_ipv6_sysctls(iface, sysctls, report)) return false;

  if (!bring_up(sock.get(), name)) return fail(report, Step::kTapUp);

  if (iface.configure && iface.gateway != 0) {
    rtentry rt{};
    set_ipv4(rt.rt_dst, 0);
    set_ipv4(rt.rt_genmask, 0);
    set_ipv4(rt.rt_gateway, iface.gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    char dev[IFNAMSIZ] = {};
    std::strncpy(dev, name, IFNAMSIZ - 1);
    rt.rt_dev = dev;
    if (ioctl(sock.get(), SIOCADDRT, &rt) < 0) return fail(report, Step::kDefaultRoute);
  }

  if (iface.ipv6 && iface.configure) return configure_ipv6_static(iface, sock.get(), report);
  return true;
}

int create_configured_tap(const GuestInterface& iface, const SysctlPlan& sysctls, Report& report) {
  sys::Fd tap(create_tap(iface, report));
  if (!tap || !configure_link(iface, sysctls, report)) return -1;
  return tap.release();
}

}  // namespace slipway::ns
