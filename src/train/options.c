#include "train/options.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "model/model.h"

typedef enum { T_INT, T_FLOAT, T_STR, T_BOOL, T_CHOICE } opt_type;

typedef struct {
  const char *name;    /* without the leading dashes */
  opt_type type;
  size_t off;
  const char *def;     /* default, as a string */
  const char *choices; /* T_CHOICE: "a|b|c" */
  int cmds;            /* CDDP_CMD_TRAIN | CDDP_CMD_EVAL */
  const char *help;
  /* 0 (the default): every rank of a training run must have the same value,
   * checked at start-up. PER_RANK: each rank may set its own (paths, threads,
   * output), with no effect on what is computed or on which collectives run. */
  int per_rank;
} opt_def;

#define O(f) offsetof(cddp_options, f)
#define TR CDDP_CMD_TRAIN
#define EV CDDP_CMD_EVAL
#define BOTH (TR | EV)
#define PER_RANK 1

/* "|dlrm|two_tower|vit": every model of model_list.h */
static const char g_models[] =
#define CDDP_MODEL(name) "|" #name
#include "model/model_list.h"
    ;

/* "|sgd|adamw|adagrad": every optimizer of optimizer_list.h */
static const char g_optimizers[] =
#define CDDP_OPTIMIZER(name) "|" #name
#include "train/optimizer_list.h"
    ;

