/* Checkpoints (DESIGN §7): one HDF5 file per checkpoint.
 *   /model/<name>              fp32, the parameter's PyTorch shape
 *   /optimizer/<name>/<state>  momentum_buffer | exp_avg, exp_avg_sq | sum
 *   /model_state/extra         uint8 [world_size, bytes]: row r = rank r's
 *                              model extra state (cddp_model_save_extra_state;
 *                              two_tower's logQ estimator); absent if none
 *   root attributes: format "cddp.checkpoint.v1", step (optimizer steps
 *   done), epoch, position (batches of that epoch already consumed), the
 *   loss-scaler scale and growth tracker, optimizer_step (device step
 *   counter), seed and rng (the run's only randomness is derived from the
 *   seed, the epoch and the step), world_size, model, variant, config (the
 *   full run configuration as INI text), and complete = 1 written last.
 * Rank 0 writes `<dir>/.ckpt-<step>.h5.tmp`, fsyncs it, renames it to
 * `<dir>/ckpt-<step>.h5` and fsyncs the directory, so a crash never leaves a
 * torn file under a checkpoint name. */
#ifndef CDDP_TRAIN_CHECKPOINT_H
#define CDDP_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/params.h"
#include "train/optimizer.h"

typedef struct {
  int64_t step, epoch, position;
  double loss_scale;
  int64_t scaler_tracker;
  int64_t optimizer_step;
  int64_t seed;
  int64_t world_size;
  char model[64], variant[64];
  char *config; /* INI text; owned by the caller (read: freed by cddp_ckpt_meta_free) */
  /* Write only: every rank's model extra state, extra_rows rows of
   * extra_bytes each (rank order); NULL / 0 bytes: none. */
  const void *extra_state;
  size_t extra_bytes;
  int64_t extra_rows;
  /* Write only: where every rank's rows of the sharded tables are (their
   * shard files must already exist, checkpoint_shard.h); NULL: none. */
  const struct cddp_ckpt_shards *shards;
} cddp_ckpt_meta;

/* Writes a checkpoint of step meta->step into dir; the final path is put in
 * out_path. opt may be NULL (no optimizer state). Dies (exit 1) on I/O
 * failure, leaving any earlier checkpoint intact. */
void cddp_ckpt_write(const char *dir, const cddp_ckpt_meta *meta, const cddp_params *ps,
                     const cddp_optimizer *opt, char *out_path, size_t cap);
/* mkdir -p (exit 1 naming dir on failure). */
void cddp_ckpt_mkdir(const char *dir);
/* Removes all but the newest keep checkpoints (and stale temp files) of dir. */
void cddp_ckpt_prune(const char *dir, int keep);
/* Newest complete and intact checkpoint of dir into path (each candidate is
 * verified, newest first, with a warning for each one skipped); returns 0 if
 * there is none. */
int cddp_ckpt_find_latest(const char *dir, char *path, size_t cap);
/* Reads every dataset (HDF5 verifies the Fletcher32 checksums of those that
 * have them). Returns 1 if the checkpoint is complete and readable, else 0
 * with the reason in why. */
int cddp_ckpt_verify(const char *path, char *why, size_t cap);
/* Reads the root attributes (exit 3 if the file is not a complete checkpoint). */
void cddp_ckpt_read_meta(const char *path, cddp_ckpt_meta *meta);
void cddp_ckpt_meta_free(cddp_ckpt_meta *meta);
/* Loads every parameter (names and shapes must match, exit 2 otherwise) and,
 * if opt != NULL, the optimizer state and step counter. Refreshes the half
 * copy of the weights under AMP. */
void cddp_ckpt_load(const char *path, cddp_params *ps, cddp_optimizer *opt);
/* Reads row `rank` of /model_state/extra into dst (bytes long). Returns 0 if
 * the checkpoint has no such dataset (written before it existed); dies with
 * exit 2 if its shape is not [rows > rank, bytes]. */
int cddp_ckpt_load_extra_state(const char *path, int rank, void *dst, size_t bytes);

/* Test hook: called after each dataset is written (NULL in production). */
extern void (*cddp_ckpt_test_hook)(int datasets_written);

#endif
