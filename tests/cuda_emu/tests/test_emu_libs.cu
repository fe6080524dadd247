/* The library models of the CPU emulation on their own (cuda_parity covers
 * the paths kernels/cuda uses against the CPU backend): CUB's results and
 * temporary-storage protocol, cuBLASLt's epilogues in column-major with
 * transposes and its refusals (aux leading dimension, an algorithm of another
 * problem, a short workspace, a pointer less aligned than promised), and
 * cuBLAS's strided-batched GEMM. Each check names itself when it fails. */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cub/cub.cuh>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

static int failures = 0;
static void check(bool ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "test_emu_libs: %s\n", what);
    failures++;
  }
}
#define CK(call)                                                                 \
  do {                                                                           \
    if ((int)(call) != 0) {                                                      \
      fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #call);          \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

template <class T>
static T *upload(const std::vector<T> &h) {
  T *d;
  CK(cudaMalloc((void **)&d, h.size() * sizeof(T)));
  CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T>
static std::vector<T> download(const T *d, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

static void test_cub() {
  const int n = 3000;
  std::vector<int> keys(n), vals(n);
  for (int i = 0; i < n; i++) {
    keys[i] = (int)((i * 2654435761u) % 97) - 48; /* negatives, many repeats */
    vals[i] = i;
  }
  int *dk = upload(keys), *dv = upload(vals), *dko, *dvo;
  CK(cudaMalloc((void **)&dko, n * sizeof(int)));
  CK(cudaMalloc((void **)&dvo, n * sizeof(int)));
  size_t need = 0;
  CK(cub::DeviceRadixSort::SortPairs(nullptr, need, dk, dko, dv, dvo, n));
  check(need > 0, "SortPairs: the size query returned 0 bytes");
  void *temp;
  CK(cudaMalloc(&temp, need));
  size_t small = need - 1;
  check(cub::DeviceRadixSort::SortPairs(temp, small, dk, dko, dv, dvo, n) == cudaErrorInvalidValue,
        "SortPairs: a temporary storage one byte short was accepted");
  CK(cub::DeviceRadixSort::SortPairs(temp, need, dk, dko, dv, dvo, n));
  std::vector<int> idx(n);
  for (int i = 0; i < n; i++) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return keys[a] < keys[b]; });
  std::vector<int> ko = download(dko, n), vo = download(dvo, n);
  bool ok = true;
  for (int i = 0; i < n; i++) ok &= ko[i] == keys[idx[i]] && vo[i] == idx[i];
  check(ok, "SortPairs: not the stable order of signed keys");
  /* bits [0, 4) only: a stable sort by the low nibble of the two's complement bits */
  CK(cub::DeviceRadixSort::SortPairs(temp, need, dk, dko, dv, dvo, n, 0, 4));
  for (int i = 0; i < n; i++) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return (keys[a] & 15) < (keys[b] & 15); });
  vo = download(dvo, n);
  ok = true;
  for (int i = 0; i < n; i++) ok &= vo[i] == idx[i];
  check(ok, "SortPairs with end_bit 4: not a stable sort by the low 4 bits");

  /* run-length encoding of the sorted keys */
  std::vector<int> sorted(keys);
  std::sort(sorted.begin(), sorted.end());
  int *ds = upload(sorted), *du, *dc, *dr;
  CK(cudaMalloc((void **)&du, n * sizeof(int)));
  CK(cudaMalloc((void **)&dc, n * sizeof(int)));
  CK(cudaMalloc((void **)&dr, sizeof(int)));
  size_t need2 = 0;
  CK(cub::DeviceRunLengthEncode::Encode(nullptr, need2, ds, du, dc, dr, n));
  check(need2 <= need, "Encode needs more storage than the sort (test assumption)");
  CK(cub::DeviceRunLengthEncode::Encode(temp, need2, ds, du, dc, dr, n));
  int runs = download(dr, 1)[0];
  std::vector<int> u = download(du, (size_t)runs), c = download(dc, (size_t)runs);
  std::vector<int> wu, wc;
  for (int i = 0; i < n; i++) {
    if (i == 0 || sorted[i] != sorted[i - 1]) { wu.push_back(sorted[i]); wc.push_back(0); }
    wc.back()++;
  }
  check(runs == (int)wu.size() && u == wu && c == wc, "Encode: wrong runs");

  /* exclusive sum, out of place and in place, across several tiles */
  std::vector<int> ones(n, 1);
  for (int i = 0; i < n; i++) ones[i] = i % 5;
  int *din = upload(ones), *dout;
  CK(cudaMalloc((void **)&dout, n * sizeof(int)));
  size_t need3 = 0;
  CK(cub::DeviceScan::ExclusiveSum(nullptr, need3, din, dout, n));
  CK(cub::DeviceScan::ExclusiveSum(temp, need3, din, dout, n));
  std::vector<int> sc = download(dout, n);
  CK(cub::DeviceScan::ExclusiveSum(temp, need3, din, din, n));
  std::vector<int> sc2 = download(din, n);
  int run = 0;
  ok = true;
  for (int i = 0; i < n; i++) {
    ok &= sc[i] == run && sc2[i] == run;
    run += i % 5;
  }
  check(ok, "ExclusiveSum: wrong prefix sums");
  for (void *p : {(void *)dk, (void *)dv, (void *)dko, (void *)dvo, temp, (void *)ds, (void *)du,
                  (void *)dc, (void *)dr, (void *)din, (void *)dout})
    CK(cudaFree(p));
}

