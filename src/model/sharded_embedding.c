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
  if (c->be->is_device && s->any_mean)
    cddp_die(CDDP_EXIT_USAGE, "sharded mean-pooled embedding bags (two_tower's history) run on "
             "--device cpu only; keep that table replicated on %s", c->be->name);
  s->be = c->be;
  s->B = B;
  size_t ids = 0, held = 0, maxt = 1;
  for (int t = 0; t < n; t++) {
    size_t k = (size_t)B * s->bag[t];
    ids += k;
    if (s->count[t] > 0) held += k;
    if (k > maxt) maxt = k;
  }
  s->scap = ids ? ids : 1;
  s->rcap = held ? (size_t)W * held : 1; /* every rank's ids might land here */
  size_t i4 = sizeof(int32_t), f4 = sizeof(float), wn = (size_t)W * n;
  size_t wt = (size_t)s->accum * W * maxt;
  s->cnt_send = cddp_plan_act(p, wn * i4);
  s->cnt_recv = cddp_plan_act(p, wn * i4);
  s->send_ids = cddp_plan_act(p, s->scap * i4);
  s->row = cddp_plan_act(p, s->scap * i4);
  s->recv_ids = cddp_plan_act(p, s->rcap * i4);
  s->vec_out = cddp_plan_act(p, s->rcap * D * f4);
  s->vec_in = cddp_plan_act(p, s->scap * D * f4);
  s->g_send = cddp_plan_act(p, s->scap * D * f4);
  s->g_recv = cddp_plan_act(p, s->rcap * D * f4);
  s->zeros = cddp_plan_act(p, (size_t)B * D * f4);
  if (s->zeros) c->be->memset0(s->zeros, (size_t)B * D * f4, c->be->compute);
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
    for (int r = 0; r < W; r++) s->cb[r] = (size_t)n * i4, s->cd[r] = (size_t)r * n * i4;
    s->h_cnt_send = host_array(s, wn * i4);
    s->h_cnt_recv = host_array(s, wn * i4);
    s->h_at = host_array(s, wn * i4);
    s->h_send_ids = host_array(s, s->scap * i4);
    s->h_perm = host_array(s, s->scap * i4);
    s->h_row = host_array(s, s->scap * i4);
    s->h_inv = host_array(s, (size_t)B * n * f4);
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

/* x[k] *= f[perm[k]] for the first m rows of D floats (mean bags; host memory, CPU backend) */
static void scale_rows(const cddp_shemb *s, float *x, int m) {
  for (int k = 0; k < m; k++) {
    float f = s->h_inv[s->h_perm[k]];
    if (f != 1.0f)
      for (int d = 0; d < s->D; d++) x[(size_t)k * s->D + d] *= f;
  }
}

void cddp_shemb_fwd_start(cddp_shemb *s, const cddp_lctx *c, const int32_t *const *ids,
                          const int *ld, int n) {
  const cddp_backend *be = c->be;
  int W = s->world, T = s->n, D = s->D;
  if (!T) return;
  if (n > s->B) cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: batch %d > planned %d", n, s->B);
  s->nb = n;
  /* bucket the valid ids by owner: send order is (rank, table, sample, bag slot) */
  memset(s->h_cnt_send, 0, sizeof(int32_t) * (size_t)W * T);
  int32_t local;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < n; i++) {
      int valid = 0;
      for (int j = 0; j < s->bag[t]; j++) {
        int32_t id = ids[t][(size_t)i * ld[t] + j];
        if (id < 0) continue;
        s->h_cnt_send[owner_of(s, t, id, &local) * T + t]++;
        valid++;
      }
      s->h_inv[(size_t)i * T + t] = s->mean[t] && valid > 1 ? 1.0f / (float)valid : 1.0f;
    }
  int pos = 0;
  for (int k = 0; k < W * T; k++) s->h_at[k] = pos, pos += s->h_cnt_send[k];
  s->nsent = pos;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < s->bag[t]; j++) {
        int32_t id = ids[t][(size_t)i * ld[t] + j];
        if (id < 0) continue;
        int k = s->h_at[owner_of(s, t, id, &local) * T + t]++;
        s->h_send_ids[k] = local;
        s->h_perm[k] = i * T + t;
        s->h_row[k] = (int32_t)(((size_t)i * s->ldo + s->slot[t]) / D);
      }
  size_t wn = sizeof(int32_t) * (size_t)W * T, i4 = sizeof(int32_t);
  be->memcpy_h2d(s->cnt_send, s->h_cnt_send, wn, be->compute);
  if (pos) {
    be->memcpy_h2d(s->send_ids, s->h_send_ids, (size_t)pos * i4, be->compute);
    be->memcpy_h2d(s->row, s->h_row, (size_t)pos * i4, be->compute);
  }
  wait(s, post(s, s->cnt_send, s->cb, s->cd, s->cnt_recv, s->cb, s->cd));
  be->memcpy_d2h(s->h_cnt_recv, s->cnt_recv, wn, be->compute);
  be->stream_sync(be->compute); /* the counts size the next collectives */
  size_t so = 0, ro = 0, fe = cddp_dtype_size(s->fwd_t) * D, ge = cddp_dtype_size(s->grad_t) * D;
  for (int r = 0; r < W; r++) {
    size_t ns = 0, nr = 0;
    for (int t = 0; t < T; t++)
      ns += (size_t)s->h_cnt_send[r * T + t], nr += (size_t)s->h_cnt_recv[r * T + t];
    if (ro + nr > s->rcap)
      cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: %zu ids received, planned %zu", ro + nr, s->rcap);
    s->sb[r] = ns * 4, s->sd[r] = so * 4, s->rb[r] = nr * 4, s->rd[r] = ro * 4;
    s->fsb[r] = nr * fe, s->fsd[r] = ro * fe, s->frb[r] = ns * fe, s->frd[r] = so * fe;
    s->gsb[r] = ns * ge, s->gsd[r] = so * ge, s->grb[r] = nr * ge, s->grd[r] = ro * ge;
    so += ns, ro += nr;
  }
  wait(s, post(s, s->send_ids, s->sb, s->sd, s->recv_ids, s->rb, s->rd));
  /* owners look their rows up, in the order the ids arrived */
  size_t off = 0;
  for (int r = 0; r < W; r++)
    for (int t = 0; t < T; t++) {
      int k = s->h_cnt_recv[r * T + t];
      if (k)
        be->embbag_fwd(cddp_param_data(c->ps, s->pid[t]), D, s->recv_ids + off, 1, k, 1, 0,
                       s->vec_out + off * D, D);
      off += (size_t)k;
    }
  s->nrecv = off;
  if (s->fwd_t != CDDP_F32) {
    be->cast(s->fwd_out_h, s->fwd_t, s->vec_out, CDDP_F32, off * D);
    s->h_vec = post(s, s->fwd_out_h, s->fsb, s->fsd, s->fwd_in_h, s->frb, s->frd);
  } else {
    s->h_vec = post(s, s->vec_out, s->fsb, s->fsd, s->vec_in, s->frb, s->frd);
  }
}

