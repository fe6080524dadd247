/* Embedding tables split across ranks: ids travel to their owners and
 * vectors back with all-to-all(v); gradients the reverse way (layers.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "model/layers.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static void wait(cddp_shemb *s, void *h) {
  double t0 = now_ms();
  s->mc->wait(s->mc->ctx, h);
  *s->wait_ms += now_ms() - t0;
}

static void *post(cddp_shemb *s, const void *send, const size_t *sb, const size_t *sd, void *recv,
                  const size_t *rb, const size_t *rd) {
  for (int r = 0; r < s->world; r++) *s->bytes += r == s->rank ? 0 : (double)sb[r];
  return s->mc->alltoallv(s->mc->ctx, send, sb, sd, recv, rb, rd);
}

void cddp_shemb_init(cddp_shemb *s, const cddp_model_comm *mc, int D, int ldo, cddp_dtype fwd_t,
                     cddp_dtype grad_t, int accum, const int *micro, double *wait_ms,
                     double *bytes) {
  *s = (cddp_shemb){.D = D, .ldo = ldo, .mc = mc, .wait_ms = wait_ms, .bytes = bytes,
                    .world = 1, .fwd_t = fwd_t, .grad_t = grad_t,
                    .accum = accum > 1 ? accum : 1, .micro = micro};
  if (mc) s->world = mc->world, s->rank = mc->rank;
  if (ldo % D) cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: row of %d floats, dim %d", ldo, D);
}

int cddp_shemb_add(cddp_shemb *s, cddp_params *ps, const char *name, int64_t rows, int64_t first,
                   int64_t count, int row_wise, int owner, int bag, int mean, int slot) {
  if (s->n == CDDP_SHEMB_MAX) cddp_die(CDDP_EXIT_USAGE, "more than %d sharded tables", CDDP_SHEMB_MAX);
  if (!s->mc || !s->mc->alltoallv)
    cddp_die(CDDP_EXIT_USAGE, "%s: a sharded table needs the trainer's communication", name);
  if (slot % s->D) cddp_die(CDDP_EXIT_RUNTIME, "%s: slot %d is not a multiple of %d", name, slot, s->D);
  int t = s->n++;
  int64_t shape[2] = {count, s->D};
  int id = cddp_params_add(ps, name, 2, shape, CDDP_PARAM_SHARDED);
  ps->p[id].global_rows = rows;
  ps->p[id].row_offset = first;
  s->pid[t] = id, s->rows[t] = rows, s->first[t] = first, s->count[t] = count;
  s->row_wise[t] = row_wise, s->owner[t] = owner, s->bag[t] = bag, s->mean[t] = mean;
  s->slot[t] = slot;
  s->any_mean |= mean && bag > 1;
  s->any_bag |= bag > 1;
  return id;
}

static void *host_array(cddp_shemb *s, size_t bytes) {
  void *p = s->be->host_alloc(bytes ? bytes : 1);
  memset(p, 0, bytes);
  return p;
}

void cddp_shemb_plan(cddp_shemb *s, const cddp_lctx *c, cddp_planner *p, int B) {
  int W = s->world, n = s->n, D = s->D;
  if (!n) return;
  s->be = c->be;
  s->B = B;
  s->ncnt = s->any_bag ? 2 * n : n;
  size_t ids = 0, held = 0, maxt = 1;
  for (int t = 0; t < n; t++) {
    size_t k = (size_t)B * s->bag[t];
    ids += k;
    if (s->count[t] > 0) held += k;
    if (k > maxt) maxt = k;
  }
  s->scap = ids ? ids : 1;
  s->rcap = held ? (size_t)W * held : 1; /* every rank's ids might land here */
  /* a fragment holds at least one id: as many ends as ids at most */
  s->ssend = s->any_bag ? 2 * s->scap : s->scap;
  s->rrecv = s->any_bag ? 2 * s->rcap : s->rcap;
  size_t i4 = sizeof(int32_t), f4 = sizeof(float), wc = (size_t)W * s->ncnt;
  size_t wt = (size_t)s->accum * W * maxt;
  s->cnt_send = cddp_plan_act(p, wc * i4);
  s->cnt_recv = cddp_plan_act(p, wc * i4);
  s->send = cddp_plan_act(p, s->ssend * i4);
  s->row = cddp_plan_act(p, s->scap * i4);
  s->finv = s->any_mean ? cddp_plan_act(p, s->scap * f4) : NULL;
  s->recv = cddp_plan_act(p, s->rrecv * i4);
  s->vec_out = cddp_plan_act(p, s->rcap * D * f4);
  s->vec_in = cddp_plan_act(p, s->scap * D * f4);
  s->g_send = cddp_plan_act(p, s->scap * D * f4);
  s->g_recv = cddp_plan_act(p, s->rcap * D * f4);
  s->pool = cddp_plan_act(p, s->scap * i4);
  s->pend = cddp_plan_act(p, (size_t)n * B * i4);
  if (s->fwd_t != CDDP_F32) {
    s->fwd_out_h = cddp_plan_act(p, s->rcap * D * 2);
    s->fwd_in_h = cddp_plan_act(p, s->scap * D * 2);
  }
  if (s->grad_t != CDDP_F32) {
    s->grad_send_h = cddp_plan_act(p, s->scap * D * 2);
    s->grad_recv_h = cddp_plan_act(p, s->rcap * D * 2);
  }
  for (int t = 0; t < n; t++) { /* the shard's gradient: the reducer does not touch it */
    cddp_param *pp = &c->ps->p[s->pid[t]];
    size_t cap = s->count[t] ? (size_t)s->accum * W * B * s->bag[t] : 1;
    pp->sp_ids = cddp_plan_act(p, cap * i4);
    pp->sp_rows = cddp_plan_act(p, cap * D * f4);
    pp->sp_cap = (int)cap;
    s->acc_ids[t] = cddp_plan_act(p, cap * i4);
    s->acc_rows[t] = cddp_plan_act(p, cap * D * f4);
    s->acc_n[t] = 0;
  }
  size_t mark = cddp_plan_mark(p);
  s->ws = cddp_plan_scratch(p, c->be->sparse_coalesce_ws_bytes((int)wt, D));
  cddp_plan_release(p, mark);
  if (!s->cb) { /* once: plan() runs twice */
    size_t **a[] = {&s->cb,  &s->cd,  &s->sb,  &s->sd,  &s->rb,  &s->rd,  &s->fsb,
                    &s->fsd, &s->frb, &s->frd, &s->gsb, &s->gsd, &s->grb, &s->grd};
    for (size_t k = 0; k < sizeof a / sizeof *a; k++)
      *a[k] = cddp_xcalloc(sizeof(size_t) * (size_t)W, "sharded embedding counts");
    for (int r = 0; r < W; r++)
      s->cb[r] = (size_t)s->ncnt * i4, s->cd[r] = (size_t)r * s->ncnt * i4;
    size_t wn = (size_t)W * n * i4;
    s->h_cnt_send = host_array(s, wc * i4);
    s->h_cnt_recv = host_array(s, wc * i4);
    int32_t **h[] = {&s->h_at, &s->h_fat, &s->h_eat, &s->h_rid, &s->h_rend, &s->h_rfrag};
    for (size_t k = 0; k < sizeof h / sizeof *h; k++) *h[k] = host_array(s, wn);
    s->h_mark = host_array(s, 3 * (size_t)W * i4);
    s->h_send = host_array(s, s->ssend * i4);
    s->h_row = host_array(s, s->scap * i4);
    s->h_finv = host_array(s, s->scap * f4);
    s->h_pool = host_array(s, s->scap * i4);
    s->h_pend = host_array(s, (size_t)n * B * i4);
    /* one of our collectives is in flight at a time: the largest is the
     * vectors' (or the gradients') all-to-all, or the ids' for D = 1 */
    size_t vecs = (s->scap + s->rcap) * D * f4, idb = (s->ssend + s->rrecv) * i4;
    if (s->mc->reserve) s->mc->reserve(s->mc->ctx, (vecs > idb ? vecs : idb) + 128);
  }
}

