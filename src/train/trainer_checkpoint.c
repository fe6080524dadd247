#include "train/trainer_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "train/checkpoint.h"
#include "train/checkpoint_shard.h"
#include "train/ckpt_file.h"

/* Every rank's model extra state (two_tower: logQ) in rank order (all-gathered:
 * only rank 0 writes it); NULL when the model has none. Collective. */
static unsigned char *gather_extra_state(trainer *t, size_t *bytes) {
  size_t n = cddp_model_extra_state_bytes(t->m);
  *bytes = n;
  if (!n) return NULL;
  unsigned char *mine = cddp_xmalloc(n, "model state");
  cddp_model_save_extra_state(t->m, mine);
  if (t->pg.world == 1) return mine;
  unsigned char *all = cddp_xmalloc(n * (size_t)t->pg.world, "model state of all ranks");
  cddp_comm_allgather_host(t->comm, mine, all, n);
  free(mine);
  return all;
}

/* Sharded tables: every rank writes its rows to its own shard file; once all
 * are durable, the layout (every rank's row ranges) goes to rank 0, whose
 * checkpoint maps them as whole-table virtual datasets. Collective. */
static void write_shards(trainer *t, int64_t step, cddp_ckpt_shards *sh) {
  const cddp_params *ps = &t->m->params;
  int W = t->pg.world, n = ps->n;
  cddp_ckpt_mkdir(t->o->checkpoint_dir);
  cddp_ckpt_shard_write(t->o->checkpoint_dir, step, t->pg.rank, ps, &t->opt);
  int64_t *mine = cddp_xcalloc(sizeof(int64_t) * 2 * (size_t)n, "shard layout");
  int64_t *all = cddp_xcalloc(sizeof(int64_t) * 2 * (size_t)n * W, "shard layout");
  for (int i = 0; i < n; i++)
    if (ps->p[i].flags & CDDP_PARAM_SHARDED)
      mine[2 * i] = ps->p[i].row_offset, mine[2 * i + 1] = ps->p[i].shape[0];
  cddp_comm_allgather_host(t->comm, mine, all, sizeof(int64_t) * 2 * (size_t)n);
  *sh = (cddp_ckpt_shards){.world = W, .n_params = n,
                           .first = cddp_xcalloc(sizeof(int64_t) * (size_t)n * W, "shard layout"),
                           .count = cddp_xcalloc(sizeof(int64_t) * (size_t)n * W, "shard layout")};
  for (int r = 0; r < W; r++)
    for (int i = 0; i < n; i++) {
      sh->first[(size_t)i * W + r] = all[((size_t)r * n + i) * 2];
      sh->count[(size_t)i * W + r] = all[((size_t)r * n + i) * 2 + 1];
    }
  free(mine);
  free(all);
}

void cddp_trainer_save_checkpoint(trainer *t, int64_t step, int64_t epoch, int64_t pos) {
  const cddp_options *o = t->o;
  const cddp_backend *be = t->be;
  size_t extra_bytes;
  unsigned char *extra = gather_extra_state(t, &extra_bytes);
  cddp_ckpt_shards shards = {0};
  if (t->m->sharded) write_shards(t, step, &shards); /* all shard files are renamed by now */
  if (t->pg.rank != 0) {
    free(shards.first), free(shards.count);
    free(extra);
    return;
  }
  cddp_ckpt_meta meta = {.step = step, .epoch = epoch, .position = pos, .seed = o->seed,
                         .world_size = t->pg.world, .config = t->config_ini,
                         .extra_state = extra, .extra_bytes = extra_bytes,
                         .extra_rows = t->pg.world, .shards = t->m->sharded ? &shards : NULL};
  float scale;
  int tracker, ost;
  cddp_amp_get(&t->amp, &scale, &tracker, NULL);
  be->memcpy_d2h(&ost, t->opt.step, sizeof ost, be->compute);
  be->stream_sync(be->compute);
  meta.loss_scale = scale;
  meta.scaler_tracker = tracker;
  meta.optimizer_step = ost;
  snprintf(meta.model, sizeof meta.model, "%.63s", o->model);
  snprintf(meta.variant, sizeof meta.variant, "%.63s", o->variant);
  char path[4096];
  double t0 = cddp_train_now();
  cddp_ckpt_write(o->checkpoint_dir, &meta, &t->m->params, &t->opt, path, sizeof path);
  free(extra);
  free(shards.first), free(shards.count);
  cddp_ckpt_prune(o->checkpoint_dir, (int)o->keep_last);
  if (!o->quiet) {
    if (t->prog.bar_open) printf("\n"), t->prog.bar_open = 0;
    printf("checkpoint %s (%.2f s)\n", path, cddp_train_now() - t0);
    fflush(stdout);
  }
}
/* Resuming on another number of ranks: the checkpoint's position counts
 * per-rank batches of its own run; the samples consumed in the epoch
 * (position x batch x ranks) must be a whole number of this run's batches.
 * Per-rank model state (two_tower's logQ) cannot be redistributed. */
