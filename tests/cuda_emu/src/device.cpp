/* cuda-emu configuration (CUEMU_* environment), error reporting, the
 * per-thread last error and current device, and the emulated devices'
 * properties. */
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "internal.h"

namespace cuemu {

/* ---- configuration --------------------------------------------------------- */
static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end = nullptr;
  long x = strtol(v, &end, 10);
  if (*end) {
    fprintf(stderr, "cuda-emu: %s=%s is not an integer\n", name, v);
    exit(2);
  }
  return x;
}
uint64_t seed() {
  static uint64_t s = (uint64_t)env_long("CUEMU_SEED", 1);
  return s;
}
uint64_t rng_next(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static int device_count() {
  static int n = (int)env_long("CUEMU_DEVICE_COUNT", 4);
  return n;
}
static int sm_count() {
  static int n = (int)env_long("CUEMU_SM_COUNT", 4);
  return n;
}

void report(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cuda-emu: %s [CUEMU_SEED=%llu]\n", buf, (unsigned long long)seed());
  fflush(stderr);
}

/* ---- errors ---------------------------------------------------------------- */
static thread_local cudaError_t t_last = cudaSuccess;
static thread_local int t_device = 0;
cudaError_t set_last_error(cudaError_t e) {
  if (e != cudaSuccess) t_last = e;
  return e;
}
int current_device() { return t_device; }


} // namespace cuemu

using namespace cuemu;

extern "C" {


const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
  case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
  case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  case cudaErrorNotReady: return "cudaErrorNotReady";
  case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
  case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
  case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  default: return "cudaErrorUnknown";
  }
}
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInvalidPitchValue: return "invalid pitch argument";
  case cudaErrorInvalidDevicePointer: return "invalid device pointer";
  case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  case cudaErrorNotReady: return "device not ready";
  case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
  case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
  case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  default: return "unknown error";
  }
}
cudaError_t cudaGetLastError(void) {
  cudaError_t s = sticky_error();
  if (s != cudaSuccess) return s;
  cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) {
  cudaError_t s = sticky_error();
  return s != cudaSuccess ? s : t_last;
}

/* ---- devices ----------------------------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) RET(cudaErrorInvalidValue);
  *count = device_count();
  if (*count <= 0) RET(cudaErrorNoDevice);
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= device_count()) RET(cudaErrorInvalidDevice);
  t_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
  if (!d) RET(cudaErrorInvalidValue);
  *d = t_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
  if (!p) RET(cudaErrorInvalidValue);
  if (d < 0 || d >= device_count()) RET(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "cuda-emu CPU emulation (emulated GPU %d, seed %llu)", d,
           (unsigned long long)seed());
  p->totalGlobalMem = (size_t)16 << 30;
  p->sharedMemPerBlock = 48 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
  p->totalConstMem = 64 << 10;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = sm_count();
  p->maxThreadsPerMultiProcessor = 2048;
  p->unifiedAddressing = 1;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
  cudaDeviceProp p;
  if (!v) RET(cudaErrorInvalidValue);
  cudaError_t e = cudaGetDeviceProperties(&p, d);
  if (e != cudaSuccess) return e;
  switch (a) {
  case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
  case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
  case cudaDevAttrWarpSize: *v = p.warpSize; break;
  case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
  case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
  case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
  default: RET(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

} /* extern "C" */