/* column-major reference: D = act(alpha op(A) op(B) + beta C + bias[i]) */
static float ref(const std::vector<float> &A, int lda, bool ta, const std::vector<float> &B, int ldb,
                 bool tb, int i, int j, int k) {
  double s = 0;
  for (int l = 0; l < k; l++)
    s += (double)(ta ? A[l + i * lda] : A[i + l * lda]) * (tb ? B[j + l * ldb] : B[l + j * ldb]);
  return (float)s;
}

static void test_lt() {
  const int m = 24, n = 16, k = 20;
  cublasLtHandle_t lt;
  CK(cublasLtCreate(&lt));
  std::vector<float> A((size_t)k * m), B((size_t)n * k), bias(m);
  for (size_t i = 0; i < A.size(); i++) A[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
  for (size_t i = 0; i < B.size(); i++) B[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
  for (int i = 0; i < m; i++) bias[i] = 0.1f * (float)(i % 3) - 0.1f;
  /* op(A) = A^T with A stored k x m (lda = k); op(B) = B stored k x n (ldb = k) */
  float *dA = upload(A), *dB = upload(B), *dbias = upload(bias), *dD, *daux, *ws;
  CK(cudaMalloc((void **)&dD, (size_t)m * n * sizeof(float)));
  CK(cudaMalloc((void **)&daux, (size_t)m * n * sizeof(float)));
  CK(cudaMalloc((void **)&ws, 1 << 20));
  cublasLtMatmulDesc_t op;
  CK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t T = CUBLAS_OP_T;
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T));
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  const void *bp = dbias;
  void *ap = daux;
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &ap, sizeof ap));
  int64_t bad_ld = m + 4; /* 28: >= rows but not a multiple of 8 */
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &bad_ld, sizeof bad_ld));
  cublasLtMatrixLayout_t la, lb, ld;
  CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, k, m, k));
  CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, k, n, k));
  CK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, m, n, m));
  cublasLtMatmulPreference_t pref;
  CK(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsb = 1 << 20;
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
  cublasLtMatmulHeuristicResult_t res;
  int nres = 0;
  check(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &res, &nres) != CUBLAS_STATUS_SUCCESS &&
            nres == 0, "heuristic: GELU_AUX with an aux ld not divisible by 8 was accepted");
  int64_t aux_ld = m;
  CK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld));
  CK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &res, &nres));
  check(nres == 1, "heuristic: no algorithm for a valid problem");
  float alpha = 0.5f, beta = 0.0f;
  check(cublasLtMatmul(lt, op, &alpha, dA, la, dB, lb, &beta, dD, ld, dD, ld, &res.algo, ws,
                       res.workspaceSize ? res.workspaceSize - 4 : 0, 0) != CUBLAS_STATUS_SUCCESS ||
            res.workspaceSize == 0, "matmul: a workspace shorter than the algorithm's was accepted");
  CK(cublasLtMatmul(lt, op, &alpha, dA, la, dB, lb, &beta, dD, ld, dD, ld, &res.algo, ws, wsb, 0));
  std::vector<float> D = download(dD, (size_t)m * n), aux = download(daux, (size_t)m * n);
  bool ok = true;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float pre = alpha * ref(A, k, true, B, k, false, i, j, k) + bias[i];
      float g = 0.5f * pre * (1.0f + tanhf(0.7978845608f * (pre + 0.044715f * pre * pre * pre)));
      ok &= fabsf(aux[i + j * m] - pre) <= 1e-5f && fabsf(D[i + j * m] - g) <= 1e-5f;
    }
  check(ok, "matmul GELU_AUX_BIAS: D or aux differ from the column-major reference");
  /* the algorithm of this problem for another problem */
  cublasLtMatrixLayout_t lb2, ld2;
  CK(cublasLtMatrixLayoutCreate(&lb2, CUDA_R_32F, k, n - 1, k));
  CK(cublasLtMatrixLayoutCreate(&ld2, CUDA_R_32F, m, n - 1, m));
  check(cublasLtMatmul(lt, op, &alpha, dA, la, dB, lb2, &beta, dD, ld2, dD, ld2, &res.algo, ws, wsb, 0) ==
            CUBLAS_STATUS_INVALID_VALUE, "matmul: an algorithm obtained for another problem was accepted");
  /* alignment promised 16 bytes, pointer aligned to 4 */
  uint32_t al = 16;
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
  CK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 1, &res, &nres));
  check(cublasLtMatmul(lt, op, &alpha, dA + 1, la, dB, lb, &beta, dD, ld, dD, ld, &res.algo, ws, wsb, 0) ==
            CUBLAS_STATUS_INVALID_VALUE, "matmul: a pointer less aligned than the preference was accepted");
  CK(cudaDeviceSynchronize());
  for (cublasLtMatrixLayout_t l : {la, lb, ld, lb2, ld2}) CK(cublasLtMatrixLayoutDestroy(l));
  CK(cublasLtMatmulPreferenceDestroy(pref));
  CK(cublasLtMatmulDescDestroy(op));
  CK(cublasLtDestroy(lt));
  for (float *p : {dA, dB, dbias, dD, daux, ws}) CK(cudaFree(p));
}

