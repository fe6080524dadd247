#include "train/trainer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"
#include "data/schema.h"
#include "train/optimizer_algo.h"
#include "train/preempt.h"
#include "train/trainer_state.h"

void cddp_model_config_from_options(const cddp_options *o, cddp_model_config *cfg) {
  int prec = cddp_dtype_parse(o->precision);
  if (prec < 0) cddp_die(CDDP_EXIT_USAGE, "--precision %s: unknown", o->precision);
  *cfg = (cddp_model_config){
      .arch = o->model,
      .variant = o->variant,
      .batch = (int)o->batch,
      .precision = (cddp_dtype)prec,
      .seed = (uint64_t)o->seed,
      .dense_embedding_threshold = o->dense_embedding_threshold,
      .label_smoothing = (float)o->label_smoothing,
      .temperature = (float)o->temperature,
      .gather_negatives = o->gather_negatives,
      .emb_dim = (int)o->emb_dim,
      .embedding_sharding = o->embedding_sharding,
      .embedding_plan = o->embedding_plan,
      .emb_state_floats = cddp_optimizer_find(o->optimizer)->sparse_state_name ? 1 : 0,
      .grad_accum = (int)o->grad_accum,
      .grad_wire = strcmp(o->grad_compress, "none") ? (cddp_dtype)cddp_dtype_parse(o->grad_compress)
                                                    : CDDP_F32,
  };
}

int cddp_threads_for(const cddp_options *o, int local_world) {
  if (o->threads > 0) return (int)o->threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  int t = (int)(n > 0 ? n : 1) / (local_world > 0 ? local_world : 1);
  return t < 1 ? 1 : t;
}

void cddp_check_eval_data(const cddp_data_info *a, const cddp_data_info *b, const char *pa,
                          const char *pb) {
  if (a->schema != b->schema)
    cddp_die(CDDP_EXIT_USAGE, "--eval %s: schema differs from --train %s", pb, pa);
  char la[128], lb[128];
  if (cddp_schema_shape_diff(a, b, la, lb, sizeof la))
    cddp_die(CDDP_EXIT_USAGE, "--eval %s has %s, --train %s has %s: evaluation data must have "
             "the training data's shapes", pb, lb, pa, la);
}
int cddp_train_run(cddp_options *o, int *argc, char ***argv) {
  trainer t = {.o = o};
  double t_start = cddp_train_now();
  if (o->quiet) cddp_log_set_quiet(1);
  cddp_pg_init(&t.pg, argc, argv);
  if (t.pg.world > 1) cddp_pg_log_hosts(&t.pg); /* before setup starts the comm thread */
  cddp_preempt_install(t.pg.rank);
  cddp_trace_run_start(&t.tr, o, &t.pg);
  cddp_trainer_setup(&t);
  int64_t epoch, pos;
  int64_t step = cddp_trainer_resume(&t, &epoch, &pos);
  cddp_progress_init(&t.prog, t.pg.rank == 0, o->quiet, o->progress, o->metrics_out, t.total,
                     o->epochs, cddp_model_find(o->model)->metric);
  cddp_log_info("train: %s (%s) on %s, %d rank%s, device %s, comm %s, precision %s, global batch "
                "%lld, %lld steps (%lld per epoch)",
                o->model, o->variant, o->train, t.pg.world, t.pg.world > 1 ? "s" : "", t.device,
                o->comm, o->precision, (long long)(o->batch * t.A * t.pg.world),
                (long long)t.total, (long long)t.spe);
  int64_t end = step;
  int status = step < t.total ? cddp_trainer_loop(&t, step, epoch, pos, &end) : CDDP_EXIT_OK;
  cddp_preempt_uninstall();
  cddp_progress_summary(&t.prog, cddp_train_now() - t_start);
  if (cddp_progress_close(&t.prog) && status == CDDP_EXIT_OK) status = CDDP_EXIT_RUNTIME;
  const char *check = getenv("CDDP_CHECK_REPLICAS"); /* debugging aid, docs/ddp.md */
  if (check && atoi(check) > 0)
    cddp_ddp_check_replicas(t.comm, t.m->params.master, t.m->params.n_replicated, end - step);
  cddp_trace_run_render(&t.tr, &t.pg);
  cddp_trainer_teardown(&t);
  cddp_trace_run_finish(&t.tr, &t.pg, o);
  cddp_pg_finalize(&t.pg);
  return status;
}
