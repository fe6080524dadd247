/* Layers with explicit forward and backward (DESIGN §3). Internal to
 * src/model and its tests; every layer calls only ops.h.
 *
 * Life of a layer:
 *   *_init   registers its parameters (forward order) in a cddp_params;
 *   *_plan   reserves its buffers from a cddp_planner; called twice with the
 *            same arguments (a measuring pass, then a real one);
 *   *_fwd    runs on n <= planned rows and remembers its inputs (pointers);
 *   *_bwd    consumes the gradient of its output, ACCUMULATES its parameter
 *            gradients and calls the ready hook for every parameter it owns,
 *            in reverse registration order, as soon as the gradient is final;
 *            the gradient w.r.t. its input is OVERWRITTEN (NULL: not needed).
 *
 * Two kinds of planned memory: "activations" live from forward to backward
 * (outputs, saved pre-activations, AMP half copies of inputs); "scratch" is
 * only used inside one layer's backward, so layers share it: a layer plans
 * its scratch after a mark and releases it, the scratch arena is sized by the
 * peak (a stack discipline: a parent's scratch stays reserved while its
 * children plan theirs). No layer allocates in forward or backward. */
#ifndef CDDP_MODEL_LAYERS_H
#define CDDP_MODEL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ops.h"
#include "model/model.h"
#include "model/params.h"
#include "model/shard_plan.h"

/* ---- shared context --------------------------------------------------------- */
typedef struct {
  const cddp_backend *be;
  cddp_params *ps;
  cddp_dtype amp; /* CDDP_F32, or F16/BF16: GEMM/attention inputs in half precision */
} cddp_lctx;

typedef struct {
  cddp_arena act, ws;
  size_t ws_peak;
} cddp_planner;

/* Starts a pass: measuring (sizes NULL) or real (sizes from the measuring pass). */
void cddp_planner_measure(cddp_planner *p);
void cddp_planner_alloc(cddp_planner *p, const cddp_backend *be, size_t act_bytes, size_t ws_bytes);
void cddp_planner_destroy(cddp_planner *p);
void *cddp_plan_act(cddp_planner *p, size_t bytes);
void *cddp_plan_scratch(cddp_planner *p, size_t bytes);
static inline size_t cddp_plan_mark(const cddp_planner *p) { return p->ws.used; }
static inline void cddp_plan_release(cddp_planner *p, size_t mark) { p->ws.used = mark; }

static inline void cddp_mark_ready(const cddp_ready_hook *h, int id) {
  if (h && h->fn) h->fn(h->ctx, id);
}

/* Fills the AMP half copy of every dense parameter from master (no-op without AMP). */
void cddp_params_refresh_half(const cddp_params *ps);

/* ---- deterministic initialisation (rng.c) ------------------------------------
 * Parameter id i draws from its own splitmix64 stream seeded with
 * seed + (i+1) * 0x9E3779B97F4A7C15, so a parameter's values do not depend on
 * the thread count or on the other parameters. uniform: 53-bit mantissa in
 * [0,1); normal: Box–Muller (cos branch) with u1 in (0,1]. Values are made on
 * the host and copied to master with memcpy_h2d. */
typedef struct { uint64_t s; } cddp_rng;
void cddp_rng_seed(cddp_rng *r, uint64_t seed, int param_id);
uint64_t cddp_rng_next(cddp_rng *r);
double cddp_rng_uniform(cddp_rng *r);
double cddp_rng_normal(cddp_rng *r);

typedef enum {
  CDDP_INIT_ZERO,
  CDDP_INIT_ONE,
  CDDP_INIT_NORMAL,    /* N(0, a) */
  CDDP_INIT_UNIFORM,   /* U(-a, a) */
  CDDP_INIT_TRUNC_NORMAL /* N(0, a) truncated to [-2, 2] (timm trunc_normal_ defaults) */
} cddp_init_kind;
/* Initialises parameter id with the given distribution (a = std or bound). */
void cddp_param_init(cddp_params *ps, uint64_t seed, int id, cddp_init_kind kind, double a);

