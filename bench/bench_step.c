/* One training step (forward + backward + SGD update) of a cddp model on the
 * CPU backend, timed for comparison with bench/pytorch/bench_step.py at the
 * same thread count. No DDP: dense parameters are updated with one fused
 * be->sgd_update over the dense block, sparse tables with be->sparse_sgd over
 * each table's (sp_ids, sp_rows).
 *
 *   bench_step --model dlrm|vit [--batch N] [--threads T] [--steps S] [--warmup W]
 *              [--max-rows R] [--seed S]
 *
 * dlrm: Kaggle config, Criteo Kaggle table sizes capped at --max-rows (1M),
 * uniform ids, dense features log1p(Poisson-ish) values, 0/1 labels.
 * vit: vit-fmnist, 28x28x1 uint8 images, 10 classes.
 * Prints one JSON line: model, batch, threads, ms_per_step (mean of the timed
 * steps), ms_median, samples_per_s. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/ops.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/model.h"

/* Same constants as bench/pytorch/bench_step.py (Criteo Kaggle C1..C26). */
static const int64_t kaggle_sizes[CDDP_CTR_SPARSE] = {
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572};

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double urand(void) { return (rnd() >> 11) * (1.0 / 9007199254740992.0); }

static double clock_ms(clockid_t id) {
  struct timespec ts;
  CDDP_CHECK_SYS(clock_gettime(id, &ts));
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void usage(void) {
  fprintf(stderr, "usage: bench_step --model dlrm|vit [--batch N] [--threads T] [--steps S] "
                  "[--warmup W] [--max-rows R] [--seed S]\n");
  exit(CDDP_EXIT_USAGE);
}

int main(int argc, char **argv) {
  const char *model = NULL;
  int batch = 0, threads = 1, steps = 10, warmup = 2;
  long long max_rows = 1000000;
  unsigned long long seed = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    if (!strcmp(a, "--model")) model = v;
    else if (!strcmp(a, "--batch")) batch = atoi(v);
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else if (!strcmp(a, "--steps")) steps = atoi(v);
    else if (!strcmp(a, "--warmup")) warmup = atoi(v);
    else if (!strcmp(a, "--max-rows")) max_rows = atoll(v);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
    else usage();
    i++;
  }
  if (!model || steps < 1 || warmup < 0 || threads < 1) usage();
  int is_dlrm = !strcmp(model, "dlrm");
  if (!is_dlrm && strcmp(model, "vit")) usage();
  if (batch <= 0) batch = is_dlrm ? 2048 : 128;
  g_rng += seed;

  const cddp_backend *be = cddp_backend_get("cpu", 0);
  be->set_threads(threads);

  cddp_data_info info = {0};
  cddp_model_config cfg = {.batch = batch, .precision = CDDP_F32, .seed = seed,
                           .dense_embedding_threshold = 0};
  cddp_batch b = {.n = batch, .cap = batch};
  if (is_dlrm) {
    cfg.arch = "dlrm";
    cfg.variant = "kaggle";
    info.schema = CDDP_SCHEMA_CTR;
    for (int t = 0; t < CDDP_CTR_SPARSE; t++)
      info.table_sizes[t] = kaggle_sizes[t] < max_rows ? kaggle_sizes[t] : max_rows;
    b.dense = be->malloc((size_t)batch * CDDP_CTR_DENSE * sizeof(float));
    b.sparse = be->malloc((size_t)batch * CDDP_CTR_SPARSE * sizeof(int32_t));
    b.label = be->malloc((size_t)batch * sizeof(float));
    for (int r = 0; r < batch; r++) {
      for (int j = 0; j < CDDP_CTR_DENSE; j++) /* log1p of a small count, as the reference */
        b.dense[r * CDDP_CTR_DENSE + j] = (float)log1p(floor(-5.0 * log(1.0 - urand())));
      for (int t = 0; t < CDDP_CTR_SPARSE; t++)
        b.sparse[r * CDDP_CTR_SPARSE + t] = (int32_t)(rnd() % (uint64_t)info.table_sizes[t]);
      b.label[r] = (float)(rnd() & 1);
    }
  } else {
    cfg.arch = "vit";
    cfg.variant = "vit-fmnist";
    info = (cddp_data_info){.schema = CDDP_SCHEMA_IMAGE, .height = 28, .width = 28,
                            .channels = 1, .num_classes = 10};
    b.images = be->malloc((size_t)batch * 28 * 28);
    b.labels = be->malloc((size_t)batch * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)batch * 28 * 28; i++) b.images[i] = (uint8_t)(rnd() & 255);
    for (int r = 0; r < batch; r++) b.labels[r] = (int32_t)(rnd() % 10);
  }
  info.rows = batch;

  cddp_model *m = cddp_model_create(&cfg, &info, be, NULL);
  cddp_params *ps = &m->params;
  const float lr = 0.01f;
  float grad_scale = 1.0f / batch;

  int total = warmup + steps;
  double cpu0 = 0.0;
  double *ms = cddp_xmalloc((size_t)total * sizeof(double), "step times");
  for (int s = 0; s < total; s++) {
    if (s == warmup) cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    double t0 = now_ms();
    /* the trainer zeroes dense gradients each step; so do we (PyTorch's
     * zero_grad(set_to_none) is cheaper, but both pay for it) */
    be->memset0(ps->grad, ps->n_dense * sizeof(float), be->compute);
    be->memset0(m->loss_sum, sizeof(float), be->compute);
    m->ops->forward(m, &b, 1, grad_scale, NULL);
    m->ops->backward(m, &b, NULL);
    be->sgd_update(ps->master, ps->grad, NULL, ps->n_dense, lr, 0.0f, 0, 0.0f, NULL, NULL,
                   CDDP_F32);
    for (int i = 0; i < ps->n; i++) {
      const cddp_param *p = &ps->p[i];
      if (!(p->flags & CDDP_PARAM_SPARSE)) continue;
      be->sparse_sgd(ps->master + p->offset, (int)p->shape[1], p->sp_ids, p->sp_rows, p->sp_cap,
                     lr, NULL);
    }
    be->stream_sync(be->compute);
    ms[s] = now_ms() - t0;
  }
  /* CPU time of the process per timed step: less sensitive than wall time to
   * other work on a shared machine (equal to it when nothing else runs) */
  double cpu_ms = (clock_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / steps;
  float loss = 0.0f;
  be->memcpy_d2h(&loss, m->loss_sum, sizeof loss, be->compute);
  double sum = 0.0;
  for (int s = warmup; s < total; s++) sum += ms[s];
  qsort(ms + warmup, (size_t)steps, sizeof(double), cmp_double);
  double med = steps % 2 ? ms[warmup + steps / 2]
                         : 0.5 * (ms[warmup + steps / 2 - 1] + ms[warmup + steps / 2]);
  double mean = sum / steps;
  printf("{\"impl\": \"cddp\", \"model\": \"%s\", \"variant\": \"%s\", \"batch\": %d, "
         "\"threads\": %d, \"steps\": %d, \"ms_per_step\": %.3f, \"ms_median\": %.3f, "
         "\"cpu_ms_per_step\": %.3f, \"samples_per_s\": %.1f, \"final_loss\": %.6f, \"blas\": \"%s\"}\n",
         model, cfg.variant, batch, threads, steps, mean, med, cpu_ms, batch / mean * 1e3, loss / batch,
         cddp_cpu_blas_kernels());
  free(ms);
  cddp_model_destroy(m);
  if (is_dlrm) {
    be->free(b.dense);
    be->free(b.sparse);
    be->free(b.label);
  } else {
    be->free(b.images);
    be->free(b.labels);
  }
  return 0;
}
