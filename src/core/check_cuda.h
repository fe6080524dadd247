/* Checked CUDA, cuBLAS(Lt), cuDNN and NCCL calls (as llm.c's cudaCheck). Only
 * CUDA translation units and the NCCL backend include this header. */
#ifndef CDDP_CORE_CHECK_CUDA_H
#define CDDP_CORE_CHECK_CUDA_H
#include <cuda_runtime.h>
#include "core/error.h"

#define cudaCheck(call)                                                           \
  do {                                                                            \
    cudaError_t _e = (call);                                                      \
    if (_e != cudaSuccess)                                                        \
      cddp_die(CDDP_EXIT_RUNTIME, "CUDA call %s failed: %s", #call, cudaGetErrorString(_e)); \
  } while (0)

#ifdef CUBLAS_API_H_
#define cublasCheck(call)                                                         \
  do {                                                                            \
    cublasStatus_t _s = (call);                                                   \
    if (_s != CUBLAS_STATUS_SUCCESS)                                              \
      cddp_die(CDDP_EXIT_RUNTIME, "cuBLAS call %s failed: %s", #call, cublasGetStatusString(_s)); \
  } while (0)
#endif

#ifdef CUDNN_VERSION
#define cudnnCheck(call)                                                          \
  do {                                                                            \
    cudnnStatus_t _s = (call);                                                    \
    if (_s != CUDNN_STATUS_SUCCESS)                                               \
      cddp_die(CDDP_EXIT_RUNTIME, "cuDNN call %s failed: %s", #call, cudnnGetErrorString(_s)); \
  } while (0)
#endif

#ifdef NCCL_H_
#define ncclCheck(call)                                                           \
  do {                                                                            \
    ncclResult_t _s = (call);                                                     \
    if (_s != ncclSuccess && _s != ncclInProgress)                                \
      cddp_die(CDDP_EXIT_RUNTIME, "NCCL call %s failed: %s", #call, ncclGetErrorString(_s)); \
  } while (0)
#endif
#endif
