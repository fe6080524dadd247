/* Scaled-dot-product attention through cuDNN's fused (flash) attention, with
 * the backend graph API of cudnn_graph.h: fp16/bf16 only, no mask, scale
 * 1/sqrt(D). Chosen by --attention cudnn (cddp_cuda_set_attention); fp32
 * compute keeps the plain path of attention.cu.
 *
 * Forward is one CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR: Q, K, V and a
 * by-value scale in, O and Stats (per query row, the natural-log
 * log-sum-exp of the scaled scores, fp32) out. This is the graph
 * cudnn-frontend's UnifiedSDPANode builds on cuDNN >= 9.13.1. Backward is one
 * CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR (cuDNN >= 9.17): Q, K, V, O,
 * dO, Stats and the scale in, dQ, dK, dV out. NOT YET RUN ON A GPU (see
 * docs/cuda.md): cudnn-frontend itself still lowers the backward pass to its
 * composite graph, so whether an engine serves this one on sm_80/sm_90 is
 * what the first GPU run must show.
 *
 * Layouts: qkv [B,T,3,H,D] fp32 is cast once to the compute type; Q, K, V are
 * strided views of that copy (dims [B,H,T,D], strides [3HDT, D, 3HD, 1]);
 * O and dO are [B,T,H,D] (strides [HDT, D, HD, 1]); dQ, dK, dV land in a
 * [B,T,3,H,D] half buffer with Q's strides, cast back into dqkv.
 *
 * ws (per layer, each region 256-byte aligned): Stats fp32 [B,H,T] and O
 * (compute type) saved by forward, then scratch that forward and backward
 * overwrite: the half qkv, dO and dqkv. cuDNN's own workspace is one buffer
 * of the backend, sized when the plans are built at set-up
 * (attention_ws_bytes). Executing allocates only cuDNN's host-side variant
 * pack descriptor. */
#ifdef CDDP_HAVE_CUDNN
#include <cudnn.h> /* before cuda_common.h: check_cuda.h defines cudnnCheck after it */
#endif
#include "kernels/cuda/cuda_common.h"

static size_t al256(size_t b) { return (b + 255) & ~(size_t)255; }

static size_t sdpa_layout_bytes(int B, int T, int H, int D) {
  size_t bht = (size_t)B * H * T, td = bht * D;
  return al256(bht * 4) + al256(td * 2) + 2 * al256(3 * td * 2) + al256(td * 2);
}

#ifdef CDDP_HAVE_CUDNN
struct sdpa_ws {
  float *stats;
  void *o, *qkv, *dout, *dqkv;
};

static sdpa_ws sdpa_layout(void *ws, int B, int T, int H, int D) {
  size_t bht = (size_t)B * H * T, td = bht * D;
  char *p = (char *)ws;
  sdpa_ws w;
  w.stats = (float *)p; p += al256(bht * 4);
  w.o = p; p += al256(td * 2);
  w.qkv = p; p += al256(3 * td * 2);
  w.dout = p; p += al256(td * 2);
  w.dqkv = p;
  return w;
}

typedef cudnnBackendDescriptor_t desc_t;
enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE, UID_DO, UID_DQ, UID_DK, UID_DV };
#define SDPA_PLANS 16
#define SDPA_MAX_DESC 24
#define SDPA_HEUR 8

/* A prepared graph: its execution plan and every descriptor it was built
 * from (kept alive for the plan's lifetime, as cudnn-frontend does). */
struct sdpa_plan {
  int valid, B, T, H, D, bwd;
  cddp_dtype t;
  desc_t plan;
  int64_t ws_bytes;
  float scale; /* the by-value scale tensor's value */
  desc_t keep[SDPA_MAX_DESC];
  int nkeep;
  char err[512]; /* why there is no plan (plan == NULL) */
};

static cudnnHandle_t g_dnn;
static sdpa_plan g_sdpa[SDPA_PLANS];
static void *g_dnn_ws;
static size_t g_dnn_ws_bytes;

