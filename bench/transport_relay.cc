// transport_relay: a kernel's network stack as the guest of a slipway VM
// transport, for bench/transports.sh (TCP rows) and
// tests/e2e/test_transport_relay.sh.
//
// Theory of operation
//   The relay creates a TAP device in its network namespace (the caller's
//   job: run it with nsenter in a namespace of its own, then give the
//   interface the guest's address, route and MTU) and relays frames between
//   that TAP and slipway's transport, playing the VMM: the kernel in the
//   namespace is the guest, its TAP interface the guest's NIC.
//
//     transport_relay (--vhost-user|--stream|--dgram) PATH --tap NAME
//                     [--offload] [--seconds S]
//
//   --offload (vhost-user only): the TAP is made with IFF_VNET_HDR, a
//   10-byte header (TUNSETVNETHDRSZ) and TUNSETOFFLOAD csum/TSO4/TSO6/
//   TSO_ECN, and the frontend acks slipway's offload features (GuestLink),
//   so partial checksums and TCP segments of up to 64 KiB cross both ways
//   as a virtio-net guest's would. The header is copied between the TAP's
//   10 bytes and the ring's 12: num_buffers is 0 on transmit, and on
//   receive the frame's num_buffers buffers are written to the TAP as one
//   frame (writev, no copy). Without --offload the TAP carries plain
//   frames; the ring's header is then zeroed on transmit and must be all
//   zero on receive (slipway may not send offloads to a guest that did not
//   negotiate them). stream and dgram carry plain frames only.
//
//   Checks, counted and printed, never fatal: a header from slipway that
//   does not parse (wire::parse_virtio_net_hdr) or is not zero without
//   offloads (the frame is dropped), a frame the TAP refuses (write error,
//   e.g. EINVAL for a bad GSO header: the first few are printed with their
//   header), a TAP frame longer than the transport's buffer (truncated read;
//   dropped), and the link's own ring errors (guest_link.h).
//
//   One thread, one poll() loop; per wake-up at most kFramesPerWake frames
//   each way (bounded work, as slipway's own ports do). When the transport
//   has no room the TAP is not read (its kernel queue holds or drops, as
//   with a real NIC). SIGTERM or SIGINT, or --seconds (default: no limit),
//   ends the relay; it then prints one line of counters ("up": TAP ->
//   slipway, guest -> host; "down": slipway -> TAP):
//
//     relay transport=T offload=on|off up_frames= up_bytes= up_gso= up_gso6=
//       up_csum= up_max= up_truncated= down_frames= down_bytes= down_gso=
//       down_gso6= down_csum= down_max= down_bad_header= down_tap_errors=
//       ring_bad_used= ring_partial=
//
//   (gso: TCP segmentation frames, gso6 those over IPv6; csum: frames with
//   a partial checksum; max: the largest frame in bytes.)
//
//   A line "relay: ready" on stdout says the TAP exists and the transport is
//   connected.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/guest_link.h"
#include "netstack/wire/offload.h"

namespace {

namespace bench = slipway::bench;
namespace wire = slipway::wire;
using Clock = std::chrono::steady_clock;

constexpr int kFramesPerWake = 64;
constexpr int kMaxPrintedErrors = 5;

volatile sig_atomic_t g_stop = 0;

int open_tap(const std::string& name, bool vnet_header) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) bench::die("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = short(IFF_TAP | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) bench::die("TUNSETIFF " + name);
  if (vnet_header) {
    int len = int(bench::kVnetHdrLen);
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &len) < 0) bench::die("TUNSETVNETHDRSZ");
    if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) bench::die("TUNSETOFFLOAD");
  }
  return fd;
}

std::string hex(std::span<const std::byte> b) {
  std::string s;
  char x[4];
  for (auto c : b) {
    std::snprintf(x, sizeof x, "%02x", unsigned(c));
    s += x;
  }
  return s;
}

