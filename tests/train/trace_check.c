/* Checks a `cddp train --trace` file (json-c parses it):
 *   trace_check FILE.json WORLD STEPS [--gpu]
 * - every event has ph, pid in [0, WORLD), name; spans have ts and dur >= 0;
 * - every rank has its process name, the step/compute track names, exactly
 *   STEPS "step N" spans, and forward, backward and optimizer spans;
 * - every layer span (cat forward/backward) lies inside a forward/backward span;
 * - every gradient bucket track: each all-reduce starts (launch) at or after
 *   the last ready parameter of its step and ends (completion) after it
 *   starts, with its byte count; every bucket all-reduces STEPS times;
 * - ranks share one clock: the j-th all-reduce of a bucket ends on every rank
 *   after it started on every other rank (0.5 ms slack; not with --gpu).
 * - with --gpu (a CUDA run): every rank has device-timed spans on the GPU
 *   compute stream track, among them per-layer ones, each inside the run.
 * Prints what it counted; exits 1 with a message on the first violation. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXR 16
#define MAXT 4096
#define MAXAR 4096

static int fails;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      fprintf(stderr, "trace_check: " __VA_ARGS__); \
      fprintf(stderr, "\n");                      \
      fails++;                                    \
      if (fails > 20) exit(1);                    \
    }                                             \
  } while (0)

typedef struct {
  double ts, dur;
  const char *ph, *name, *cat;
  int pid, tid;
} ev;

static int by_ts(const void *a, const void *b) {
  const ev *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  /* an instant at the same microsecond as a span start counts as before it */
  return (x->ph[0] == 'i') == (y->ph[0] == 'i') ? 0 : x->ph[0] == 'i' ? -1 : 1;
}

