/* AdamW as torch.optim.AdamW (decoupled weight decay, bias correction with
 * the device step count). Sparse tables use row-sparse Adagrad: the ops have
 * no sparse Adam (DESIGN §11). */
#include "train/optimizer_algo.h"

static void dense_step(const cddp_backend *be, const cddp_opt_config *c,
                       const cddp_opt_dense_args *a) {
  be->adamw_update(a->p, a->g, a->state[0], a->state[1], a->n, a->lr, (float)c->beta1,
                   (float)c->beta2, (float)c->eps, a->wd, a->step, a->skip, a->half, a->half_t);
}

const cddp_opt_algo cddp_opt_adamw = {
    .name = "adamw",
    .n_states = 2,
    .state_names = {"exp_avg", "exp_avg_sq"},
    .sparse_state_name = "sum",
    .dense_step = dense_step,
    .sparse_step = cddp_opt_sparse_adagrad,
};
