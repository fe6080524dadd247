/* cuda-emu: the blocks of one kernel, run by the device thread (block.cpp:
 * each CUDA thread a fiber, barriers and warp exchanges); launch.cpp checks
 * a launch, queues it and walks the grid. */
#ifndef CUEMU_BLOCK_H
#define CUEMU_BLOCK_H

#include <cstdint>
#include <string>
#include <vector>

#include "internal.h"

/* shared memory per block (static, and dynamic at launch): 48 KiB, a GPU's default */
#define CUEMU_MAX_STATIC_SHARED ((size_t)48 << 10)

namespace cuemu {

/* Starts kernel k; returns its block numbers in a seeded random order (a
 * kernel may not depend on block order). */
std::vector<uint64_t> kernel_begin(const kernel_task &k);
/* Runs block b to its end (sets g_block_idx): "" when every thread ended
 * well, else what went wrong. */
std::string kernel_run_block(uint64_t b);
/* Ends the kernel; after a failed block, the fibers left waiting restart
 * from scratch. */
void kernel_end(bool failed);
/* For the fault report: the kernel whose thread is running (null between
 * kernels), and whether addr is in the guard page of that thread's stack. */
const kernel_task *kernel_running();
bool kernel_stack_overflow(const void *addr);

} // namespace cuemu

#endif
