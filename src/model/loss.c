/* Losses: thin wrappers over the backend so that models call one place. */
#include "model/layers.h"

void cddp_loss_bce(const cddp_lctx *c, const float *logits, const float *labels, int n,
                   float grad_scale, const float *loss_scale, float *loss_sum, float *dlogits) {
  c->be->bce_logits(logits, labels, n, grad_scale, loss_scale, loss_sum, dlogits);
}

void cddp_loss_xent(const cddp_lctx *c, const float *logits, int ld, const int32_t *labels,
                    int n, int classes, float smoothing, float grad_scale,
                    const float *loss_scale, float *loss_sum, float *dlogits) {
  c->be->xent(logits, ld, labels, n, classes, smoothing, grad_scale, loss_scale, loss_sum,
              dlogits);
}
