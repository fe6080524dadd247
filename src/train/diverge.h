/* Divergence (exit 4, DESIGN §8), checked at logging steps, where the host
 * already waits for the loss, so that no other step synchronises: a
 * non-finite loss (one the fp16 scaler did not skip), non-finite parameters
 * or optimizer state (adaptive optimizers overflow their second moments
 * while the weights stay finite; one device pass over each buffer, a flag
 * read with the loss), or
 * an fp16 loss scale that fell below CDDP_AMP_MIN_SCALE (every step skipped:
 * the gradients overflow whatever the scale). The report names the step, the
 * last step found healthy and the first non-finite tensor. */
#ifndef CDDP_TRAIN_DIVERGE_H
#define CDDP_TRAIN_DIVERGE_H

#include <stdint.h>
#include <stdnoreturn.h>

#include "ddp/comm.h"
#include "model/params.h"
#include "train/optimizer.h"

/* 2^-24: at this scale even the smallest fp16 subnormal gradient times the
 * loss scale is zero; gradients that still overflow mean divergence. */
#define CDDP_AMP_MIN_SCALE 0x1p-24f

typedef struct {
  const cddp_backend *be;
  int *d_flag; /* device */
  int bad;     /* host copy, valid after the compute stream is synchronised */
} cddp_diverge;

void cddp_diverge_init(cddp_diverge *d, const cddp_backend *be);
void cddp_diverge_free(cddp_diverge *d);
/* Enqueues the check of the parameters and the optimizer state and the copy
 * of its flag to d->bad on the compute stream; the caller synchronises (with
 * its read of the loss). */
void cddp_diverge_check(cddp_diverge *d, const cddp_params *ps, const cddp_optimizer *opt);

typedef struct {
  int64_t step, healthy_step, log_every;
  int loss_bad, params_bad; /* on any rank */
  float loss_scale;         /* fp16: the scale now; 0 when AMP is off */
} cddp_diverge_report;

/* Collective, after the ranks agreed that something is wrong: finds the first
 * non-finite parameter tensor (on any rank) and ends the job with exit 4. */
noreturn void cddp_diverge_die(cddp_diverge *d, cddp_comm *c, const cddp_params *ps,
                               const cddp_optimizer *opt, const cddp_diverge_report *r);

#endif