/* An entry that leaves per_rank out means "ranks must agree": the default. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const opt_def g_opts[] = {
    {"config", T_STR, O(config), "", NULL, BOTH, "INI file of options (keys = option names); flags override it", PER_RANK},
    {"model", T_CHOICE, O(model), "vit", g_models + 1, TR, "model architecture (see Models below)"},
    {"variant", T_STR, O(variant), "auto", NULL, TR,
     "model size: one of the model's variants (see Models below; auto: its first)"},
    {"train", T_STR, O(train), "", NULL, TR, "training data, HDF5 (cddp.ctr.v1, cddp.twotower.v1 or cddp.image.v1)", PER_RANK},
    {"eval", T_STR, O(eval), "", NULL, TR, "evaluation data, HDF5 (same schema as --train); empty: no evaluation"},
    {"checkpoint", T_STR, O(checkpoint), "", NULL, EV, "checkpoint to evaluate (cddp eval)"},
    {"data", T_STR, O(data), "", NULL, EV, "data to evaluate on (cddp eval)"},
    {"emb-dim", T_INT, O(emb_dim), "0", NULL, TR, "two_tower embedding width (0: model default)"},
    {"max-table-rows", T_INT, O(max_table_rows), "0", NULL, TR,
     "dlrm: cap every embedding table at N rows, ids taken modulo N (0: no cap)"},
    {"dense-embedding-threshold", T_INT, O(dense_embedding_threshold), "0", NULL, TR,
     "embedding tables with at most N rows get dense gradients (all-reduced)"},
    {"embedding-sharding", T_CHOICE, O(embedding_sharding), "replicated", "replicated|table|row|auto", TR,
     "embedding tables: replicated on every rank, table-wise or row-wise across ranks, or auto (a planner balancing bytes and lookups)"},
    {"embedding-plan", T_STR, O(embedding_plan), "", NULL, TR,
     "per-table placement overriding --embedding-sharding: TABLE=replicated|table[:RANK]|row,... (e.g. emb_l.3=row,emb_l.4=table:1)"},
    {"device", T_CHOICE, O(device), "cpu", "cpu|cuda", BOTH, "compute device (one GPU per local rank)"},
    {"comm", T_CHOICE, O(comm), "auto", "auto|mpi|nccl", BOTH, "communication backend (auto: mpi on cpu, nccl on cuda)"},
    {"precision", T_CHOICE, O(precision), "fp32", "fp32|bf16|fp16", TR,
     "GEMM/attention input precision; fp16 uses dynamic loss scaling"},
    {"attention", T_CHOICE, O(attention), "auto", "auto|cudnn|plain", BOTH,
     "cuda attention kernels: cudnn = cuDNN fused flash attention for bf16/fp16 (not yet "
     "verified on a GPU); auto = plain until it is"},
    {"threads", T_INT, O(threads), "0", NULL, BOTH, "CPU threads per rank (0: cores / local ranks)", PER_RANK},
    {"loader-threads", T_INT, O(loader_threads), "1", NULL, TR,
     "threads per rank reading training batches ahead (batches stay in order)", PER_RANK},
    {"timeout", T_FLOAT, O(timeout), "600", NULL, BOTH, "seconds a collective may stall before the job is aborted (0: never)", PER_RANK},
    {"bucket-mb", T_FLOAT, O(bucket_mb), "25", NULL, TR, "DDP gradient bucket size in MB"},
    {"first-bucket-mb", T_FLOAT, O(first_bucket_mb), "1", NULL, TR, "size of the first (earliest) bucket in MB"},
    {"no-overlap", T_BOOL, O(no_overlap), "false", NULL, TR, "launch all-reduces only after backward (no overlap)"},
    {"grad-compress", T_CHOICE, O(grad_compress), "none", "none|fp16|bf16", TR, "gradient compression on the wire"},
    {"batch", T_INT, O(batch), "128", NULL, BOTH, "samples per rank per micro-step (eval: 0 = the checkpoint's)"},
    {"epochs", T_INT, O(epochs), "1", NULL, TR, "passes over the training data"},
    {"max-steps", T_INT, O(max_steps), "0", NULL, TR, "stop after N optimizer steps (0: no limit)"},
    {"grad-accum", T_INT, O(grad_accum), "1", NULL, TR, "micro-steps per optimizer step (only the last communicates)"},
    {"seed", T_INT, O(seed), "1234", NULL, TR, "seed for initialisation and shuffling"},
    {"shuffle", T_CHOICE, O(shuffle), "full", "none|full|block", TR, "sampler order: none, full permutation, or chunk blocks"},
    {"drop-last", T_BOOL, O(drop_last), "false", NULL, TR, "drop the tail instead of padding to a multiple of ranks*batch"},
    {"optimizer", T_CHOICE, O(optimizer), "sgd", g_optimizers + 1, TR,
     "dense optimizer (sparse embedding rows: row-wise SGD for sgd, Adagrad otherwise)"},
    {"lr", T_FLOAT, O(lr), "0.01", NULL, TR, "learning rate"},
    {"emb-lr", T_FLOAT, O(emb_lr), "-1", NULL, TR, "learning rate of embedding tables (-1: same as --lr)"},
    {"momentum", T_FLOAT, O(momentum), "0", NULL, TR, "SGD momentum"},
    {"nesterov", T_BOOL, O(nesterov), "false", NULL, TR, "SGD Nesterov momentum"},
    {"weight-decay", T_FLOAT, O(weight_decay), "0", NULL, TR,
     "weight decay (AdamW decoupled; SGD/Adagrad L2); skips biases, norms, pos_embed, cls_token"},
    {"beta1", T_FLOAT, O(beta1), "0.9", NULL, TR, "AdamW beta1"},
    {"beta2", T_FLOAT, O(beta2), "0.999", NULL, TR, "AdamW beta2"},
    {"eps", T_FLOAT, O(eps), "1e-08", NULL, TR, "AdamW / Adagrad epsilon"},
    {"schedule", T_CHOICE, O(schedule), "constant", "constant|cosine|step", TR, "learning-rate schedule after warm-up"},
    {"warmup-steps", T_INT, O(warmup_steps), "0", NULL, TR, "linear warm-up steps"},
    {"step-size", T_INT, O(step_size), "1000", NULL, TR, "step schedule: multiply the lr by --gamma every N steps"},
    {"gamma", T_FLOAT, O(gamma), "0.1", NULL, TR, "step schedule decay factor"},
    {"min-lr", T_FLOAT, O(min_lr), "0", NULL, TR, "cosine schedule final learning rate"},
    {"clip-grad-norm", T_FLOAT, O(clip_grad_norm), "0", NULL, TR, "clip gradients to this global L2 norm (0: off)"},
    {"label-smoothing", T_FLOAT, O(label_smoothing), "0", NULL, TR, "vit: cross-entropy label smoothing"},
    {"random-crop-pad", T_INT, O(random_crop_pad), "0", NULL, TR,
     "image training data: random crop after zero-padding N pixels per side, as torchvision RandomCrop (0: off)"},
    {"random-flip", T_BOOL, O(random_flip), "false", NULL, TR,
     "image training data: random horizontal flip with probability 1/2"},
    {"temperature", T_FLOAT, O(temperature), "0.05", NULL, TR, "two_tower: softmax temperature"},
    {"gather-negatives", T_BOOL, O(gather_negatives), "false", NULL, TR, "two_tower: in-batch negatives from all ranks"},
    {"log-every", T_INT, O(log_every), "50", NULL, TR, "progress / metrics line every N steps"},
    {"eval-every", T_INT, O(eval_every), "0", NULL, TR, "evaluate every N steps (0: at the end of each epoch only)"},
    {"recall-k", T_INT, O(recall_k), "50", NULL, BOTH, "two_tower: K of Recall@K"},
    {"metrics-out", T_STR, O(metrics_out), "", NULL, BOTH, "append one JSON object per logging step and evaluation to FILE.jsonl", PER_RANK},
    {"checkpoint-dir", T_STR, O(checkpoint_dir), "", NULL, TR, "directory for checkpoints (empty: none)"},
    {"checkpoint-every", T_INT, O(checkpoint_every), "0", NULL, TR, "checkpoint every N steps (0: only at the end)"},
    {"keep-last", T_INT, O(keep_last), "3", NULL, TR, "keep the newest K checkpoints (0: keep all)"},
    {"stop-after", T_INT, O(stop_after), "0", NULL, TR,
     "end this run after global step N (checkpointed), keeping the schedule of the whole run, e.g. to split it over job allocations (0: off)"},
    {"resume", T_STR, O(resume), "", NULL, TR, "auto (newest complete checkpoint in --checkpoint-dir) or FILE"},
    {"progress", T_CHOICE, O(progress), "auto", "auto|bar|plain", TR,
     "progress display: a live bar, plain lines, or auto (bar when stdout is a terminal)", PER_RANK},
    {"quiet", T_BOOL, O(quiet), "false", NULL, BOTH, "no progress output", PER_RANK},
    {"trace", T_STR, O(trace), "", NULL, TR,
     "write a Chrome/Perfetto timeline of every rank (compute per layer, data, gradient buckets, collectives) to FILE.json"},
    {"trace-steps", T_STR, O(trace_steps), "1:20", NULL, TR, "optimizer steps A:B (inclusive, from 1) that --trace records"},
};
#pragma GCC diagnostic pop
#define N_OPTS (sizeof g_opts / sizeof *g_opts)

static const opt_def *find_opt(const char *name, size_t len, int cmd) {
  for (size_t i = 0; i < N_OPTS; i++)
    if ((g_opts[i].cmds & cmd) && strlen(g_opts[i].name) == len &&
        !strncmp(g_opts[i].name, name, len))
      return &g_opts[i];
  return NULL;
}

static int parse_bool(const char *v, int *out) {
  static const char *t[] = {"1", "true", "yes", "on"}, *f[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(v, t[i])) return *out = 1, 1;
    if (!strcasecmp(v, f[i])) return *out = 0, 1;
  }
  return 0;
}

static int in_choices(const char *choices, const char *v) {
  size_t n = strlen(v);
  for (const char *c = choices; *c;) {
    const char *bar = strchr(c, '|');
    size_t len = bar ? (size_t)(bar - c) : strlen(c);
    if (len == n && !strncmp(c, v, n)) return 1;
    if (!bar) break;
    c = bar + 1;
  }
  return 0;
}

static void set_value(cddp_options *o, const opt_def *d, const char *v, const char *what) {
  char *base = (char *)o + d->off;
  char *end = NULL;
  errno = 0;
  switch (d->type) {
    case T_INT: {
      long long x = strtoll(v, &end, 10);
      if (!*v || *end || errno)
        cddp_die(CDDP_EXIT_USAGE, "%s: --%s %s: not an integer", what, d->name, v);
      *(int64_t *)base = x;
      break;
    }
    case T_FLOAT: {
      double x = strtod(v, &end);
      if (!*v || *end || errno || !isfinite(x))
        cddp_die(CDDP_EXIT_USAGE, "%s: --%s %s: not a finite number", what, d->name, v);
      *(double *)base = x;
      break;
    }
    case T_BOOL:
      if (!parse_bool(v, (int *)base))
        cddp_die(CDDP_EXIT_USAGE, "%s: --%s %s: not a boolean (true/false/1/0)", what, d->name, v);
      break;
    case T_CHOICE:
      if (!in_choices(d->choices, v))
        cddp_die(CDDP_EXIT_USAGE, "%s: --%s %s: must be one of %s", what, d->name, v, d->choices);
      /* fall through */
    case T_STR:
      if (strlen(v) >= CDDP_OPT_STR)
        cddp_die(CDDP_EXIT_USAGE, "%s: --%s: value longer than %d characters", what, d->name,
                 CDDP_OPT_STR - 1);
      snprintf(base, CDDP_OPT_STR, "%s", v);
      break;
  }
}

