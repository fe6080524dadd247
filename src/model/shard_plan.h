/* Where each embedding table lives across the ranks (DESIGN §4, hybrid
 * parallelism): replicated on every rank, table-wise (the whole table on one
 * rank) or row-wise (rank r holds rows [lo(r), lo(r+1)), lo(r) =
 * floor(r * rows / world): contiguous, sizes differ by at most one row).
 * Pure bookkeeping: no communication. */
#ifndef CDDP_MODEL_SHARD_PLAN_H
#define CDDP_MODEL_SHARD_PLAN_H

#include <stdint.h>

#define CDDP_SHARD_MAX_TABLES 64

typedef enum { CDDP_SHARD_REPLICATED = 0, CDDP_SHARD_TABLE, CDDP_SHARD_ROW } cddp_shard_kind;

typedef struct {
  char name[96];   /* parameter name, e.g. emb_l.3.weight */
  int64_t rows;
  int dim;
  cddp_shard_kind kind;
  int owner;       /* table-wise: the rank holding it */
} cddp_shard_table;

typedef struct {
  int world, rank, n;
  cddp_shard_table t[CDDP_SHARD_MAX_TABLES];
} cddp_shard_plan;

/* Builds the plan of n tables. mode: "replicated", "table", "row" or "auto"
 * (NULL = replicated); spec: per-table overrides "NAME=KIND[:RANK],..."
 * (KIND replicated|table|row, RANK for table; NAME with or without
 * ".weight"), NULL or "" for none. auto: tables of at most dense_threshold
 * rows stay replicated; the others go, largest first, to the rank with the
 * fewest bytes so far (ties: fewest tables, i.e. lookups), unless that would
 * put the rank more than 10 % over an even share of all sharded bytes: then
 * the table is split row-wise over every rank. Dies with exit 2
 * naming the table for an unknown name, kind or rank, or a row-wise table
 * with fewer rows than ranks. */
void cddp_shard_plan_make(cddp_shard_plan *p, int world, int rank, int n, const char *const *names,
                          const int64_t *rows, const int *dims, const char *mode, const char *spec,
                          int64_t dense_threshold);
int cddp_shard_plan_any(const cddp_shard_plan *p); /* any table not replicated */
int cddp_shard_find(const cddp_shard_plan *p, const char *name); /* index or -1 */

static inline int64_t cddp_shard_row_lo(int64_t rows, int world, int r) {
  return (int64_t)r * rows / world;
}
/* Rank holding global row id of a row-wise table. */
static inline int cddp_shard_row_owner(int64_t rows, int world, int64_t id) {
  return (int)(((id + 1) * world - 1) / rows);
}
/* Rows of table t on rank r and the first of them. */
void cddp_shard_local(const cddp_shard_plan *p, int t, int r, int64_t *first, int64_t *count);

/* Rank 0 logs the plan: every table's placement, rows and bytes (weights +
 * state_floats optimizer floats per weight), then every rank's total. */
void cddp_shard_plan_report(const cddp_shard_plan *p, int state_floats);

#endif
