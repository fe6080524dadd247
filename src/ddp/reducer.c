/* The gradient reducer (DESIGN §4).
 *
 * Dense parameters are grouped into buckets over the flat gradient buffer in
 * offset order, which is the order backward produces them (params.h lays
 * dense parameters out in reverse registration order). Bucket boundaries fall
 * on parameter boundaries; the first bucket closes at first_bucket_bytes so
 * that communication starts early, the others at bucket_bytes. A bucket is a
 * slice of grad and is all-reduced in place (zero copy) with CDDP_RED_AVG;
 * with compression the slice is pre-scaled by 1/world, cast into a wire
 * buffer, summed in half precision and cast back in finish().
 *
 * Sparse parameters (embedding tables) exchange their fixed-capacity (ids,
 * rows) arrays with two all-gathers (ids are -1 padded, so every rank sends
 * the same byte count and no count exchange is needed); finish() coalesces
 * the world's pairs with be->sparse_coalesce (deterministic, so identical on
 * every rank) and scales the rows by 1/world.
 *
 * Everything is allocated in create(); a step allocates nothing. */
#include "ddp/reducer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/trace.h"
#include "ddp/comm_impl.h"

typedef struct {
  size_t off, n;        /* floats of grad */
  int n_params, pending;
  int launched;
  void *wire;           /* compression: n half elements (device) */
  cddp_comm_handle *h;
  double t_first_ready, t_launch;
} bucket;

typedef struct {
  int id, dim, cap;     /* cap: per micro-step capacity */
  int32_t *slot_ids;    /* accum > 1: [accum * cap] (device), else NULL */
  float *slot_rows;
  int32_t *recv_ids;    /* [world * send_cap] */
  float *recv_rows;
  int32_t *out_ids;     /* coalesced result [world * send_cap] */
  float *out_rows;
  void *ws;
  cddp_comm_handle *h_ids, *h_rows;
  double t_launch;
  int launched;
} sparse_slot;

struct cddp_reducer {
  cddp_comm *c;
  const cddp_backend *be;
  float *grad;
  size_t n_grad;
  cddp_reducer_param *params;
  int n_params;
  cddp_reducer_opts o;
  int world;
  int *bucket_of;       /* param id -> bucket index (-1: sparse) */
  int *sparse_of;       /* param id -> sparse slot index (-1: dense) */
  unsigned char *ready; /* marked in this micro-step */
  bucket *b;
  int nb;
  sparse_slot *sp;
  int nsp;
  int32_t *neg_ids;     /* accum > 1: accum * max cap ids of -1 (device) */
  int communicate, micro, cycle_open, n_ready;
  double t_begin, t_last_ready;
  cddp_reducer_stats st;
};

static size_t wire_size(const cddp_reducer *r) { return cddp_dtype_size(r->o.compress); }

/* Trace tracks: one per bucket and per sparse table (the overflow shares the last). */
static int bucket_track(int k) {
  int t = CDDP_TRACK_BUCKET + k;
  return t < CDDP_TRACK_MAX ? t : CDDP_TRACK_MAX - 1;
}
static int sparse_track(int s) {
  int t = CDDP_TRACK_SPARSE + s;
  return t < CDDP_TRACK_BUCKET ? t : CDDP_TRACK_BUCKET - 1;
}

/* ---- set-up ------------------------------------------------------------------ */
typedef struct {
  size_t offset;
  int id;
} placed_param;