void cddp_options_set(cddp_options *o, int cmd, const char *name, const char *value,
                      const char *what) {
  const opt_def *d = find_opt(name, strlen(name), cmd);
  if (!d) cddp_die(CDDP_EXIT_USAGE, "%s: unknown option --%s", what, name);
  set_value(o, d, value, what);
}

void cddp_options_defaults(cddp_options *o, int cmd) {
  memset(o, 0, sizeof *o);
  for (size_t i = 0; i < N_OPTS; i++)
    if (g_opts[i].cmds & cmd) set_value(o, &g_opts[i], g_opts[i].def, "default");
}

/* ---- INI ---------------------------------------------------------------- */

typedef struct {
  cddp_options *o;
  int cmd, lenient;
  const char *what;
  char bad_key[128];
  char bad_value[256];
  int bad_kind; /* 1 unknown key, 2 bad value */
} ini_ctx;

/* Keys may be written with '-' or '_'. */
static void normalise_key(const char *in, char *out, size_t cap) {
  size_t i = 0;
  for (; in[i] && i + 1 < cap; i++) out[i] = in[i] == '_' ? '-' : (char)tolower((unsigned char)in[i]);
  out[i] = 0;
}

static int on_ini_key(void *user, const char *section, const char *name, const char *value) {
  ini_ctx *c = user;
  (void)section; /* sections only group keys for readability */
  if (c->bad_kind) return 1;
  char key[128];
  normalise_key(name, key, sizeof key);
  const opt_def *d = find_opt(key, strlen(key), c->cmd);
  if (!d || !strcmp(key, "config")) {
    if (c->lenient) return 1;
    snprintf(c->bad_key, sizeof c->bad_key, "%s", name);
    c->bad_kind = 1;
    return 0;
  }
  /* Validate without dying so that the message can carry the line number. */
  cddp_options probe = *c->o;
  char *base = (char *)&probe + d->off;
  char *end = NULL;
  int ok = 1;
  errno = 0;
  switch (d->type) {
    case T_INT: (void)strtoll(value, &end, 10); ok = *value && !*end && !errno; break;
    case T_FLOAT: {
      double x = strtod(value, &end);
      ok = *value && !*end && !errno && isfinite(x);
      break;
    }
    case T_BOOL: ok = parse_bool(value, (int *)base); break;
    case T_CHOICE: ok = in_choices(d->choices, value); break;
    case T_STR: ok = strlen(value) < CDDP_OPT_STR; break;
  }
  if (!ok) {
    snprintf(c->bad_key, sizeof c->bad_key, "%s", name);
    snprintf(c->bad_value, sizeof c->bad_value, "%s", value);
    c->bad_kind = 2;
    return 0;
  }
  set_value(c->o, d, value, c->what);
  return 1;
}

