/* Internal to cddp train: the state of one training run, shared by the files
 * that set it up (trainer_setup.c), checkpoint and resume it
 * (trainer_checkpoint.c), run its steps (train_loop.c) and drive it
 * (trainer.c). */
#ifndef CDDP_TRAIN_TRAINER_STATE_H
#define CDDP_TRAIN_TRAINER_STATE_H

#include <stdint.h>

#include "data/loader.h"
#include "ddp/comm.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"
#include "model/model.h"
#include "train/amp.h"
#include "train/devbatch.h"
#include "train/diverge.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/options.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/trace_run.h"

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

/* Opens the data, builds the model, reducer, optimizer and the rest, agreed
 * over the ranks (trainer_setup.c). Collective. */
void cddp_trainer_setup(trainer *t);
void cddp_trainer_teardown(trainer *t);
/* *x summed over the ranks; ctx is the trainer. */
void cddp_trainer_sum_ranks(void *ctx, float *x);

/* trainer_checkpoint.c */
void cddp_trainer_save_checkpoint(trainer *t, int64_t step, int64_t epoch, int64_t pos);
/* Resume: returns the step to start from and sets epoch/position. */
int64_t cddp_trainer_resume(trainer *t, int64_t *epoch, int64_t *pos);

/* Trains from `step` on; returns the process exit status and puts the step
 * reached in *end (train_loop.c). */
int cddp_trainer_loop(trainer *t, int64_t step, int64_t epoch, int64_t pos, int64_t *end);

#endif
