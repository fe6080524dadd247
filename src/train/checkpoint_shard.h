/* Sharded embedding tables in checkpoints (docs/checkpoints.md).
 *
 * Every rank that holds rows of a sharded table writes them, with their
 * optimizer state, to its own file next to the checkpoint,
 * `<dir>/ckpt-<step>-shard-<rank>.h5` (/model/<name> [rows held, dim],
 * /optimizer/<name>/<state>), through a temporary name, fsync and rename.
 * Once every shard is durable (a barrier), rank 0's checkpoint file gets
 * /model/<name> and /optimizer/<name>/<state> as HDF5 virtual datasets of the
 * WHOLE table [rows, dim], each rank's row range mapped onto its shard file
 * (relative names: the directory moves as a unit). h5py and the loader see
 * ordinary whole datasets; no rank ever holds a whole sharded table. */
#ifndef CDDP_TRAIN_CHECKPOINT_SHARD_H
#define CDDP_TRAIN_CHECKPOINT_SHARD_H

#include <hdf5.h>
#include <stdint.h>

#include "model/params.h"
#include "train/optimizer.h"

/* Row range of every sharded parameter on every rank: first[i*world + r],
 * count[i*world + r] for parameter id i (0 for parameters not sharded). */
typedef struct cddp_ckpt_shards {
  int world, n_params;
  int64_t *first, *count;
} cddp_ckpt_shards;

/* This rank's shard file of checkpoint `step` (no file when it holds no rows). */
void cddp_ckpt_shard_write(const char *dir, int64_t step, int rank, const cddp_params *ps,
                           const cddp_optimizer *opt);
/* Rank 0, writing the checkpoint file `path`: dataset `dset` in loc, the
 * whole table of sharded parameter id p, made of dataset src_dset of every
 * rank's shard file of this step. */
void cddp_ckpt_shard_vds(const char *path, hid_t loc, const char *dset, int64_t step,
                         const cddp_ckpt_shards *sh, int id, const cddp_param *p,
                         const char *src_dset);
/* Reads p's rows [row_offset, row_offset + rows held) of the whole-table
 * dataset ds (dataspace sp, already checked to be the whole table's). */
void cddp_ckpt_shard_read_rows(const char *path, hid_t ds, hid_t sp, const cddp_param *p,
                               float *host);
/* A virtual dataset whose shard file is missing would read as zeros: dies
 * (exit 3) naming the missing file instead. No-op for ordinary datasets. */
void cddp_ckpt_shard_check_sources(const char *path, hid_t ds, const char *dname);
/* Removes the shard files of checkpoint `step` in dir. */
void cddp_ckpt_shard_remove(const char *dir, long long step);

#endif