static desc_t make(sdpa_plan *p, cudnnBackendDescriptorType_t type) {
  desc_t d = NULL;
  cudnnCheck(cudnnBackendCreateDescriptor(type, &d));
  if (p->nkeep == SDPA_MAX_DESC) cddp_die(CDDP_EXIT_RUNTIME, "cuDNN SDPA: too many descriptors");
  p->keep[p->nkeep++] = d;
  return d;
}
static void set(desc_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
                const void *v) {
  cudnnCheck(cudnnBackendSetAttribute(d, a, t, n, v));
}
static void link(desc_t op, cudnnBackendAttributeName_t a, desc_t *tensor) {
  set(op, a, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, tensor);
}

/* largest power of two <= 16 dividing b: the alignment of the K/V views */
static int64_t align_of(size_t b) {
  int64_t a = 16;
  while (a > 1 && b % (size_t)a) a >>= 1;
  return a;
}

static desc_t tensor(sdpa_plan *p, int64_t uid, cudnnDataType_t type, const int64_t dim[4],
                     const int64_t stride[4], int64_t align, bool by_value) {
  desc_t d = make(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim);
  set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, stride);
  set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
  if (by_value) set(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
  cudnnCheck(cudnnBackendFinalize(d));
  return d;
}

/* Records cuDNN's reason in p->err; 0 when st failed. */
static int ok(sdpa_plan *p, cudnnStatus_t st, const char *what) {
  if (st == CUDNN_STATUS_SUCCESS) return 1;
  char last[256] = "";
  cudnnGetLastErrorString(last, sizeof last);
  snprintf(p->err, sizeof p->err, "%s: %s%s%s", what, cudnnGetErrorString(st), last[0] ? "; " : "",
           last);
  return 0;
}

/* Builds the graph of one direction and the first execution plan of the
 * heuristic's list that finalizes; on failure p->plan stays NULL and p->err
 * says why. */
static void build(sdpa_plan *p) {
  const int64_t B = p->B, T = p->T, H = p->H, D = p->D;
  cudnnDataType_t ht = p->t == CDDP_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
  const int64_t bhtd[4] = {B, H, T, D};
  const int64_t s_qkv[4] = {T * 3 * H * D, D, 3 * H * D, 1};
  const int64_t s_o[4] = {T * H * D, D, H * D, 1};
  const int64_t d_st[4] = {B, H, T, 1}, s_st[4] = {H * T, T, 1, 1};
  const int64_t one[4] = {1, 1, 1, 1};
  const int64_t al_kv = align_of((size_t)(H * D * 2));
  desc_t q = tensor(p, UID_Q, ht, bhtd, s_qkv, 16, false);
  desc_t k = tensor(p, UID_K, ht, bhtd, s_qkv, al_kv, false);
  desc_t v = tensor(p, UID_V, ht, bhtd, s_qkv, al_kv, false);
  desc_t o = tensor(p, UID_O, ht, bhtd, s_o, 16, false);
  desc_t st = tensor(p, UID_STATS, CUDNN_DATA_FLOAT, d_st, s_st, 16, false);
  desc_t sc = tensor(p, UID_SCALE, CUDNN_DATA_FLOAT, one, one, 16, true);
  p->scale = 1.0f / sqrtf((float)D);

  desc_t op;
  if (!p->bwd) {
    op = make(p, CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, &q);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, &k);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, &v);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, &o);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC, &st);
    link(op, CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, &sc);
  } else {
    desc_t dout = tensor(p, UID_DO, ht, bhtd, s_o, 16, false);
    desc_t dq = tensor(p, UID_DQ, ht, bhtd, s_qkv, 16, false);
    desc_t dk = tensor(p, UID_DK, ht, bhtd, s_qkv, al_kv, false);
    desc_t dv = tensor(p, UID_DV, ht, bhtd, s_qkv, al_kv, false);
    op = make(p, CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_QDESC, &q);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_KDESC, &k);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_VDESC, &v);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_ODESC, &o);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_DODDESC, &dout);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_STATSDESC, &st);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_SCALEDESC, &sc);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_DQDESC, &dq);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_DKDESC, &dk);
    link(op, CUDNN_ATTR_OPERATION_SDPA_BWD_DVDESC, &dv);
  }
  if (!ok(p, cudnnBackendFinalize(op), "finalizing the SDPA operation")) return;

  desc_t graph = make(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  link(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, &op);
  set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_dnn);
  if (!ok(p, cudnnBackendFinalize(graph), "finalizing the operation graph")) return;

  desc_t heur = make(p, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  link(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, &graph);
  cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (!ok(p, cudnnBackendFinalize(heur), "engine heuristics")) return;
  desc_t cfg[SDPA_HEUR];
  for (int i = 0; i < SDPA_HEUR; i++) cfg[i] = make(p, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  int64_t n = 0;
  if (!ok(p, cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, SDPA_HEUR, &n, cfg),
          "reading the engine heuristics"))
    return;
  if (n == 0) snprintf(p->err, sizeof p->err, "the heuristics offer no engine");
  for (int64_t i = 0; i < n && !p->plan; i++) {
    desc_t plan = make(p, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_dnn);
    link(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, &cfg[i]);
    if (!ok(p, cudnnBackendFinalize(plan), "finalizing an execution plan")) continue;
    int64_t cnt = 0;
    cudnnCheck(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                        CUDNN_TYPE_INT64, 1, &cnt, &p->ws_bytes));
    p->plan = plan;
  }
}

