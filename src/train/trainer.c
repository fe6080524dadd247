#include "train/trainer.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"
#include "data/loader.h"
#include "data/schema.h"
#include "ddp/comm.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"
#include "kernels/cpu/cpu_backend.h"
#include "train/amp.h"
#include "train/checkpoint.h"
#include "train/ckpt_file.h"
#include "train/checkpoint_shard.h"
#include "train/devbatch.h"
#include "train/diverge.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/optimizer_algo.h"
#include "train/preempt.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/trace_run.h"

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
  int ok = cddp_schema_get(a->schema)->same_shape(a, b);
  if (!ok)
    cddp_die(CDDP_EXIT_USAGE, "%s: shapes (table sizes, vocabularies, image size or classes) "
             "differ from %s", pb, pa);
}

/* ---- collectives for the two-tower model's gathered negatives ------------ */

static void mc_allgather(void *ctx, const void *send, void *recv, size_t bytes) {
  cddp_comm *c = ctx;
  cddp_comm_wait(c, cddp_allgather(c, send, recv, bytes));
}

static void mc_allreduce_sum(void *ctx, float *buf, size_t n) {
  cddp_comm *c = ctx;
  cddp_comm_wait(c, cddp_allreduce(c, buf, n, CDDP_F32, CDDP_RED_SUM));
}

static void *mc_alltoallv(void *ctx, const void *send, const size_t *sb, const size_t *sd,
                          void *recv, const size_t *rb, const size_t *rd) {
  return cddp_alltoallv(ctx, send, sb, sd, recv, rb, rd);
}

static void mc_wait(void *ctx, void *h) { cddp_comm_wait(ctx, h); }



/* What every rank must agree on before training: every option the option
 * table does not mark per rank (one "name = value" line each, so that a
 * mismatch names the option), the data shapes and the parameters. */
static char *describe(const cddp_options *o, const cddp_model *m, const cddp_data_info *info) {
  const cddp_params *ps = &m->params;
  char *opts = cddp_options_agreement_text(o, CDDP_CMD_TRAIN);
  size_t cap = strlen(opts) + 4096 + (size_t)ps->n * 160, len = 0;
  char *s = cddp_xmalloc(cap, "description");
  len += snprintf(s + len, cap - len,
                  "%sdata schema=%d rows=%lld hist=%d users=%lld items=%lld cats=%lld "
                  "image=%dx%dx%d classes=%d tables=",
                  opts, info->schema, (long long)info->rows, info->hist_len,
                  (long long)info->num_users, (long long)info->num_items,
                  (long long)info->num_cats, info->height, info->width, info->channels,
                  info->num_classes);
  free(opts);
  for (int t = 0; t < CDDP_CTR_SPARSE && info->schema == CDDP_SCHEMA_CTR; t++)
    len += snprintf(s + len, cap - len, "%lld,", (long long)info->table_sizes[t]);
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    len += snprintf(s + len, cap - len, "\n%s[", p->name);
    for (int d = 0; d < p->ndim; d++) /* a shard: the whole table's shape */
      len += snprintf(s + len, cap - len, "%s%lld", d ? "," : "",
                      (long long)(d ? p->shape[d] : cddp_param_global_dim0(p)));
    len += snprintf(s + len, cap - len, "] fp32 flags=%d", p->flags);
  }
  return s;
}

typedef struct {
  cddp_options *o;
  cddp_pg pg;
  const cddp_backend *be;
  cddp_comm *comm;
  cddp_loader *train;
  cddp_data_info info;
  cddp_model *m;
  cddp_model_comm mcomm;
  cddp_reducer *red;
  cddp_optimizer opt;
  cddp_amp amp;
  cddp_schedule sched;
  cddp_sparse_grad *sparse;
  cddp_devbatch db;
  cddp_evaluator ev;
  int have_eval;
  cddp_progress prog;
  float *loss_acc; /* device: loss sum over the logging interval */
  float *one;      /* device scalar for sum_ranks */
  void *d_stats;   /* device staging of the logging-step sums */
  cddp_comm_handle *stop_h; /* the stop agreement in flight (host backends) */
  double stop_sum;
  cddp_diverge div;
  char *config_ini;
  int64_t spe, total, A;
  const char *kind;
  char device[256]; /* for the start-up line: the device of every rank */
  cddp_trace_run tr;
} trainer;