static void ini_report(ini_ctx *c, int rc, const char *what) {
  if (rc == 0) return;
  if (rc == -1) cddp_die(CDDP_EXIT_USAGE, "--config %s: cannot open: %s", what, strerror(errno));
  if (rc == -2) cddp_die(CDDP_EXIT_RUNTIME, "--config %s: out of memory", what);
  if (c->bad_kind == 1)
    cddp_die(CDDP_EXIT_USAGE, "%s:%d: unknown key '%s'", what, rc, c->bad_key);
  if (c->bad_kind == 2)
    cddp_die(CDDP_EXIT_USAGE, "%s:%d: bad value '%s' for key '%s'", what, rc, c->bad_value,
             c->bad_key);
  cddp_die(CDDP_EXIT_USAGE, "%s:%d: syntax error (expected 'key = value' or '[section]')", what, rc);
}

void cddp_options_load_ini(cddp_options *o, int cmd, const char *path) {
  ini_ctx c = {.o = o, .cmd = cmd, .what = path};
  ini_report(&c, ini_parse(path, on_ini_key, &c), path);
}

void cddp_options_load_ini_text(cddp_options *o, int cmd, const char *text, const char *what,
                                int lenient) {
  ini_ctx c = {.o = o, .cmd = cmd, .what = what, .lenient = lenient};
  ini_report(&c, ini_parse_string(text, on_ini_key, &c), what);
}