static sdpa_plan *plan_get(int B, int T, int H, int D, cddp_dtype t, int bwd) {
  for (int i = 0; i < SDPA_PLANS; i++) {
    sdpa_plan *p = &g_sdpa[i];
    if (p->valid && p->B == B && p->T == T && p->H == H && p->D == D && p->t == t && p->bwd == bwd)
      return p;
  }
  for (int i = 0; i < SDPA_PLANS; i++) {
    sdpa_plan *p = &g_sdpa[i];
    if (p->valid) continue;
    if (!g_dnn) {
      cudnnCheck(cudnnCreate(&g_dnn));
      cudnnCheck(cudnnSetStream(g_dnn, g_cu.compute));
    }
    memset(p, 0, sizeof *p);
    p->valid = 1;
    p->B = B, p->T = T, p->H = H, p->D = D, p->t = t, p->bwd = bwd;
    build(p);
    if (p->plan && (size_t)p->ws_bytes > g_dnn_ws_bytes) { /* set-up time: see cu_sdpa_ws_bytes */
      if (g_dnn_ws) cudaCheck(cudaFree(g_dnn_ws));
      cudaCheck(cudaMalloc(&g_dnn_ws, (size_t)p->ws_bytes));
      g_dnn_ws_bytes = (size_t)p->ws_bytes;
    }
    return p;
  }
  cddp_die(CDDP_EXIT_RUNTIME, "cuDNN SDPA: more than %d attention shapes", SDPA_PLANS / 4);
}

static sdpa_plan *plan_ready(int B, int T, int H, int D, cddp_dtype t, int bwd) {
  sdpa_plan *p = plan_get(B, T, H, D, t, bwd);
  if (!p->plan)
    cddp_die(CDDP_EXIT_RUNTIME,
             "--attention cudnn: cuDNN %d has no %s SDPA plan for B=%d T=%d H=%d D=%d %s (%s); "
             "use --attention plain", (int)cudnnGetVersion(), bwd ? "backward" : "forward", B, T,
             H, D, cddp_dtype_name(t), p->err);
  if ((size_t)p->ws_bytes > g_dnn_ws_bytes)
    cddp_die(CDDP_EXIT_RUNTIME, "cuDNN SDPA plan needs %lld workspace bytes, %zu reserved",
             (long long)p->ws_bytes, g_dnn_ws_bytes);
  return p;
}

