/* GEMM through cuBLASLt (row-major on column-major) and strided-batched GEMM
 * through cuBLAS.
 *
 * Row-major C[m,n] = op(A) op(B) is column-major C^T[n,m] = op(B)^T op(A)^T:
 * cuBLASLt's "A" is our B and its "B" is our A, with m and n swapped; a
 * row-major matrix with leading dimension ld is the column-major transpose
 * with the same ld. Our per-column bias is then cuBLASLt's per-row bias
 * (length = rows of D = n), which is what its BIAS epilogue adds.
 *
 * Epilogues: without pre_act, BIAS / RELU(_BIAS) / GELU(_BIAS) run fused; with
 * pre_act and GELU, GELU_AUX(_BIAS) writes the pre-activation (aux ld = n must
 * be a multiple of 8). GELU is fused only for fp16/bf16 inputs (see cu_gemm).
 * Every other case (ReLU with pre_act: cuBLASLt's ReLU aux is a bit mask, not
 * values; fp32 GELU; no heuristic result; fusion disabled; k = 0) fuses at
 * most the bias and finishes in gemm_post below, which gives exactly ops.h's
 * act(alpha AB + beta C + bias). When cuBLASLt has no algorithm even
 * without an epilogue, cublasGemmEx computes the product. */
#include "kernels/cuda/cuda_common.h"

/* ---- plan cache: descriptors + heuristic result per shape key ------------ */
struct lt_key {
  int transa, transb, m, n, k, lda, ldb, ldc;
  int ab, epi, tf32, aux_ld;
  int al_a, al_b, al_c, al_bias, al_aux;
};
struct lt_plan {
  lt_key key;
  int valid, has_algo;
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
};
#define LT_PLANS 64
static lt_plan g_plans[LT_PLANS];
static int g_plan_next = 0;

static int ptr_align(const void *p) {
  uintptr_t u = (uintptr_t)p;
  int a = 16;
  while (a > 1 && (u % (uintptr_t)a)) a >>= 1;
  return p ? a : 16;
}

static void plan_destroy(lt_plan *p) {
  if (!p->valid) return;
  cublasCheck(cublasLtMatmulDescDestroy(p->op));
  cublasCheck(cublasLtMatrixLayoutDestroy(p->la));
  cublasCheck(cublasLtMatrixLayoutDestroy(p->lb));
  cublasCheck(cublasLtMatrixLayoutDestroy(p->lc));
  p->valid = 0;
}

static lt_plan *plan_get(const lt_key *key, const void *bias, const void *aux) {
  for (int i = 0; i < LT_PLANS; i++)
    if (g_plans[i].valid && !memcmp(&g_plans[i].key, key, sizeof *key)) return &g_plans[i];
  lt_plan *p = &g_plans[g_plan_next];
  g_plan_next = (g_plan_next + 1) % LT_PLANS; /* round-robin eviction */
  plan_destroy(p);
  memset(p, 0, sizeof *p);
  p->key = *key;
  cddp_dtype ab = (cddp_dtype)key->ab;
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  if (ab == CDDP_F32 && key->tf32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
  cublasCheck(cublasLtMatmulDescCreate(&p->op, ct, CUDA_R_32F));
  cublasOperation_t opa = key->transb ? CUBLAS_OP_T : CUBLAS_OP_N; /* Lt A = our B */
  cublasOperation_t opb = key->transa ? CUBLAS_OP_T : CUBLAS_OP_N; /* Lt B = our A */
  cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  cublasLtEpilogue_t epi = (cublasLtEpilogue_t)key->epi;
  cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  if (key->aux_ld) {
    int64_t ld = key->aux_ld;
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
  }
  cudaDataType_t t = cu_dtype(ab);
  /* stored shapes (column-major view): Lt A = B stored [k,n] row-major -> n x k */
  uint64_t ar = key->transb ? key->k : key->n, ac = key->transb ? key->n : key->k;
  uint64_t br = key->transa ? key->m : key->k, bc = key->transa ? key->k : key->m;
  cublasCheck(cublasLtMatrixLayoutCreate(&p->la, t, ar, ac, key->ldb));
  cublasCheck(cublasLtMatrixLayoutCreate(&p->lb, t, br, bc, key->lda));
  cublasCheck(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, key->n, key->m, key->ldc));

  cublasLtMatmulPreference_t pref;
  cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsb = g_cu.lt_ws_bytes;
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
  uint32_t al;
  al = (uint32_t)key->al_b; /* Lt A is our B */
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
  al = (uint32_t)key->al_a;
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
  al = (uint32_t)key->al_c;
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
  cublasLtMatmulHeuristicResult_t res;
  int nres = 0;
  /* The heuristic looks at the bias/aux pointers' alignment (part of the key);
   * lt_run sets the pointers again on every call. */
  if (key->epi & CUBLASLT_EPILOGUE_BIAS) {
    const void *bp = bias;
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
  }
  if (key->aux_ld) {
    const void *xp = aux;
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &xp, sizeof xp));
  }
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g_cu.lt, p->op, p->la, p->lb, p->lc, p->lc,
                                                     pref, 1, &res, &nres);
  cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
  /* Any failure (NOT_SUPPORTED, INVALID_VALUE for an epilogue/type
   * combination) or no result: no kernel for this key; the caller falls
   * back to a GEMM without epilogue, then to cublasGemmEx. */
  if (st == CUBLAS_STATUS_SUCCESS && nres > 0) {
    p->algo = res.algo;
    p->has_algo = 1;
  }
  p->valid = 1;
  return p;
}