/* ---- flags -------------------------------------------------------------- */

int cddp_options_parse(cddp_options *o, int cmd, int argc, char **argv) {
  cddp_options_defaults(o, cmd);
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      cddp_options_print_help(stdout, cmd);
      return 1;
    }
  /* --config first, so that every flag overrides the file wherever it stands. */
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    if (!strcmp(argv[i], "--config")) {
      if (i + 1 >= argc) cddp_die(CDDP_EXIT_USAGE, "option --config needs a value");
      v = argv[i + 1];
    } else if (!strncmp(argv[i], "--config=", 9)) {
      v = argv[i] + 9;
    }
    if (v) {
      cddp_options_load_ini(o, cmd, v);
      snprintf(o->config, sizeof o->config, "%s", v);
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || !a[2])
      cddp_die(CDDP_EXIT_USAGE, "unexpected argument '%s' (options are --name value)", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const opt_def *d = find_opt(name, len, cmd);
    if (!d) cddp_die(CDDP_EXIT_USAGE, "unknown option --%.*s", (int)len, name);
    const char *v;
    if (eq) {
      v = eq + 1;
    } else if (d->type == T_BOOL) {
      int dummy;
      /* A bare boolean flag means true; an explicit word after it is consumed. */
      if (i + 1 < argc && parse_bool(argv[i + 1], &dummy)) v = argv[++i];
      else v = "true";
    } else {
      if (i + 1 >= argc) cddp_die(CDDP_EXIT_USAGE, "option --%s needs a value", d->name);
      v = argv[++i];
    }
    if (!strcmp(d->name, "config")) continue; /* already applied */
    set_value(o, d, v, "command line");
  }
  return 0;
}