static void test_batched() {
  const int m = 5, n = 7, k = 3, batch = 3;
  cublasHandle_t h;
  CK(cublasCreate(&h));
  std::vector<float> A((size_t)m * k * batch), B((size_t)k * n * batch), C((size_t)m * n * batch, 1.0f);
  for (size_t i = 0; i < A.size(); i++) A[i] = (float)(i % 7) - 3.0f;
  for (size_t i = 0; i < B.size(); i++) B[i] = (float)(i % 5) - 2.0f;
  float *dA = upload(A), *dB = upload(B), *dC = upload(C);
  float alpha = 2.0f, beta = 0.5f;
  CK(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, CUDA_R_32F, m,
                                (long long)m * k, dB, CUDA_R_32F, k, (long long)k * n, &beta, dC,
                                CUDA_R_32F, m, (long long)m * n, batch, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  std::vector<float> got = download(dC, C.size());
  bool ok = true;
  for (int b = 0; b < batch; b++)
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        std::vector<float> Ab(A.begin() + b * m * k, A.begin() + (b + 1) * m * k);
        std::vector<float> Bb(B.begin() + b * k * n, B.begin() + (b + 1) * k * n);
        float want = alpha * ref(Ab, m, false, Bb, k, false, i, j, k) + beta;
        ok &= got[(size_t)b * m * n + i + j * m] == want;
      }
  check(ok, "GemmStridedBatchedEx: wrong batch results");
  check(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, dA, CUDA_R_32F, m - 1,
                                   0, dB, CUDA_R_32F, k, 0, &beta, dC, CUDA_R_32F, m, 0, 1,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE,
        "GemmStridedBatchedEx: lda < m was accepted");
  CK(cublasDestroy(h));
  for (float *p : {dA, dB, dC}) CK(cudaFree(p));
}

int main() {
  test_cub();
  test_lt();
  test_batched();
  printf("library models: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
