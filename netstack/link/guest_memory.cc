// GuestMemory; see guest_memory.h for the theory of operation.
#include "netstack/link/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace slipway::link {

namespace {
// True if [base, base + size) does not wrap around 2^64.
bool fits(uint64_t base, uint64_t size) { return size != 0 && base <= std::numeric_limits<uint64_t>::max() - (size - 1); }
}  // namespace

bool GuestMemory::add_region(uint64_t gpa, uint64_t size, uint64_t uaddr, std::byte* host) {
  if (regions_.size() >= kMaxRegions || host == nullptr || !fits(gpa, size) || !fits(uaddr, size)) return false;
  regions_.push_back(Region{.gpa = gpa, .size = size, .uaddr = uaddr, .host = host});
  return true;
}

std::optional<std::string> GuestMemory::map_fd(int fd, uint64_t gpa, uint64_t size, uint64_t uaddr,
                                               uint64_t mmap_offset) {
  if (regions_.size() >= kMaxRegions) return "too many memory regions";
  if (!fits(gpa, size) || !fits(uaddr, size)) return "memory region is empty or wraps";
  if (mmap_offset > std::numeric_limits<size_t>::max() - size ||
      size + mmap_offset > static_cast<uint64_t>(std::numeric_limits<ssize_t>::max()))
    return "memory region too large";
  size_t len = static_cast<size_t>(size + mmap_offset);
  // A mapping past the end of a file faults (SIGBUS) where the guest's
  // descriptors point into it: a region must lie inside its file.
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::string("fstat: ") + std::strerror(errno);
  if (S_ISREG(st.st_mode) && len > static_cast<uint64_t>(st.st_size))
    return "memory region ends at " + std::to_string(len) + " bytes into its file, which has " +
           std::to_string(st.st_size);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) return std::string("mmap: ") + std::strerror(errno);
  regions_.push_back(Region{.gpa = gpa,
                            .size = size,
                            .uaddr = uaddr,
                            .host = static_cast<std::byte*>(p) + mmap_offset,
                            .map_base = p,
                            .map_len = len});
  return std::nullopt;
}

void GuestMemory::clear() {
  for (auto& r : regions_)
    if (r.map_base != nullptr) ::munmap(r.map_base, r.map_len);
  regions_.clear();
}

std::byte* GuestMemory::translate(uint64_t Region::*base, uint64_t addr, uint64_t len) const {
  for (const auto& r : regions_) {
    if (addr < r.*base) continue;
    uint64_t off = addr - r.*base;
    if (off < r.size && len <= r.size - off) return r.host + off;
  }
  return nullptr;
}

std::byte* GuestMemory::translate_gpa(uint64_t gpa, uint64_t len) const { return translate(&Region::gpa, gpa, len); }

std::byte* GuestMemory::translate_uva(uint64_t uaddr, uint64_t len) const {
  return translate(&Region::uaddr, uaddr, len);
}

const GuestMemory::Region* GuestMemory::region_of_gpa(uint64_t gpa) const {
  for (const auto& r : regions_)
    if (gpa >= r.gpa && gpa - r.gpa < r.size) return &r;
  return nullptr;
}

}  // namespace slipway::link