void cddp_options_finish(cddp_options *o, int cmd) {
  if (!strcmp(o->comm, "auto")) strcpy(o->comm, strcmp(o->device, "cuda") ? "mpi" : "nccl");
  if (!strcmp(o->comm, "nccl") && strcmp(o->device, "cuda"))
    cddp_die(CDDP_EXIT_USAGE, "--comm nccl needs --device cuda");
  /* Thread counts beyond a few per core only thrash (and libgomp crashes on
   * huge ones), so they are bounded relative to the online cores. */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const int64_t max_threads = CDDP_MAX_THREADS_PER_CORE * (cores > 0 ? cores : 1);
  if (o->threads < 0 || o->threads > max_threads)
    cddp_die(CDDP_EXIT_USAGE, "--threads %lld: must be in [0, %lld] (%d per online core)",
             (long long)o->threads, (long long)max_threads, CDDP_MAX_THREADS_PER_CORE);
  if (o->timeout < 0) cddp_die(CDDP_EXIT_USAGE, "--timeout %g: must be >= 0", o->timeout);
  if (o->recall_k < 1 || o->recall_k > INT_MAX)
    cddp_die(CDDP_EXIT_USAGE, "--recall-k %lld: must be in [1, %d]", (long long)o->recall_k, INT_MAX);
  if (cmd == CDDP_CMD_EVAL) {
    if (!o->checkpoint[0]) cddp_die(CDDP_EXIT_USAGE, "cddp eval needs --checkpoint FILE");
    if (!o->data[0]) cddp_die(CDDP_EXIT_USAGE, "cddp eval needs --data FILE");
    if (o->batch < 0 || o->batch > INT_MAX)
      cddp_die(CDDP_EXIT_USAGE, "--batch %lld: must be in [0, %d]", (long long)o->batch, INT_MAX);
    return;
  }
  const cddp_model_desc *md = cddp_model_find(o->model);
  if (!strcmp(o->variant, "auto"))
    snprintf(o->variant, sizeof o->variant, "%s", cddp_model_variant_name(md, 0));
  (void)cddp_model_variant(md, o->variant); /* dies naming the model's variants */
  if (!o->train[0]) cddp_die(CDDP_EXIT_USAGE, "cddp train needs --train FILE.h5");
#define POS(f, flag) \
  if (o->f < 1) cddp_die(CDDP_EXIT_USAGE, "--" flag " %lld: must be >= 1", (long long)o->f)
  POS(batch, "batch");
  POS(epochs, "epochs");
  POS(grad_accum, "grad-accum");
  POS(loader_threads, "loader-threads");
  POS(log_every, "log-every");
  POS(step_size, "step-size");
#undef POS
#define NONNEG(f, flag) \
  if (o->f < 0) cddp_die(CDDP_EXIT_USAGE, "--" flag " %g: must be >= 0", (double)o->f)
  NONNEG(max_steps, "max-steps");
  NONNEG(eval_every, "eval-every");
  NONNEG(checkpoint_every, "checkpoint-every");
  NONNEG(keep_last, "keep-last");
  NONNEG(stop_after, "stop-after");
  NONNEG(random_crop_pad, "random-crop-pad");
  NONNEG(warmup_steps, "warmup-steps");
  NONNEG(emb_dim, "emb-dim");
  NONNEG(max_table_rows, "max-table-rows");
  NONNEG(dense_embedding_threshold, "dense-embedding-threshold");
  NONNEG(lr, "lr");
  NONNEG(momentum, "momentum");
  NONNEG(weight_decay, "weight-decay");
  NONNEG(min_lr, "min-lr");
  NONNEG(clip_grad_norm, "clip-grad-norm");
  NONNEG(gamma, "gamma");
#undef NONNEG
  /* Options the model, loader and reducer hold as int. */
#define UPTO(f, flag, hi)                                                             \
  if (o->f > (hi))                                                                    \
  cddp_die(CDDP_EXIT_USAGE, "--" flag " %lld: must be at most %lld", (long long)o->f, \
           (long long)(hi))
  UPTO(batch, "batch", INT_MAX);
  UPTO(grad_accum, "grad-accum", INT_MAX / o->batch);
  UPTO(loader_threads, "loader-threads", max_threads);
  UPTO(emb_dim, "emb-dim", 65536);
  UPTO(random_crop_pad, "random-crop-pad", 65535);
  UPTO(keep_last, "keep-last", INT_MAX);
#undef UPTO
  /* -1 (the default) means "same as --lr"; other negative rates are mistakes. */
  if (o->emb_lr < 0 && o->emb_lr != -1)
    cddp_die(CDDP_EXIT_USAGE, "--emb-lr %g: must be >= 0 (or -1: same as --lr)", o->emb_lr);
  if (o->emb_lr < 0) o->emb_lr = o->lr;
  long long ta, tb;
  int tn = 0;
  if (sscanf(o->trace_steps, "%lld:%lld%n", &ta, &tb, &tn) != 2 || o->trace_steps[tn] || ta < 1 ||
      tb < ta)
    cddp_die(CDDP_EXIT_USAGE, "--trace-steps %s: expected A:B with 1 <= A <= B (optimizer steps, "
             "inclusive)", o->trace_steps);
  if (o->nesterov && o->momentum <= 0)
    cddp_die(CDDP_EXIT_USAGE, "--nesterov needs --momentum > 0");
  if (o->beta1 < 0 || o->beta1 >= 1) cddp_die(CDDP_EXIT_USAGE, "--beta1 %g: must be in [0,1)", o->beta1);
  if (o->beta2 < 0 || o->beta2 >= 1) cddp_die(CDDP_EXIT_USAGE, "--beta2 %g: must be in [0,1)", o->beta2);
  if (o->eps <= 0) cddp_die(CDDP_EXIT_USAGE, "--eps %g: must be > 0", o->eps);
  if (o->label_smoothing < 0 || o->label_smoothing >= 1)
    cddp_die(CDDP_EXIT_USAGE, "--label-smoothing %g: must be in [0,1)", o->label_smoothing);
  if (o->temperature <= 0) cddp_die(CDDP_EXIT_USAGE, "--temperature %g: must be > 0", o->temperature);
  if (o->bucket_mb <= 0 || o->bucket_mb > 1048576)
    cddp_die(CDDP_EXIT_USAGE, "--bucket-mb %g: must be in (0, 1048576]", o->bucket_mb);
  if (o->first_bucket_mb <= 0 || o->first_bucket_mb > 1048576)
    cddp_die(CDDP_EXIT_USAGE, "--first-bucket-mb %g: must be in (0, 1048576]", o->first_bucket_mb);
  if (!strcmp(o->resume, "auto") && !o->checkpoint_dir[0])
    cddp_die(CDDP_EXIT_USAGE, "--resume auto needs --checkpoint-dir");
}

