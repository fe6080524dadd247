/* The backend op table (DESIGN §2).
 *
 * Model, trainer and DDP code reach a device only through a `cddp_backend`:
 * memory, streams/events and the compute ops below. kernels/cpu implements
 * every entry (OpenBLAS + OpenMP); kernels/cuda implements the same entries on
 * a GPU. One binary holds both; cddp_backend_get("cpu"|"cuda") picks one.
 *
 * Conventions for every op:
 *  - All tensors are row-major. A "device pointer" is memory from be->malloc
 *    (on the CPU backend: ordinary host memory).
 *  - Compute ops run asynchronously, in order, on the backend's compute stream
 *    (be->compute). Nothing here synchronises the host except the explicit
 *    *_sync / memcpy_d2h calls.
 *  - Activations and all gradients are fp32. Under AMP (bf16/fp16) only the
 *    inputs of gemm and attention are half precision ("ab_type"/"compute");
 *    they accumulate in fp32. The CPU backend emulates half inputs by rounding
 *    them through the storage format, so CI runs the same numerics.
 *  - Gradients of *parameters* ACCUMULATE (+=) into their buffers (so that
 *    gradient accumulation is free; the trainer zeroes them per step).
 *    Gradients of *activations/inputs* OVERWRITE (=) unless stated.
 *  - Scalars that must not force a host sync (loss sums, the AMP loss scale,
 *    the inf flag, step counters, squared norms) are device pointers.
 *  - Integer ids equal to -1 are padding: skipped by every op that reads ids.
 */
#ifndef CDDP_CORE_OPS_H
#define CDDP_CORE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

typedef struct cddp_stream cddp_stream; /* opaque: cudaStream_t or a CPU token */
typedef struct cddp_event cddp_event;   /* opaque: cudaEvent_t or a done flag */

typedef enum { CDDP_ACT_NONE = 0, CDDP_ACT_RELU, CDDP_ACT_GELU } cddp_act;

/* GELU is the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * PyTorch's approximate='tanh' (DESIGN decision: one formula on both backends;
 * the PyTorch references use approximate='tanh' too). */

/* C[m,n] = act(alpha * op(A) op(B) + beta * C + bias)    (row-major)
 *   op(A) is [m,k]: A is stored [m,k] (lda >= k) or, if transa, [k,m] (lda >= m).
 *   op(B) is [k,n]: B is stored [k,n] (ldb >= n) or, if transb, [n,k] (ldb >= k).
 *   A and B have element type ab_type (F32, F16 or BF16); C is fp32 (ldc >= n).
 *   bias: fp32 [n] added to every row, or NULL.
 *   act: applied last; if pre_act != NULL the value before act is stored
 *   there too (fp32, contiguous [m,n]) for the backward pass.
 *   residual: fp32 [m,n] with leading dimension ldc (may be C itself), or
 *   NULL; when given it takes the place of beta*C (beta must be 0):
 *   C = act(alpha * op(A) op(B) + residual + bias) — a residual connection
 *   folded into the GEMM instead of a separate add pass. */
typedef struct {
  int transa, transb;
  int m, n, k;
  float alpha, beta;
  cddp_dtype ab_type;
  const void *A; int lda;
  const void *B; int ldb;
  float *C; int ldc;
  const float *bias;
  cddp_act act;
  float *pre_act;
  const float *residual;
} cddp_gemm_args;

typedef struct cddp_backend cddp_backend;
struct cddp_backend {
  const char *name; /* "cpu" or "cuda" */
  int is_device;    /* 1 if memory from malloc is not host-addressable */
  cddp_stream *compute, *copy, *comm; /* the three streams (DESIGN §2) */

  /* every op, from malloc to sparse_adagrad, with its contract: ops_list.h */
#define CDDP_OP(ret, name, params) ret(*name) params;
#include "core/ops_list.h"
};

/* Returns the backend named "cpu" or "cuda", initialising it on first use
 * (CUDA: the device given by `device_index`). Dies with exit code 2 if the
 * name is unknown or the backend was not built into this binary, and with 1
 * if it cannot start (no GPU). */
const cddp_backend *cddp_backend_get(const char *name, int device_index);
/* The device index a rank with node-local rank `local_rank` uses: for "cuda"
 * local_rank % (visible GPUs), so that one GPU per rank works both when every
 * rank sees all GPUs of its host and when the launcher gives each rank its own
 * CUDA_VISIBLE_DEVICES (srun --gpus-per-task=1); 0 for "cpu" or without a GPU. */
int cddp_backend_device_for(const char *name, int local_rank);
/* --attention auto|cudnn|plain for the backend of `device`, after
 * cddp_backend_get and before any model is built: cudnn sends fp16/bf16
 * attention of the CUDA backend through cuDNN's fused SDPA; auto stays plain
 * until a GPU run has verified that path. Dies (exit 2) for cudnn on cpu or
 * in a build without cuDNN. */
void cddp_backend_set_attention(const char *device, const char *mode);
/* 1 if this binary has the CUDA backend compiled in. */
int cddp_backend_has_cuda(void);

/* The name of the first op that `be` leaves NULL, or NULL if every op is set.
 * cddp_backend_get refuses an incomplete table; tests check every backend. */
const char *cddp_backend_missing_op(const cddp_backend *be);

/* Implemented by kernels/cpu and kernels/cuda. */
const cddp_backend *cddp_cpu_backend(void);
const cddp_backend *cddp_cuda_backend(int device_index);
/* Number of CUDA devices usable now (0 without a driver or GPU). */
int cddp_cuda_device_count(void);

#endif