static const char *str(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v) : NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "--gpu"))) {
    fprintf(stderr, "usage: trace_check FILE.json WORLD STEPS [--gpu]\n");
    return 2;
  }
  int W = atoi(argv[2]), S = atoi(argv[3]), gpu = argc == 5;
  json_object *root = json_object_from_file(argv[1]);
  if (!root) {
    fprintf(stderr, "trace_check: %s: not valid JSON: %s\n", argv[1], json_util_get_last_err());
    return 1;
  }
  json_object *arr;
  if (!json_object_object_get_ex(root, "traceEvents", &arr) ||
      !json_object_is_type(arr, json_type_array)) {
    fprintf(stderr, "trace_check: no traceEvents array\n");
    return 1;
  }
  size_t n = json_object_array_length(arr);
  ev *e = calloc(n, sizeof *e);
  size_t ne = 0;
  int has_pname[MAXR] = {0}, has_tname[MAXR][8] = {{0}};
  char pname[MAXR][128] = {{0}};
  double offset_us[MAXR] = {0};
  for (size_t i = 0; i < n; i++) {
    json_object *o = json_object_array_get_idx(arr, i), *v;
    const char *ph = str(o, "ph"), *name = str(o, "name");
    CHECK(ph && name, "event %zu lacks ph or name", i);
    if (!ph || !name) continue;
    CHECK(json_object_object_get_ex(o, "pid", &v), "event %zu lacks pid", i);
    int pid = json_object_get_int(v);
    CHECK(pid >= 0 && pid < W && pid < MAXR, "event %zu: pid %d outside [0, %d)", i, pid, W);
    if (pid < 0 || pid >= W || pid >= MAXR) continue;
    int tid = json_object_object_get_ex(o, "tid", &v) ? json_object_get_int(v) : -1;
    if (!strcmp(ph, "M")) {
      if (!strcmp(name, "process_name")) {
        json_object *args, *a;
        has_pname[pid] = 1;
        if (json_object_object_get_ex(o, "args", &args)) {
          if (json_object_object_get_ex(args, "name", &a))
            snprintf(pname[pid], sizeof pname[pid], "%s", json_object_get_string(a));
          CHECK(json_object_object_get_ex(args, "clock_offset_us", &a),
                "rank %d's process_name lacks args.clock_offset_us", pid);
          offset_us[pid] = json_object_get_double(a);
        }
      }
      if (!strcmp(name, "thread_name") && tid >= 0 && tid < 8) has_tname[pid][tid] = 1;
      continue;
    }
    CHECK(!strcmp(ph, "X") || !strcmp(ph, "i"), "event %zu: phase %s", i, ph);
    CHECK(tid > 0 && tid < MAXT, "event %zu (%s): tid %d", i, name, tid);
    CHECK(json_object_object_get_ex(o, "ts", &v), "event %zu (%s) lacks ts", i, name);
    ev x = {.ts = json_object_get_double(v), .ph = ph, .name = name, .cat = str(o, "cat"),
            .pid = pid, .tid = tid, .dur = -1};
    if (!strcmp(ph, "X")) {
      CHECK(json_object_object_get_ex(o, "dur", &v), "span %zu (%s) lacks dur", i, name);
      x.dur = json_object_get_double(v);
      CHECK(x.dur >= 0, "span %zu (%s): dur %g", i, name, x.dur);
      if (!strcmp(name, "all-reduce") || !strcmp(name, "all-gather")) {
        json_object *args, *b;
        CHECK(json_object_object_get_ex(o, "args", &args) &&
                  json_object_object_get_ex(args, "bytes", &b) && json_object_get_int64(b) > 0,
              "%s at %.3f us on rank %d lacks args.bytes", name, x.ts, pid);
      }
    }
    CHECK(x.cat != NULL, "event %zu (%s) lacks cat", i, name);
    if (tid > 0 && tid < MAXT) e[ne++] = x;
  }
  qsort(e, ne, sizeof *e, by_ts);

  /* per rank: names, one clock per host, steps, phases, layer nesting */
  const char *host0 = strchr(pname[0], '(');
  for (int r = 0; r < W; r++) {
    CHECK(has_pname[r], "rank %d has no process_name", r);
    const char *host = strchr(pname[r], '(');
    CHECK(!host || !host0 || strcmp(host, host0) || offset_us[r] == 0,
          "rank %d shares rank 0's host %s but its clock is offset by %g us", r, host, offset_us[r]);
    CHECK(has_tname[r][1] && has_tname[r][2], "rank %d lacks the step/compute track names", r);
    int steps = 0, fwd = 0, bwd = 0, opt = 0, layers = 0;
    for (size_t i = 0; i < ne; i++) {
      if (e[i].pid != r) continue;
      if (e[i].tid == 1 && !strncmp(e[i].name, "step ", 5)) steps++;
      if (e[i].tid != 2 || e[i].ph[0] != 'X') continue;
      fwd += !strcmp(e[i].name, "forward");
      bwd += !strcmp(e[i].name, "backward");
      opt += !strcmp(e[i].name, "optimizer");
      const char *cat = e[i].cat ? e[i].cat : "";
      if (strcmp(cat, "forward") && strcmp(cat, "backward")) continue;
      layers++;
      int inside = 0; /* the enclosing forward/backward span starts at or before it */
      for (size_t j = 0; j < ne && e[j].ts <= e[i].ts + 1e-3; j++)
        if (e[j].pid == r && e[j].tid == 2 && !strcmp(e[j].name, cat) &&
            e[i].ts + e[i].dur <= e[j].ts + e[j].dur + 2e-3)
          inside = 1;
      CHECK(inside, "rank %d: layer span %s (%s) at %.3f us is outside every %s span", r,
            e[i].name, cat, e[i].ts, cat);
    }
    CHECK(steps == S, "rank %d: %d step spans, expected %d", r, steps, S);
    if (gpu) {
      int dev = 0, dev_layers = 0;
      double first = 1e300, last = -1e300;
      for (size_t i = 0; i < ne; i++) {
        if (e[i].pid != r) continue;
        if (e[i].tid == 1) {
          if (e[i].ts < first) first = e[i].ts;
          if (e[i].ts + e[i].dur > last) last = e[i].ts + e[i].dur;
        }
      }
      for (size_t i = 0; i < ne; i++) {
        if (e[i].pid != r || e[i].tid != 5) continue;
        dev++;
        const char *cat = e[i].cat ? e[i].cat : "";
        dev_layers += !strcmp(cat, "forward") || !strcmp(cat, "backward");
        /* device time may trail the host's issue, never precede the run */
        CHECK(e[i].ts >= first - 1e3, "rank %d: GPU span %s at %.3f us before the first step at "
              "%.3f us", r, e[i].name, e[i].ts, first);
      }
      CHECK(dev_layers > 0, "rank %d: %d GPU compute spans, none per layer", r, dev);
      printf("rank %d: %d GPU compute-stream spans (%d per layer)\n", r, dev, dev_layers);
    }
    CHECK(fwd >= S && bwd >= S && opt == S, "rank %d: forward %d, backward %d, optimizer %d "
          "spans for %d steps", r, fwd, bwd, opt, S);
    CHECK(layers > 0, "rank %d: no layer spans", r);
    printf("rank %d: %d steps, %d forward, %d backward, %d optimizer, %d layer spans\n", r, steps,
           fwd, bwd, opt, layers);
  }

  /* buckets: launch after the last ready parameter, completion after launch */
  static double ar_start[MAXR][64][MAXAR / 64 * 4], ar_end[MAXR][64][MAXAR / 64 * 4];
  static int n_ar[MAXR][64];
  int nbuckets = 0;
  for (int tid = 1000; tid < MAXT; tid++) {
    int seen = 0;
    for (int r = 0; r < W; r++) {
      int ars = 0;
      for (size_t i = 0; i < ne; i++) {
        if (e[i].pid != r || e[i].tid != tid) continue;
        seen = 1;
        if (strcmp(e[i].name, "all-reduce")) continue;
        /* the step span (launches happen inside their step) */
        double s0 = 0, s1 = -1;
        for (size_t j = 0; j < ne; j++)
          if (e[j].pid == r && e[j].tid == 1 && e[j].ts <= e[i].ts && e[i].ts <= e[j].ts + e[j].dur)
            s0 = e[j].ts, s1 = e[j].ts + e[j].dur;
        CHECK(s1 >= s0, "rank %d bucket track %d: all-reduce at %.3f us outside every step", r,
              tid, e[i].ts);
        int readies = 0;
        double last_ready = -1e300;
        for (size_t j = 0; j < ne; j++)
          if (e[j].pid == r && e[j].tid == tid && e[j].ph[0] == 'i' && e[j].ts >= s0 &&
              e[j].ts <= s1) {
            readies++;
            if (e[j].ts > last_ready) last_ready = e[j].ts;
          }
        CHECK(readies > 0, "rank %d bucket track %d: all-reduce at %.3f us with no ready "
              "parameter in its step", r, tid, e[i].ts);
        CHECK(e[i].ts >= last_ready, "rank %d bucket track %d: all-reduce launched at %.3f us, "
              "before its last ready parameter at %.3f us", r, tid, e[i].ts, last_ready);
        CHECK(e[i].dur > 0, "rank %d bucket track %d: all-reduce at %.3f us completes at its "
              "launch", r, tid, e[i].ts);
        int b = tid - 1000;
        if (b < 64 && ars < MAXAR / 64 * 4) {
          ar_start[r][b][ars] = e[i].ts;
          ar_end[r][b][ars] = e[i].ts + e[i].dur;
          n_ar[r][b] = ars + 1;
        }
        ars++;
      }
      if (seen) CHECK(ars == S, "rank %d bucket track %d: %d all-reduces, expected %d", r, tid,
                      ars, S);
    }
    nbuckets += seen;
  }
  CHECK(nbuckets > 0, "no gradient bucket tracks");
  /* Under NCCL the host never waits for a collective, so a bucket's host-side
   * completion is when the host moved on, not when the ranks met: no
   * cross-rank check there (--gpu). */
  int pairs = 0;
  for (int b = 0; b < 64 && b < nbuckets && !gpu; b++)
    for (int a = 0; a < W; a++)
      for (int c = 0; c < W; c++)
        for (int j = 0; j < n_ar[a][b] && j < n_ar[c][b]; j++, pairs++)
          CHECK(ar_end[a][b][j] >= ar_start[c][b][j] - 500, "bucket %d all-reduce %d ends on "
                "rank %d at %.3f us before rank %d launched it at %.3f us: clocks not aligned",
                b, j, a, ar_end[a][b][j], c, ar_start[c][b][j]);
  printf("%zu events, %d bucket tracks, %d cross-rank all-reduce pairs checked\n", ne, nbuckets,
         pairs);
  json_object_put(root);
  free(e);
  if (fails) fprintf(stderr, "trace_check: %d violations\n", fails);
  return fails ? 1 : 0;
}