/* ---- linear: y = act(x W^T + b), W [out, in] ------------------------------------ */
typedef struct {
  int in, out, ldx, rows;
  int w, b; /* parameter ids; b = -1 without bias */
  cddp_act act;
  float *y;    /* act [rows, out] */
  float *pre;  /* act [rows, out], only with GELU (ReLU's backward reads y) */
  void *xh;    /* act, AMP: half copy of the input, [rows, ldx] */
  float *dpre; /* scratch [rows, out], only with an activation */
  void *dyh;   /* scratch, AMP: half copy of dy [rows, out] */
  const float *x; /* saved by forward */
  int n;
} cddp_linear;

/* wshape/wndim: the registered weight shape (NULL: [out, in]); numel must be out*in. */
void cddp_linear_init(cddp_linear *l, cddp_params *ps, const char *prefix, int in, int out,
                      int bias, cddp_act act, int flags, const int64_t *wshape, int wndim);
/* ldx: row stride of the input x (>= in). */
void cddp_linear_plan(cddp_linear *l, const cddp_lctx *c, cddp_planner *p, int rows, int ldx);
void cddp_linear_fwd(cddp_linear *l, const cddp_lctx *c, const float *x, int n);
/* y = x W^T + b + res (res [n, out] contiguous): a residual connection folded
 * into the GEMM (act must be none). */
void cddp_linear_fwd_residual(cddp_linear *l, const cddp_lctx *c, const float *x, int n,
                              const float *res);
/* dy: [n, out] contiguous; dx (row stride lddx) overwritten, or NULL. */
void cddp_linear_bwd(cddp_linear *l, const cddp_lctx *c, const float *dy, float *dx, int lddx,
                     const cddp_ready_hook *h);

/* ---- mlp: a stack of linears; ReLU on every layer except, optionally, the last ----- */
#define CDDP_MLP_MAX 8
typedef struct {
  int nl;
  cddp_linear l[CDDP_MLP_MAX];
  float *d[CDDP_MLP_MAX]; /* scratch: gradient of layer i's output, i < nl-1 */
} cddp_mlp;

/* dims[0..nl]: widths; names prefix.{0,2,4,...} (nn.Sequential with ReLU modules
 * between the Linears). last_relu: ReLU after the last layer too. */
void cddp_mlp_init(cddp_mlp *m, cddp_params *ps, const char *prefix, const int *dims, int nl,
                   int last_relu);
void cddp_mlp_plan(cddp_mlp *m, const cddp_lctx *c, cddp_planner *p, int rows, int ldx);
void cddp_mlp_fwd(cddp_mlp *m, const cddp_lctx *c, const float *x, int n);
static inline float *cddp_mlp_out(const cddp_mlp *m) { return m->l[m->nl - 1].y; }
void cddp_mlp_bwd(cddp_mlp *m, const cddp_lctx *c, const float *dy, float *dx, int lddx,
                  const cddp_ready_hook *h);
/* DLRM_Net init: W ~ N(0, sqrt(2/(in+out))), b ~ N(0, sqrt(1/out)). */
void cddp_mlp_init_dlrm(cddp_mlp *m, cddp_params *ps, uint64_t seed);

/* ---- embedding bag over one table ------------------------------------------------ */
typedef struct {
  int id;        /* parameter id */
  int64_t rows;
  int dim, bag, mean, sparse;
  int nbags;     /* planned bags */
  int32_t *sids; /* scratch (dense tables): sparse gradient before scatter */
  float *srows;
  void *ws;      /* scratch: embbag_bwd workspace */
  int32_t *pad;  /* act: cap ids of -1 (pads the gradient after a short batch) */
  const int32_t *ids; /* saved by forward */
  int ids_ld, n;
} cddp_embbag;

/* Registers `name` [rows, dim]: sparse (CDDP_PARAM_SPARSE) if rows > threshold,
 * else a dense parameter; both flagged CDDP_PARAM_EMBEDDING. */
void cddp_embbag_init(cddp_embbag *e, cddp_params *ps, const char *name, int64_t rows, int dim,
                      int bag, int mean, int64_t dense_threshold);
/* Sparse tables: sp_ids/sp_rows (cap nbags*bag) are planned as activations. */
void cddp_embbag_plan(cddp_embbag *e, const cddp_lctx *c, cddp_planner *p, int nbags);
void cddp_embbag_fwd(cddp_embbag *e, const cddp_lctx *c, const int32_t *ids, int ids_ld, int n,
                     float *out, int ldo);
void cddp_embbag_bwd(cddp_embbag *e, const cddp_lctx *c, const float *dout, int ldo,
                     const cddp_ready_hook *h);

