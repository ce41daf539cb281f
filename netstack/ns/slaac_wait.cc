// Waiting for the SLAAC address: see slaac_wait.h.
#include "netstack/ns/slaac_wait.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "netstack/sys/fd.h"

namespace slipway::ns {
namespace {

constexpr long kSlaacPollMs = 20;
constexpr int kMaxProcReads = 256;  // of 4 KiB: /proc/net/if_inet6 is far smaller

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

bool has_slaac_address(const char* name) {
  sys::Fd fd(open("/proc/net/if_inet6", O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[4096];
  size_t have = 0;
  bool found = false;
  for (int reads = 0; reads < kMaxProcReads && !found; ++reads) {
    ssize_t n = read(fd.get(), buf + have, sizeof buf - have);
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
  return found;
}

long monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

SlaacWait slaac_wait_plan(const GuestInterface& iface) {
  SlaacWait wait;
  if (iface.ipv6 && iface.ipv6_slaac && iface.configure) {
    wait.limit_ms = static_cast<long>(iface.slaac_wait.count());
    wait.warning = "slipway: warning: " + iface.name + " has no IPv6 address from a router advertisement after " +
                   std::to_string(wait.limit_ms) + " ms; starting the command anyway\n";
  }
  return wait;
}

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

}  // namespace slipway::ns
