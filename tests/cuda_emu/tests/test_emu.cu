/* Tests of the CPU emulation itself: each mode runs a small CUDA program and
 * checks that the emulator behaves as a GPU would, in particular that a
 * broken program FAILS for the right reason. Exit status 0 means the
 * expectation of the mode held; ctest also matches the emulator's message
 * where the mode expects one.
 *
 *   reduce       block reduction through shared memory, 256 and 1024 threads
 *                a block: exact sums
 *   reduce-nosync  the same with its first __syncthreads removed: some block
 *                sum must come out wrong (threads run in a shuffled order)
 *   streams      producer kernel on stream A, consumer on stream B after an
 *                event wait: correct
 *   streams-nowait  the same without the event wait: the consumer must see
 *                the buffer before the producer wrote it
 *   copies       CUDA's copy rules: an async copy from pageable memory takes
 *                the data of the call, one from pinned memory the data of
 *                when it runs (so reusing a pinned buffer too early shows);
 *                a copy into pageable memory is complete when it returns
 *   partial-barrier / partial-warp  a __syncthreads skipped by one thread, a
 *                full-mask shuffle skipped by half a warp: a reported kernel
 *                failure naming the kernel
 *   limits       launch limits: block > 1024 threads, grid.y > 65535, static
 *                shared memory > 48 KiB, a host pointer argument
 *   oob          a kernel writing one element past its buffer (run under
 *                AddressSanitizer, which must report it)
 *   half         fp16 / bf16 conversions against the IEEE definitions: every
 *                16-bit pattern, and round to nearest even at every midpoint
 *   wild / deep  a kernel storing through a wild pointer, a kernel recursing
 *                off its stack: the crash must name the kernel (not under ASan,
 *                which reports faults itself) */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess) {                                                           \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,             \
              cudaGetErrorString(e_));                                                 \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

static int fail(const char *msg) {
  fprintf(stderr, "test_emu: %s\n", msg);
  return 1;
}

/* ---- block reduction --------------------------------------------------------- */
template <bool kSyncAfterStore>
__global__ void block_sum_kernel(const float *x, float *sums) {
  __shared__ float sh[1024];
  int t = threadIdx.x;
  sh[t] = x[blockIdx.x * blockDim.x + t];
  if (kSyncAfterStore) __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  if (t == 0) sums[blockIdx.x] = sh[0];
}

static int run_reduce(bool sync, int threads) {
  const int blocks = 64, n = blocks * threads;
  std::vector<float> h(n);
  for (int i = 0; i < n; i++) h[i] = (float)(i % 7); /* small integers: exact sums */
  float *x, *sums;
  CHECK(cudaMalloc((void **)&x, n * sizeof(float)));
  CHECK(cudaMalloc((void **)&sums, blocks * sizeof(float)));
  CHECK(cudaMemcpy(x, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  if (sync)
    block_sum_kernel<true><<<blocks, threads>>>(x, sums);
  else
    block_sum_kernel<false><<<blocks, threads>>>(x, sums);
  CHECK(cudaGetLastError());
  std::vector<float> got(blocks);
  CHECK(cudaMemcpy(got.data(), sums, blocks * sizeof(float), cudaMemcpyDeviceToHost));
  int wrong = 0;
  for (int b = 0; b < blocks; b++) {
    float want = 0.0f;
    for (int i = 0; i < threads; i++) want += h[b * threads + i];
    wrong += !(got[b] == want);
  }
  printf("reduce, %d threads a block (%s): %d of %d block sums wrong\n", threads,
         sync ? "with every __syncthreads" : "first __syncthreads removed", wrong, blocks);
  if (sync) return wrong ? fail("a correct block reduction gave wrong sums") : 0;
  return wrong ? 0 : fail("the missing __syncthreads was not exposed");
}

/* ---- two streams ------------------------------------------------------------- */
__global__ void produce_kernel(float *buf, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) buf[i] = 2.0f * i;
}
__global__ void consume_kernel(const float *buf, float *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = buf[i] + 1.0f;
}

static int run_streams(bool wait) {
  const int n = 1000;
  float *buf, *out;
  cudaStream_t a, b;
  cudaEvent_t ev;
  CHECK(cudaMalloc((void **)&buf, n * sizeof(float)));
  CHECK(cudaMalloc((void **)&out, n * sizeof(float)));
  CHECK(cudaMemset(buf, 0, n * sizeof(float)));
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
  CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  produce_kernel<<<(n + 127) / 128, 128, 0, a>>>(buf, n);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(ev, a));
  if (wait) CHECK(cudaStreamWaitEvent(b, ev, 0));
  consume_kernel<<<(n + 127) / 128, 128, 0, b>>>(buf, out, n);
  CHECK(cudaGetLastError());
  std::vector<float> got(n);
  CHECK(cudaMemcpyAsync(got.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost, b));
  CHECK(cudaStreamSynchronize(b));
  int wrong = 0;
  for (int i = 0; i < n; i++) wrong += !(got[i] == 2.0f * i + 1.0f);
  printf("streams (%s): %d of %d values wrong\n", wait ? "with the event wait" : "no event wait",
         wrong, n);
  CHECK(cudaDeviceSynchronize());
  if (wait) return wrong ? fail("a correctly ordered stream pair gave wrong values") : 0;
  return wrong ? 0 : fail("the missing cudaStreamWaitEvent was not exposed");
}

