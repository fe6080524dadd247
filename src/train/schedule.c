#include "train/schedule.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

void cddp_schedule_init(cddp_schedule *s, const char *kind, int64_t warmup, int64_t total,
                        int64_t step_size, double gamma, double lr, double min_lr) {
  *s = (cddp_schedule){.warmup = warmup, .total = total, .step_size = step_size, .gamma = gamma};
  if (!strcmp(kind, "constant")) s->kind = CDDP_SCHED_CONSTANT;
  else if (!strcmp(kind, "cosine")) s->kind = CDDP_SCHED_COSINE;
  else if (!strcmp(kind, "step")) s->kind = CDDP_SCHED_STEP;
  else cddp_die(CDDP_EXIT_USAGE, "--schedule %s: unknown (constant, cosine or step)", kind);
  s->floor = lr > 0 ? min_lr / lr : 0;
  if (s->step_size < 1) s->step_size = 1;
}

double cddp_schedule_factor(const cddp_schedule *s, int64_t step) {
  if (step < s->warmup) return (double)(step + 1) / (double)s->warmup;
  int64_t t = step - s->warmup;
  switch (s->kind) {
    case CDDP_SCHED_COSINE: {
      int64_t span = s->total - s->warmup;
      if (span <= 0) return 1.0;
      double x = t >= span ? 1.0 : (double)t / (double)span;
      return s->floor + (1.0 - s->floor) * 0.5 * (1.0 + cos(M_PI * x));
    }
    case CDDP_SCHED_STEP: return pow(s->gamma, (double)(t / s->step_size));
    default: return 1.0;
  }
}
