/* Learning-rate schedules: linear warm-up, then constant, cosine (to
 * --min-lr) or step decay (x gamma every step-size steps). The schedule
 * returns a multiplier of the base learning rate, so the dense and the
 * embedding learning rates follow the same curve. Steps are 0-based
 * optimizer steps. */
#ifndef CDDP_TRAIN_SCHEDULE_H
#define CDDP_TRAIN_SCHEDULE_H

#include <stdint.h>

typedef enum { CDDP_SCHED_CONSTANT = 0, CDDP_SCHED_COSINE, CDDP_SCHED_STEP } cddp_sched_kind;

typedef struct {
  cddp_sched_kind kind;
  int64_t warmup;      /* linear warm-up steps: factor (s+1)/warmup */
  int64_t total;       /* total optimizer steps (cosine reaches its floor here) */
  int64_t step_size;   /* step decay period */
  double gamma;        /* step decay factor */
  double floor;        /* cosine: min_lr / lr */
} cddp_schedule;

/* kind: "constant", "cosine" or "step" (dies with exit 2 otherwise). */
void cddp_schedule_init(cddp_schedule *s, const char *kind, int64_t warmup, int64_t total,
                        int64_t step_size, double gamma, double lr, double min_lr);
/* Multiplier of the base learning rate at optimizer step `step` (0-based). */
double cddp_schedule_factor(const cddp_schedule *s, int64_t step);

#endif