static int owner_of(const cddp_shemb *s, int t, int32_t id, int32_t *local) {
  if (!s->row_wise[t]) {
    *local = id;
    return s->owner[t];
  }
  int q = cddp_shard_row_owner(s->rows[t], s->world, id);
  *local = (int32_t)(id - cddp_shard_row_lo(s->rows[t], s->world, q));
  return q;
}

/* ids and fragments of table t in a [W][ncnt] count array, rank r */
static int n_ids(const cddp_shemb *s, const int32_t *cnt, int r, int t) {
  return cnt[r * s->ncnt + t];
}
static int n_frags(const cddp_shemb *s, const int32_t *cnt, int r, int t) {
  return cnt[r * s->ncnt + (s->any_bag ? s->n + t : t)];
}

/* Sorts a few ints (one per owner at most) in place. */
static void sort_small(int32_t *a, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && a[j - 1] > a[j]; j--) {
      int32_t x = a[j];
      a[j] = a[j - 1], a[j - 1] = x;
    }
}

/* Buckets the valid ids by owner into h_send: per rank, the ids in (table,
 * sample, bag slot) order, then for each table with bags the end of each
 * fragment (ids so far in the rank's block of that table); h_row/h_finv per
 * fragment, in (rank, table, sample) order; h_pool/h_pend, the fragments of
 * each (table, sample) in rank order (fragment indices grow with the rank
 * for a fixed table). Returns the ints to send. */
