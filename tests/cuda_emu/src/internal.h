/* cuda-emu internals shared by the runtime, the kernel scheduler and the
 * library models. */
#ifndef CUEMU_INTERNAL_H
#define CUEMU_INTERNAL_H

#include <cstdint>
#include <functional>
#include <string>

#include <cuda_runtime.h>
#include "cuemu/host_ops.h"

namespace cuemu {

/* ---- configuration (environment, read once; device.cpp) ------------------ */
uint64_t seed(); /* CUEMU_SEED, default 1 */
uint64_t rng_next(uint64_t *state);

/* ---- memory registry (memory.cpp) ---------------------------------------- */
enum mem_kind { MEM_NONE = 0, MEM_DEVICE = 1, MEM_PINNED = 2 };
/* Kind of the allocation holding [p, p+bytes) entirely; MEM_NONE otherwise. */
mem_kind range_kind(const void *p, size_t bytes);

/* ---- streams (streams.cpp), errors and devices (device.cpp) -------------- */
/* Enqueues and waits for completion (blocking calls). */
cudaError_t enqueue_and_wait(cudaStream_t s, const char *what, stream_fn fn);
/* 1 if s is a valid stream handle (0 included). */
int stream_valid(cudaStream_t s);
int stream_device(cudaStream_t s);
int current_device();
/* Records an error of the calling host thread for cudaGetLastError. */
cudaError_t set_last_error(cudaError_t e);
/* Returns from a runtime API call, recording e for cudaGetLastError. */
#define RET(e) return set_last_error(e)
cudaError_t sticky_error();

/* ---- kernels (launch.cpp; blocks: block.cpp) ----------------------------- */
struct kernel_task {
  launch_cfg cfg;
  std::function<void()> body;
};
/* Runs every block of the kernel (on the executing thread); 1 on success,
 * -1 after printing what went wrong. */
int run_kernel(const kernel_task &k);


} // namespace cuemu

#endif
