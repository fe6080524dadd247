#include "train/diverge.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

void cddp_diverge_init(cddp_diverge *d, const cddp_backend *be) {
  *d = (cddp_diverge){.be = be, .d_flag = be->malloc(sizeof(int))};
}

void cddp_diverge_free(cddp_diverge *d) {
  if (d->d_flag) d->be->free(d->d_flag);
  d->d_flag = NULL;
}

void cddp_diverge_check(cddp_diverge *d, const cddp_params *ps, const cddp_optimizer *opt) {
  const cddp_backend *be = d->be;
  be->memset0(d->d_flag, sizeof(int), be->compute);
  be->nonfinite_any(ps->master, ps->n_master, d->d_flag);
  for (int k = 0; k < CDDP_OPT_MAX_STATES; k++)
    if (opt->dense_state[k]) be->nonfinite_any(opt->dense_state[k], ps->n_dense, d->d_flag);
  if (opt->sparse_state) be->nonfinite_any(opt->sparse_state, ps->n_master - ps->n_dense, d->d_flag);
  be->memcpy_d2h(&d->bad, d->d_flag, sizeof(int), be->compute);
}

static int tensor_bad(cddp_diverge *d, const float *x, size_t n) {
  const cddp_backend *be = d->be;
  int bad = 0;
  be->memset0(d->d_flag, sizeof(int), be->compute);
  be->nonfinite_any(x, n, d->d_flag);
  be->memcpy_d2h(&bad, d->d_flag, sizeof(int), be->compute);
  be->stream_sync(be->compute);
  return bad;
}

/* This rank's first tensor holding inf/NaN as an index: parameter i is i,
 * state s of parameter i is (s + 1) * n + i; -1 if none (failure path: one
 * check and one synchronisation per tensor). */
static int first_bad_tensor(cddp_diverge *d, const cddp_params *ps, const cddp_optimizer *opt) {
  for (int i = 0; i < ps->n; i++)
    if (tensor_bad(d, cddp_param_data(ps, i), ps->p[i].numel)) return i;
  for (int i = 0; i < ps->n; i++) {
    const char *names[CDDP_OPT_MAX_STATES];
    float *ptrs[CDDP_OPT_MAX_STATES];
    int ns = cddp_optimizer_param_states(opt, i, names, ptrs);
    for (int s = 0; s < ns; s++)
      if (tensor_bad(d, ptrs[s], ps->p[i].numel)) return (s + 1) * ps->n + i;
  }
  return -1;
}

noreturn void cddp_diverge_die(cddp_diverge *d, cddp_comm *c, const cddp_params *ps,
                               const cddp_optimizer *opt, const cddp_diverge_report *r) {
  int W = cddp_comm_world(c), mine = first_bad_tensor(d, ps, opt);
  int *all = cddp_xmalloc(sizeof(int) * (size_t)W, "divergence report");
  cddp_comm_allgather_host(c, &mine, all, sizeof mine);
  int rank = 0;
  while (rank < W && all[rank] < 0) rank++;
  char tensor[320] = "all parameters and optimizer state are still finite";
  if (rank < W && all[rank] < ps->n) {
    snprintf(tensor, sizeof tensor, "first non-finite parameter: %s (rank %d)",
             ps->p[all[rank]].name, rank);
  } else if (rank < W) {
    const char *names[CDDP_OPT_MAX_STATES];
    float *ptrs[CDDP_OPT_MAX_STATES];
    int i = all[rank] % ps->n, s = all[rank] / ps->n - 1;
    cddp_optimizer_param_states(opt, i, names, ptrs);
    snprintf(tensor, sizeof tensor, "parameters finite, first non-finite optimizer state: %s of %s "
             "(rank %d)", names[s], ps->p[i].name, rank);
  }
  free(all);
  if (cddp_comm_rank(c) != 0) { /* rank 0 reports and ends the job */
    cddp_comm_wait(c, cddp_barrier(c));
    cddp_die(CDDP_EXIT_DIVERGED, "training diverged at step %lld (see rank 0)", (long long)r->step);
  }
  char what[160];
  if (r->loss_bad && r->params_bad)
    snprintf(what, sizeof what, "non-finite loss and parameters or optimizer state");
  else if (r->loss_bad) snprintf(what, sizeof what, "non-finite loss");
  else if (r->params_bad) snprintf(what, sizeof what, "non-finite parameters or optimizer state");
  else
    snprintf(what, sizeof what, "fp16 loss scale %g fell below 2^-24 (every step skipped: the "
             "gradients overflow at any scale)", (double)r->loss_scale);
  cddp_die(CDDP_EXIT_DIVERGED, "training diverged: %s at step %lld (checked every --log-every "
           "%lld steps; healthy at step %lld); %s; lower --lr, add --warmup-steps or "
           "--clip-grad-norm", what, (long long)r->step, (long long)r->log_every,
           (long long)r->healthy_step, tensor);
}
