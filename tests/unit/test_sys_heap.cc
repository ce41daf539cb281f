// sys::keep_freed_heap_memory: the memory of freed lwIP segments is there
// for the next ones without faulting its pages in again (with glibc's
// defaults, freeing a megabyte of 64 KiB blocks at the heap top trims it,
// and the next megabyte faults all 256 pages in again).
// ASan replaces the allocator (mallopt does nothing there; GCC and clang
// say so differently): not built then.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "netstack/sys/heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLIPWAY_ASAN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLIPWAY_ASAN_ALLOCATOR 1
#endif
#endif

#if !defined(SLIPWAY_ASAN_ALLOCATOR)

namespace {

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// Allocates COUNT blocks of SIZE bytes (a download's segments in flight),
// touches every page, frees them in order; the page faults it took.
long faults_of_one_round(size_t count, size_t size) {
  long before = minor_faults();
  std::vector<char*> blocks;
  for (size_t i = 0; i < count; i++) {
    auto* p = static_cast<char*>(std::malloc(size));
    REQUIRE(p != nullptr);
    std::memset(p, 0x5a, size);
    blocks.push_back(p);
  }
  // The compiler must not drop the buffers: read one back.
  volatile char sink = blocks.back()[size - 1];
  (void)sink;
  for (char* p : blocks) std::free(p);
  return minor_faults() - before;
}

}  // namespace

TEST_CASE("keep_freed_heap_memory: a freed block's pages serve the next one without faults") {
  slipway::sys::keep_freed_heap_memory();
  constexpr size_t kCount = 16, kBlock = 64 << 10;  // 256 pages
  faults_of_one_round(kCount, kBlock);              // the pages come in once
  long again = 0;
  for (int i = 0; i < 8; i++) again += faults_of_one_round(kCount, kBlock);
  CHECK(again < 64);
}

#endif