static void run(sdpa_plan *p, const int64_t *uids, void *const *ptrs, int n) {
  desc_t vp = NULL;
  cudnnCheck(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
  set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
  set(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &g_dnn_ws);
  cudnnCheck(cudnnBackendFinalize(vp));
  cudnnCheck(cudnnBackendExecute(g_dnn, p->plan, vp));
  cudnnCheck(cudnnBackendDestroyDescriptor(vp));
}

int cu_sdpa_available(void) { return 1; }

size_t cu_sdpa_ws_bytes(int B, int T, int H, int D) {
  /* Build both directions for both half types now, so that cuDNN's workspace
   * is allocated at set-up and not in the first step. */
  const cddp_dtype types[2] = {CDDP_BF16, CDDP_F16};
  for (int i = 0; i < 2; i++)
    for (int bwd = 0; bwd < 2; bwd++) plan_get(B, T, H, D, types[i], bwd);
  return sdpa_layout_bytes(B, T, H, D);
}

void cu_sdpa_fwd(const float *qkv, float *out, void *ws, int B, int T, int H, int D,
                 cddp_dtype compute) {
  sdpa_plan *p = plan_ready(B, T, H, D, compute, 0);
  sdpa_ws w = sdpa_layout(ws, B, T, H, D);
  size_t td = (size_t)B * T * H * D;
  char *base = (char *)w.qkv;
  cu_cast(w.qkv, compute, qkv, CDDP_F32, 3 * td);
  const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE};
  void *const ptrs[] = {base, base + (size_t)H * D * 2, base + (size_t)2 * H * D * 2, w.o,
                        w.stats, &p->scale};
  run(p, uids, ptrs, 6);
  cu_cast(out, CDDP_F32, w.o, compute, td);
}

void cu_sdpa_bwd(const float *dout, const float *qkv, const void *ws, float *dqkv, int B, int T,
                 int H, int D, cddp_dtype compute) {
  sdpa_plan *p = plan_ready(B, T, H, D, compute, 1);
  sdpa_ws w = sdpa_layout((void *)ws, B, T, H, D); /* scratch part is rewritten */
  size_t td = (size_t)B * T * H * D, hd2 = (size_t)H * D * 2;
  char *base = (char *)w.qkv, *dbase = (char *)w.dqkv;
  cu_cast(w.qkv, compute, qkv, CDDP_F32, 3 * td);
  cu_cast(w.dout, compute, dout, CDDP_F32, td);
  const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_DO, UID_STATS, UID_SCALE,
                          UID_DQ, UID_DK, UID_DV};
  void *const ptrs[] = {base, base + hd2, base + 2 * hd2, w.o, w.dout, w.stats, &p->scale,
                        dbase, dbase + hd2, dbase + 2 * hd2};
  run(p, uids, ptrs, 10);
  cu_cast(dqkv, CDDP_F32, w.dqkv, compute, 3 * td);
}

void cu_sdpa_reset(void) {
  for (int i = 0; i < SDPA_PLANS; i++) {
    sdpa_plan *p = &g_sdpa[i];
    for (int k = p->nkeep - 1; k >= 0; k--) cudnnCheck(cudnnBackendDestroyDescriptor(p->keep[k]));
    memset(p, 0, sizeof *p);
  }
  if (g_dnn_ws) cudaCheck(cudaFree(g_dnn_ws));
  g_dnn_ws = NULL;
  g_dnn_ws_bytes = 0;
  if (g_dnn) cudnnCheck(cudnnDestroy(g_dnn));
  g_dnn = NULL;
}

#else /* built without cuDNN (the CPU emulation of this backend) */

int cu_sdpa_available(void) { return 0; }
size_t cu_sdpa_ws_bytes(int B, int T, int H, int D) { return sdpa_layout_bytes(B, T, H, D); }
void cu_sdpa_fwd(const float *, float *, void *, int, int, int, int, cddp_dtype) {
  cddp_die(CDDP_EXIT_USAGE, "--attention cudnn: this build has no cuDNN");
}
void cu_sdpa_bwd(const float *, const float *, const void *, float *, int, int, int, int,
                 cddp_dtype) {
  cddp_die(CDDP_EXIT_USAGE, "--attention cudnn: this build has no cuDNN");
}
void cu_sdpa_reset(void) {}

#endif
