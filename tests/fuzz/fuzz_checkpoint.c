/* libFuzzer target: the checkpoint reader. The input is an HDF5 file read as
 * `--resume` and `cddp eval` read one: the root attributes
 * (cddp_ckpt_read_meta), then every /model and /optimizer dataset into a
 * dlrm tiny model (26 tables of 40 rows, SGD with momentum), the model the
 * seed checkpoints of tests/fuzz/run.sh were trained with. */
#include <string.h>

#include "core/log.h"
#include "core/ops.h"
#include "fuzz_util.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/options.h"
#include "train/trainer.h"

static cddp_model *g_model;
static cddp_optimizer g_opt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_init();
  cddp_log_set_quiet(1);
  const cddp_backend *be = cddp_backend_get("cpu", 0);
  be->set_threads(1);
  cddp_options o;
  cddp_options_defaults(&o, CDDP_CMD_TRAIN);
  snprintf(o.model, sizeof o.model, "dlrm");
  snprintf(o.variant, sizeof o.variant, "tiny");
  snprintf(o.train, sizeof o.train, "unused.h5"); /* required by the option checks, never opened */
  cddp_options_finish(&o, CDDP_CMD_TRAIN);
  cddp_data_info info = {.schema = CDDP_SCHEMA_CTR, .rows = 1000};
  for (int t = 0; t < CDDP_CTR_SPARSE; t++) info.table_sizes[t] = 40;
  cddp_model_config cfg;
  cddp_model_config_from_options(&o, &cfg);
  g_model = cddp_model_create(&cfg, &info, be, NULL);
  cddp_opt_config oc = {.name = "sgd", .lr = 0.1, .emb_lr = 0.1, .momentum = 0.9};
  cddp_optimizer_init(&g_opt, &g_model->params, be, &oc);
  return 0;
}

static void load(const char *path) {
  cddp_ckpt_meta meta;
  memset(&meta, 0, sizeof meta);
  cddp_ckpt_read_meta(path, &meta);
  cddp_ckpt_meta_free(&meta);
  cddp_ckpt_load(path, &g_model->params, &g_opt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_path("ckpt.h5");
  fz_write(path, data, size);
  FZ_RUN(load(path), (void)0);
  fz_remove_files();
  return 0;
}
