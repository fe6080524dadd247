#include "train/trace_run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"

/* Events kept per rank (the ring keeps the newest) and device span pairs. */
#define TRACE_EVENTS ((size_t)1 << 19)
#define TRACE_DEVICE_SPANS 16384

void cddp_trace_run_start(cddp_trace_run *tr, const cddp_options *o, const cddp_pg *pg) {
  *tr = (cddp_trace_run){0};
  /* The clock exchange below is collective and runs before the start-up
   * agreement check: ranks that disagree on tracing must fail here, not hang. */
  if (pg->world > 1 && !cddp_pg_all_agree(pg, o->trace[0] != 0))
    cddp_die(CDDP_EXIT_USAGE, "--trace is given on some ranks only (this rank: %s); give it to "
             "every rank", o->trace[0] ? o->trace : "none");
  if (!o->trace[0]) return;
  tr->on = 1;
  long long a, b;
  sscanf(o->trace_steps, "%lld:%lld", &a, &b); /* checked by cddp_options_finish */
  tr->first = a;
  tr->last = b;
  int bad = 0;
  if (pg->rank == 0) {
    tr->f = fopen(o->trace, "w");
    bad = !tr->f;
  }
  if (bad) /* rank 0 only; its abort ends the job */
    cddp_die(CDDP_EXIT_USAGE, "--trace %s: cannot open for writing: %s", o->trace, strerror(errno));
  cddp_pg_clock_sync(pg, cddp_trace_now, &tr->offset, &tr->origin);
}

void cddp_trace_run_setup(cddp_trace_run *tr, const cddp_backend *be) {
  if (tr->on) cddp_trace_init(be, TRACE_EVENTS, TRACE_DEVICE_SPANS);
}

void cddp_trace_run_step(cddp_trace_run *tr, int64_t step) {
  if (!tr->on) return;
  int in = step >= tr->first && step <= tr->last;
  if (!in && cddp_trace_active()) cddp_trace_flush_device();
  cddp_trace_set_active(in);
}

void cddp_trace_run_render(cddp_trace_run *tr, const cddp_pg *pg) {
  if (!tr->on) return;
  cddp_trace_set_active(0);
  cddp_trace_flush_device();
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char name[320];
  snprintf(name, sizeof name, "rank %d (%s)", pg->rank, host);
  tr->text = cddp_trace_render(pg->rank, name, tr->origin, tr->offset, &tr->len);
  size_t dropped = cddp_trace_dropped();
  if (dropped)
    cddp_log_warn("--trace: %zu events did not fit the trace buffers and were dropped (the "
                  "oldest); trace fewer steps with --trace-steps", dropped);
  cddp_trace_shutdown();
}

void cddp_trace_run_finish(cddp_trace_run *tr, const cddp_pg *pg, const cddp_options *o) {
  if (!tr->on) return;
  size_t total;
  char *all = cddp_pg_gather_text(pg, tr->text, tr->len, &total);
  free(tr->text);
  tr->text = NULL;
  if (pg->rank != 0) return;
  fprintf(tr->f, "{\"traceEvents\":[\n%s\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{"
          "\"tool\":\"cddp\",\"model\":\"%s\",\"variant\":\"%s\",\"world\":%d,\"device\":\"%s\","
          "\"comm\":\"%s\",\"batch\":%lld,\"bucket_mb\":%g,\"first_bucket_mb\":%g,"
          "\"overlap\":%d,\"steps\":\"%lld:%lld\"}}\n",
          all, o->model, o->variant, pg->world, o->device, o->comm, (long long)o->batch,
          o->bucket_mb, o->first_bucket_mb, !o->no_overlap, (long long)tr->first,
          (long long)tr->last);
  free(all);
  if (fflush(tr->f) || ferror(tr->f) || fclose(tr->f))
    cddp_die(CDDP_EXIT_RUNTIME, "--trace %s: write failed: %s", o->trace, strerror(errno));
  tr->f = NULL;
  cddp_log_info("trace: %s (%zu bytes, steps %lld..%lld, %d rank%s)", o->trace, total,
                (long long)tr->first, (long long)tr->last, pg->world, pg->world > 1 ? "s" : "");
}
