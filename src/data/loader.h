/* The prefetching loader: one per rank. A background thread (or `threads`
 * of them, each filling a different batch) fills a ring of host batch buffers
 * ahead of the trainer, in the sampler's order, checking every value as it
 * enters. Batches are handed out strictly in order whatever the thread count.
 *
 * Ring contract. The ring has prefetch + 2 buffers. The batch returned by a
 * call to cddp_loader_next stays valid and unchanged until the call after the
 * next one: when next() is called for the (k+1)-th time, batch k-1 is handed
 * back to the loader thread, batch k stays valid. So the trainer may hold the
 * current batch and the previous one (e.g. the previous one still being
 * copied to the device), never more. cddp_loader_start_epoch(_at) and
 * cddp_loader_close invalidate every batch handed out before.
 *
 * Training (eval == CDDP_EVAL_OFF): every batch is full (n == cap == batch);
 * the incomplete last batch of a rank's epoch is dropped, so an epoch has
 * floor(samples_per_rank / batch) batches, the same on every rank.
 * Evaluation: each rank's shard is read once without padding; the last batch
 * may be partial (n < cap); ranks may differ by one batch.
 *
 * Value checks (exit 3, message "<file>: row R, column C: <problem>"):
 * ctr label in {0,1}, dense finite, sparse ids in [0, table_sizes[c]);
 * twotower user_id < num_users, item_id < num_items, item_cat < num_cats,
 * user_hist in [-1, num_items); image labels in [0, num_classes).
 * With max_table_rows > 0, ctr ids are checked against the file's tables and
 * then taken modulo max_table_rows; info.table_sizes are min'd with it.
 * Errors in the loader thread end the process through cddp_die (and so the
 * abort hook under MPI). */
#ifndef CDDP_DATA_LOADER_H
#define CDDP_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "data/augment.h"
#include "data/batch.h"
#include "data/sampler.h"

typedef struct {
  int rank, world;        /* world >= 1 */
  int batch;              /* samples per rank per batch */
  uint64_t seed;
  cddp_shuffle shuffle;   /* none | full | block */
  int drop_last;
  cddp_eval_mode eval;    /* OFF for training */
  int prefetch;           /* batches read ahead (>= 1; 0 means 2) */
  int64_t block_rows;     /* block shuffle block; 0 = the file's chunk rows (4096 if contiguous) */
  int64_t window_blocks;  /* block shuffle window; 0 = 16 */
  int64_t max_table_rows; /* 0 = off */
  int threads;            /* loader threads filling batches in parallel (0 = 1) */
  cddp_augment augment;   /* image datasets, training only (data/augment.h) */
  /* Optional allocator for the ring buffers (pinned memory); NULL = malloc. */
  void *(*host_alloc)(size_t bytes);
  void (*host_free)(void *p);
} cddp_loader_opts;

typedef struct cddp_loader cddp_loader;

/* Opens and validates the file (exit 3 on problems), allocates the ring and
 * starts the thread. Nothing is read before the first start_epoch. */
cddp_loader *cddp_loader_open(const char *path, const cddp_loader_opts *o);
const cddp_data_info *cddp_loader_info(const cddp_loader *l);
int64_t cddp_loader_batches_per_epoch(const cddp_loader *l);
/* Samples this rank visits per epoch (before dropping the last batch). */
int64_t cddp_loader_samples_per_epoch(const cddp_loader *l);

void cddp_loader_start_epoch(cddp_loader *l, int64_t epoch);
/* Resume: the epoch continues at batch number batch_index (0-based); the
 * batches are exactly those an uninterrupted epoch would have produced. */
void cddp_loader_start_epoch_at(cddp_loader *l, int64_t epoch, int64_t batch_index);
/* Next batch of the epoch, NULL at its end. */
const cddp_batch *cddp_loader_next(cddp_loader *l);
void cddp_loader_close(cddp_loader *l);

#endif