/* *x summed over the ranks (a host float; the collective runs on a device
 * scalar, as NCCL needs). Sharded tables: clipping's norm and AMP's inf flag. */
static void sum_ranks(void *ctx, float *x) {
  trainer *t = ctx;
  const cddp_backend *be = t->be;
  be->memcpy_h2d(t->one, x, sizeof *x, be->compute);
  cddp_comm_wait(t->comm, cddp_allreduce(t->comm, t->one, 1, CDDP_F32, CDDP_RED_SUM));
  be->memcpy_d2h(x, t->one, sizeof *x, be->compute);
  be->stream_sync(be->compute);
}

/* "cuda:G" on one rank; "cuda, GPU by rank G0,G1,..." on several (local GPU
 * indices, the first 32 ranks). Collective. */
static void describe_device(trainer *t, int gpu) {
  const cddp_options *o = t->o;
  int W = t->pg.world;
  int *all = cddp_xmalloc(sizeof(int) * (size_t)W, "GPU of every rank");
  cddp_comm_allgather_host(t->comm, &gpu, all, sizeof gpu);
  size_t n = sizeof t->device;
  if (!strcmp(o->device, "cpu")) { /* which OpenBLAS kernels: see kernels/cpu/cpu_blas_kernels.c */
    snprintf(t->device, n, "cpu (OpenBLAS %s)", cddp_cpu_blas_kernels());
  } else {
    int len = W == 1 ? snprintf(t->device, n, "%.63s:%d", o->device, gpu)
                     : snprintf(t->device, n, "%.63s, GPU by rank ", o->device);
    for (int r = 0; W > 1 && r < W && r < 32; r++)
      len += snprintf(t->device + len, n - (size_t)len, "%s%d", r ? "," : "", all[r]);
    if (W > 32) snprintf(t->device + len, n - (size_t)len, ",...");
  }
  free(all);
}

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