/* Returns 0 (and does nothing) when cuBLASLt has no algorithm for the key. */
static int lt_run(const cddp_gemm_args *a, int epi, float *aux) {
  lt_key key;
  memset(&key, 0, sizeof key);
  key.transa = a->transa; key.transb = a->transb;
  key.m = a->m; key.n = a->n; key.k = a->k;
  key.lda = a->lda; key.ldb = a->ldb; key.ldc = a->ldc;
  key.ab = (int)a->ab_type; key.epi = epi; key.tf32 = g_cu.tf32;
  key.aux_ld = aux ? a->n : 0;
  key.al_a = ptr_align(a->A); key.al_b = ptr_align(a->B); key.al_c = ptr_align(a->C);
  key.al_bias = (epi & CUBLASLT_EPILOGUE_BIAS) ? ptr_align(a->bias) : 0;
  key.al_aux = aux ? ptr_align(aux) : 0;
  lt_plan *p = plan_get(&key, a->bias, aux);
  if (!p->has_algo) return 0;
  if (epi & CUBLASLT_EPILOGUE_BIAS) {
    const void *bp = a->bias;
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
  }
  if (aux) {
    void *xp = aux;
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &xp, sizeof xp));
  }
  float alpha = a->alpha, beta = a->beta;
  cublasCheck(cublasLtMatmul(g_cu.lt, p->op, &alpha, a->B, p->la, a->A, p->lb, &beta, a->C, p->lc,
                             a->C, p->lc, &p->algo, g_cu.lt_ws, g_cu.lt_ws_bytes, g_cu.compute));
  return 1;
}

