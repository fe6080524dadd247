/* SGD as torch.optim.SGD (momentum, dampening 0, Nesterov, L2 weight decay);
 * sparse tables: plain row-wise SGD, no state. */
#include "train/optimizer_algo.h"

static int saves_states(const cddp_opt_config *c) { return c->momentum != 0; }

static void dense_step(const cddp_backend *be, const cddp_opt_config *c,
                       const cddp_opt_dense_args *a) {
  be->sgd_update(a->p, a->g, a->state[0], a->n, a->lr, (float)c->momentum, c->nesterov, a->wd,
                 a->skip, a->half, a->half_t);
}

static void sparse_step(const cddp_backend *be, const cddp_opt_config *c,
                        const cddp_opt_sparse_args *a) {
  (void)c;
  be->sparse_sgd(a->table, a->dim, a->ids, a->rows, a->n, a->lr, a->skip);
}

const cddp_opt_algo cddp_opt_sgd = {
    .name = "sgd",
    .n_states = 1,
    .state_names = {"momentum_buffer"},
    .saves_states = saves_states,
    .dense_step = dense_step,
    .sparse_step = sparse_step,
};
