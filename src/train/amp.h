/* The fp16 dynamic loss scaler (DESIGN §5), PyTorch GradScaler semantics:
 * initial scale 65536, x2 after `interval` (2000) clean steps, x0.5 and the
 * update skipped when any gradient is inf/NaN. The scale, the growth tracker
 * and the found-inf flag live on the device, so no step synchronises the
 * host; because the check runs on gradients that are already all-reduced,
 * every rank takes the same decision without another collective.
 * Disabled (fp32, bf16): no scale, no check, nothing skipped. */
#ifndef CDDP_TRAIN_AMP_H
#define CDDP_TRAIN_AMP_H

#include "core/ops.h"
#include "model/params.h"
#include "train/optimizer.h"

typedef struct {
  const cddp_backend *be;
  int enabled;
  float growth, backoff;
  int interval;
  float *scale;   /* device */
  int *tracker;   /* device: clean steps since the last change */
  int *found_inf; /* device: this step had inf/NaN */
} cddp_amp;

#define CDDP_AMP_INIT_SCALE 65536.0f
#define CDDP_AMP_GROWTH 2.0f
#define CDDP_AMP_BACKOFF 0.5f
#define CDDP_AMP_INTERVAL 2000

void cddp_amp_init(cddp_amp *a, const cddp_backend *be, int enabled, float init_scale,
                   float growth, float backoff, int interval);
void cddp_amp_free(cddp_amp *a);
/* Loss scale for the model's forward (NULL when disabled). */
const float *cddp_amp_loss_scale(const cddp_amp *a);
/* Clears the found-inf flag (start of an optimizer step). */
void cddp_amp_begin_step(cddp_amp *a);
/* Unscales and checks the dense gradient and every sparse table's rows. */
void cddp_amp_unscale_check(cddp_amp *a, cddp_params *ps, const cddp_sparse_grad *sparse);
/* The optimizer's skip flag (NULL when disabled). */
const int *cddp_amp_skip(const cddp_amp *a);
/* Scale update after the optimizer (no-op when disabled). */
void cddp_amp_update(cddp_amp *a);
/* Host view of the state (synchronises; logging steps and checkpoints only). */
void cddp_amp_get(const cddp_amp *a, float *scale, int *tracker, int *found_inf);
void cddp_amp_set(cddp_amp *a, float scale, int tracker);

#endif
