/* Options of `cddp train` and `cddp eval`: one table (name, type, default,
 * help) drives --help, flag parsing (--name value, --name=value), the
 * --config FILE.ini reader (keys = option names without dashes; flags
 * override the file), the INI text stored in checkpoints and the list of
 * options that every rank must agree on. Unknown or
 * malformed options end the program with exit code 2 naming them. */
#ifndef CDDP_TRAIN_OPTIONS_H
#define CDDP_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CDDP_OPT_STR 1024
/* --threads and --loader-threads: at most this many per online core. */
#define CDDP_MAX_THREADS_PER_CORE 4

typedef struct {
  /* model and data */
  char model[CDDP_OPT_STR], variant[CDDP_OPT_STR];
  char train[CDDP_OPT_STR], eval[CDDP_OPT_STR];
  int64_t emb_dim, max_table_rows, dense_embedding_threshold;
  /* devices and communication */
  char device[CDDP_OPT_STR], comm[CDDP_OPT_STR], precision[CDDP_OPT_STR];
  char attention[CDDP_OPT_STR];
  int64_t threads, loader_threads;
  double timeout;
  double bucket_mb, first_bucket_mb;
  int no_overlap;
  char grad_compress[CDDP_OPT_STR];
  char embedding_sharding[CDDP_OPT_STR];
  char embedding_plan[1024];
  /* loop */
  int64_t batch, epochs, max_steps, grad_accum, seed;
  char shuffle[CDDP_OPT_STR];
  int drop_last;
  /* optimisation */
  char optimizer[CDDP_OPT_STR];
  double lr, emb_lr, momentum;
  int nesterov;
  double weight_decay, beta1, beta2, eps;
  char schedule[CDDP_OPT_STR];
  int64_t warmup_steps, step_size;
  double gamma, min_lr, clip_grad_norm, label_smoothing, temperature;
  int64_t random_crop_pad;
  int random_flip;
  int gather_negatives;
  /* evaluation, logging, checkpoints */
  int64_t log_every, eval_every, recall_k, checkpoint_every, keep_last, stop_after;
  char metrics_out[CDDP_OPT_STR], checkpoint_dir[CDDP_OPT_STR], resume[CDDP_OPT_STR];
  char progress[CDDP_OPT_STR];
  int quiet;
  /* timeline trace */
  char trace[CDDP_OPT_STR], trace_steps[CDDP_OPT_STR];
  /* cddp eval */
  char checkpoint[CDDP_OPT_STR], data[CDDP_OPT_STR];
  /* the --config file that was read ("" if none) */
  char config[CDDP_OPT_STR];
} cddp_options;

/* Which command an option belongs to. */
enum { CDDP_CMD_TRAIN = 1, CDDP_CMD_EVAL = 2 };

/* Sets every option of `cmd` to its default. */
void cddp_options_defaults(cddp_options *o, int cmd);
/* Parses argv (argv[0] is the command name): reads --config first, then the
 * flags. Returns 1 if --help was given (help printed to stdout), 0 otherwise.
 * Dies with exit code 2 on any unknown or malformed option. */
int cddp_options_parse(cddp_options *o, int cmd, int argc, char **argv);
/* Applies an INI file (dies with exit 2 naming file, line and key). */
void cddp_options_load_ini(cddp_options *o, int cmd, const char *path);
/* Applies INI text (from a checkpoint); `what` names it in messages.
 * Unknown keys are ignored when lenient != 0. */
void cddp_options_load_ini_text(cddp_options *o, int cmd, const char *text, const char *what,
                                int lenient);
/* Sets one option from its string form; `what` names the source in messages. */
void cddp_options_set(cddp_options *o, int cmd, const char *name, const char *value,
                      const char *what);
/* Resolves "auto" defaults (variant per model, comm per device, emb_lr)
 * and checks cross-option constraints (exit 2). */
void cddp_options_finish(cddp_options *o, int cmd);
/* Every option of `cmd` as INI text "[cddp]\nname = value\n..."; the
 * caller frees the result. */
char *cddp_options_to_ini(const cddp_options *o, int cmd);
/* "name = value\n" for every option of `cmd` that all ranks must agree on
 * (all but those the table marks per rank), for the start-up check; the
 * caller frees the result. */
char *cddp_options_agreement_text(const cddp_options *o, int cmd);
void cddp_options_print_help(FILE *f, int cmd);

#endif