struct Direction {
  uint64_t frames = 0, bytes = 0, gso = 0, gso6 = 0, csum = 0, max = 0;
  void count(size_t size, const wire::Offload& o) {
    frames++;
    bytes += size;
    if (o.is_gso()) gso++;
    if (o.gso == wire::Offload::Gso::kTcpV6) gso6++;
    if (o.needs_csum()) csum++;
    max = std::max<uint64_t>(max, size);
  }
};

class Relay {
 public:
  Relay(std::unique_ptr<bench::GuestLink> link, int tap, bool offload)
      : link_(std::move(link)), tap_(tap), offload_(offload) {
    iov_.reserve(64);
  }

  // Runs until a signal or the deadline.
  void run(Clock::time_point deadline) {
    std::vector<pollfd> fds;
    while (!g_stop && Clock::now() < deadline) {
      // slipway -> guest
      int down = link_->poll_rx(kFramesPerWake, [this](const bench::RxFrame& f) { to_tap(f); });
      // guest -> slipway
      int up = 0;
      bool blocked = false;
      for (; up < kFramesPerWake; ++up) {
        auto slot = link_->tx_slot();
        if (!slot) {
          blocked = true;
          break;
        }
        if (!from_tap(*slot)) break;
      }
      link_->flush();
      if (down == kFramesPerWake || up == kFramesPerWake) continue;  // more to do: no sleep

      fds.clear();
      auto rx = link_->arm_rx();
      if (!rx) continue;
      fds.push_back(*rx);
      auto tx = link_->arm_tx();
      if (blocked && !tx) continue;  // room appeared
      if (tx) fds.push_back(*tx);
      if (!blocked) fds.push_back(pollfd{tap_, POLLIN, 0});
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      int timeout = int(std::clamp<long long>(left, 0, 1000));
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) bench::die("poll");
    }
  }

  void print(const std::string& kind) const {
    const auto& e = link_->errors();
    std::printf(
        "relay transport=%s offload=%s up_frames=%llu up_bytes=%llu up_gso=%llu up_gso6=%llu up_csum=%llu "
        "up_max=%llu up_truncated=%llu down_frames=%llu down_bytes=%llu down_gso=%llu down_gso6=%llu "
        "down_csum=%llu down_max=%llu down_bad_header=%llu down_tap_errors=%llu ring_bad_used=%llu ring_partial=%llu\n",
        kind.c_str(), offload_ ? "on" : "off", u(up_.frames), u(up_.bytes), u(up_.gso), u(up_.gso6), u(up_.csum),
        u(up_.max), u(up_truncated_), u(down_.frames), u(down_.bytes), u(down_.gso), u(down_.gso6), u(down_.csum),
        u(down_.max),
        u(down_bad_header_), u(down_tap_errors_), u(e.bad_used), u(e.rx_partial));
    std::fflush(stdout);
  }

 private:
  static unsigned long long u(uint64_t v) { return static_cast<unsigned long long>(v); }

  // Reads one TAP frame into the slot and commits it; false if the TAP had
  // none. A frame that does not fit the slot is read, dropped and counted.
  bool from_tap(const bench::TxSlot& slot) {
    // With offloads the TAP's header goes where the ring's is (the slot's
    // header); without them the TAP has none.
    iovec iov[2];
    int n = 0;
    if (offload_) iov[n++] = iovec{slot.header.data(), bench::kVnetHdrLen};
    iov[n++] = iovec{slot.frame.data(), slot.frame.size()};
    ssize_t r = ::readv(tap_, iov, n);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return false;
      bench::die("TAP read");
    }
    size_t hdr = offload_ ? bench::kVnetHdrLen : 0;
    size_t size = size_t(r) > hdr ? size_t(r) - hdr : 0;
    if (size == 0 || size >= slot.frame.size()) {  // empty, or may have been cut: never send it
      up_truncated_++;
      return true;
    }
    wire::Offload o;
    if (offload_) {
      if (auto parsed = wire::parse_virtio_net_hdr(slot.header)) o = *parsed;
    }
    up_.count(size, o);
    link_->tx_commit(size);
    return true;
  }

  void to_tap(const bench::RxFrame& f) {
    wire::Offload o;
    if (!f.header.empty()) {
      wire::OffloadError err{};
      auto parsed = wire::parse_virtio_net_hdr(f.header, &err);
      bool zero = std::all_of(f.header.begin(), f.header.end(), [](std::byte b) { return b == std::byte{0}; });
      if (!parsed || (!offload_ && !zero)) {
        if (down_bad_header_++ < kMaxPrintedErrors)
          std::fprintf(stderr, "transport_relay: header from slipway refused (%s): %s, frame of %zu bytes\n",
                       parsed ? "offloads not negotiated" : wire::to_string(err), hex(f.header).c_str(), f.size);
        return;
      }
      o = *parsed;
    }
    iov_.clear();
    if (offload_) iov_.push_back(iovec{const_cast<std::byte*>(f.header.data()), bench::kVnetHdrLen});
    iov_.insert(iov_.end(), f.pieces.begin(), f.pieces.end());
    ssize_t r = ::writev(tap_, iov_.data(), int(iov_.size()));
    if (r < 0) {
      if (down_tap_errors_++ < kMaxPrintedErrors)
        std::fprintf(stderr, "transport_relay: the TAP refused a frame from slipway (%s): header %s, %zu bytes\n",
                     std::strerror(errno), hex(f.header).c_str(), f.size);
      return;
    }
    down_.count(f.size, o);
  }

  std::unique_ptr<bench::GuestLink> link_;
  int tap_;
  bool offload_;
  std::vector<iovec> iov_;
  Direction up_, down_;
  uint64_t up_truncated_ = 0, down_bad_header_ = 0, down_tap_errors_ = 0;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: transport_relay (--vhost-user|--stream|--dgram) PATH --tap NAME [--offload] [--queue-size N] [--seconds S]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind, path, tap_name;
  bool offload = false;
  double seconds = 0;
  int queue_size = bench::kQueueSize;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--offload") {
      offload = true;
      continue;
    }
    if (i + 1 >= argc) usage();
    std::string v = argv[++i];
    if (a == "--vhost-user" || a == "--stream" || a == "--dgram") {
      kind = a.substr(2);
      path = v;
    } else if (a == "--tap") {
      tap_name = v;
    } else if (a == "--queue-size") {
      queue_size = std::atoi(v.c_str());
    } else if (a == "--seconds") {
      seconds = std::atof(v.c_str());
    } else {
      usage();
    }
  }
  if (kind.empty() || tap_name.empty()) usage();
  if (offload && kind != "vhost-user") bench::die_plain("--offload: only vhost-user carries offloads");
  // (GuestLink hands out a header in the slot exactly when offloads are on.)

  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigemptyset(&sa.sa_mask);  // no SA_RESTART: poll() returns at once
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  // With TSO the TAP hands over frames of up to 64 KiB; a transmit buffer
  // holds the ring's header and one such frame.
  bench::VhostUserOptions vo;
  vo.offloads = offload;
  if (queue_size < 1 || queue_size > 32768) usage();
  vo.queue_size = uint16_t(queue_size);
  vo.rx_buffer = 4096;  // Linux's mergeable buffers grow to a page for large frames
  vo.tx_buffer = offload ? bench::kRingHdrLen + bench::kMaxFrame + 1 : 2048;
  auto link = bench::connect_link(kind, path, vo);
  int tap = open_tap(tap_name, offload);
  std::printf("relay: ready\n");
  std::fflush(stdout);

  Relay relay(std::move(link), tap, offload);
  auto deadline = seconds > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(seconds))
                              : Clock::time_point::max();
  relay.run(deadline);
  relay.print(kind);
  ::close(tap);
  return 0;
}