/* ---- copy semantics ------------------------------------------------------------- */
static int run_copies() {
  const int n = 256;
  float *dev, *pinned;
  std::vector<float> pageable(n, 1.0f), back(n);
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CHECK(cudaMalloc((void **)&dev, 2 * n * sizeof(float)));
  CHECK(cudaMallocHost((void **)&pinned, n * sizeof(float)));
  for (int i = 0; i < n; i++) pinned[i] = 1.0f;
  CHECK(cudaMemcpyAsync(dev, pageable.data(), n * sizeof(float), cudaMemcpyHostToDevice, s));
  CHECK(cudaMemcpyAsync(dev + n, pinned, n * sizeof(float), cudaMemcpyHostToDevice, s));
  for (int i = 0; i < n; i++) pageable[i] = pinned[i] = 2.0f; /* reused before any sync */
  CHECK(cudaMemcpyAsync(back.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost, s));
  bool staged = back[0] == 1.0f && back[n - 1] == 1.0f; /* complete on return */
  CHECK(cudaMemcpyAsync(back.data(), dev + n, n * sizeof(float), cudaMemcpyDeviceToHost, s));
  bool deferred = back[0] == 2.0f && back[n - 1] == 2.0f;
  printf("copies: pageable source %s, pinned source %s\n", staged ? "staged at the call" : "NOT staged",
         deferred ? "read when the copy ran" : "read early");
  int bad = 0;
  if (!staged) bad |= fail("an async copy from pageable memory did not take the data of the call");
  if (!deferred) bad |= fail("an async copy from pinned memory read it before the stream ran");
  /* a pinned destination is written only when the stream runs */
  for (int i = 0; i < n; i++) pinned[i] = -1.0f;
  CHECK(cudaMemcpyAsync(pinned, dev, n * sizeof(float), cudaMemcpyDeviceToHost, s));
  bool early = pinned[0] != -1.0f;
  CHECK(cudaStreamSynchronize(s));
  if (early || pinned[0] != 1.0f) bad |= fail("a copy into pinned memory did not wait for the stream");
  CHECK(cudaFreeHost(pinned));
  return bad;
}

/* ---- partial barrier / partial warp --------------------------------------------- */
__global__ void partial_barrier_kernel(float *x) {
  if (threadIdx.x == 5) return; /* skips the barrier below */
  x[threadIdx.x] = 1.0f;
  __syncthreads();
  x[threadIdx.x] += 1.0f;
}
__global__ void partial_warp_kernel(float *x) {
  float v = x[threadIdx.x];
  if ((threadIdx.x & 31) < 16) v += __shfl_xor_sync(0xffffffffu, v, 1); /* half the warp */
  x[threadIdx.x] = v;
}

static int run_partial(bool warp) {
  float *x;
  CHECK(cudaMalloc((void **)&x, 64 * sizeof(float)));
  CHECK(cudaMemset(x, 0, 64 * sizeof(float)));
  if (warp)
    partial_warp_kernel<<<2, 64>>>(x);
  else
    partial_barrier_kernel<<<2, 64>>>(x);
  CHECK(cudaGetLastError()); /* the launch itself is fine */
  cudaError_t e = cudaDeviceSynchronize();
  printf("partial %s: cudaDeviceSynchronize -> %s\n", warp ? "warp" : "barrier", cudaGetErrorName(e));
  return e == cudaErrorLaunchFailure ? 0 : fail("the divergent kernel was not reported");
}

/* ---- launch limits -------------------------------------------------------------- */
__global__ void noop_kernel(float *x) {
  if (x) x[0] = 0.0f;
}
__global__ void big_shared_kernel(float *x) {
  __shared__ float big[12289]; /* 49156 bytes > 48 KiB */
  big[threadIdx.x] = 1.0f;
  x[threadIdx.x] = big[threadIdx.x];
}

static int expect_launch_error(const char *what, cudaError_t want) {
  cudaError_t e = cudaGetLastError();
  printf("%s: %s\n", what, cudaGetErrorName(e));
  if (e != want) return fail(what);
  return 0;
}