/* C = act(C + bias); pre_act (contiguous [m,n]) gets the value before act. */
static __global__ void gemm_post_kernel(float *C, int ldc, int m, int n, const float *bias, cddp_act act,
                                 float *pre) {
  size_t total = (size_t)m * n;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    int r = (int)(i / n), c = (int)(i % n);
    float v = C[(size_t)r * ldc + c];
    if (bias) v += bias[c];
    if (pre) pre[i] = v;
    C[(size_t)r * ldc + c] = cu_act(act, v);
  }
}
/* k = 0: alpha AB is zero; C = beta C (beta 0 ignores whatever C held) */
static __global__ void gemm_k0_kernel(float *C, int ldc, int m, int n, float beta) {
  size_t total = (size_t)m * n;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    int r = (int)(i / n), c = (int)(i % n);
    float *p = &C[(size_t)r * ldc + c];
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

/* cuBLASLt may offer no algorithm at all, e.g. for fp16/bf16 operands whose
 * leading dimensions or pointers are not 16-byte aligned (dlrm's bottom MLP
 * has k = 13). cublasGemmEx has no such requirement: same column-major
 * mapping, fp32 accumulation and output, no epilogue (gemm_post does it). */
static void gemm_ex(const cddp_gemm_args *a) {
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  if (a->ab_type == CDDP_F32 && g_cu.tf32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
  cudaDataType_t t = cu_dtype(a->ab_type);
  cublasOperation_t opa = a->transb ? CUBLAS_OP_T : CUBLAS_OP_N; /* cuBLAS "A" = our B */
  cublasOperation_t opb = a->transa ? CUBLAS_OP_T : CUBLAS_OP_N;
  float alpha = a->alpha, beta = a->beta;
  cublasCheck(cublasGemmEx(g_cu.blas, opa, opb, a->n, a->m, a->k, &alpha, a->B, t, a->ldb, a->A, t,
                           a->lda, &beta, a->C, CUDA_R_32F, a->ldc, ct, CUBLAS_GEMM_DEFAULT));
}

void cu_gemm_reset(void) {
  for (int i = 0; i < LT_PLANS; i++) plan_destroy(&g_plans[i]);
  g_plan_next = 0;
}

void cu_gemm(const cddp_gemm_args *args) {
  if (args->m <= 0 || args->n <= 0) return;
  cu_bind();
  if (args->ab_type != CDDP_F32 && args->ab_type != CDDP_F16 && args->ab_type != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "gemm: unsupported input type %s", cddp_dtype_name(args->ab_type));
  cddp_gemm_args r = *args;
  const cddp_gemm_args *a = &r;
  if (r.residual) { /* C = residual, then accumulate onto it (beta 1) */
    if (r.beta != 0.0f)
      cddp_die(CDDP_EXIT_USAGE, "gemm: a residual takes the place of beta*C (beta %g)", r.beta);
    if (r.residual != r.C)
      cudaCheck(cudaMemcpy2DAsync(r.C, (size_t)r.ldc * sizeof(float), r.residual,
                                  (size_t)r.ldc * sizeof(float), (size_t)r.n * sizeof(float), r.m,
                                  cudaMemcpyDeviceToDevice, g_cu.compute));
    r.beta = 1.0f;
    r.residual = NULL;
  }
  const float *post_bias = a->bias;
  cddp_act post_act = a->act;
  float *post_pre = a->pre_act;
  int done = 0;
  size_t total = (size_t)a->m * a->n;
  if (a->k <= 0) {
    gemm_k0_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(a->C, a->ldc, a->m, a->n, a->beta);
    cuLaunchCheck();
    done = 1;
  }
  if (!done && g_cu.fused && (a->bias || a->act != CDDP_ACT_NONE)) {
    int eb = a->bias ? CUBLASLT_EPILOGUE_BIAS : 0;
    /* cuBLASLt's GELU may use a fast tanh approximation (~1e-3 relative):
     * fused only for half inputs, whose tolerance is 1e-2 anyway; fp32
     * GEMMs apply GELU in gemm_post with the exact formula. */
    int lt_gelu = a->ab_type != CDDP_F32;
    if (!a->pre_act && (a->act != CDDP_ACT_GELU || lt_gelu)) {
      int epi = a->act == CDDP_ACT_RELU ? (a->bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
              : a->act == CDDP_ACT_GELU ? (a->bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
              : (a->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
      if (lt_run(a, epi, NULL)) { done = 1; post_bias = NULL; post_act = CDDP_ACT_NONE; post_pre = NULL; }
    } else if (a->pre_act && lt_gelu && a->act == CDDP_ACT_GELU && a->n % 8 == 0 &&
               ptr_align(a->pre_act) == 16) {
      int epi = a->bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
      if (lt_run(a, epi, a->pre_act)) { done = 1; post_bias = NULL; post_act = CDDP_ACT_NONE; post_pre = NULL; }
    }
    /* ReLU/none with pre_act: fuse only the bias; gemm_post stores pre_act
     * and applies the activation. */
    if (!done && eb && lt_run(a, eb, NULL)) { done = 1; post_bias = NULL; }
  }
  if (!done && !lt_run(a, CUBLASLT_EPILOGUE_DEFAULT, NULL)) gemm_ex(a);
  if (post_bias || post_act != CDDP_ACT_NONE || post_pre) {
    gemm_post_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(a->C, a->ldc, a->m, a->n,
                                                                     post_bias, post_act, post_pre);
    cuLaunchCheck();
  }
}

void cu_gemm_batched(int transa, int transb, int m, int n, int k, float alpha, const void *A,
                     int lda, long long sA, const void *B, int ldb, long long sB, float beta,
                     float *C, int ldc, long long sC, int batch, cddp_dtype t) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  cu_bind();
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  if (t == CDDP_F32 && g_cu.tf32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
  cudaDataType_t dt = cu_dtype(t);
  cublasOperation_t op1 = transb ? CUBLAS_OP_T : CUBLAS_OP_N; /* cuBLAS "A" = our B */
  cublasOperation_t op2 = transa ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasCheck(cublasGemmStridedBatchedEx(g_cu.blas, op1, op2, n, m, k, &alpha, B, dt, ldb, sB, A,
                                         dt, lda, sA, &beta, C, CUDA_R_32F, ldc, sC, batch, ct,
                                         CUBLAS_GEMM_DEFAULT));
}