static int bucket(cddp_shemb *s, const int32_t *const *ids, const int *ld, int n) {
  int W = s->world, T = s->n, D = s->D;
  int32_t *cnt = s->h_cnt_send, *last = s->h_mark, *cur = s->h_mark + W;
  int32_t *k_in = s->h_mark + 2 * W;
  int32_t local;
  memset(cnt, 0, sizeof(int32_t) * (size_t)W * s->ncnt);
  for (int t = 0; t < T; t++) {
    for (int r = 0; r < W; r++) last[r] = -1;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < s->bag[t]; j++) {
        int32_t id = ids[t][(size_t)i * ld[t] + j];
        if (id < 0) continue;
        int q = owner_of(s, t, id, &local);
        cnt[q * s->ncnt + t]++;
        if (s->any_bag && last[q] != i) last[q] = i, cnt[q * s->ncnt + T + t]++;
      }
  }
  int pos = 0, frag = 0;
  for (int r = 0; r < W; r++) {
    s->sd[r] = (size_t)pos * sizeof(int32_t);
    for (int t = 0; t < T; t++) s->h_at[r * T + t] = pos, pos += n_ids(s, cnt, r, t);
    for (int t = 0; t < T; t++)
      if (s->bag[t] > 1) s->h_eat[r * T + t] = pos, pos += n_frags(s, cnt, r, t);
    for (int t = 0; t < T; t++) s->h_fat[r * T + t] = frag, frag += n_frags(s, cnt, r, t);
    s->sb[r] = (size_t)pos * sizeof(int32_t) - s->sd[r];
  }
  int np = 0;
  for (int t = 0; t < T; t++) {
    for (int r = 0; r < W; r++) last[r] = -1, k_in[r] = 0;
    s->pool_at[t] = np;
    for (int i = 0; i < n; i++) {
      const int32_t *bag = ids[t] + (size_t)i * ld[t];
      int valid = 0, first = np;
      for (int j = 0; j < s->bag[t]; j++) valid += bag[j] >= 0;
      float inv = s->mean[t] && valid > 1 ? 1.0f / (float)valid : 1.0f;
      int32_t row = (int32_t)(((size_t)i * s->ldo + s->slot[t]) / D);
      for (int j = 0; j < s->bag[t]; j++) {
        if (bag[j] < 0) continue;
        int q = owner_of(s, t, bag[j], &local);
        s->h_send[s->h_at[q * T + t]++] = local;
        if (last[q] != i) { /* the first id of sample i for owner q: a new fragment */
          int f = s->h_fat[q * T + t]++;
          last[q] = i, s->h_row[f] = row, s->h_finv[f] = inv, s->h_pool[np++] = f;
          if (s->bag[t] > 1) cur[q] = s->h_eat[q * T + t]++;
        }
        if (s->bag[t] > 1) s->h_send[cur[q]] = ++k_in[q];
      }
      sort_small(s->h_pool + first, np - first);
      s->h_pend[t * n + i] = np - s->pool_at[t];
    }
  }
  s->nfsent = frag;
  return pos;
}

/* Sizes the collectives from the counts sent and received, and locates each
 * (rank, table) block of ids, ends and fragments in the receive buffers. */
