/* cuda-emu device memory: cudaMalloc memory is ordinary host memory
 * (posix_memalign, so AddressSanitizer puts redzones around it), filled with
 * 0xff bytes (NaN as floats, -1 as ints) because a GPU does not clear it
 * either. Every allocation is registered with its kind (device / pinned
 * host); copies check that their device side lies inside one device
 * allocation, and a kernel whose pointer argument is neither device nor
 * pinned memory is refused (it would fault on a GPU). Copies follow CUDA's
 * rules for pageable and pinned host memory. */
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "internal.h"

namespace cuemu {

/* ---- memory registry ------------------------------------------------------- */
struct alloc_info {
  size_t bytes;
  mem_kind kind;
};
static std::mutex &mem_mu() {
  static std::mutex *m = new std::mutex;
  return *m;
}
static std::map<uintptr_t, alloc_info> &allocs() {
  static auto *m = new std::map<uintptr_t, alloc_info>;
  return *m;
}
mem_kind range_kind(const void *p, size_t bytes) {
  uintptr_t u = (uintptr_t)p;
  std::lock_guard<std::mutex> g(mem_mu());
  auto &m = allocs();
  auto it = m.upper_bound(u);
  if (it == m.begin()) return MEM_NONE;
  --it;
  if (u + bytes > it->first + it->second.bytes) return MEM_NONE;
  if (u > it->first + it->second.bytes) return MEM_NONE;
  return it->second.kind;
}
int is_device_range(const void *p, size_t bytes) { return range_kind(p, bytes) == MEM_DEVICE; }
int kernel_may_access(const void *p) { return !p || range_kind(p, 0) != MEM_NONE; }

static cudaError_t mem_alloc(void **out, size_t bytes, mem_kind kind) {
  if (!out) return cudaErrorInvalidValue;
  void *p = nullptr;
  if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) {
    *out = nullptr;
    return cudaErrorMemoryAllocation;
  }
  if (kind == MEM_DEVICE) memset(p, 0xff, bytes);
  std::lock_guard<std::mutex> g(mem_mu());
  allocs()[(uintptr_t)p] = alloc_info{bytes, kind};
  *out = p;
  return cudaSuccess;
}
static cudaError_t mem_free(void *p, mem_kind kind, const char *fn) {
  if (!p) return cudaSuccess;
  cudaError_t e = cudaDeviceSynchronize(); /* nothing queued may still use it */
  if (e != cudaSuccess) return e;
  std::lock_guard<std::mutex> g(mem_mu());
  auto it = allocs().find((uintptr_t)p);
  if (it == allocs().end() || it->second.kind != kind) {
    report("%s(%p): not the start of a %s allocation", fn, p,
           kind == MEM_DEVICE ? "device (cudaMalloc)" : "pinned (cudaMallocHost)");
    return cudaErrorInvalidValue;
  }
  allocs().erase(it);
  free(p);
  return cudaSuccess;
}


} // namespace cuemu

using namespace cuemu;

extern "C" {

/* ---- memory ------------------------------------------------------------------ */
cudaError_t cudaMalloc(void **p, size_t bytes) { RET(mem_alloc(p, bytes, MEM_DEVICE)); }
cudaError_t cudaFree(void *p) { RET(mem_free(p, MEM_DEVICE, "cudaFree")); }
cudaError_t cudaMallocHost(void **p, size_t bytes) { RET(mem_alloc(p, bytes, MEM_PINNED)); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
  (void)flags;
  RET(mem_alloc(p, bytes, MEM_PINNED));
}
cudaError_t cudaFreeHost(void *p) { RET(mem_free(p, MEM_PINNED, "cudaFreeHost")); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  if (free_bytes) *free_bytes = (size_t)16 << 30;
  if (total_bytes) *total_bytes = (size_t)16 << 30;
  return cudaSuccess;
}

/* Checks one side of a copy: a device side must lie inside one device
 * allocation; a host side must not be device memory. */
static bool side_ok(const void *p, size_t bytes, bool device, const char *fn, const char *side) {
  mem_kind k = range_kind(p, bytes);
  if (device && k != MEM_DEVICE) {
    report("%s: %s %p (+%zu bytes) is not inside one device allocation", fn, side, p, bytes);
    return false;
  }
  if (!device && k == MEM_DEVICE) {
    report("%s: %s %p is device memory but the copy kind says host", fn, side, p);
    return false;
  }
  return true;
}

/* Rows of a (possibly 2-D) copy; the host side's kind decides when the host
 * may reuse its buffer (CUDA's rules for pageable vs pinned memory). */
static cudaError_t copy_2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                           size_t height, cudaMemcpyKind kind, cudaStream_t st, bool blocking,
                           const char *fn) {
  if (!width || !height) return cudaSuccess;
  if (dpitch < width || spitch < width) return cudaErrorInvalidPitchValue;
  size_t dspan = dpitch * (height - 1) + width, sspan = spitch * (height - 1) + width;
  if (kind == cudaMemcpyDefault) {
    bool dd = range_kind(dst, dspan) == MEM_DEVICE, sd = range_kind(src, sspan) == MEM_DEVICE;
    kind = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
              : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  }
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
    return cudaErrorInvalidMemcpyDirection;
  bool ddev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool sdev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!side_ok(dst, dspan, ddev, fn, "destination") || !side_ok(src, sspan, sdev, fn, "source"))
    return cudaErrorInvalidValue;
  if (!stream_valid(st)) return cudaErrorInvalidResourceHandle;
  char *d = (char *)dst;
  const char *s = (const char *)src;
  auto rows = [=](const char *from, size_t fpitch) {
    return [=]() {
      for (size_t r = 0; r < height; r++) memcpy(d + r * dpitch, from + r * fpitch, width);
      return 1;
    };
  };
  if (!sdev && range_kind(src, sspan) != MEM_PINNED) {
    /* pageable source: staged at the call, the host may reuse it at once */
    auto stage = std::make_shared<std::vector<char>>(width * height);
    for (size_t r = 0; r < height; r++) memcpy(stage->data() + r * width, s + r * spitch, width);
    auto run = [=]() {
      for (size_t r = 0; r < height; r++) memcpy(d + r * dpitch, stage->data() + r * width, width);
      return 1;
    };
    return blocking ? enqueue_and_wait(st, fn, run) : enqueue(st, fn, run);
  }
  /* a copy into pageable host memory returns only once it is done */
  if (blocking || (!ddev && range_kind(dst, dspan) != MEM_PINNED))
    return enqueue_and_wait(st, fn, rows(s, spitch));
  return enqueue(st, fn, rows(s, spitch));
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
  RET(copy_2d(dst, n, src, n, n, 1, kind, 0, true, "cudaMemcpy"));
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t st) {
  RET(copy_2d(dst, n, src, n, n, 1, kind, st, false, "cudaMemcpyAsync"));
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind kind, cudaStream_t st) {
  RET(copy_2d(dst, dpitch, src, spitch, width, height, kind, st, false, "cudaMemcpy2DAsync"));
}
static cudaError_t memset_on(void *p, int v, size_t n, cudaStream_t st, const char *fn) {
  if (!n) return cudaSuccess;
  if (!side_ok(p, n, true, fn, "destination")) return cudaErrorInvalidValue;
  return enqueue(st, fn, [=]() {
    memset(p, v, n);
    return 1;
  });
}
cudaError_t cudaMemset(void *p, int v, size_t n) { RET(memset_on(p, v, n, 0, "cudaMemset")); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st) {
  RET(memset_on(p, v, n, st, "cudaMemsetAsync"));
}

} /* extern "C" */
