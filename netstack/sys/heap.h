// keep_freed_heap_memory: the allocator settings of slipway's programs.
//
// Theory of operation. A bulk transfer towards the guest allocates and
// frees a 64 KiB lwIP segment per frame. With glibc's defaults, freeing the
// top of the heap returns it to the kernel once more than 128 KiB is free
// there, so the next segment faults its 16 pages in again and the kernel
// clears them: 12-15 % of the process's time in perf on a download at MTU
// 65520, and downloads between 0.65x and 1.04x of veth from run to run.
// With this, freed memory up to 64 MiB stays in the heap for the next
// segments, and blocks up to 1 MiB come from the heap rather than mmap.
// What bounds the memory is unchanged: the flows' buffer budget
// (--max-buffered-mib) and the engine's malloc_trim after a flood.
//
// Called first thing by the programs' main(); the C library does not call
// it (the host process owns its allocator).
#pragma once

namespace slipway::sys {

void keep_freed_heap_memory();

}  // namespace slipway::sys