static void layout(cddp_shemb *s) {
  int W = s->world, T = s->n;
  const int32_t *cs = s->h_cnt_send, *cr = s->h_cnt_recv;
  size_t pos = 0, fs = 0, fr = 0, fe = cddp_dtype_size(s->fwd_t) * s->D;
  size_t ge = cddp_dtype_size(s->grad_t) * s->D;
  for (int r = 0; r < W; r++) {
    size_t start = pos, ns = 0, nr = 0;
    for (int t = 0; t < T; t++) s->h_rid[r * T + t] = (int32_t)pos, pos += n_ids(s, cr, r, t);
    for (int t = 0; t < T; t++) {
      s->h_rend[r * T + t] = s->bag[t] > 1 ? (int32_t)pos : -1;
      if (s->bag[t] > 1) pos += n_frags(s, cr, r, t);
      s->h_rfrag[r * T + t] = (int32_t)(fr + nr);
      ns += n_frags(s, cs, r, t), nr += n_frags(s, cr, r, t);
    }
    if (pos > s->rrecv)
      cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: %zu ids and ends received, planned %zu",
               pos, s->rrecv);
    s->rb[r] = (pos - start) * 4, s->rd[r] = start * 4;
    s->fsb[r] = nr * fe, s->fsd[r] = fr * fe, s->frb[r] = ns * fe, s->frd[r] = fs * fe;
    s->gsb[r] = ns * ge, s->gsd[r] = fs * ge, s->grb[r] = nr * ge, s->grd[r] = fr * ge;
    fs += ns, fr += nr;
  }
  s->nfrecv = fr;
}

void cddp_shemb_fwd_start(cddp_shemb *s, const cddp_lctx *c, const int32_t *const *ids,
                          const int *ld, int n) {
  const cddp_backend *be = c->be;
  int W = s->world, T = s->n, D = s->D;
  if (!T) return;
  if (n > s->B) cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: batch %d > planned %d", n, s->B);
  s->nb = n;
  int pos = bucket(s, ids, ld, n), nf = s->nfsent;
  size_t wc = sizeof(int32_t) * (size_t)W * s->ncnt, i4 = sizeof(int32_t);
  be->memcpy_h2d(s->cnt_send, s->h_cnt_send, wc, be->compute);
  if (pos) be->memcpy_h2d(s->send, s->h_send, (size_t)pos * i4, be->compute);
  if (nf) be->memcpy_h2d(s->row, s->h_row, (size_t)nf * i4, be->compute);
  if (nf && s->any_mean)
    be->memcpy_h2d(s->finv, s->h_finv, (size_t)nf * sizeof(float), be->compute);
  if (nf) be->memcpy_h2d(s->pool, s->h_pool, (size_t)nf * i4, be->compute);
  if (n) be->memcpy_h2d(s->pend, s->h_pend, (size_t)T * n * i4, be->compute);
  wait(s, post(s, s->cnt_send, s->cb, s->cd, s->cnt_recv, s->cb, s->cd));
  be->memcpy_d2h(s->h_cnt_recv, s->cnt_recv, wc, be->compute);
  be->stream_sync(be->compute); /* the counts size the next collectives */
  layout(s);
  wait(s, post(s, s->send, s->sb, s->sd, s->recv, s->rb, s->rd));
  /* owners sum each fragment (a bag of one id: its row), in the order the ids arrived */
  for (int r = 0; r < W; r++)
    for (int t = 0; t < T; t++) {
      int k = n_ids(s, s->h_cnt_recv, r, t), f = n_frags(s, s->h_cnt_recv, r, t);
      if (!k) continue;
      const float *table = cddp_param_data(c->ps, s->pid[t]);
      const int32_t *rid = s->recv + s->h_rid[r * T + t];
      float *out = s->vec_out + (size_t)s->h_rfrag[r * T + t] * D;
      if (s->bag[t] > 1)
        be->embbag_seg_fwd(table, D, rid, s->recv + s->h_rend[r * T + t], f, out, D);
      else
        be->embbag_fwd(table, D, rid, 1, k, 1, 0, out, D);
    }
  if (s->fwd_t != CDDP_F32) {
    be->cast(s->fwd_out_h, s->fwd_t, s->vec_out, CDDP_F32, s->nfrecv * D);
    s->h_vec = post(s, s->fwd_out_h, s->fsb, s->fsd, s->fwd_in_h, s->frb, s->frd);
  } else {
    s->h_vec = post(s, s->vec_out, s->fsb, s->fsd, s->vec_in, s->frb, s->frd);
  }
}

void cddp_shemb_fwd_finish(cddp_shemb *s, const cddp_lctx *c, float *out) {
  const cddp_backend *be = c->be;
  if (!s->n) return;
  wait(s, s->h_vec);
  int D = s->D, nf = s->nfsent;
  if (s->fwd_t != CDDP_F32) be->cast(s->vec_in, CDDP_F32, s->fwd_in_h, s->fwd_t, (size_t)nf * D);
  /* a mean: each fragment times 1/(its bag's valid ids), then their sum */
  if (s->any_mean && nf) be->scale_rows(s->vec_in, D, nf, D, s->finv);
  /* each slot: 0, plus its fragments in rank order (an empty bag stays 0);
   * a fixed order, so the same bits on every backend and run */
  for (int t = 0; t < s->n && s->nb; t++)
    be->embbag_seg_fwd(s->vec_in, D, s->pool + s->pool_at[t], s->pend + (size_t)t * s->nb, s->nb,
                       out + s->slot[t], s->ldo);
}

