/* cuda-emu: what header-only library models (CUB) need from the runtime:
 * enqueueing work on a stream and checking device ranges. */
#ifndef CUEMU_HOST_OPS_H
#define CUEMU_HOST_OPS_H

#include <cstddef>
#include <functional>

#include <cuda_runtime.h>

namespace cuemu {
/* An operation on a stream: returns 1 when done, 0 when it must be polled
 * again later, or a negative value on failure (already reported). */
typedef std::function<int()> stream_fn;
cudaError_t enqueue(cudaStream_t s, const char *what, stream_fn fn);
/* 1 if [p, p+bytes) lies inside one cudaMalloc allocation */
int is_device_range(const void *p, size_t bytes);
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
} // namespace cuemu

#endif
