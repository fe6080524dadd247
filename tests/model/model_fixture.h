/* Tiny models and synthetic batches for the whole-model tests (CPU backend). */
#ifndef CDDP_TESTS_MODEL_FIXTURE_H
#define CDDP_TESTS_MODEL_FIXTURE_H

#include "model/model.h"

typedef struct {
  cddp_batch b;
  cddp_data_info info;
} fx_batch;

/* Data shapes of the tiny test datasets for arch "dlrm", "two_tower" or "vit". */
void fx_info(const char *arch, cddp_data_info *info);
cddp_model *fx_model(const char *arch, int B, uint64_t seed, int64_t dense_threshold,
                     cddp_dtype precision);
/* A random batch of B rows (labels with a planted signal, so training can learn). */
void fx_batch_make(fx_batch *fb, const char *arch, int B, uint64_t seed);
void fx_batch_free(fx_batch *fb);
/* Zeroes the loss sum, runs forward; returns the mean loss (double). */
double fx_forward(cddp_model *m, const cddp_batch *b, int train);
void fx_zero_grads(cddp_model *m);
/* Plain SGD on every parameter: dense block and sparse tables. */
void fx_sgd(cddp_model *m, float lr);
/* Dense copy [rows, dim] of a sparse table's gradient (caller frees). */
float *fx_sparse_dense(const cddp_model *m, int id);

#endif
