/* Distributed sampler: which global rows rank r reads, in which order.
 *
 * Training mode follows PyTorch's DistributedSampler exactly (docs/data.md):
 *  - the epoch order is a permutation of 0..N-1 drawn from the generator of
 *    prng.h seeded with seed + epoch (identical on every rank), or 0..N-1
 *    unshuffled, or a block shuffle (below);
 *  - without drop_last the order is padded cyclically by repeating its head
 *    up to total = ceil(N/W)*W; with drop_last it is truncated to
 *    total = floor(N/W)*W;
 *  - rank r takes positions r, r+W, r+2W, ... (total/W samples).
 * Block shuffle (for data larger than memory): the N rows are cut into blocks
 * of block_rows (the last may be short); the block order is a Fisher-Yates
 * permutation drawn from seed + epoch; consecutive groups of window_blocks
 * blocks form windows whose rows are shuffled within the window with their own
 * generator, seeded (seed + epoch) ^ ((w + 1) * 0xD1B54A32D192ED03). Only one
 * window of indices is held in memory.
 * Evaluation mode ignores shuffle, padding and drop_last: the N rows are split
 * into W shards that together hold every row exactly once, contiguous
 * (rank r: rows [floor(rN/W), floor((r+1)N/W))) or strided (r, r+W, ... < N). */
#ifndef CDDP_DATA_SAMPLER_H
#define CDDP_DATA_SAMPLER_H

#include <stdint.h>

typedef enum { CDDP_SHUFFLE_NONE = 0, CDDP_SHUFFLE_FULL = 1, CDDP_SHUFFLE_BLOCK = 2 } cddp_shuffle;
typedef enum { CDDP_EVAL_OFF = 0, CDDP_EVAL_CONTIGUOUS = 1, CDDP_EVAL_STRIDED = 2 } cddp_eval_mode;

typedef struct {
  int64_t n;             /* rows in the dataset (> 0) */
  int rank, world;       /* 0 <= rank < world */
  uint64_t seed;
  cddp_shuffle shuffle;
  int drop_last;
  cddp_eval_mode eval;
  int64_t block_rows;    /* block shuffle: rows per block (> 0) */
  int64_t window_blocks; /* block shuffle: blocks per window (> 0) */
} cddp_sampler_opts;

typedef struct cddp_sampler cddp_sampler;

/* Validates the options (exit 2 on nonsense) and allocates all memory the
 * sampler will need: N int64 for a full shuffle, one window for a block one. */
cddp_sampler *cddp_sampler_create(const cddp_sampler_opts *o);
void cddp_sampler_destroy(cddp_sampler *s);

/* Samples this rank visits per epoch (total/W in training, the shard size in
 * evaluation). */
int64_t cddp_sampler_num_samples(const cddp_sampler *s);

/* Prepares the order of an epoch (draws the permutation for a full shuffle). */
void cddp_sampler_set_epoch(cddp_sampler *s, int64_t epoch);

/* out[i] = global row of this rank's sample number first+i (0-based within the
 * epoch); first+n <= num_samples. Sequential calls are cheapest (block mode
 * keeps the current window). */
void cddp_sampler_get(cddp_sampler *s, int64_t first, int64_t n, int64_t *out);

#endif