/* ---- embedding tables sharded across ranks ------------------------------------------
 * Forward: each rank sends every valid id to the rank holding its row
 * (bucketed by owner; counts first, then ids, both all-to-all). A bag's ids
 * that go to one owner form a fragment (one per sample, table and owner, as
 * TorchRec's); owners sum each fragment (embbag_seg_fwd; a bag of one id is a
 * plain lookup) and send one vector per fragment back, and the sender adds
 * the fragments into its output (a mean scales each by 1/the bag's valid ids
 * first). Backward sends one gradient per fragment the same way; owners give
 * it to every id of the fragment and coalesce them into their shard's sparse
 * gradient (sp_ids, sp_rows, sp_n: local row ids, averaged over ranks) for
 * the optimizer. The bucketing runs on the host from host-visible ids (the
 * device batch's host copy); the received counts come back to the host once
 * per forward. Everything else runs through ops.h, on any backend. */
#define CDDP_SHEMB_MAX 64
typedef struct {
  int n, D, world, rank, B, ldo;
  int bag[CDDP_SHEMB_MAX], mean[CDDP_SHEMB_MAX]; /* ids per sample; mean pooling */
  int slot[CDDP_SHEMB_MAX];   /* float offset of the table's vector in an output row */
  int pid[CDDP_SHEMB_MAX];    /* parameter id */
  int64_t rows[CDDP_SHEMB_MAX], first[CDDP_SHEMB_MAX], count[CDDP_SHEMB_MAX];
  int row_wise[CDDP_SHEMB_MAX], owner[CDDP_SHEMB_MAX];
  int any_mean;               /* some mean-pooled bag of more than one id */
  int any_bag;                /* some bag of more than one id: fragments travel with ends */
  int ncnt;                   /* counts per (rank): n ids, then n fragments if any_bag */
  const cddp_model_comm *mc;
  double *wait_ms, *bytes;    /* the model's counters */
  /* wire types: vectors owner -> source (F16/BF16 under AMP), gradients
   * source -> owner (--grad-compress); F32: no casts, no half buffers */
  cddp_dtype fwd_t, grad_t;
  /* host (pinned on CUDA), allocated at plan time */
  int32_t *h_cnt_send, *h_cnt_recv; /* [W][ncnt] ids (then fragments) per (rank, table) */
  int32_t *h_at, *h_fat, *h_eat; /* [W][n] next id, fragment, end position per (rank, table) */
  int32_t *h_rid, *h_rend, *h_rfrag; /* [W][n] received: id, end (in recv), fragment offsets */
  int32_t *h_mark;              /* [3W] per owner: last sample, its fragment's end slot, ids so far */
  int32_t *h_send;              /* [ssend] per rank: ids (rank, table, sample, bag slot), then
                                 * the fragments' ends of the tables with bags (block-relative) */
  int32_t *h_row;               /* [scap] output row (of D floats) of each fragment sent */
  float *h_finv;                /* [scap] 1/(the bag's valid ids) of each fragment for a mean, else 1 */
  /* the sender's pooling, a CSR over the fragments received back: per table,
   * per sample, the fragments' indices in rank order and the ends (relative
   * to the table's block), so each slot is summed in a fixed order */
  int32_t *h_pool;              /* [scap] fragment indices */
  int32_t *h_pend;              /* [n*B] ends, (table, sample) order */
  int pool_at[CDDP_SHEMB_MAX];  /* table t's block in h_pool */
  /* device (planned activations) */
  int32_t *cnt_send, *cnt_recv, *send, *row, *pool, *pend; /* copies of the host arrays */
  float *finv;
  int32_t *recv;                /* [rrecv] ids and ends owners received, laid out as h_send */
  float *vec_out, *vec_in;      /* [rcap*D] owners' fragment sums; [scap*D] fragments back */
  float *g_send, *g_recv;       /* [scap*D]; [rcap*D] fragments' output gradients */
  void *fwd_out_h, *fwd_in_h;   /* [rcap*D], [scap*D] of fwd_t */
  void *grad_send_h, *grad_recv_h; /* [scap*D], [rcap*D] of grad_t */
  /* per table: the (local id, gradient) pairs owners received in the
   * micro-steps of this optimizer step, coalesced on the last one */
  int32_t *acc_ids[CDDP_SHEMB_MAX];
  float *acc_rows[CDDP_SHEMB_MAX];
  int acc_n[CDDP_SHEMB_MAX];
  int accum;                    /* micro-steps per optimizer step (--grad-accum) */
  const int *micro;             /* the model's current micro-step (0-based) */
  void *ws;                     /* scratch: sparse_coalesce */
  size_t scap, rcap;            /* ids (and so fragments) sent, received at most */
  size_t ssend, rrecv;          /* ints of send, recv: ids, plus as many ends with bags */
  /* host, fixed at init: byte counts/displacements per rank: counts, ids,
   * vectors (owner side send/receive), gradients (source side send/receive) */
  size_t *cb, *cd, *sb, *sd, *rb, *rd, *fsb, *fsd, *frb, *frd, *gsb, *gsd, *grb, *grd;
  void *h_vec, *h_grad;         /* in-flight collectives */
  int nfsent;                   /* fragments this rank sent in the last forward */
  size_t nfrecv;                /* fragments it received (as an owner) */
  int nb;                       /* samples of the last forward */
  const cddp_backend *be;
} cddp_shemb;

