/* Extra entry points of the CUDA backend beyond ops.h (C linkage), used by
 * tests/cuda and benchmarks to pick GEMM numerics at run time. The defaults
 * come from the environment when the backend starts: CDDP_TF32=1 lets fp32
 * GEMMs use TF32 tensor cores; CDDP_LT_FUSED=0 disables the cuBLASLt
 * bias/activation epilogues (plain GEMM + separate kernel instead).
 * cddp_cuda_set_attention(1): fp16/bf16 attention through cuDNN's fused SDPA
 * (--attention cudnn; call after the backend started, before any
 * attention_ws_bytes); returns 0 and changes nothing when this build has no
 * cuDNN. */
#ifndef CDDP_KERNELS_CUDA_BACKEND_H
#define CDDP_KERNELS_CUDA_BACKEND_H

#ifdef __cplusplus
extern "C" {
#endif

void cddp_cuda_set_tf32(int on);
void cddp_cuda_set_gemm_fusion(int on);
int cddp_cuda_set_attention(int use_cudnn);

#ifdef __cplusplus
}
#endif
#endif
