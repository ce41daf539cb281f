// What the fuzz targets share: a private network namespace for the targets
// that open host sockets, reading a fuzz input as a sequence of records, and
// running a libuv loop a bounded number of turns.
//
// Targets that build a Stack or publish ports (frame, dns, control,
// portfwd) would otherwise open connections and listeners on the host for
// every address and port the fuzzer invents. isolate_network() moves the
// process into a new user and network namespace that has only its loopback
// (brought up), so everything stays inside it. It exits with 77 (ctest's
// skip code) when user namespaces are not available.
#pragma once

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>

namespace slipway::fuzz {

inline void isolate_network() {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "fuzz: unshare(CLONE_NEWUSER|CLONE_NEWNET) failed (%s): this target needs a "
                 "private network namespace\n", std::strerror(errno));
    std::exit(77);
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) std::abort();
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) std::abort();
  close(s);
}

// What every target does first: logging off (it would cost more than the
// code under test), and SIGPIPE ignored as the programs ignore it.
inline void quiet() {
  spdlog::set_level(spdlog::level::off);
  ::signal(SIGPIPE, SIG_IGN);
}

// Reads records of [2-byte big-endian length][bytes]; a length past the end
// takes what is left.
class Records {
 public:
  Records(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool next(std::span<const std::byte>& out) {
    if (end_ - p_ < 2) return false;
    size_t n = (size_t{p_[0]} << 8) | p_[1];
    p_ += 2;
    n = std::min(n, static_cast<size_t>(end_ - p_));
    out = {reinterpret_cast<const std::byte*>(p_), n};
    p_ += n;
    return true;
  }
  std::span<const std::byte> rest() const { return {reinterpret_cast<const std::byte*>(p_), static_cast<size_t>(end_ - p_)}; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

inline std::span<const std::byte> bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

// Runs `turns` non-blocking iterations of the loop.
inline void spin(uv_loop_t* loop, int turns) {
  for (int i = 0; i < turns; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

}  // namespace slipway::fuzz
