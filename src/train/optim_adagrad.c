/* Adagrad as torch.optim.Adagrad (L2 weight decay, lr_decay 0, initial
 * accumulator 0), dense and element-wise on sparse table rows. */
#include "train/optimizer_algo.h"

static void dense_step(const cddp_backend *be, const cddp_opt_config *c,
                       const cddp_opt_dense_args *a) {
  be->adagrad_update(a->p, a->g, a->state[0], a->n, a->lr, (float)c->eps, a->wd, a->skip, a->half,
                     a->half_t);
}

void cddp_opt_sparse_adagrad(const cddp_backend *be, const cddp_opt_config *c,
                             const cddp_opt_sparse_args *a) {
  be->sparse_adagrad(a->table, a->state, a->dim, a->ids, a->rows, a->n, a->lr, (float)c->eps,
                     a->skip);
}

const cddp_opt_algo cddp_opt_adagrad = {
    .name = "adagrad",
    .n_states = 1,
    .state_names = {"sum"},
    .sparse_state_name = "sum",
    .dense_step = dense_step,
    .sparse_step = cddp_opt_sparse_adagrad,
};