static void save_checkpoint(trainer *t, int64_t step, int64_t epoch, int64_t pos) {
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

static void evaluate(trainer *t, int64_t step, int64_t epoch) {
  cddp_metrics_result r;
  double t0 = cddp_train_now();
  cddp_evaluator_run(&t->ev, &r);
  cddp_progress_eval(&t->prog, step, epoch, &r, t->kind, (int)t->o->recall_k,
                     cddp_train_now() - t0);
}

static void setup(trainer *t) {
  cddp_options *o = t->o;
  if (o->checkpoint_dir[0]) cddp_ckpt_check_dir(o->checkpoint_dir); /* before any work */
  if (o->batch * o->grad_accum > INT_MAX / t->pg.world)
    cddp_die(CDDP_EXIT_USAGE, "--batch %lld x --grad-accum %lld x %d ranks: a global batch above "
             "2^31 - 1 samples", (long long)o->batch, (long long)o->grad_accum, t->pg.world);
  int gpu = cddp_backend_device_for(o->device, t->pg.local_rank);
  t->be = cddp_backend_get(o->device, gpu);
  cddp_backend_set_attention(o->device, o->attention);
  int ngpu = cddp_cuda_device_count();
  if (!strcmp(o->device, "cuda") && t->pg.local_rank == 0 && t->pg.local_world > ngpu)
    cddp_log_warn("%d ranks on this host share %d visible GPU(s) (GPU = local rank %% %d); "
                  "NCCL needs one GPU per rank", t->pg.local_world, ngpu, ngpu);
  const cddp_backend *be = t->be;
  be->set_threads(cddp_threads_for(o, t->pg.local_world));
  cddp_trace_run_setup(&t->tr, be);
  int prec = cddp_dtype_parse(o->precision);
  cddp_shuffle sh = !strcmp(o->shuffle, "none") ? CDDP_SHUFFLE_NONE
                    : !strcmp(o->shuffle, "block") ? CDDP_SHUFFLE_BLOCK : CDDP_SHUFFLE_FULL;
  cddp_loader_opts lo = {.rank = t->pg.rank, .world = t->pg.world, .batch = (int)o->batch,
                         .seed = (uint64_t)o->seed, .shuffle = sh, .drop_last = o->drop_last,
                         .eval = CDDP_EVAL_OFF, .max_table_rows = o->max_table_rows,
                         .threads = (int)o->loader_threads,
                         .augment = {.crop_pad = (int)o->random_crop_pad, .hflip = o->random_flip}};
  if (be->is_device) lo.host_alloc = be->host_alloc, lo.host_free = be->host_free;
  t->train = cddp_loader_open(o->train, &lo);
  t->info = *cddp_loader_info(t->train);
  t->kind = cddp_metrics_kind_name(t->info.schema);
  const cddp_model_desc *md = cddp_model_find(o->model);
  if (md->schema != t->info.schema)
    cddp_die(CDDP_EXIT_USAGE, "--train %s: schema %s does not fit --model %s (it trains on %s)",
             o->train, cddp_schema_name(t->info.schema), o->model, cddp_schema_name(md->schema));

  t->A = o->grad_accum;
  t->spe = cddp_loader_batches_per_epoch(t->train) / t->A;
  if (t->spe < 1)
    cddp_die(CDDP_EXIT_USAGE, "--train %s: %lld samples per rank are fewer than --batch %lld x "
             "--grad-accum %lld: no full step", o->train,
             (long long)cddp_loader_samples_per_epoch(t->train), (long long)o->batch,
             (long long)o->grad_accum);
  if (!o->max_steps && o->epochs > INT64_MAX / t->spe)
    cddp_die(CDDP_EXIT_USAGE, "--epochs %lld: %lld x %lld steps per epoch overflows a step count",
             (long long)o->epochs, (long long)o->epochs, (long long)t->spe);
  t->total = o->max_steps > 0 ? o->max_steps : o->epochs * t->spe;

  t->comm = cddp_comm_create(&t->pg, be, o->comm, o->timeout);
  describe_device(t, gpu);
  t->mcomm = (cddp_model_comm){.rank = t->pg.rank, .world = t->pg.world, .ctx = t->comm,
                               .allgather = mc_allgather, .allreduce_sum = mc_allreduce_sum,
                               .alltoallv = mc_alltoallv, .wait = mc_wait};
  cddp_model_config cfg;
  cddp_model_config_from_options(o, &cfg);
  t->m = cddp_model_create(&cfg, &t->info, be, &t->mcomm);
  if (t->m->sharded && be->is_device && strcmp(cddp_comm_kind(t->comm), "nccl"))
    cddp_die(CDDP_EXIT_USAGE, "sharded embedding tables on --device %s need --comm nccl",
             o->device);
  cddp_params *ps = &t->m->params;

  cddp_opt_config oc = {.name = o->optimizer, .lr = o->lr,
                        .emb_lr = o->emb_lr, .momentum = o->momentum,
                        .weight_decay = o->weight_decay, .beta1 = o->beta1, .beta2 = o->beta2,
                        .eps = o->eps, .nesterov = o->nesterov};
  cddp_model_print_memory(t->m, cddp_optimizer_states_per_param(&oc));

  char *desc = describe(o, t->m, &t->info);
  cddp_ddp_check_same(t->comm, desc);
  free(desc);
  /* shards are initialised by their owners (the same values a whole table gets) */
  cddp_ddp_broadcast_params(t->comm, ps->master, ps->n_replicated);
  if (ps->half && ps->n_dense) be->cast(ps->half, ps->half_t, ps->master, CDDP_F32, ps->n_dense);

  cddp_reducer_param *rp = cddp_xcalloc(sizeof *rp * (ps->n ? ps->n : 1), "reducer params");
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    rp[i] = (cddp_reducer_param){.name = p->name, .offset = p->offset, .numel = p->numel};
    if (p->flags & CDDP_PARAM_SHARDED) {
      rp[i].local = 1; /* exchanged by the model's all-to-all */
      rp[i].offset = rp[i].numel = 0;
    } else if (p->flags & CDDP_PARAM_SPARSE) {
      rp[i].sparse = 1;
      rp[i].dim = (int)p->shape[1];
      rp[i].ids = p->sp_ids;
      rp[i].rows = p->sp_rows;
      rp[i].cap = p->sp_cap;
      rp[i].offset = rp[i].numel = 0;
    }
  }
  int comp = !strcmp(o->grad_compress, "none") ? CDDP_F32 : cddp_dtype_parse(o->grad_compress);
  cddp_reducer_opts ro = {.bucket_bytes = (size_t)(o->bucket_mb * 1048576.0),
                          .first_bucket_bytes = (size_t)(o->first_bucket_mb * 1048576.0),
                          .overlap = !o->no_overlap, .compress = (cddp_dtype)comp,
                          .accum_steps = (int)o->grad_accum};
  t->red = cddp_reducer_create(t->comm, be, ps->grad, ps->n_dense, rp, ps->n, &ro);
  free(rp);
  t->sparse = cddp_xcalloc(sizeof *t->sparse * (ps->n ? ps->n : 1), "sparse gradients");

  cddp_optimizer_init(&t->opt, ps, be, &oc);
  t->one = be->malloc(sizeof(float));
  if (t->m->sharded) t->opt.sum_ranks = sum_ranks, t->opt.sum_ctx = t;
  cddp_amp_init(&t->amp, be, prec == CDDP_F16, CDDP_AMP_INIT_SCALE, CDDP_AMP_GROWTH,
                CDDP_AMP_BACKOFF, CDDP_AMP_INTERVAL);
  cddp_schedule_init(&t->sched, o->schedule, o->warmup_steps, t->total, o->step_size, o->gamma,
                     o->lr, o->min_lr);
  cddp_devbatch_init(&t->db, be, &t->info, (int)o->batch);
  t->loss_acc = be->malloc(sizeof(float));
  t->d_stats = be->malloc(8 * sizeof(double));
  cddp_diverge_init(&t->div, be);
  be->memset0(t->loss_acc, sizeof(float), be->compute);

  if (o->eval[0]) {
    const char *corpus[2] = {o->train, o->eval};
    cddp_evaluator_init(&t->ev, t->m, t->comm, o->eval, (int)o->batch, (int)o->recall_k,
                        o->max_table_rows, corpus, 2);
    cddp_check_eval_data(&t->info, cddp_loader_info(t->ev.loader), o->train, o->eval);
    t->have_eval = 1;
  }
  t->config_ini = cddp_options_to_ini(o, CDDP_CMD_TRAIN);
}

