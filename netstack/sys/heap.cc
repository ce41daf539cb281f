// keep_freed_heap_memory: see heap.h.
#include "netstack/sys/heap.h"

#include <malloc.h>

namespace slipway::sys {

void keep_freed_heap_memory() {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

}  // namespace slipway::sys
