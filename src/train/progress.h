/* Rank 0's view of a run: a live progress bar on a terminal, plain lines
 * when piped; --metrics-out JSONL (one object per logging step and per
 * evaluation, via json-c); the final summary. Other ranks pass enabled = 0
 * and only the summary figures they are given are ignored. */
#ifndef CDDP_TRAIN_PROGRESS_H
#define CDDP_TRAIN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "train/metrics.h"

typedef struct {
  int64_t step, epoch;     /* optimizer steps done, 0-based epoch */
  double loss, lr, samples_per_s, loss_scale;
  double backward_ms, comm_ms, exposed_comm_ms; /* means per step over the interval */
  double bytes;            /* payload bytes per step sent by this rank */
  double a2a_exposed_ms;   /* sharded embeddings: time waited on their all-to-alls per step */
  double a2a_bytes;        /* of bytes: what their all-to-alls sent to other ranks */
  int skipped;             /* the AMP scaler skipped the last step */
} cddp_progress_rec;

typedef struct {
  int enabled, tty, quiet;
  FILE *jsonl;
  const char *jsonl_path;
  int jsonl_failed;        /* a write failed: reported once, no more writes */
  int64_t total_steps, epochs;
  double t_start;
  int bar_open;            /* a \r-line is on the terminal */
  /* summary */
  const char *metric_name; /* "auc", "accuracy", "recall@K" */
  int have_metric;
  double best_metric, last_metric;
  int64_t best_step;
  double exposed_ms_sum, step_ms_sum;
  double samples;          /* global samples trained */
  double train_s;          /* wall time spent in training steps */
} cddp_progress;

double cddp_train_now(void);
/* style: "auto" (bar on a terminal), "bar" or "plain" */
void cddp_progress_init(cddp_progress *p, int enabled, int quiet, const char *style,
                        const char *metrics_out,
                        int64_t total_steps, int64_t epochs, const char *metric_name);
void cddp_progress_log(cddp_progress *p, const cddp_progress_rec *r);
/* kind: "ctr", "class" or "retrieval" */
void cddp_progress_eval(cddp_progress *p, int64_t step, int64_t epoch,
                        const cddp_metrics_result *r, const char *kind, int recall_k,
                        double eval_s);
/* Accumulates one interval's timing for the summary. */
void cddp_progress_account(cddp_progress *p, double samples, double train_s, double exposed_ms);
void cddp_progress_summary(cddp_progress *p, double wall_s);
/* Returns 0, or 1 if writing --metrics-out failed at any point (the run's
 * exit status must then be non-zero). */
int cddp_progress_close(cddp_progress *p);
/* The metric a run is judged by (higher is better) from an evaluation. */
double cddp_progress_main_metric(const cddp_metrics_result *r, const char *kind);

#endif