static void teardown(trainer *t) {
  const cddp_backend *be = t->be;
  if (t->have_eval) cddp_evaluator_free(&t->ev);
  cddp_devbatch_free(&t->db);
  be->free(t->loss_acc);
  be->free(t->one);
  be->free(t->d_stats);
  cddp_diverge_free(&t->div);
  cddp_amp_free(&t->amp);
  cddp_optimizer_free(&t->opt);
  cddp_reducer_destroy(t->red);
  free(t->sparse);
  cddp_model_destroy(t->m);
  cddp_loader_close(t->train);
  cddp_comm_destroy(t->comm);
  free(t->config_ini);
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

/* Resume: returns the step to start from and sets epoch/position. */
static int64_t resume(trainer *t, int64_t *epoch, int64_t *pos) {
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

typedef struct {
  int64_t steps, samples, last_check;
  double t0, backward_ms, comm_ms, exposed_ms, bytes, a2a_ms, a2a_bytes;
} interval;

/* Shards see only their own rows' gradients: every rank must still take the
 * same skip decision, so the inf/NaN flag is summed over the ranks. */
static void agree_found_inf(trainer *t) {
  const cddp_backend *be = t->be;
  int f;
  be->memcpy_d2h(&f, t->amp.found_inf, sizeof f, be->compute);
  be->stream_sync(be->compute);
  float x = (float)f;
  sum_ranks(t, &x);
  f = x > 0;
  be->memcpy_h2d(t->amp.found_inf, &f, sizeof f, be->compute);
}

static void log_step(trainer *t, interval *iv, int64_t step, int64_t epoch, double lr_factor) {
  const cddp_backend *be = t->be;
  float acc, last;
  float scale;
  int found_inf;
  be->memcpy_d2h(&acc, t->loss_acc, sizeof acc, be->compute);
  be->memcpy_d2h(&last, t->m->loss_sum, sizeof last, be->compute);
  cddp_diverge_check(&t->div, &t->m->params, &t->opt);
  be->stream_sync(be->compute);
  cddp_amp_get(&t->amp, &scale, NULL, &found_inf);
  double per_step = (double)t->o->batch * (double)t->A;
  double g[5] = {acc, (double)iv->samples, last, per_step, t->div.bad};
  cddp_comm_sum_host(t->comm, g, 5, CDDP_F64, t->d_stats);
  double loss = g[0] / g[1], last_loss = g[2] / g[3];
  /* a non-finite loss that the fp16 scaler did not skip */
  int loss_bad = t->amp.enabled ? (!isfinite(last_loss) && !found_inf) : !isfinite(loss);
  int scale_gone = t->amp.enabled && scale < CDDP_AMP_MIN_SCALE;
  if (loss_bad || g[4] > 0 || scale_gone) {
    cddp_diverge_report rep = {.step = step, .healthy_step = iv->last_check,
                               .log_every = t->o->log_every, .loss_bad = loss_bad,
                               .params_bad = g[4] > 0, .loss_scale = scale};
    cddp_diverge_die(&t->div, t->comm, &t->m->params, &t->opt, &rep);
  }
  double dt = cddp_train_now() - iv->t0;
  double n = iv->steps > 0 ? (double)iv->steps : 1;
  cddp_progress_rec r = {.step = step, .epoch = epoch, .loss = isfinite(loss) ? loss : last_loss,
                         .lr = t->o->lr * lr_factor,
                         .samples_per_s = dt > 0 ? (double)iv->samples * t->pg.world / dt : 0,
                         .loss_scale = scale, .backward_ms = iv->backward_ms / n,
                         .comm_ms = iv->comm_ms / n, .exposed_comm_ms = iv->exposed_ms / n,
                         .bytes = iv->bytes / n, .a2a_exposed_ms = iv->a2a_ms / n,
                         .a2a_bytes = iv->a2a_bytes / n,
                         .skipped = found_inf};
  cddp_progress_log(&t->prog, &r);
  cddp_progress_account(&t->prog, (double)iv->samples * t->pg.world, dt, iv->exposed_ms);
  be->memset0(t->loss_acc, sizeof(float), be->compute);
  *iv = (interval){.t0 = cddp_train_now(), .last_check = step};
}

/* Whether any rank received a stop signal: a one-value sum over the ranks.
 * Host backends post it at every step boundary and read it at the next one
 * (the communication thread completes it meanwhile, so no step waits for it);
 * the ranks then stop together one step after the signal. On device backends
 * with several ranks the sum would synchronise the host with the GPU, so it
 * runs, blocking, at logging steps only, where the loss is read anyway. */
static int agree_stop(trainer *t, int log_step) {
  if (t->pg.world == 1) return cddp_preempt_signal() != 0;
  if (t->be->is_device) {
    if (!log_step) return 0;
    double any = cddp_preempt_signal() != 0;
    cddp_comm_sum_host(t->comm, &any, 1, CDDP_F64, t->d_stats);
    return any > 0;
  }
  int stop = 0;
  if (t->stop_h) {
    cddp_comm_wait(t->comm, t->stop_h);
    t->stop_h = NULL;
    stop = t->stop_sum > 0;
  }
  if (stop) return 1;
  t->stop_sum = cddp_preempt_signal() != 0;
  t->stop_h = cddp_allreduce(t->comm, &t->stop_sum, 1, CDDP_F64, CDDP_RED_SUM);
  return 0;
}

/* The last stop agreement still in flight, if any (before leaving the loop). */
static void agree_stop_finish(trainer *t) {
  if (t->stop_h) cddp_comm_wait(t->comm, t->stop_h);
  t->stop_h = NULL;
}

/* Ends the run at a step boundary after a stop signal: a checkpoint (unless
 * this step already has one) and the exit status. */
static int stop_now(trainer *t, int64_t step, int64_t epoch, int64_t pos, int have_ckpt) {
  int sig = cddp_preempt_signal();
  const char *why = sig ? cddp_preempt_signal_name(sig) : "a signal on another rank";
  if (!t->o->checkpoint_dir[0]) {
    cddp_log_warn("stopped by %s after step %lld; no --checkpoint-dir, so nothing was saved",
                  why, (long long)step);
    return 128 + (sig ? sig : SIGTERM);
  }
  if (!have_ckpt) save_checkpoint(t, step, epoch, pos);
  cddp_log_info("stopped by %s after step %lld, checkpoint written; continue with --resume auto "
                "(exit status %d)", why, (long long)step, CDDP_EXIT_STOPPED);
  return CDDP_EXIT_STOPPED;
}

/* Trains from `step` on; returns the process exit status and puts the step
 * reached in *end. */
static int train_loop(trainer *t, int64_t step, int64_t epoch, int64_t pos, int64_t *end) {
  cddp_options *o = t->o;
  const cddp_backend *be = t->be;
  cddp_model *m = t->m;
  cddp_params *ps = &m->params;
  const cddp_ready_hook hook = {cddp_reducer_mark_ready, t->red};
  const float *loss_scale = cddp_amp_loss_scale(&t->amp);
  const float grad_scale = 1.0f / (float)(o->batch * t->A);
  interval iv = {.t0 = cddp_train_now(), .last_check = step};
  int64_t last_eval = -1, last_ckpt = step;
  double lr_factor = 1;
  for (; step < t->total; epoch++, pos = 0) {
    if (pos) cddp_loader_start_epoch_at(t->train, epoch, pos);
    else cddp_loader_start_epoch(t->train, epoch);
    for (int64_t s = pos / t->A; s < t->spe && step < t->total; s++) {
      cddp_trace_run_step(&t->tr, step + 1);
      cddp_trace_mark t_step = cddp_trace_begin();
      be->memset0(ps->grad, ps->n_dense * sizeof(float), be->compute);
      be->memset0(m->loss_sum, sizeof(float), be->compute);
      m->a2a_wait_ms = m->a2a_bytes = 0;
      cddp_amp_begin_step(&t->amp);
      for (int64_t a = 0; a < t->A; a++) {
        cddp_devbatch_before_next(&t->db);
        double t0 = cddp_trace_t0();
        const cddp_batch *hb = cddp_loader_next(t->train);
        cddp_trace_since(CDDP_TRACK_DATA, "data", "data wait", -1, t0, 0);
        if (!hb)
          cddp_die(CDDP_EXIT_RUNTIME, "loader ended epoch %lld after %lld steps, expected %lld",
                   (long long)epoch, (long long)s, (long long)t->spe);
        t0 = cddp_trace_t0();
        const cddp_batch *db = cddp_devbatch_put(&t->db, hb);
        cddp_trace_since(CDDP_TRACK_DATA, "data", "h2d copy", -1, t0, 0);
        cddp_trace_mark tm = cddp_trace_begin();
        m->ops->forward(m, db, 1, grad_scale, loss_scale);
        cddp_trace_end(tm, CDDP_TRACK_COMPUTE, "step", "forward", -1, 0);
        cddp_reducer_begin(t->red, a == t->A - 1);
        m->micro = (int)a;
        tm = cddp_trace_begin();
        m->ops->backward(m, db, &hook);
        cddp_trace_end(tm, CDDP_TRACK_COMPUTE, "step", "backward", -1, 0);
        cddp_devbatch_consumed(&t->db);
      }
      double t0 = cddp_trace_t0();
      cddp_reducer_finish(t->red);
      cddp_trace_since(CDDP_TRACK_COMPUTE, "ddp", "gradient wait", -1, t0, 0);
      cddp_trace_mark t_opt = cddp_trace_begin();
      for (int i = 0; i < ps->n; i++)
        if (ps->p[i].flags & CDDP_PARAM_SHARDED) { /* this rank's rows, averaged by the model */
          t->sparse[i] = (cddp_sparse_grad){ps->p[i].sp_ids, ps->p[i].sp_rows, ps->p[i].sp_n};
        } else if (ps->p[i].flags & CDDP_PARAM_SPARSE) {
          const float *rows;
          cddp_reducer_sparse_result(t->red, i, &t->sparse[i].ids, &rows, &t->sparse[i].n);
          t->sparse[i].rows = (float *)rows; /* reducer-owned scratch, updated in place */
        }
      cddp_amp_unscale_check(&t->amp, ps, t->sparse);
      if (m->sharded && t->amp.enabled) agree_found_inf(t);
      if (o->clip_grad_norm > 0) cddp_optimizer_clip(&t->opt, t->sparse, o->clip_grad_norm);
      lr_factor = cddp_schedule_factor(&t->sched, step);
      cddp_optimizer_step(&t->opt, t->sparse, lr_factor, cddp_amp_skip(&t->amp));
      cddp_amp_update(&t->amp);
      be->axpy(t->loss_acc, m->loss_sum, 1, 1.0f);
      cddp_trace_end(t_opt, CDDP_TRACK_COMPUTE, "step", "optimizer", -1, 0);
      step++;
      cddp_trace_end(t_step, CDDP_TRACK_STEP, "step", "step ", (int)step, 0);
      const cddp_reducer_stats *st = cddp_reducer_last_stats(t->red);
      iv.steps++;
      iv.samples += o->batch * t->A;
      iv.backward_ms += st->backward_ms;
      iv.comm_ms += st->comm_ms;
      iv.exposed_ms += st->exposed_ms;
      iv.bytes += (double)st->bytes_sent + m->a2a_bytes;
      iv.a2a_ms += m->a2a_wait_ms;
      iv.a2a_bytes += m->a2a_bytes;
      int end_epoch = s + 1 == t->spe;
      /* where the next step starts: what a checkpoint of this step records */
      int64_t next_epoch = end_epoch ? epoch + 1 : epoch, next_pos = end_epoch ? 0 : (s + 1) * t->A;
      int log_now = step % o->log_every == 0 || step == t->total || end_epoch;
      if (log_now) log_step(t, &iv, step, epoch, lr_factor);
      if (t->have_eval && ((o->eval_every > 0 && step % o->eval_every == 0) || end_epoch)) {
        evaluate(t, step, epoch);
        last_eval = step;
      }
      if (o->checkpoint_dir[0] && o->checkpoint_every > 0 && step % o->checkpoint_every == 0) {
        save_checkpoint(t, step, next_epoch, next_pos);
        last_ckpt = step;
      }
      if (step < t->total && agree_stop(t, log_now)) {
        *end = step;
        return stop_now(t, step, next_epoch, next_pos, last_ckpt == step);
      }
      if (step == t->total || step == o->stop_after) agree_stop_finish(t);
      if (o->stop_after > 0 && step == o->stop_after && step < t->total) {
        if (o->checkpoint_dir[0] && last_ckpt != step) save_checkpoint(t, step, next_epoch, next_pos);
        cddp_log_info("--stop-after %lld: stopping; continue with --resume", (long long)step);
        *end = step;
        return CDDP_EXIT_OK;
      }
      if (step == t->total) {
        if (t->have_eval && last_eval != step) evaluate(t, step, epoch);
        if (o->checkpoint_dir[0] && last_ckpt != step) save_checkpoint(t, step, next_epoch, next_pos);
      }
    }
  }
  *end = step;
  return CDDP_EXIT_OK;
}

int cddp_train_run(cddp_options *o, int *argc, char ***argv) {
  trainer t = {.o = o};
  double t_start = cddp_train_now();
  if (o->quiet) cddp_log_set_quiet(1);
  cddp_pg_init(&t.pg, argc, argv);
  if (t.pg.world > 1) cddp_pg_log_hosts(&t.pg); /* before setup starts the comm thread */
  cddp_preempt_install(t.pg.rank);
  cddp_trace_run_start(&t.tr, o, &t.pg);
  setup(&t);
  int64_t epoch, pos;
  int64_t step = resume(&t, &epoch, &pos);
  cddp_progress_init(&t.prog, t.pg.rank == 0, o->quiet, o->progress, o->metrics_out, t.total,
                     o->epochs, cddp_model_find(o->model)->metric);
  cddp_log_info("train: %s (%s) on %s, %d rank%s, device %s, comm %s, precision %s, global batch "
                "%lld, %lld steps (%lld per epoch)",
                o->model, o->variant, o->train, t.pg.world, t.pg.world > 1 ? "s" : "", t.device,
                o->comm, o->precision, (long long)(o->batch * t.A * t.pg.world),
                (long long)t.total, (long long)t.spe);
  int64_t end = step;
  int status = step < t.total ? train_loop(&t, step, epoch, pos, &end) : CDDP_EXIT_OK;
  cddp_preempt_uninstall();
  cddp_progress_summary(&t.prog, cddp_train_now() - t_start);
  if (cddp_progress_close(&t.prog) && status == CDDP_EXIT_OK) status = CDDP_EXIT_RUNTIME;
  const char *check = getenv("CDDP_CHECK_REPLICAS"); /* debugging aid, docs/ddp.md */
  if (check && atoi(check) > 0)
    cddp_ddp_check_replicas(t.comm, t.m->params.master, t.m->params.n_replicated, end - step);
  cddp_trace_run_render(&t.tr, &t.pg);
  teardown(&t);
  cddp_trace_run_finish(&t.tr, &t.pg, o);
  cddp_pg_finalize(&t.pg);
  return status;
}