/* Output rows have ldo floats (a multiple of D, as every slot is). accum
 * micro-steps per optimizer step; *micro is the current one (the owners'
 * gradients are final after the last). */
void cddp_shemb_init(cddp_shemb *s, const cddp_model_comm *mc, int D, int ldo, cddp_dtype fwd_t,
                     cddp_dtype grad_t, int accum, const int *micro, double *wait_ms,
                     double *bytes);
/* Registers table `name` (global rows, this rank's [first, first+count)) as a
 * CDDP_PARAM_SHARDED parameter; returns its id. bag ids per sample (-1 =
 * none), pooled by sum or mean; the vector goes to float `slot` of a row. */
int cddp_shemb_add(cddp_shemb *s, cddp_params *ps, const char *name, int64_t rows, int64_t first,
                   int64_t count, int row_wise, int owner, int bag, int mean, int slot);
void cddp_shemb_plan(cddp_shemb *s, const cddp_lctx *c, cddp_planner *p, int B);
/* ids[t] [n, ld[t]] (bag[t] ids from each row, HOST memory) for table t;
 * starts the exchange. */
void cddp_shemb_fwd_start(cddp_shemb *s, const cddp_lctx *c, const int32_t *const *ids,
                          const int *ld, int n);
/* Writes table t's pooled vector of sample i at out + i*ldo + slot[t]. */
void cddp_shemb_fwd_finish(cddp_shemb *s, const cddp_lctx *c, float *out);
void cddp_shemb_bwd_start(cddp_shemb *s, const cddp_lctx *c, const float *dout);
void cddp_shemb_bwd_finish(cddp_shemb *s, const cddp_lctx *c, const cddp_ready_hook *h);
void cddp_shemb_destroy(cddp_shemb *s);

/* ---- DLRM dot interaction over T [n, F, D] --------------------------------------- */
typedef struct {
  int F, D, rows, out_cols;
  float *T;   /* act [rows, F, D] (filled by the model) */
  float *out; /* act [rows, D + F(F-1)/2] */
  float *dT;  /* scratch [rows, F, D] */
  int n;
} cddp_interaction;
void cddp_interaction_plan(cddp_interaction *it, cddp_planner *p, int rows, int F, int D);
void cddp_interaction_fwd(cddp_interaction *it, const cddp_lctx *c, int n);
void cddp_interaction_bwd(cddp_interaction *it, const cddp_lctx *c, const float *dout);

/* ---- layer norm over the last dim --------------------------------------------------- */
typedef struct {
  int C, rows, w, b;
  float eps;
  float *y, *mean, *rstd; /* act */
  const float *x;
  int n;
} cddp_layernorm;
void cddp_layernorm_init(cddp_layernorm *ln, cddp_params *ps, const char *prefix, int C, float eps);
void cddp_layernorm_plan(cddp_layernorm *ln, cddp_planner *p, int rows);
void cddp_layernorm_fwd(cddp_layernorm *ln, const cddp_lctx *c, const float *x, int n);
/* dx overwritten, or accumulated into (accumulate nonzero) */
void cddp_layernorm_bwd(cddp_layernorm *ln, const cddp_lctx *c, const float *dy, float *dx,
                        int accumulate, const cddp_ready_hook *h);
