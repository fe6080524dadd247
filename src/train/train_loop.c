#include "train/trainer_state.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>

#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"
#include "train/metrics.h"
#include "train/preempt.h"

static void evaluate(trainer *t, int64_t step, int64_t epoch) {
  cddp_metrics_result r;
  double t0 = cddp_train_now();
  cddp_evaluator_run(&t->ev, &r);
  cddp_progress_eval(&t->prog, step, epoch, &r, t->kind, (int)t->o->recall_k,
                     cddp_train_now() - t0);
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
  cddp_trainer_sum_ranks(t, &x);
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
  if (!have_ckpt) cddp_trainer_save_checkpoint(t, step, epoch, pos);
  cddp_log_info("stopped by %s after step %lld, checkpoint written; continue with --resume auto "
                "(exit status %d)", why, (long long)step, CDDP_EXIT_STOPPED);
  return CDDP_EXIT_STOPPED;
}
/* The loop's state carried from step to step. */
typedef struct {
  interval iv;
  int64_t last_eval, last_ckpt;
  double lr_factor;
} loop_state;

/* Step s of the epoch up to its gradients: forward and backward of each of
 * its --grad-accum micro-batches (only the last communicates). */
static void forward_backward(trainer *t, int64_t epoch, int64_t s) {
  const cddp_backend *be = t->be;
  cddp_model *m = t->m;
  cddp_params *ps = &m->params;
  const cddp_ready_hook hook = {cddp_reducer_mark_ready, t->red};
  const float *loss_scale = cddp_amp_loss_scale(&t->amp);
  const float grad_scale = 1.0f / (float)(t->o->batch * t->A);
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
}

/* Waits for the communicated gradients and applies the optimizer (AMP's
 * unscale and skip, clipping, the schedule); returns the LR factor used. */
static double update(trainer *t, int64_t step) {
  const cddp_backend *be = t->be;
  cddp_model *m = t->m;
  cddp_params *ps = &m->params;
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
  if (t->o->clip_grad_norm > 0) cddp_optimizer_clip(&t->opt, t->sparse, t->o->clip_grad_norm);
  double lr_factor = cddp_schedule_factor(&t->sched, step);
  cddp_optimizer_step(&t->opt, t->sparse, lr_factor, cddp_amp_skip(&t->amp));
  cddp_amp_update(&t->amp);
  be->axpy(t->loss_acc, m->loss_sum, 1, 1.0f);
  cddp_trace_end(t_opt, CDDP_TRACK_COMPUTE, "step", "optimizer", -1, 0);
  return lr_factor;
}

/* Adds the step's samples, timings and bytes to the logging interval. */
static void account(trainer *t, interval *iv) {
  const cddp_reducer_stats *st = cddp_reducer_last_stats(t->red);
  iv->steps++;
  iv->samples += t->o->batch * t->A;
  iv->backward_ms += st->backward_ms;
  iv->comm_ms += st->comm_ms;
  iv->exposed_ms += st->exposed_ms;
  iv->bytes += (double)st->bytes_sent + t->m->a2a_bytes;
  iv->a2a_ms += t->m->a2a_wait_ms;
  iv->a2a_bytes += t->m->a2a_bytes;
}

/* After step `step` (step s of its epoch): logging, evaluation, checkpoints,
 * stop signals, --stop-after and the end of the run. Returns -1 to go on,
 * or the run's exit status. */
static int after_step(trainer *t, loop_state *ls, int64_t step, int64_t epoch, int64_t s) {
  const cddp_options *o = t->o;
  int end_epoch = s + 1 == t->spe;
  /* where the next step starts: what a checkpoint of this step records */
  int64_t next_epoch = end_epoch ? epoch + 1 : epoch, next_pos = end_epoch ? 0 : (s + 1) * t->A;
  int log_now = step % o->log_every == 0 || step == t->total || end_epoch;
  if (log_now) log_step(t, &ls->iv, step, epoch, ls->lr_factor);
  if (t->have_eval && ((o->eval_every > 0 && step % o->eval_every == 0) || end_epoch)) {
    evaluate(t, step, epoch);
    ls->last_eval = step;
  }
  if (o->checkpoint_dir[0] && o->checkpoint_every > 0 && step % o->checkpoint_every == 0) {
    cddp_trainer_save_checkpoint(t, step, next_epoch, next_pos);
    ls->last_ckpt = step;
  }
  if (step < t->total && agree_stop(t, log_now))
    return stop_now(t, step, next_epoch, next_pos, ls->last_ckpt == step);
  if (step == t->total || step == o->stop_after) agree_stop_finish(t);
  if (o->stop_after > 0 && step == o->stop_after && step < t->total) {
    if (o->checkpoint_dir[0] && ls->last_ckpt != step) cddp_trainer_save_checkpoint(t, step, next_epoch, next_pos);
    cddp_log_info("--stop-after %lld: stopping; continue with --resume", (long long)step);
    return CDDP_EXIT_OK;
  }
  if (step == t->total) {
    if (t->have_eval && ls->last_eval != step) evaluate(t, step, epoch);
    if (o->checkpoint_dir[0] && ls->last_ckpt != step) cddp_trainer_save_checkpoint(t, step, next_epoch, next_pos);
  }
  return -1;
}

int cddp_trainer_loop(trainer *t, int64_t step, int64_t epoch, int64_t pos, int64_t *end) {
  loop_state ls = {.iv = {.t0 = cddp_train_now(), .last_check = step}, .last_eval = -1,
                   .last_ckpt = step, .lr_factor = 1};
  for (; step < t->total; epoch++, pos = 0) {
    if (pos) cddp_loader_start_epoch_at(t->train, epoch, pos);
    else cddp_loader_start_epoch(t->train, epoch);
    for (int64_t s = pos / t->A; s < t->spe && step < t->total; s++) {
      cddp_trace_run_step(&t->tr, step + 1);
      cddp_trace_mark t_step = cddp_trace_begin();
      forward_backward(t, epoch, s);
      ls.lr_factor = update(t, step);
      step++;
      cddp_trace_end(t_step, CDDP_TRACK_STEP, "step", "step ", (int)step, 0);
      account(t, &ls.iv);
      int status = after_step(t, &ls, step, epoch, s);
      if (status >= 0) {
        *end = step;
        return status;
      }
    }
  }
  *end = step;
  return CDDP_EXIT_OK;
}
