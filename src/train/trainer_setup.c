#include "train/trainer_state.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/schema.h"
#include "kernels/cpu/cpu_backend.h"
#include "train/ckpt_file.h"
#include "train/optimizer_algo.h"
#include "train/trainer.h"

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

static void mc_reserve(void *ctx, size_t bytes) { cddp_comm_reserve(ctx, bytes); }

/* What every rank must agree on before training: every option the option
 * table does not mark per rank, the data's schema, rows and shapes (as its
 * schema descriptor lists them) and the parameters; one line each, so that a
 * mismatch names it. */
static char *describe(const cddp_options *o, const cddp_model *m, const cddp_data_info *info) {
  const cddp_params *ps = &m->params;
  char *opts = cddp_options_agreement_text(o, CDDP_CMD_TRAIN);
  char shape[CDDP_SHAPE_TEXT_MAX];
  cddp_schema_get(info->schema)->shape(info, shape, sizeof shape);
  size_t cap = strlen(opts) + 2 * sizeof shape + 256 + (size_t)ps->n * 160, len = 0;
  char *s = cddp_xmalloc(cap, "description");
  len += snprintf(s + len, cap - len, "%sdata schema = %s\ndata rows = %lld\n", opts,
                  cddp_schema_name(info->schema), (long long)info->rows);
  free(opts);
  for (const char *l = shape; *l;) {
    size_t n = strcspn(l, "\n");
    len += snprintf(s + len, cap - len, "data %.*s\n", (int)n, l);
    l += n + (l[n] == '\n');
  }
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    len += snprintf(s + len, cap - len, "%s[", p->name);
    for (int d = 0; d < p->ndim; d++) /* a shard: the whole table's shape */
      len += snprintf(s + len, cap - len, "%s%lld", d ? "," : "",
                      (long long)(d ? p->shape[d] : cddp_param_global_dim0(p)));
    len += snprintf(s + len, cap - len, "] fp32 flags=%d\n", p->flags);
  }
  return s;
}

/* *x summed over the ranks (a host float; the collective runs on a device
 * scalar, as NCCL needs). Sharded tables: clipping's norm and AMP's inf flag. */