void cddp_layernorm_init_values(cddp_layernorm *ln, cddp_params *ps, uint64_t seed);

/* ---- multi-head self-attention (timm Attention) ------------------------------------ */
typedef struct {
  int D, H, T, batch;
  cddp_linear qkv, proj;
  float *o;    /* act [batch*T, D] attention output (proj input) */
  void *aws;   /* act: attention_fwd state */
  float *dqkv; /* scratch [batch*T, 3D] */
  float *do_;  /* scratch [batch*T, D] */
  int n;       /* sequences */
} cddp_attention;
void cddp_attention_init(cddp_attention *a, cddp_params *ps, const char *prefix, int D, int H);
void cddp_attention_plan(cddp_attention *a, const cddp_lctx *c, cddp_planner *p, int batch, int T);
/* out = residual + attn(x) (residual [batch*T, D], or NULL for attn(x) alone) */
void cddp_attention_fwd(cddp_attention *a, const cddp_lctx *c, const float *x, int n,
                        const float *residual);
static inline float *cddp_attention_out(const cddp_attention *a) { return a->proj.y; }
void cddp_attention_bwd(cddp_attention *a, const cddp_lctx *c, const float *dy, float *dx,
                        const cddp_ready_hook *h);

/* ---- pre-LN transformer block (timm Block) ------------------------------------------- */
typedef struct {
  int D, T, batch;
  cddp_layernorm ln1, ln2;
  cddp_attention attn;
  cddp_linear fc1, fc2;
  float *x1;  /* [N, D]: x + attn(ln1(x)) (the attention's output buffer) */
  float *out; /* [N, D]: x1 + mlp(ln2(x1)) (fc2's output buffer) */
  float *dh, *dm; /* scratch [N,D], [N,4D] */
  const float *x;
  int n;
} cddp_block;
void cddp_block_init(cddp_block *b, cddp_params *ps, const char *prefix, int D, int H, int mlp_ratio);
void cddp_block_plan(cddp_block *b, const cddp_lctx *c, cddp_planner *p, int batch, int T);
void cddp_block_fwd(cddp_block *b, const cddp_lctx *c, const float *x, int n);
/* dresid: [N, D], the gradient w.r.t. the block's output on entry and w.r.t.
 * its input on return (the residual stream's gradient, updated in place). */
void cddp_block_bwd(cddp_block *b, const cddp_lctx *c, float *dresid, const cddp_ready_hook *h);
/* timm init: Linear trunc_normal(.02)/0, LayerNorm 1/0. */
void cddp_block_init_values(cddp_block *b, cddp_params *ps, uint64_t seed);

/* ---- patch embedding + cls token + position embedding ----------------------------- */
typedef struct {
  int H, W, C, P, D, nP, T, batch;
  float mean[3], std[3];   /* host */
  float *dmean, *dstd;     /* act: the same on the device */
  cddp_linear proj; /* weight registered [D, C, P, P] */
  int cls, pos;     /* parameter ids */
  float *patches;   /* act [batch, nP, C*P*P] */
  float *x;         /* act [batch, T, D] tokens */
  float *dpatch;    /* scratch [batch*nP, D] */
  int n;
} cddp_patch_embed;
void cddp_patch_embed_init(cddp_patch_embed *pe, cddp_params *ps, int H, int W, int C, int P,
                           int D);
void cddp_patch_embed_plan(cddp_patch_embed *pe, const cddp_lctx *c, cddp_planner *p, int batch);
void cddp_patch_embed_fwd(cddp_patch_embed *pe, const cddp_lctx *c, const uint8_t *img, int n);
void cddp_patch_embed_bwd(cddp_patch_embed *pe, const cddp_lctx *c, const float *dx,
                          const cddp_ready_hook *h);
void cddp_patch_embed_init_values(cddp_patch_embed *pe, cddp_params *ps, uint64_t seed);

/* ---- losses (loss.c): the loss sum accumulates into *loss_sum; dlogits written ---- */
void cddp_loss_bce(const cddp_lctx *c, const float *logits, const float *labels, int n,
                   float grad_scale, const float *loss_scale, float *loss_sum, float *dlogits);
void cddp_loss_xent(const cddp_lctx *c, const float *logits, int ld, const int32_t *labels,
                    int n, int classes, float smoothing, float grad_scale,
                    const float *loss_scale, float *loss_sum, float *dlogits);

#endif
