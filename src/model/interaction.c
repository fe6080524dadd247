/* DLRM dot interaction (facebookresearch/dlrm interact_features, "dot",
 * arch_interaction_itself = False): out = x ⊕ the strictly-lower-triangular
 * pairwise dots of the F feature vectors, in li/lj order. No parameters. */
#include "model/layers.h"

void cddp_interaction_plan(cddp_interaction *it, cddp_planner *p, int rows, int F, int D) {
  it->F = F;
  it->D = D;
  it->rows = rows;
  it->out_cols = D + F * (F - 1) / 2;
  it->T = cddp_plan_act(p, (size_t)rows * F * D * sizeof(float));
  it->out = cddp_plan_act(p, (size_t)rows * it->out_cols * sizeof(float));
  /* dT is read by the model after this layer's backward (bottom MLP and
   * embedding gradients): it stays reserved until the caller's release. */
  it->dT = cddp_plan_scratch(p, (size_t)rows * F * D * sizeof(float));
}

void cddp_interaction_fwd(cddp_interaction *it, const cddp_lctx *c, int n) {
  it->n = n;
  c->be->dot_interact_fwd(it->T, n, it->F, it->D, it->out, it->out_cols);
}

void cddp_interaction_bwd(cddp_interaction *it, const cddp_lctx *c, const float *dout) {
  c->be->dot_interact_bwd(dout, it->out_cols, it->T, it->n, it->F, it->D, it->dT);
}