void cddp_trainer_sum_ranks(void *ctx, float *x) {
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
/* The backend of this rank's device (GPU = local rank), its threads and the trace. */
static int open_backend(trainer *t) {
  const cddp_options *o = t->o;
  int gpu = cddp_backend_device_for(o->device, t->pg.local_rank);
  t->be = cddp_backend_get(o->device, gpu);
  cddp_backend_set_attention(o->device, o->attention);
  int ngpu = cddp_cuda_device_count();
  if (!strcmp(o->device, "cuda") && t->pg.local_rank == 0 && t->pg.local_world > ngpu)
    cddp_log_warn("%d ranks on this host share %d visible GPU(s) (GPU = local rank %% %d); "
                  "NCCL needs one GPU per rank", t->pg.local_world, ngpu, ngpu);
  t->be->set_threads(cddp_threads_for(o, t->pg.local_world));
  cddp_trace_run_setup(&t->tr, t->be);
  return gpu;
}

/* The training data's loader, checked against the model, and the run's
 * length in steps. */
static void open_train_data(trainer *t) {
  const cddp_options *o = t->o;
  const cddp_backend *be = t->be;
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
}

static cddp_opt_config optimizer_config(const cddp_options *o) {
  return (cddp_opt_config){.name = o->optimizer, .lr = o->lr, .emb_lr = o->emb_lr,
                           .momentum = o->momentum, .weight_decay = o->weight_decay,
                           .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps,
                           .nesterov = o->nesterov};
}

/* The model, built with the communication it needs, agreed over the ranks
 * and started from rank 0's parameters. */
static void create_model(trainer *t) {
  const cddp_options *o = t->o;
  const cddp_backend *be = t->be;
  t->mcomm = (cddp_model_comm){.rank = t->pg.rank, .world = t->pg.world, .ctx = t->comm,
                               .allgather = mc_allgather, .allreduce_sum = mc_allreduce_sum,
                               .alltoallv = mc_alltoallv, .wait = mc_wait,
                               .reserve = mc_reserve};
  cddp_model_config cfg;
  cddp_model_config_from_options(o, &cfg);
  t->m = cddp_model_create(&cfg, &t->info, be, &t->mcomm);
  cddp_opt_config oc = optimizer_config(o);
  cddp_model_print_memory(t->m, cddp_optimizer_states_per_param(&oc));

  char *desc = describe(o, t->m, &t->info);
  cddp_ddp_check_same(t->comm, desc);
  free(desc);
  cddp_params *ps = &t->m->params;
  /* shards are initialised by their owners (the same values a whole table gets) */
  cddp_ddp_broadcast_params(t->comm, ps->master, ps->n_replicated);
  if (ps->half && ps->n_dense) be->cast(ps->half, ps->half_t, ps->master, CDDP_F32, ps->n_dense);
}

/* The gradient reducer: dense parameters in buckets, replicated tables'
 * sparse rows gathered, sharded tables left to the model. */
static void create_reducer(trainer *t) {
  const cddp_options *o = t->o;
  cddp_params *ps = &t->m->params;
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
  t->red = cddp_reducer_create(t->comm, t->be, ps->grad, ps->n_dense, rp, ps->n, &ro);
  free(rp);
  t->sparse = cddp_xcalloc(sizeof *t->sparse * (ps->n ? ps->n : 1), "sparse gradients");
}

/* Optimizer, loss scaler, schedule, the device batch and the step's scalars. */
static void init_step_state(trainer *t) {
  const cddp_options *o = t->o;
  const cddp_backend *be = t->be;
  cddp_opt_config oc = optimizer_config(o);
  cddp_optimizer_init(&t->opt, &t->m->params, be, &oc);
  t->one = be->malloc(sizeof(float));
  if (t->m->sharded) t->opt.sum_ranks = cddp_trainer_sum_ranks, t->opt.sum_ctx = t;
  int prec = cddp_dtype_parse(o->precision);
  cddp_amp_init(&t->amp, be, prec == CDDP_F16, CDDP_AMP_INIT_SCALE, CDDP_AMP_GROWTH,
                CDDP_AMP_BACKOFF, CDDP_AMP_INTERVAL);
  cddp_schedule_init(&t->sched, o->schedule, o->warmup_steps, t->total, o->step_size, o->gamma,
                     o->lr, o->min_lr);
  cddp_devbatch_init(&t->db, be, &t->info, (int)o->batch);
  t->loss_acc = be->malloc(sizeof(float));
  t->d_stats = be->malloc(8 * sizeof(double));
  cddp_diverge_init(&t->div, be);
  be->memset0(t->loss_acc, sizeof(float), be->compute);
}

void cddp_trainer_setup(trainer *t) {
  cddp_options *o = t->o;
  if (o->checkpoint_dir[0]) cddp_ckpt_check_dir(o->checkpoint_dir); /* before any work */
  if (o->batch * o->grad_accum > INT_MAX / t->pg.world)
    cddp_die(CDDP_EXIT_USAGE, "--batch %lld x --grad-accum %lld x %d ranks: a global batch above "
             "2^31 - 1 samples", (long long)o->batch, (long long)o->grad_accum, t->pg.world);
  int gpu = open_backend(t);
  open_train_data(t);
  t->comm = cddp_comm_create(&t->pg, t->be, o->comm, o->timeout);
  describe_device(t, gpu);
  create_model(t);
  create_reducer(t);
  init_step_state(t);
  if (o->eval[0]) {
    const char *corpus[2] = {o->train, o->eval};
    cddp_evaluator_init(&t->ev, t->m, t->comm, o->eval, (int)o->batch, (int)o->recall_k,
                        o->max_table_rows, corpus, 2);
    cddp_check_eval_data(&t->info, cddp_loader_info(t->ev.loader), o->train, o->eval);
    t->have_eval = 1;
  }
  t->config_ini = cddp_options_to_ini(o, CDDP_CMD_TRAIN);
}

void cddp_trainer_teardown(trainer *t) {
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