static int run_limits() {
  float *x;
  CHECK(cudaMalloc((void **)&x, 1024 * sizeof(float)));
  int bad = 0;
  noop_kernel<<<1, 1024>>>(x);
  bad |= expect_launch_error("block of 1024 threads", cudaSuccess);
  noop_kernel<<<1, 1025>>>(x);
  bad |= expect_launch_error("block of 1025 threads", cudaErrorInvalidConfiguration);
  noop_kernel<<<1, dim3(32, 32, 2)>>>(x);
  bad |= expect_launch_error("block of 32x32x2 threads", cudaErrorInvalidConfiguration);
  noop_kernel<<<dim3(1, 65535), 1>>>(x);
  bad |= expect_launch_error("grid.y 65535", cudaSuccess);
  noop_kernel<<<dim3(1, 65536), 1>>>(x);
  bad |= expect_launch_error("grid.y 65536", cudaErrorInvalidConfiguration);
  noop_kernel<<<dim3(1, 1, 65536), 1>>>(x);
  bad |= expect_launch_error("grid.z 65536", cudaErrorInvalidConfiguration);
  noop_kernel<<<0, 32>>>(x);
  bad |= expect_launch_error("empty grid", cudaErrorInvalidConfiguration);
  float host[4];
  noop_kernel<<<1, 1>>>(host);
  bad |= expect_launch_error("host pointer argument", cudaErrorInvalidValue);
  CHECK(cudaDeviceSynchronize());
  big_shared_kernel<<<1, 32>>>(x); /* static shared memory: found when it runs */
  bad |= expect_launch_error("49156 bytes of static shared memory (launch)", cudaSuccess);
  cudaError_t e = cudaDeviceSynchronize();
  printf("49156 bytes of static shared memory (run): %s\n", cudaGetErrorName(e));
  if (e != cudaErrorLaunchFailure) bad |= fail("static shared memory over 48 KiB was accepted");
  return bad;
}

/* ---- out-of-bounds write ------------------------------------------------------------ */
__global__ void oob_kernel(float *x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) x[i] = 1.0f; /* injected bug: <= writes x[n] */
}

static int run_oob() {
  const int n = 100;
  float *x;
  CHECK(cudaMalloc((void **)&x, n * sizeof(float)));
  oob_kernel<<<1, 128>>>(x, n);
  CHECK(cudaDeviceSynchronize());
  return fail("the out-of-bounds write went unnoticed");
}

/* ---- faults ------------------------------------------------------------------------ */
__global__ void wild_kernel(float *x, long offset) {
  if (threadIdx.x == 3) x[offset] = 1.0f; /* far outside any allocation */
}
__device__ int deep(volatile char *prev, int depth) {
  volatile char frame[1024];
  frame[0] = prev ? prev[0] + 1 : 0;
  return depth > 0 ? deep(frame, depth - 1) + frame[0] : frame[0];
}
__global__ void deep_kernel(int *out, int depth) { out[threadIdx.x] = deep(nullptr, depth); }

static int run_fault(bool wild) {
  float *x;
  CHECK(cudaMalloc((void **)&x, 64 * sizeof(float)));
  if (wild)
    wild_kernel<<<1, 32>>>(x, -(1l << 40) / (long)sizeof(float));
  else
    deep_kernel<<<1, 32>>>((int *)x, 100000);
  CHECK(cudaDeviceSynchronize());
  return fail("the faulting kernel ran to completion");
}

/* ---- fp16 / bf16 conversions ------------------------------------------------------ */
static int half_bad = 0;
static void half_expect(bool ok, const char *what, unsigned bits, float f) {
  if (!ok && half_bad++ < 10) fprintf(stderr, "%s: pattern 0x%04x / value %a\n", what, bits, f);
}

