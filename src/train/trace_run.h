/* `cddp train --trace FILE.json --trace-steps A:B`: one Chrome trace-event
 * file for the whole job (pid = rank), written by rank 0 at the end of
 * training. The recorder is core/trace.h; this is its life in a run: clock
 * alignment across ranks at start-up, the step window, the gathering. */
#ifndef CDDP_TRAIN_TRACE_RUN_H
#define CDDP_TRAIN_TRACE_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "core/ops.h"
#include "ddp/process_group.h"
#include "train/options.h"

typedef struct {
  int on;
  int64_t first, last;  /* optimizer steps, 1-based, inclusive */
  FILE *f;              /* rank 0 */
  double offset, origin;
  char *text;           /* this rank's rendered events */
  size_t len;
} cddp_trace_run;

/* Right after cddp_pg_init, before any cddp_comm exists: opens the file on
 * rank 0 (so a bad path fails now, exit 2) and aligns the clocks. */
void cddp_trace_run_start(cddp_trace_run *tr, const cddp_options *o, const cddp_pg *pg);
/* Once the backend exists: allocates the recorder. */
void cddp_trace_run_setup(cddp_trace_run *tr, const cddp_backend *be);
/* Before optimizer step `step` (1-based) starts: records it if in the window. */
void cddp_trace_run_step(cddp_trace_run *tr, int64_t step);
/* After training, while the model (whose names the events point to) lives. */
void cddp_trace_run_render(cddp_trace_run *tr, const cddp_pg *pg);
/* After the cddp_comm is destroyed: gathers on rank 0 and writes the file. */
void cddp_trace_run_finish(cddp_trace_run *tr, const cddp_pg *pg, const cddp_options *o);

#endif