static int by_offset(const void *a, const void *b) {
  const placed_param *x = a, *y = b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static void build_buckets(cddp_reducer *r) {
  placed_param *order = cddp_xmalloc(sizeof *order * (size_t)(r->n_params ? r->n_params : 1),
                                     "reducer order");
  int nd = 0;
  for (int i = 0; i < r->n_params; i++)
    if (!r->params[i].sparse && !r->params[i].local)
      order[nd++] = (placed_param){r->params[i].offset, i};
  qsort(order, (size_t)nd, sizeof *order, by_offset);
  r->b = cddp_xcalloc(sizeof(bucket) * (size_t)(nd ? nd : 1), "reducer buckets");
  size_t prev_end = 0;
  bucket *cur = NULL;
  for (int k = 0; k < nd; k++) {
    const cddp_reducer_param *p = &r->params[order[k].id];
    if (p->offset + p->numel > r->n_grad)
      cddp_die(CDDP_EXIT_RUNTIME, "reducer: parameter %s [%zu, %zu) lies outside the gradient "
               "buffer of %zu floats", p->name, p->offset, p->offset + p->numel, r->n_grad);
    if (k > 0 && p->offset < prev_end)
      cddp_die(CDDP_EXIT_RUNTIME, "reducer: parameter %s overlaps the previous one in the "
               "gradient buffer", p->name);
    prev_end = p->offset + p->numel;
    if (!cur) {
      cur = &r->b[r->nb++];
      cur->off = p->offset;
    }
    cur->n = p->offset + p->numel - cur->off;
    cur->n_params++;
    r->bucket_of[order[k].id] = (int)(cur - r->b);
    size_t limit = r->nb == 1 ? r->o.first_bucket_bytes : r->o.bucket_bytes;
    if (cur->n * sizeof(float) >= limit) cur = NULL;
  }
  free(order);
}

cddp_reducer *cddp_reducer_create(cddp_comm *c, const cddp_backend *be, float *grad,
                                  size_t n_grad, const cddp_reducer_param *params, int n_params,
                                  const cddp_reducer_opts *opts) {
  cddp_reducer *r = cddp_xcalloc(sizeof *r, "reducer");
  r->c = c;
  r->be = be;
  r->grad = grad;
  r->n_grad = n_grad;
  r->n_params = n_params;
  r->world = cddp_comm_world(c);
  r->o = *opts;
  if (!r->o.bucket_bytes) r->o.bucket_bytes = (size_t)25 << 20;
  if (!r->o.first_bucket_bytes) r->o.first_bucket_bytes = (size_t)1 << 20;
  if (r->o.accum_steps < 1) r->o.accum_steps = 1;
  if (r->o.compress != CDDP_F32 && r->o.compress != CDDP_F16 && r->o.compress != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "--grad-compress %s: use fp16 or bf16", cddp_dtype_name(r->o.compress));
  r->params = cddp_xmalloc(sizeof *params * (size_t)(n_params ? n_params : 1), "reducer params");
  memcpy(r->params, params, sizeof *params * (size_t)n_params);
  r->bucket_of = cddp_xmalloc(sizeof(int) * (size_t)(n_params + 1), "reducer map");
  r->sparse_of = cddp_xmalloc(sizeof(int) * (size_t)(n_params + 1), "reducer map");
  r->ready = cddp_xcalloc((size_t)n_params + 1, "reducer ready flags");
  for (int i = 0; i < n_params; i++) r->bucket_of[i] = r->sparse_of[i] = -1;
  build_buckets(r);

  size_t stage = 0; /* bytes of all collectives of a step (MPI staging of device buffers) */
  for (int k = 0; k < r->nb; k++) {
    cddp_trace_name_track(bucket_track(k), "bucket %d (%.2f MB, %d params)", k,
                          r->b[k].n * wire_size(r) / 1048576.0, r->b[k].n_params);
    if (r->o.compress != CDDP_F32) r->b[k].wire = be->malloc(r->b[k].n * wire_size(r));
    stage += r->b[k].n * wire_size(r) + 64;
  }

  int A = r->o.accum_steps, W = r->world, maxcap = 0;
  for (int i = 0; i < n_params; i++) r->nsp += params[i].sparse && !params[i].local;
  r->sp = cddp_xcalloc(sizeof(sparse_slot) * (size_t)(r->nsp ? r->nsp : 1), "reducer sparse");
  for (int i = 0, s = 0; i < n_params; i++) {
    const cddp_reducer_param *p = &params[i];
    if (!p->sparse || p->local) continue;
    if (p->cap <= 0 || p->dim <= 0)
      cddp_die(CDDP_EXIT_RUNTIME, "reducer: sparse parameter %s has cap %d, dim %d", p->name,
               p->cap, p->dim);
    sparse_slot *q = &r->sp[s];
    cddp_trace_name_track(sparse_track(s), "sparse %s", p->name);
    r->sparse_of[i] = s++;
    q->id = i;
    q->dim = p->dim;
    q->cap = p->cap;
    if (p->cap > maxcap) maxcap = p->cap;
    size_t send = (size_t)A * p->cap, all = send * W;
    if (A > 1) {
      q->slot_ids = be->malloc(send * sizeof(int32_t));
      q->slot_rows = be->malloc(send * p->dim * sizeof(float));
    }
    q->recv_ids = be->malloc(all * sizeof(int32_t));
    q->recv_rows = be->malloc(all * p->dim * sizeof(float));
    q->out_ids = be->malloc(all * sizeof(int32_t));
    q->out_rows = be->malloc(all * p->dim * sizeof(float));
    q->ws = be->malloc(be->sparse_coalesce_ws_bytes((int)all, p->dim));
    stage += (send + all) * (sizeof(int32_t) + p->dim * sizeof(float)) + 256;
  }
  if (A > 1 && maxcap > 0) {
    /* -1 ids that reset the accumulation slots at the start of each cycle */
    size_t n = (size_t)A * maxcap;
    int32_t *h = cddp_xmalloc(n * sizeof(int32_t), "reducer -1 ids");
    for (size_t k = 0; k < n; k++) h[k] = -1;
    r->neg_ids = be->malloc(n * sizeof(int32_t));
    be->memcpy_h2d(r->neg_ids, h, n * sizeof(int32_t), be->compute);
    be->stream_sync(be->compute);
    free(h);
  }
  cddp_comm_reserve(c, stage);
  return r;
}

void cddp_reducer_destroy(cddp_reducer *r) {
  if (!r) return;
  const cddp_backend *be = r->be;
  for (int k = 0; k < r->nb; k++)
    if (r->b[k].wire) be->free(r->b[k].wire);
  for (int s = 0; s < r->nsp; s++) {
    sparse_slot *q = &r->sp[s];
    if (q->slot_ids) be->free(q->slot_ids);
    if (q->slot_rows) be->free(q->slot_rows);
    be->free(q->recv_ids);
    be->free(q->recv_rows);
    be->free(q->out_ids);
    be->free(q->out_rows);
    be->free(q->ws);
  }
  if (r->neg_ids) be->free(r->neg_ids);
  free(r->b);
  free(r->sp);
  free(r->params);
  free(r->bucket_of);
  free(r->sparse_of);
  free(r->ready);
  free(r);
}

int cddp_reducer_n_buckets(const cddp_reducer *r) { return r->nb; }
void cddp_reducer_bucket(const cddp_reducer *r, int b, size_t *offset, size_t *numel,
                         int *n_params) {
  *offset = r->b[b].off;
  *numel = r->b[b].n;
  *n_params = r->b[b].n_params;
}

/* ---- the step ------------------------------------------------------------------ */
void cddp_reducer_begin(cddp_reducer *r, int communicate) {
  const cddp_backend *be = r->be;
  if (!r->cycle_open) { /* first micro-step of an optimizer step */
    r->cycle_open = 1;
    r->micro = 0;
    if (r->neg_ids)
      for (int s = 0; s < r->nsp; s++) {
        sparse_slot *q = &r->sp[s];
        size_t n = (size_t)r->o.accum_steps * q->cap;
        be->memcpy_d2d(q->slot_ids, r->neg_ids, n * sizeof(int32_t), be->compute);
        be->memset0(q->slot_rows, n * q->dim * sizeof(float), be->compute);
      }
  } else if (++r->micro >= r->o.accum_steps && r->nsp > 0) {
    /* only sparse gradients need a slot per micro-step */
    cddp_die(CDDP_EXIT_USAGE, "reducer: %d micro-steps without communicating, but accum_steps "
             "is %d", r->micro + 1, r->o.accum_steps);
  }
  r->communicate = communicate;
  memset(r->ready, 0, (size_t)r->n_params);
  r->n_ready = 0;
  for (int k = 0; k < r->nb; k++) {
    r->b[k].pending = r->b[k].n_params;
    r->b[k].launched = 0;
    r->b[k].h = NULL;
  }
  for (int s = 0; s < r->nsp; s++) r->sp[s].launched = 0;
  memset(&r->st, 0, sizeof r->st);
  r->t_begin = r->t_last_ready = cddp_now_s();
}

static void launch_bucket(cddp_reducer *r, bucket *b) {
  const cddp_backend *be = r->be;
  float *slice = r->grad + b->off;
  b->t_launch = cddp_now_s();
  if (r->o.compress == CDDP_F32) {
    b->h = cddp_allreduce(r->c, slice, b->n, CDDP_F32, CDDP_RED_AVG);
  } else {
    /* pre-scale in fp32 so the half-precision sum holds an average, not a
     * world-times larger sum (no extra overflow) */
    be->scale(slice, b->n, 1.0f / (float)r->world);
    be->cast(b->wire, r->o.compress, slice, CDDP_F32, b->n);
    b->h = cddp_allreduce(r->c, b->wire, b->n, r->o.compress, CDDP_RED_SUM);
  }
  b->launched = 1;
  r->st.buckets++;
  r->st.bytes_sent += b->n * wire_size(r);
}

static void launch_sparse(cddp_reducer *r, sparse_slot *q) {
  const cddp_reducer_param *p = &r->params[q->id];
  size_t send = (size_t)r->o.accum_steps * q->cap;
  const int32_t *ids = q->slot_ids ? q->slot_ids : p->ids;
  const float *rows = q->slot_rows ? q->slot_rows : p->rows;
  q->t_launch = cddp_now_s();
  q->h_ids = cddp_allgather(r->c, ids, q->recv_ids, send * sizeof(int32_t));
  q->h_rows = cddp_allgather(r->c, rows, q->recv_rows, send * q->dim * sizeof(float));
  q->launched = 1;
  r->st.bytes_sent += send * (sizeof(int32_t) + q->dim * sizeof(float));
}

void cddp_reducer_mark_ready(void *reducer, int id) {
  cddp_reducer *r = reducer;
  if (id < 0 || id >= r->n_params)
    cddp_die(CDDP_EXIT_RUNTIME, "reducer: mark_ready of unknown parameter id %d", id);
  if (r->ready[id])
    cddp_die(CDDP_EXIT_RUNTIME, "reducer: parameter %s marked ready twice in one backward",
             r->params[id].name);
  r->ready[id] = 1;
  r->n_ready++;
  r->t_last_ready = cddp_now_s();
  const cddp_reducer_param *rp = &r->params[id];
  if (rp->local) return;
  int track = rp->sparse ? sparse_track(r->sparse_of[id]) : bucket_track(r->bucket_of[id]);
  long long bytes = rp->sparse ? (long long)(rp->cap * (sizeof(int32_t) + rp->dim * sizeof(float)))
                               : (long long)(rp->numel * sizeof(float));
  cddp_trace_instant(track, "ready", rp->name, -1, r->t_last_ready, bytes);
  if (r->sparse_of[id] >= 0) {
    sparse_slot *q = &r->sp[r->sparse_of[id]];
    if (q->slot_ids) { /* keep this micro-step's rows: the next backward overwrites them */
      const cddp_backend *be = r->be;
      be->memcpy_d2d(q->slot_ids + (size_t)r->micro * q->cap, rp->ids, q->cap * sizeof(int32_t),
                     be->compute);
      be->memcpy_d2d(q->slot_rows + (size_t)r->micro * q->cap * q->dim, rp->rows,
                     (size_t)q->cap * q->dim * sizeof(float), be->compute);
    }
    if (r->communicate && r->o.overlap) launch_sparse(r, q);
    return;
  }
  bucket *b = &r->b[r->bucket_of[id]];
  if (b->pending == b->n_params) b->t_first_ready = r->t_last_ready;
  if (--b->pending == 0) {
    cddp_trace_span(track, "ddp", "fill", -1, b->t_first_ready, r->t_last_ready, 0);
    if (r->communicate && r->o.overlap) launch_bucket(r, b);
  }
}

static void check_all_ready(const cddp_reducer *r) {
  if (r->n_ready == r->n_params) return;
  for (int i = 0; i < r->n_params; i++)
    if (!r->ready[i])
      cddp_die(CDDP_EXIT_RUNTIME, "reducer: parameter %s was never marked ready in this backward "
               "(%d of %d parameters were); its gradient cannot be reduced",
               r->params[i].name, r->n_ready, r->n_params);
}

void cddp_reducer_finish(cddp_reducer *r) {
  const cddp_backend *be = r->be;
  check_all_ready(r);
  double t0 = cddp_now_s();
  r->st.backward_ms = 1e3 * (r->t_last_ready - r->t_begin);
  if (!r->communicate) return; /* accumulation micro-step: gradients stay local */
  r->cycle_open = 0;
  if (!r->o.overlap) { /* --no-overlap: everything starts now, in gradient order */
    for (int k = 0; k < r->nb; k++) launch_bucket(r, &r->b[k]);
    for (int s = 0; s < r->nsp; s++) launch_sparse(r, &r->sp[s]);
  }
  double waited = 0, done;
  for (int k = 0; k < r->nb; k++) {
    bucket *b = &r->b[k];
    double w0 = cddp_now_s();
    cddp_comm_wait_timed(r->c, b->h, &done);
    waited += cddp_now_s() - w0;
    b->h = NULL;
    r->st.comm_ms += 1e3 * (done - b->t_launch);
    cddp_trace_span(bucket_track(k), "ddp", "all-reduce", -1, b->t_launch, done,
                    (long long)(b->n * wire_size(r)));
    if (r->o.compress != CDDP_F32) be->cast(r->grad + b->off, CDDP_F32, b->wire, r->o.compress, b->n);
  }
  for (int s = 0; s < r->nsp; s++) {
    sparse_slot *q = &r->sp[s];
    double w0 = cddp_now_s();
    cddp_comm_wait(r->c, q->h_ids);
    cddp_comm_wait_timed(r->c, q->h_rows, &done);
    waited += cddp_now_s() - w0;
    r->st.comm_ms += 1e3 * (done - q->t_launch);
    cddp_trace_span(sparse_track(s), "ddp", "all-gather", -1, q->t_launch, done,
                    (long long)((size_t)r->o.accum_steps * q->cap * (sizeof(int32_t) + q->dim * sizeof(float))));
    int n = (int)((size_t)r->o.accum_steps * q->cap * r->world);
    be->sparse_coalesce(q->recv_ids, q->recv_rows, n, q->dim, q->out_ids, q->out_rows, q->ws);
    be->scale(q->out_rows, (size_t)n * q->dim, 1.0f / (float)r->world);
  }
  r->st.exposed_ms = 1e3 * (r->o.overlap ? waited : cddp_now_s() - t0);
}

void cddp_reducer_sparse_result(const cddp_reducer *r, int id, const int32_t **ids,
                                const float **rows, int *n) {
  if (id < 0 || id >= r->n_params || r->sparse_of[id] < 0)
    cddp_die(CDDP_EXIT_RUNTIME, "reducer: parameter id %d is not sparse", id);
  const sparse_slot *q = &r->sp[r->sparse_of[id]];
  *ids = q->out_ids;
  *rows = q->out_rows;
  *n = (int)((size_t)r->o.accum_steps * q->cap * r->world);
}

const cddp_reducer_stats *cddp_reducer_last_stats(const cddp_reducer *r) { return &r->st; }