static void rescale_position(trainer *t, const char *path, cddp_ckpt_meta *meta) {
  cddp_options old;
  cddp_options_defaults(&old, CDDP_CMD_TRAIN);
  cddp_options_load_ini_text(&old, CDDP_CMD_TRAIN, meta->config, path, 1);
  int64_t consumed = meta->position * old.batch * meta->world_size;
  int64_t per = t->o->batch * t->pg.world;
  if (consumed % per)
    cddp_die(CDDP_EXIT_USAGE, "--resume %s: written by %lld ranks x batch %lld after %lld samples "
             "of epoch %lld, which is not a whole number of steps of %d ranks x batch %lld",
             path, (long long)meta->world_size, (long long)old.batch, (long long)consumed,
             (long long)meta->epoch + 1, t->pg.world, (long long)t->o->batch);
  if (cddp_model_extra_state_bytes(t->m))
    cddp_die(CDDP_EXIT_USAGE, "--resume %s: written by %lld ranks, this job has %d; %s keeps "
             "per-rank state, resume with the same number of ranks", path,
             (long long)meta->world_size, t->pg.world, t->o->model);
  cddp_log_info("--resume %s: written by %lld ranks, continuing on %d (tables re-sharded on "
                "load)", path, (long long)meta->world_size, t->pg.world);
  meta->position = consumed / per;
}

int64_t cddp_trainer_resume(trainer *t, int64_t *epoch, int64_t *pos) {
  cddp_options *o = t->o;
  *epoch = *pos = 0;
  if (!o->resume[0]) return 0;
  char path[4096];
  if (!strcmp(o->resume, "auto")) {
    if (!cddp_ckpt_find_latest(o->checkpoint_dir, path, sizeof path)) {
      cddp_log_info("--resume auto: no checkpoint in %s; starting from scratch", o->checkpoint_dir);
      return 0;
    }
  } else {
    snprintf(path, sizeof path, "%s", o->resume);
  }
  cddp_ckpt_meta meta;
  cddp_ckpt_read_meta(path, &meta);
  if (strcmp(meta.model, o->model) || strcmp(meta.variant, o->variant))
    cddp_die(CDDP_EXIT_USAGE, "--resume %s: checkpoint of %s (%s), this run is %s (%s)", path,
             meta.model, meta.variant, o->model, o->variant);
  if (meta.world_size != t->pg.world) rescale_position(t, path, &meta);
  if (meta.position % t->A)
    cddp_die(CDDP_EXIT_USAGE, "--resume %s: position %lld is not a multiple of --grad-accum %lld",
             path, (long long)meta.position, (long long)t->A);
  cddp_ckpt_load(path, &t->m->params, &t->opt);
  cddp_amp_set(&t->amp, (float)meta.loss_scale, (int)meta.scaler_tracker);
  *epoch = meta.epoch;
  *pos = meta.position;
  cddp_log_info("resumed from %s: step %lld, epoch %lld, batch %lld", path, (long long)meta.step,
                (long long)meta.epoch + 1, (long long)meta.position);
  size_t nx = cddp_model_extra_state_bytes(t->m);
  if (nx) {
    void *x = cddp_xmalloc(nx, "model state");
    if (cddp_ckpt_load_extra_state(path, t->pg.rank, x, nx)) cddp_model_load_extra_state(t->m, x);
    else cddp_log_warn("--resume %s: no model state in this checkpoint (written by an older "
                       "cddp); %s's extra state restarts empty", path, o->model);
    free(x);
  }
  int64_t step = meta.step;
  cddp_ckpt_meta_free(&meta);
  return step;
}
