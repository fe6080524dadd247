/* cuda-emu, device side (C++): what a .cu file sees inside kernels.
 *
 * Every CUDA thread of a block runs as a fiber on the CPU (src/block.cpp);
 * threadIdx and friends are the running fiber's coordinates, switched by the
 * scheduler. __shared__ variables are function-local statics: blocks run one
 * after another on one host thread, so a static is exactly one block's
 * shared memory; the build step (rewrite.cmake) adds a CUEMU_SHARED_TOUCH
 * after each declaration so that the block's first touch poisons it (shared
 * memory starts undefined on a GPU) and counts it against the 48 KiB limit. */
#ifndef CUEMU_DEVICE_H
#define CUEMU_DEVICE_H

#include <cmath>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

namespace cuemu {
/* coordinates of the fiber that runs now (set by the scheduler) */
extern uint3 g_thread_idx, g_block_idx;
extern dim3 g_block_dim, g_grid_dim;

enum warp_op { W_SHFL_IDX, W_SHFL_UP, W_SHFL_DOWN, W_SHFL_XOR, W_ANY, W_ALL, W_BALLOT, W_SYNC };
void syncthreads(const char *where);
/* A warp-wide exchange: waits for every lane of mask, returns this lane's
 * result (the source lane's value for shuffles, the vote for votes). */
unsigned long long warp_exchange(warp_op op, unsigned mask, unsigned long long value, int arg,
                                 int width);
void shared_touch(void *p, size_t bytes, unsigned long long *seen, const char *name);
unsigned lane_mask_active();

/* ---- the launcher ------------------------------------------------------- */
struct launch_cfg {
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
};
/* 1 if p is null, device memory or pinned host memory (the addresses a kernel
 * may touch); used on the kernel's pointer arguments. */
int kernel_may_access(const void *p);
cudaError_t launch(const launch_cfg &cfg, std::function<void()> &&body, int host_arg);

template <class T>
int host_pointer_arg(const T &v) {
  if constexpr (std::is_pointer_v<T>)
    return !kernel_may_access((const void *)v);
  else
    return 0;
}

template <class F>
struct launcher {
  launch_cfg cfg;
  F fn;
  /* Arguments are evaluated and copied once, at the launch (as CUDA copies
   * them into the parameter buffer); each thread gets its own copy. */
  template <class... A>
  void operator()(A &&...args) {
    std::tuple<std::decay_t<A>...> tup(std::forward<A>(args)...);
    int bad = -1, i = 0;
    std::apply([&](const auto &...v) { ((bad < 0 && host_pointer_arg(v) ? bad = i : 0, i++), ...); }, tup);
    launch(cfg, [f = fn, t = std::move(tup)]() mutable { std::apply(f, t); }, bad);
  }
};
template <class F>
launcher<F> make_launch(const char *name, const char *file, int line, F fn, dim3 grid, dim3 block,
                        size_t smem = 0, cudaStream_t stream = 0) {
  return launcher<F>{{name, file, line, grid, block, smem, stream}, fn};
}

template <class T>
unsigned long long to_bits(T v) {
  static_assert(sizeof(T) <= 8, "warp exchange of a type wider than 8 bytes");
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <class T>
T from_bits(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}
} // namespace cuemu

/* `K<<<g, b, s, st>>>(args)` becomes `CUEMU_LAUNCH(K, g, b, s, st)(args)`. */
#define CUEMU_STR_(x) #x
#define CUEMU_STR(x) CUEMU_STR_(x)
#define CUEMU_LAUNCH(K, ...)                                                            \
  ::cuemu::make_launch(CUEMU_STR(K), __FILE__, __LINE__,                                \
                       [](auto... cuemu_args) { K(cuemu_args...); }, __VA_ARGS__)
#define CUEMU_SHARED_TOUCH(v)                                                           \
  static unsigned long long cuemu_seen_##v = 0;                                         \
  ::cuemu::shared_touch((void *)&(v), sizeof(v), &cuemu_seen_##v, #v)

#define threadIdx (::cuemu::g_thread_idx)
#define blockIdx (::cuemu::g_block_idx)
#define blockDim (::cuemu::g_block_dim)
#define gridDim (::cuemu::g_grid_dim)
constexpr int warpSize = 32;

#define CUEMU_WHERE __FILE__ ":" CUEMU_STR(__LINE__)
#define __syncthreads() ::cuemu::syncthreads(CUEMU_WHERE)
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::cuemu::warp_exchange(::cuemu::W_SYNC, mask, 0, 0, 32); }

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return ::cuemu::from_bits<T>(::cuemu::warp_exchange(::cuemu::W_SHFL_IDX, mask, ::cuemu::to_bits(v), src, width));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::cuemu::from_bits<T>(::cuemu::warp_exchange(::cuemu::W_SHFL_UP, mask, ::cuemu::to_bits(v), (int)delta, width));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::cuemu::from_bits<T>(::cuemu::warp_exchange(::cuemu::W_SHFL_DOWN, mask, ::cuemu::to_bits(v), (int)delta, width));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::cuemu::from_bits<T>(::cuemu::warp_exchange(::cuemu::W_SHFL_XOR, mask, ::cuemu::to_bits(v), lane_mask, width));
}
inline int __any_sync(unsigned mask, int pred) { return (int)::cuemu::warp_exchange(::cuemu::W_ANY, mask, pred != 0, 0, 32); }
inline int __all_sync(unsigned mask, int pred) { return (int)::cuemu::warp_exchange(::cuemu::W_ALL, mask, pred != 0, 0, 32); }
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return (unsigned)::cuemu::warp_exchange(::cuemu::W_BALLOT, mask, pred != 0, 0, 32);
}
inline unsigned __activemask() { return ::cuemu::lane_mask_active(); }

/* Atomics: fibers switch only inside the primitives above, so a plain
 * read-modify-write is atomic here. */
template <class T>
inline T cuemu_atomic_add(T *p, T v) { T old = *p; *p = old + v; return old; }
inline float atomicAdd(float *p, float v) { return cuemu_atomic_add(p, v); }
inline double atomicAdd(double *p, double v) { return cuemu_atomic_add(p, v); }
inline int atomicAdd(int *p, int v) { return cuemu_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return cuemu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return cuemu_atomic_add(p, v); }
inline int atomicMax(int *p, int v) { int o = *p; if (v > o) *p = v; return o; }
inline int atomicMin(int *p, int v) { int o = *p; if (v < o) *p = v; return o; }
inline int atomicExch(int *p, int v) { int o = *p; *p = v; return o; }
inline int atomicCAS(int *p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }

/* device math beyond <cmath> */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
template <class T>
inline T __ldg(const T *p) { return *p; }

#endif
