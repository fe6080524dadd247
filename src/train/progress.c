#include "train/progress.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"

double cddp_train_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cddp_progress_init(cddp_progress *p, int enabled, int quiet, const char *style,
                        const char *metrics_out,
                        int64_t total_steps, int64_t epochs, const char *metric_name) {
  *p = (cddp_progress){.enabled = enabled, .quiet = quiet, .total_steps = total_steps,
                       .epochs = epochs, .metric_name = metric_name, .t_start = cddp_train_now()};
  if (!enabled) return;
  p->tty = style && !strcmp(style, "bar")     ? 1
           : style && !strcmp(style, "plain") ? 0
                                               : isatty(fileno(stdout));
  if (metrics_out && metrics_out[0]) {
    p->jsonl = fopen(metrics_out, "a");
    p->jsonl_path = metrics_out;
    if (!p->jsonl)
      cddp_die(CDDP_EXIT_USAGE, "--metrics-out %s: cannot open: %s", metrics_out, strerror(errno));
  }
}

static void fmt_eta(double s, char *out, size_t cap) {
  if (!isfinite(s) || s < 0) {
    snprintf(out, cap, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
}

/* A full disk or /dev/full: said once; training goes on without metrics. */
static void metrics_failed(cddp_progress *p) {
  cddp_log_warn("--metrics-out %s: write failed: %s; no more metrics are written and the run "
                "will exit with status 1", p->jsonl_path, strerror(errno));
  fclose(p->jsonl);
  p->jsonl = NULL;
  p->jsonl_failed = 1;
}

static void json_put(cddp_progress *p, json_object *o) {
  if (!p->jsonl) {
    json_object_put(o);
    return;
  }
  if (fprintf(p->jsonl, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0 ||
      fflush(p->jsonl) != 0)
    metrics_failed(p);
  json_object_put(o);
}

static json_object *num(double x) {
  return isfinite(x) ? json_object_new_double(x) : NULL; /* JSON has no NaN: null */
}

void cddp_progress_log(cddp_progress *p, const cddp_progress_rec *r) {
  if (!p->enabled) return;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "type", json_object_new_string("train"));
  json_object_object_add(o, "step", json_object_new_int64(r->step));
  json_object_object_add(o, "epoch", json_object_new_int64(r->epoch));
  json_object_object_add(o, "loss", num(r->loss));
  json_object_object_add(o, "lr", num(r->lr));
  json_object_object_add(o, "samples_per_s", num(r->samples_per_s));
  json_object_object_add(o, "loss_scale", num(r->loss_scale));
  json_object_object_add(o, "backward_ms", num(r->backward_ms));
  json_object_object_add(o, "comm_ms", num(r->comm_ms));
  json_object_object_add(o, "exposed_comm_ms", num(r->exposed_comm_ms));
  json_object_object_add(o, "bytes", num(r->bytes));
  json_object_object_add(o, "exposed_a2a_ms", num(r->a2a_exposed_ms));
  json_object_object_add(o, "a2a_bytes", num(r->a2a_bytes));
  json_object_object_add(o, "last_step_skipped", json_object_new_boolean(r->skipped));
  json_object_object_add(o, "time_s", num(cddp_train_now() - p->t_start));
  json_put(p, o);
  if (p->quiet) return;
  double frac = p->total_steps > 0 ? (double)r->step / (double)p->total_steps : 0;
  double el = cddp_train_now() - p->t_start;
  char eta[32];
  fmt_eta(frac > 0 ? el * (1 - frac) / frac : NAN, eta, sizeof eta);
  char scale[32] = "";
  if (r->loss_scale > 0 && r->loss_scale != 1) snprintf(scale, sizeof scale, " scale %g", r->loss_scale);
  if (p->tty) {
    char bar[31];
    int w = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
    bar[30] = 0;
    printf("\r[%s] step %lld/%lld epoch %lld loss %.4f %.0f samples/s eta %s%s\033[K", bar,
           (long long)r->step, (long long)p->total_steps, (long long)r->epoch + 1, r->loss,
           r->samples_per_s, eta, scale);
    p->bar_open = 1;
  } else {
    printf("step %lld/%lld epoch %lld loss %.5f lr %.3g samples/s %.0f eta %s%s exposed_comm_ms %.2f\n",
           (long long)r->step, (long long)p->total_steps, (long long)r->epoch + 1, r->loss, r->lr,
           r->samples_per_s, eta, scale, r->exposed_comm_ms);
  }
  fflush(stdout);
}

double cddp_progress_main_metric(const cddp_metrics_result *r, const char *kind) {
  if (!strcmp(kind, "ctr")) return r->auc;
  if (!strcmp(kind, "retrieval")) return r->recall;
  return r->accuracy;
}

void cddp_progress_eval(cddp_progress *p, int64_t step, int64_t epoch,
                        const cddp_metrics_result *r, const char *kind, int recall_k,
                        double eval_s) {
  double mm = cddp_progress_main_metric(r, kind);
  if (isfinite(mm)) {
    if (!p->have_metric || mm > p->best_metric) p->best_metric = mm, p->best_step = step;
    p->last_metric = mm;
    p->have_metric = 1;
  }
  if (!p->enabled) return;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "type", json_object_new_string("eval"));
  json_object_object_add(o, "step", json_object_new_int64(step));
  json_object_object_add(o, "epoch", json_object_new_int64(epoch));
  json_object_object_add(o, "samples", json_object_new_int64(r->samples));
  char line[256];
  if (!strcmp(kind, "ctr")) {
    json_object_object_add(o, "auc", num(r->auc));
    json_object_object_add(o, "auc_exact", json_object_new_boolean(r->auc_exact));
    json_object_object_add(o, "logloss", num(r->loss));
    json_object_object_add(o, "accuracy", num(r->accuracy));
    snprintf(line, sizeof line, "auc %.5f logloss %.5f accuracy %.4f", r->auc, r->loss, r->accuracy);
  } else if (!strcmp(kind, "class")) {
    json_object_object_add(o, "accuracy", num(r->accuracy));
    json_object_object_add(o, "loss", num(r->loss));
    snprintf(line, sizeof line, "accuracy %.4f loss %.5f", r->accuracy, r->loss);
  } else {
    char key[32];
    snprintf(key, sizeof key, "recall@%d", recall_k);
    json_object_object_add(o, key, num(r->recall));
    snprintf(line, sizeof line, "recall@%d %.4f", recall_k, r->recall);
  }
  json_object_object_add(o, "eval_s", num(eval_s));
  json_put(p, o);
  if (p->bar_open) {
    printf("\n");
    p->bar_open = 0;
  }
  if (!p->quiet)
    printf("eval step %lld epoch %lld: %s (%lld samples, %.1f s)\n", (long long)step,
           (long long)epoch + 1, line, (long long)r->samples, eval_s);
  fflush(stdout);
}

void cddp_progress_account(cddp_progress *p, double samples, double train_s, double exposed_ms) {
  p->samples += samples;
  p->train_s += train_s;
  p->exposed_ms_sum += exposed_ms;
}

void cddp_progress_summary(cddp_progress *p, double wall_s) {
  if (!p->enabled) return;
  if (p->bar_open) {
    printf("\n");
    p->bar_open = 0;
  }
  double sps = p->train_s > 0 ? p->samples / p->train_s : 0;
  double share = p->train_s > 0 ? p->exposed_ms_sum / 1e3 / p->train_s : 0;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "type", json_object_new_string("summary"));
  json_object_object_add(o, "samples_per_s", num(sps));
  json_object_object_add(o, "wall_s", num(wall_s));
  json_object_object_add(o, "exposed_comm_share", num(share));
  if (p->have_metric) {
    char k[64];
    snprintf(k, sizeof k, "best_%s", p->metric_name);
    json_object_object_add(o, k, num(p->best_metric));
    snprintf(k, sizeof k, "last_%s", p->metric_name);
    json_object_object_add(o, k, num(p->last_metric));
  }
  json_put(p, o);
  printf("done: %.0f samples/s (global), wall %.1f s, exposed communication %.1f%% of step time",
         sps, wall_s, 100 * share);
  if (p->have_metric)
    printf(", best %s %.5f (step %lld), last %.5f", p->metric_name, p->best_metric,
           (long long)p->best_step, p->last_metric);
  printf("\n");
  fflush(stdout);
}

int cddp_progress_close(cddp_progress *p) {
  if (p->jsonl && fclose(p->jsonl) != 0 && !p->jsonl_failed) {
    cddp_log_warn("--metrics-out %s: write failed: %s", p->jsonl_path, strerror(errno));
    p->jsonl_failed = 1;
  }
  p->jsonl = NULL;
  return p->jsonl_failed;
}
