/* `cddp eval`: rebuilds the model from a checkpoint's configuration,
 * loads its weights and runs the same evaluation as training does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "ddp/comm.h"
#include "ddp/process_group.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/progress.h"
#include "train/trainer.h"

int cddp_eval_run(cddp_options *e, int *argc, char ***argv) {
  double t0 = cddp_train_now();
  if (e->quiet) cddp_log_set_quiet(1);
  cddp_pg pg;
  cddp_pg_init(&pg, argc, argv);
  cddp_ckpt_meta meta;
  cddp_ckpt_read_meta(e->checkpoint, &meta);
  /* The run's configuration, then what this command overrides. */
  cddp_options o;
  cddp_options_defaults(&o, CDDP_CMD_TRAIN);
  cddp_options_load_ini_text(&o, CDDP_CMD_TRAIN, meta.config, e->checkpoint, 1);
  snprintf(o.device, sizeof o.device, "%s", e->device);
  snprintf(o.attention, sizeof o.attention, "%s", e->attention); /* a kernel choice, not the model's */
  o.threads = e->threads;
  o.recall_k = e->recall_k;
  if (e->batch > 0) o.batch = e->batch;
  o.gather_negatives = 0; /* evaluation embeds users and items locally */
  o.resume[0] = 0;

  const cddp_backend *be =
      cddp_backend_get(o.device, cddp_backend_device_for(o.device, pg.local_rank));
  cddp_backend_set_attention(o.device, o.attention);
  be->set_threads(cddp_threads_for(&o, pg.local_world));
  cddp_dataset *ds = cddp_dataset_open(e->data);
  cddp_data_info info = ds->info;
  cddp_dataset_close(ds);
  if (o.max_table_rows > 0) /* table_sizes: 0 outside cddp.ctr.v1 */
    for (int k = 0; k < CDDP_CTR_SPARSE; k++)
      if (info.table_sizes[k] > o.max_table_rows) info.table_sizes[k] = o.max_table_rows;
  cddp_model_config cfg;
  cddp_model_config_from_options(&o, &cfg);
  cddp_model *m = cddp_model_create(&cfg, &info, be, NULL);
  cddp_ckpt_load(e->checkpoint, &m->params, NULL); /* dies naming a shape mismatch */

  const char *corpus[2] = {o.train, e->data};
  FILE *probe = fopen(o.train, "rb");
  if (probe) fclose(probe);
  else if (!strcmp(cddp_metrics_kind_name(info.schema), "retrieval")) {
    cddp_log_warn("training file %s not readable: item categories come from %s only", o.train,
                  e->data);
    corpus[0] = NULL;
  }
  cddp_comm *comm = cddp_comm_create(&pg, be, e->comm, e->timeout);
  cddp_evaluator ev;
  cddp_evaluator_init(&ev, m, comm, e->data, (int)o.batch, (int)o.recall_k, o.max_table_rows,
                      corpus, 2);
  cddp_metrics_result r;
  double te = cddp_train_now();
  cddp_evaluator_run(&ev, &r);
  cddp_progress prog;
  cddp_progress_init(&prog, pg.rank == 0, 0, "plain", e->metrics_out, 0, 0,
                     cddp_model_find(o.model)->metric);
  cddp_log_info("checkpoint %s: %s (%s), step %lld", e->checkpoint, meta.model, meta.variant,
                (long long)meta.step);
  /* a checkpoint at an epoch boundary stores the next epoch's start (epoch e,
   * position 0): name the epoch it ended, as the training-time line does */
  int64_t epoch = meta.position == 0 && meta.epoch > 0 ? meta.epoch - 1 : meta.epoch;
  cddp_progress_eval(&prog, meta.step, epoch, &r, ev.kind, (int)o.recall_k,
                     cddp_train_now() - te);
  int status = cddp_progress_close(&prog) ? CDDP_EXIT_RUNTIME : CDDP_EXIT_OK;
  cddp_log_info("eval done in %.1f s", cddp_train_now() - t0);
  cddp_evaluator_free(&ev);
  cddp_comm_destroy(comm);
  cddp_model_destroy(m);
  cddp_ckpt_meta_free(&meta);
  cddp_pg_finalize(&pg);
  return status;
}