static int run_half() {
  /* fp16 -> fp32 exact: (-1)^s 2^(e-15) (1 + m/1024), subnormals m 2^-24 */
  for (unsigned h = 0; h < 65536; h++) {
    unsigned e = (h >> 10) & 31, m = h & 1023;
    float f = __half2float(__ushort_as_half((unsigned short)h)), want;
    if (e == 31) {
      half_expect(m ? std::isnan(f) : std::isinf(f), "half2float inf/nan", h, f);
      continue;
    }
    want = e ? ldexpf((float)(1024 + m), (int)e - 25) : ldexpf((float)m, -24);
    if (h & 0x8000) want = -want;
    half_expect(f == want && std::signbit(f) == (bool)(h & 0x8000), "half2float", h, f);
    /* and back */
    half_expect(__half_as_ushort(__float2half_rn(f)) == h, "float2half of a half value", h, f);
  }
  /* fp32 -> fp16: midpoints between neighbours round to the even one, a hair
   * off the midpoint to the nearer one; 65520 and above overflow */
  for (unsigned h = 0; h < 0x7bff; h++)
    for (unsigned sign = 0; sign <= 0x8000; sign += 0x8000) {
      float a = __half2float(__ushort_as_half((unsigned short)(h | sign)));
      float b = __half2float(__ushort_as_half((unsigned short)((h + 1) | sign)));
      float mid = a + (b - a) / 2;
      unsigned even = (h & 1) ? h + 1 : h;
      half_expect(__half_as_ushort(__float2half_rn(mid)) == (even | sign), "float2half tie", h, mid);
      half_expect(__half_as_ushort(__float2half_rn(nextafterf(mid, a))) == (h | sign),
                  "float2half below the midpoint", h, mid);
      half_expect(__half_as_ushort(__float2half_rn(nextafterf(mid, b))) == ((h + 1) | sign),
                  "float2half above the midpoint", h, mid);
    }
  half_expect(__half_as_ushort(__float2half_rn(65520.0f)) == 0x7c00, "65520 -> inf", 0x7c00, 65520.0f);
  half_expect(__half_as_ushort(__float2half_rn(nextafterf(65520.0f, 0))) == 0x7bff, "below 65520", 0x7bff, 65520.0f);
  half_expect(__half_as_ushort(__float2half_rn(ldexpf(1.0f, -26))) == 0, "2^-26 -> 0", 0, ldexpf(1.0f, -26));
  {
    unsigned nb = __half_as_ushort(__float2half_rn(nanf("")));
    half_expect((nb & 0x7c00) == 0x7c00 && (nb & 0x3ff), "NaN stays NaN", nb, nanf(""));
  }
  /* bf16: the upper half of the fp32 pattern; ties to even */
  for (unsigned h = 0; h < 65536; h++) {
    __nv_bfloat16 v;
    v.__x = (unsigned short)h;
    float f = __bfloat162float(v);
    unsigned u;
    memcpy(&u, &f, 4);
    half_expect(u == h << 16, "bfloat162float", h, f);
    if (((h >> 7) & 0xff) == 0xff) continue; /* inf / NaN */
    half_expect(__float2bfloat16_rn(f).__x == h, "float2bfloat16 of a bf16 value", h, f);
    if ((h & 0x7fff) == 0x7f7f) continue; /* the largest finite: next is inf */
    unsigned mid_bits = (h << 16) | 0x8000u;
    float mid;
    memcpy(&mid, &mid_bits, 4);
    unsigned even = (h & 1) ? h + 1 : h;
    half_expect(__float2bfloat16_rn(mid).__x == even, "float2bfloat16 tie", h, mid);
    unsigned above = mid_bits + 1, below = mid_bits - 1;
    float fa, fb;
    memcpy(&fa, &above, 4);
    memcpy(&fb, &below, 4);
    half_expect(__float2bfloat16_rn(fa).__x == h + 1, "float2bfloat16 above the midpoint", h, fa);
    half_expect(__float2bfloat16_rn(fb).__x == h, "float2bfloat16 below the midpoint", h, fb);
  }
  {
    unsigned nb = __float2bfloat16_rn(nanf("")).__x;
    half_expect((nb & 0x7f80) == 0x7f80 && (nb & 0x7f), "bf16 NaN stays NaN", nb, nanf(""));
  }
  printf("half: %d conversion error(s)\n", half_bad);
  return half_bad ? 1 : 0;
}

int main(int argc, char **argv) {
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "reduce")) return run_reduce(true, 256) | run_reduce(true, 1024);
  if (!strcmp(m, "reduce-nosync")) return run_reduce(false, 256) | run_reduce(false, 1024);
  if (!strcmp(m, "streams")) return run_streams(true);
  if (!strcmp(m, "streams-nowait")) return run_streams(false);
  if (!strcmp(m, "copies")) return run_copies();
  if (!strcmp(m, "partial-barrier")) return run_partial(false);
  if (!strcmp(m, "partial-warp")) return run_partial(true);
  if (!strcmp(m, "limits")) return run_limits();
  if (!strcmp(m, "oob")) return run_oob();
  if (!strcmp(m, "half")) return run_half();
  if (!strcmp(m, "wild")) return run_fault(true);
  if (!strcmp(m, "deep")) return run_fault(false);
  fprintf(stderr, "usage: test_emu reduce|reduce-nosync|streams|streams-nowait|copies|partial-barrier|"
                  "partial-warp|limits|oob|half|wild|deep\n");
  return 2;
}