/* ---- output ------------------------------------------------------------- */

static void format_value(const cddp_options *o, const opt_def *d, char *out, size_t cap) {
  const char *base = (const char *)o + d->off;
  switch (d->type) {
    case T_INT: snprintf(out, cap, "%lld", (long long)*(const int64_t *)base); break;
    case T_FLOAT: snprintf(out, cap, "%.17g", *(const double *)base); break;
    case T_BOOL: snprintf(out, cap, "%s", *(const int *)base ? "true" : "false"); break;
    default: snprintf(out, cap, "%s", base); break;
  }
}

/* "name = value" lines of the options of cmd (all, or those ranks must agree on) */
static char *options_text(const cddp_options *o, int cmd, int agreed_only) {
  size_t cap = 64 + N_OPTS * (CDDP_OPT_STR + 64), len = 0;
  char *s = cddp_xmalloc(cap, "configuration text");
  if (!agreed_only) len += snprintf(s + len, cap - len, "[cddp]\n");
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt_def *d = &g_opts[i];
    if (!(d->cmds & cmd) || !strcmp(d->name, "config") || (agreed_only && d->per_rank)) continue;
    char v[CDDP_OPT_STR + 32];
    format_value(o, d, v, sizeof v);
    len += snprintf(s + len, cap - len, "%s = %s\n", d->name, v);
  }
  return s;
}

char *cddp_options_to_ini(const cddp_options *o, int cmd) { return options_text(o, cmd, 0); }

char *cddp_options_agreement_text(const cddp_options *o, int cmd) {
  return options_text(o, cmd, 1);
}

void cddp_options_print_help(FILE *f, int cmd) {
  if (cmd == CDDP_CMD_TRAIN)
    fprintf(f, "usage: cddp train --model dlrm|two_tower|vit --train FILE.h5 [--eval FILE.h5] "
               "[--config FILE.ini] [options]\n       mpirun -np N cddp train ...   (one rank per GPU)\n");
  else
    fprintf(f, "usage: cddp eval --checkpoint FILE.h5 --data FILE.h5 [options]\n");
  fprintf(f, "\nOptions (--name value or --name=value; in --config files: name = value):\n");
  if (cmd == CDDP_CMD_TRAIN)
    fprintf(f, "All ranks must be given the same values (checked at start-up, exit 2), except for "
               "options marked [per rank].\n");
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt_def *d = &g_opts[i];
    if (!(d->cmds & cmd)) continue;
    char head[96];
    const char *meta = d->type == T_INT ? " N" : d->type == T_FLOAT ? " X"
                       : d->type == T_BOOL ? "" : d->type == T_CHOICE ? " " : " S";
    if (d->type == T_CHOICE) snprintf(head, sizeof head, "--%s %s", d->name, d->choices);
    else snprintf(head, sizeof head, "--%s%s", d->name, meta);
    fprintf(f, "  %-34s %s [default: %s]%s\n", head, d->help, d->def[0] ? d->def : "none",
            cmd == CDDP_CMD_TRAIN && d->per_rank ? " [per rank]" : "");
  }
  if (cmd == CDDP_CMD_TRAIN) {
    fprintf(f, "\nModels (--model: variants, the first is the default; data; metric; its options):\n");
    for (int i = 0; cddp_model_at(i); i++) {
      const cddp_model_desc *md = cddp_model_at(i);
      fprintf(f, "  %-10s ", md->name);
      for (int v = 0; cddp_model_variant_name(md, v); v++)
        fprintf(f, "%s%s", v ? "|" : "", cddp_model_variant_name(md, v));
      fprintf(f, "; %s; %s; %s\n", cddp_schema_name(md->schema), md->metric, md->options);
    }
  }
  fprintf(f, "\nExit codes: 0 done, 1 runtime failure, 2 usage/configuration error, "
             "3 bad input data, 4 training diverged, 75 stopped by a signal (SIGTERM, SIGINT, "
             "SIGUSR1) after writing a checkpoint: resumable with --resume auto.\n");
}