void cddp_shemb_bwd_start(cddp_shemb *s, const cddp_lctx *c, const float *dout) {
  const cddp_backend *be = c->be;
  if (!s->n) return;
  int D = s->D, nf = s->nfsent;
  /* each fragment's gradient is its bag's (divided by the bag's ids for a mean) */
  if (nf) be->embbag_fwd(dout, D, s->row, 1, nf, 1, 0, s->g_send, D);
  if (s->any_mean && nf) be->scale_rows(s->g_send, D, nf, D, s->finv);
  if (s->grad_t != CDDP_F32) {
    be->cast(s->grad_send_h, s->grad_t, s->g_send, CDDP_F32, (size_t)nf * D);
    s->h_grad = post(s, s->grad_send_h, s->gsb, s->gsd, s->grad_recv_h, s->grb, s->grd);
  } else {
    s->h_grad = post(s, s->g_send, s->gsb, s->gsd, s->g_recv, s->grb, s->grd);
  }
}

void cddp_shemb_bwd_finish(cddp_shemb *s, const cddp_lctx *c, const cddp_ready_hook *h) {
  if (!s->n) return;
  const cddp_backend *be = c->be;
  int W = s->world, T = s->n, D = s->D;
  wait(s, s->h_grad);
  if (s->grad_t != CDDP_F32) be->cast(s->g_recv, CDDP_F32, s->grad_recv_h, s->grad_t, s->nfrecv * D);
  int last = !s->micro || *s->micro >= s->accum - 1;
  for (int t = 0; t < T; t++) {
    cddp_param *pp = &c->ps->p[s->pid[t]];
    int m = s->acc_n[t];
    for (int r = 0; r < W; r++) { /* this table's block from rank r */
      int k = n_ids(s, s->h_cnt_recv, r, t), f = n_frags(s, s->h_cnt_recv, r, t);
      if (!k) continue;
      if ((size_t)m + k > (size_t)pp->sp_cap)
        cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: %s: more than %d gradient rows in "
                 "one step (micro-step %d of %d)", pp->name, pp->sp_cap,
                 s->micro ? *s->micro + 1 : 1, s->accum);
      const float *g = s->g_recv + (size_t)s->h_rfrag[r * T + t] * D;
      float *rows = s->acc_rows[t] + (size_t)m * D;
      be->memcpy_d2d(s->acc_ids[t] + m, s->recv + s->h_rid[r * T + t], sizeof(int32_t) * k,
                     be->compute);
      if (s->bag[t] > 1) /* each id of a fragment gets the fragment's gradient */
        be->embbag_seg_bwd(g, D, s->recv + s->h_rend[r * T + t], f, D, rows);
      else
        be->memcpy_d2d(rows, g, sizeof(float) * k * D, be->compute);
      m += k;
    }
    s->acc_n[t] = last ? 0 : m;
    pp->sp_n = last ? m : 0;
    if (last && m) {
      be->sparse_coalesce(s->acc_ids[t], s->acc_rows[t], m, D, pp->sp_ids, pp->sp_rows, s->ws);
      be->scale(pp->sp_rows, (size_t)m * D, 1.0f / (float)W); /* the ranks' average */
    }
  }
  for (int t = T - 1; t >= 0; t--) cddp_mark_ready(h, s->pid[t]);
}

void cddp_shemb_destroy(cddp_shemb *s) {
  size_t *a[] = {s->cb,  s->cd,  s->sb,  s->sd,  s->rb,  s->rd,  s->fsb,
                 s->fsd, s->frb, s->frd, s->gsb, s->gsd, s->grb, s->grd};
  for (size_t k = 0; k < sizeof a / sizeof *a; k++) free(a[k]);
  void *h[] = {s->h_cnt_send, s->h_cnt_recv, s->h_at,   s->h_fat, s->h_eat, s->h_rid,
               s->h_rend,     s->h_rfrag,    s->h_mark, s->h_send, s->h_row, s->h_finv,
               s->h_pool,     s->h_pend};
  for (size_t k = 0; s->be && k < sizeof h / sizeof *h; k++) s->be->host_free(h[k]);
  s->cb = NULL;
}
