// GuestMemory: the table of guest memory regions a vhost-user frontend
// shares, and the only way the backend turns guest addresses into host
// pointers.
//
// Each region has a guest-physical base (what descriptors carry), a size, a
// frontend user address (what SET_VRING_ADDR carries) and the host mapping.
// translate_gpa()/translate_uva() return a host pointer only when the whole
// range [addr, addr + len) lies inside one region; the arithmetic never
// overflows (a range is checked as offset <= size - len, never addr + len).
// A buffer that crosses a region boundary is walked region by region by the
// caller (Virtqueue), each piece translated on its own.
//
// map_fd() refuses a region that ends past the end of its file (a regular
// file or memfd): touching such a mapping would kill the process with
// SIGBUS.
//
// Limits: at most kMaxRegions regions (vhost-user's VHOST_MEMORY_BASELINE_NREGIONS).
// Mappings made by map_fd() are unmapped by clear() and the destructor;
// regions added with add_region() (tests, in-process frontends) are borrowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slipway::link {

class GuestMemory {
 public:
  static constexpr size_t kMaxRegions = 8;

  struct Region {
    uint64_t gpa = 0;    // guest physical base
    uint64_t size = 0;
    uint64_t uaddr = 0;  // frontend user address of the base
    std::byte* host = nullptr;
    void* map_base = nullptr;  // what to munmap (null: borrowed)
    size_t map_len = 0;
  };

  GuestMemory() = default;
  ~GuestMemory() { clear(); }
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Borrows host memory (the caller keeps it alive). False if the table is
  // full or the region is empty or wraps.
  bool add_region(uint64_t gpa, uint64_t size, uint64_t uaddr, std::byte* host);
  // Maps fd (MAP_SHARED, size + mmap_offset bytes from offset 0, as
  // libvhost-user does) and adds the region. Does not close fd. On failure
  // returns a reason.
  std::optional<std::string> map_fd(int fd, uint64_t gpa, uint64_t size, uint64_t uaddr, uint64_t mmap_offset);
  void clear();

  // Host pointer for [gpa, gpa + len) if it lies within one region.
  std::byte* translate_gpa(uint64_t gpa, uint64_t len) const;
  // Host pointer for the frontend user range [uaddr, uaddr + len).
  std::byte* translate_uva(uint64_t uaddr, uint64_t len) const;
  // The region holding gpa (and how many bytes of it remain), for walking a
  // buffer that spans regions; null if gpa is in none.
  const Region* region_of_gpa(uint64_t gpa) const;

  bool empty() const { return regions_.empty(); }
  size_t size() const { return regions_.size(); }

 private:
  // [addr, addr + len) in the address space whose region bases are `base`
  // (Region::gpa or Region::uaddr).
  std::byte* translate(uint64_t Region::*base, uint64_t addr, uint64_t len) const;

  std::vector<Region> regions_;
};

}  // namespace slipway::link
