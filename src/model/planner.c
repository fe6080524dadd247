/* Two-pass memory planning for layers (see layers.h): activations are a bump
 * arena; scratch is a stack whose peak sizes the scratch arena. */
#include "model/layers.h"

void cddp_planner_measure(cddp_planner *p) {
  cddp_arena_measure(&p->act, "activations");
  cddp_arena_measure(&p->ws, "scratch");
  p->ws_peak = 0;
}

void cddp_planner_alloc(cddp_planner *p, const cddp_backend *be, size_t act_bytes,
                        size_t ws_bytes) {
  cddp_arena_init(&p->act, be, act_bytes, "activations");
  cddp_arena_init(&p->ws, be, ws_bytes, "scratch");
  p->ws_peak = 0;
}

void cddp_planner_destroy(cddp_planner *p) {
  cddp_arena_destroy(&p->act);
  cddp_arena_destroy(&p->ws);
}

void *cddp_plan_act(cddp_planner *p, size_t bytes) { return cddp_arena_alloc(&p->act, bytes); }

void *cddp_plan_scratch(cddp_planner *p, size_t bytes) {
  void *r = cddp_arena_alloc(&p->ws, bytes);
  if (p->ws.used > p->ws_peak) p->ws_peak = p->ws.used;
  return r;
}

void cddp_params_refresh_half(const cddp_params *ps) {
  if (!ps->half || ps->n_dense == 0) return;
  ps->be->cast(ps->half, ps->half_t, ps->master, CDDP_F32, ps->n_dense);
}