void cddp_shemb_fwd_finish(cddp_shemb *s, const cddp_lctx *c, float *out) {
  const cddp_backend *be = c->be;
  if (!s->n) return;
  wait(s, s->h_vec);
  int D = s->D;
  if (s->fwd_t != CDDP_F32) be->cast(s->vec_in, CDDP_F32, s->fwd_in_h, s->fwd_t, (size_t)s->nsent * D);
  if (s->any_mean) scale_rows(s, s->vec_in, s->nsent);
  /* bags may be empty or split across owners: clear the slots, then add */
  for (int t = 0; t < s->n && s->nb; t++) be->copy2d(out + s->slot[t], s->ldo, s->zeros, D, s->nb, D);
  if (s->nsent) be->sparse_to_dense(s->row, s->vec_in, s->nsent, D, out);
}

void cddp_shemb_bwd_start(cddp_shemb *s, const cddp_lctx *c, const float *dout) {
  const cddp_backend *be = c->be;
  if (!s->n) return;
  int D = s->D;
  /* each id's gradient is its bag's (divided by the bag's ids for a mean) */
  if (s->nsent) be->embbag_fwd(dout, D, s->row, 1, s->nsent, 1, 0, s->g_send, D);
  if (s->any_mean) scale_rows(s, s->g_send, s->nsent);
  if (s->grad_t != CDDP_F32) {
    be->cast(s->grad_send_h, s->grad_t, s->g_send, CDDP_F32, (size_t)s->nsent * D);
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
  if (s->grad_t != CDDP_F32) be->cast(s->g_recv, CDDP_F32, s->grad_recv_h, s->grad_t, s->nrecv * D);
  int last = !s->micro || *s->micro >= s->accum - 1;
  for (int t = 0; t < T; t++) {
    cddp_param *pp = &c->ps->p[s->pid[t]];
    int m = s->acc_n[t];
    size_t off = 0;
    for (int r = 0; r < W; r++)
      for (int u = 0; u < T; u++) {
        int k = s->h_cnt_recv[r * T + u];
        if (u == t && k) { /* this table's block from rank r */
          if ((size_t)m + k > (size_t)pp->sp_cap)
            cddp_die(CDDP_EXIT_RUNTIME, "sharded embeddings: %s: more than %d gradient rows in "
                     "one step (micro-step %d of %d)", pp->name, pp->sp_cap,
                     s->micro ? *s->micro + 1 : 1, s->accum);
          be->memcpy_d2d(s->acc_ids[t] + m, s->recv_ids + off, sizeof(int32_t) * k, be->compute);
          be->memcpy_d2d(s->acc_rows[t] + (size_t)m * D, s->g_recv + off * D,
                         sizeof(float) * k * D, be->compute);
          m += k;
        }
        off += (size_t)k;
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
  int32_t *h[] = {s->h_cnt_send, s->h_cnt_recv, s->h_at, s->h_send_ids, s->h_perm, s->h_row};
  for (size_t k = 0; s->be && k < sizeof h / sizeof *h; k++) s->be->host_free(h[k]);
  if (s->be && s->h_inv) s->be->host_free(s->h_inv);
  s->cb = NULL;
}
