/* The optimizers --optimizer can name, one CDDP_OPTIMIZER(name) each: name
 * is the option value and the suffix of the descriptor `cddp_opt_<name>`
 * defined in src/train/optim_<name>.c. X-macro: define CDDP_OPTIMIZER before
 * including; it is undefined at the end. */
CDDP_OPTIMIZER(sgd)
CDDP_OPTIMIZER(adamw)
CDDP_OPTIMIZER(adagrad)

#undef CDDP_OPTIMIZER
