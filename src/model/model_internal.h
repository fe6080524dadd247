/* Shared plumbing of the three models (internal to src/model). */
#ifndef CDDP_MODEL_INTERNAL_H
#define CDDP_MODEL_INTERNAL_H

#include "core/trace.h"
#include "model/layers.h"
#include "model/model.h"

/* Times one layer call as a span on the trace's compute track, named
 * name followed by idx when idx >= 0 (costs one load while tracing is off). */
#define CDDP_LAYER(cat, name, idx, call)                           \
  do {                                                            \
    cddp_trace_mark tm_ = cddp_trace_begin();                     \
    call;                                                         \
    cddp_trace_end(tm_, CDDP_TRACK_COMPUTE, cat, name, idx, 0);   \
  } while (0)
#define CDDP_FWD(name, idx, call) CDDP_LAYER("forward", name, idx, call)
#define CDDP_BWD(name, idx, call) CDDP_LAYER("backward", name, idx, call)

/* Allocates a model and its context: checks cfg->precision, sets m->cfg/data/be. */
cddp_model *cddp_model_alloc(const cddp_model_config *cfg, const cddp_data_info *data,
                             const cddp_backend *be, const cddp_model_ops *ops, cddp_lctx *c);
/* After registration: finalises the registry, allocates parameters (and the
 * AMP half copy) and the loss scalar. */
void cddp_model_alloc_params(cddp_model *m, cddp_lctx *c);
/* Runs plan() twice (measure, then allocate) and records the planned sizes. */
void cddp_model_plan(cddp_model *m, cddp_planner *pl, void (*plan)(cddp_model *, cddp_planner *));
/* Frees what cddp_model_alloc/alloc_params allocated (not impl). */
void cddp_model_free_common(cddp_model *m);

#endif
