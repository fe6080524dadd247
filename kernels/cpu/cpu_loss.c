/* Losses: BCE with logits and softmax cross-entropy with label smoothing.
 * The loss is summed in double in a fixed order per thread block and added
 * to *loss_sum; gradients are multiplied by grad_scale (and the AMP loss
 * scale when given). */
#include <math.h>
#include <omp.h>

#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

/* loss = max(x,0) - x y + log(1 + exp(-|x|)) (stable for any x) */
void cpu_bce_logits(const float *logits, const float *labels, int n, float grad_scale,
                    const float *loss_scale, float *loss_sum, float *dlogits) {
  float s = grad_scale * (loss_scale ? *loss_scale : 1.0f);
  double total = 0.0;
  for (int i = 0; i < n; i++) {
    float x = logits[i], y = labels[i];
    double l = (x > 0.0f ? x : 0.0f) - (double)x * y + log1p(exp(-fabs((double)x)));
    total += l;
    float sg = 1.0f / (1.0f + expf(-x));
    dlogits[i] = s * (sg - y);
  }
  *loss_sum += (float)total;
}

/* loss_row = lse - (1-eps) x_l - (eps/C) sum_c x_c;
 * dlogits = s (softmax - (1-eps) onehot - eps/C); ignored rows (label -1)
 * contribute no loss and get zero gradient. */
void cpu_xent(const float *logits, int ld, const int32_t *labels, int N, int C, float smoothing,
              float grad_scale, const float *loss_scale, float *loss_sum, float *dlogits) {
  float s = grad_scale * (loss_scale ? *loss_scale : 1.0f);
  enum { MAXT = 256 };
  double part[MAXT];
  int bad_row = -1;
  int nt = (size_t)N * C >= CPU_PAR_MIN / 4 ? cpu_max_threads() : 1;
  if (nt > MAXT) nt = MAXT;
  int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp single
    used = T;
    int r0 = (int)((long long)N * t / T), r1 = (int)((long long)N * (t + 1) / T);
    double acc = 0.0;
    for (int r = r0; r < r1; r++) {
      const float *x = logits + (size_t)r * ld;
      float *g = dlogits + (size_t)r * ld;
      int lab = labels[r];
      if (lab == -1) {
        for (int c = 0; c < C; c++) g[c] = 0.0f;
        continue;
      }
      if (lab < 0 || lab >= C) {
#pragma omp critical(cddp_xent_bad)
        if (bad_row < 0 || r < bad_row) bad_row = r;
        for (int c = 0; c < C; c++) g[c] = 0.0f;
        continue;
      }
      float mx = x[0];
      for (int c = 1; c < C; c++) mx = x[c] > mx ? x[c] : mx;
      float se = 0.0f, sx = 0.0f;
#pragma omp simd reduction(+ : se, sx)
      for (int c = 0; c < C; c++) {
        g[c] = cpu_expf(x[c] - mx);
        se += g[c];
        sx += x[c];
      }
      double lse = (double)mx + log((double)se);
      acc += lse - (1.0 - smoothing) * x[lab] - (double)smoothing / C * sx;
      float inv = s / se, off = s * smoothing / C;
#pragma omp simd
      for (int c = 0; c < C; c++) g[c] = g[c] * inv - off;
      g[lab] -= s * (1.0f - smoothing);
    }
    part[t] = acc;
  }
  if (bad_row >= 0)
    cddp_die(CDDP_EXIT_DATA, "cross-entropy: label %d of row %d is outside [0, %d)",
             labels[bad_row], bad_row, C);
  double total = 0.0;
  for (int t = 0; t < used; t++) total += part[t];
  *loss_sum += (float)total;
}
