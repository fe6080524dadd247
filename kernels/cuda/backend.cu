/* CUDA backend: device start-up, memory, streams, events and the op table.
 * Streams and events are handed out as the opaque cddp_stream/cddp_event
 * pointers of ops.h; they are the cudaStream_t/cudaEvent_t values themselves. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_backend.h"

cu_state g_cu;
static int g_started = 0;
static cddp_backend g_be;

static inline cudaStream_t cu_stream(cddp_stream *s) {
  cu_bind();
  return s ? (cudaStream_t)s : g_cu.compute; /* NULL means the compute stream */
}

void *cu_malloc(size_t bytes) {
  cu_bind();
  void *p = NULL;
  cudaCheck(cudaMalloc(&p, bytes ? bytes : 256));
  return p;
}
void cu_free(void *p) {
  cu_bind();
  if (p) cudaCheck(cudaFree(p));
}
void *cu_host_alloc(size_t bytes) {
  cu_bind();
  void *p = NULL;
  cudaCheck(cudaMallocHost(&p, bytes ? bytes : 256));
  return p;
}
void cu_host_free(void *p) {
  cu_bind();
  if (p) cudaCheck(cudaFreeHost(p));
}
void cu_memcpy_h2d(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  if (bytes) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream(s)));
}
/* Synchronous for the host: the caller reads dst right after (ops.h). */
void cu_memcpy_d2h(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  if (!bytes) return;
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream(s)));
  cudaCheck(cudaStreamSynchronize(cu_stream(s)));
}
void cu_memcpy_d2d(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  if (bytes) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_stream(s)));
}
void cu_memset0(void *dst, size_t bytes, cddp_stream *s) {
  if (bytes) cudaCheck(cudaMemsetAsync(dst, 0, bytes, cu_stream(s)));
}
void cu_stream_sync(cddp_stream *s) { cudaCheck(cudaStreamSynchronize(cu_stream(s))); }
cddp_event *cu_event_create(void) {
  cu_bind();
  cudaEvent_t e;
  cudaCheck(cudaEventCreateWithFlags(&e, cudaEventDefault)); /* timing enabled */
  return (cddp_event *)e;
}
void cu_event_destroy(cddp_event *e) {
  cu_bind();
  if (e) cudaCheck(cudaEventDestroy((cudaEvent_t)e));
}
void cu_event_record(cddp_event *e, cddp_stream *s) {
  cudaCheck(cudaEventRecord((cudaEvent_t)e, cu_stream(s)));
}
void cu_stream_wait_event(cddp_stream *s, cddp_event *e) {
  cudaCheck(cudaStreamWaitEvent(cu_stream(s), (cudaEvent_t)e, 0));
}
void cu_event_sync(cddp_event *e) {
  cu_bind();
  cudaCheck(cudaEventSynchronize((cudaEvent_t)e));
}
float cu_event_elapsed_ms(cddp_event *start, cddp_event *end) {
  cu_bind();
  float ms = 0.0f;
  cudaCheck(cudaEventElapsedTime(&ms, (cudaEvent_t)start, (cudaEvent_t)end));
  return ms;
}
void cu_set_threads(int n) { (void)n; }

void cu_shutdown(void) {
  if (!g_started) return;
  cudaCheck(cudaDeviceSynchronize());
  cu_gemm_reset();
  cu_sdpa_reset();
  cublasCheck(cublasLtDestroy(g_cu.lt));
  cublasCheck(cublasDestroy(g_cu.blas));
  cudaCheck(cudaFree(g_cu.lt_ws));
  cudaCheck(cudaFree(g_cu.scratch));
  cudaCheck(cudaStreamDestroy(g_cu.compute));
  cudaCheck(cudaStreamDestroy(g_cu.copy));
  cudaCheck(cudaStreamDestroy(g_cu.comm));
  g_started = 0;
}

static int env_flag(const char *name, int dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  return atoi(v) != 0;
}

extern "C" void cddp_cuda_set_tf32(int on) { g_cu.tf32 = on != 0; }
extern "C" void cddp_cuda_set_gemm_fusion(int on) { g_cu.fused = on != 0; }
extern "C" int cddp_cuda_set_attention(int use_cudnn) {
  if (use_cudnn && !cu_sdpa_available()) return 0;
  g_cu.attn_cudnn = use_cudnn != 0;
  return 1;
}

extern "C" int cddp_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* clear the sticky-free error: no driver / no GPU */
    return 0;
  }
  return n;
}

static void fill_table(void) {
  cddp_backend *b = &g_be;
  memset(b, 0, sizeof *b);
  b->name = "cuda";
  b->is_device = 1;
  b->compute = (cddp_stream *)g_cu.compute;
  b->copy = (cddp_stream *)g_cu.copy;
  b->comm = (cddp_stream *)g_cu.comm;
#define CDDP_OP(ret, name, params) b->name = cu_##name;
#include "core/ops_list.h"
}

extern "C" const cddp_backend *cddp_cuda_backend(int device_index) {
  if (g_started) {
    if (device_index != g_cu.device)
      cddp_die(CDDP_EXIT_USAGE, "CUDA backend already started on device %d, asked for %d",
               g_cu.device, device_index);
    return &g_be;
  }
  int count = cddp_cuda_device_count();
  if (count == 0) cddp_die(CDDP_EXIT_RUNTIME, "--device cuda: no CUDA device or driver found");
  if (device_index < 0 || device_index >= count)
    cddp_die(CDDP_EXIT_USAGE, "CUDA device %d does not exist (%d visible)", device_index, count);
  memset(&g_cu, 0, sizeof g_cu);
  g_cu.device = device_index;
  cudaCheck(cudaSetDevice(device_index));
  cudaCheck(cudaDeviceGetAttribute(&g_cu.sm_count, cudaDevAttrMultiProcessorCount, device_index));
  cudaCheck(cudaStreamCreateWithFlags(&g_cu.compute, cudaStreamNonBlocking));
  cudaCheck(cudaStreamCreateWithFlags(&g_cu.copy, cudaStreamNonBlocking));
  cudaCheck(cudaStreamCreateWithFlags(&g_cu.comm, cudaStreamNonBlocking));
  cublasCheck(cublasLtCreate(&g_cu.lt));
  cublasCheck(cublasCreate(&g_cu.blas));
  cublasCheck(cublasSetStream(g_cu.blas, g_cu.compute));
  g_cu.lt_ws_bytes = CU_LT_WS_BYTES;
  cudaCheck(cudaMalloc(&g_cu.lt_ws, g_cu.lt_ws_bytes));
  /* cublas (non-Lt) gets the same workspace: both run only on the compute
   * stream, one call at a time, so sharing is safe. */
  cublasCheck(cublasSetWorkspace(g_cu.blas, g_cu.lt_ws, g_cu.lt_ws_bytes));
  g_cu.scratch_bytes = CU_SCRATCH_BYTES;
  cudaCheck(cudaMalloc(&g_cu.scratch, g_cu.scratch_bytes));
  g_cu.tf32 = env_flag("CDDP_TF32", 0);
  g_cu.fused = env_flag("CDDP_LT_FUSED", 1);
  fill_table();
  g_started = 1;
  cudaDeviceProp prop;
  cudaCheck(cudaGetDeviceProperties(&prop, device_index));
  cddp_log_info("cuda: device %d %s (sm_%d%d, %d SMs), tf32 %s", device_index, prop.name,
                prop.major, prop.minor, g_cu.sm_count, g_cu.tf32 ? "on" : "off");
  return &g_be;
}
