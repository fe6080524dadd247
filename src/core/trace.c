/* Timeline tracing: the event ring, device spans and the JSON rendering. */
#include "core/trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

typedef struct {
  double ts, dur;      /* seconds; dur < 0: instant */
  const char *cat, *name;
  long long bytes;
  int idx, track, dev; /* dev: pending device pair (resolved by flush), else -1 */
} trace_event;

typedef struct {
  cddp_event *start, *end;
} dev_pair;

static struct {
  const cddp_backend *be;
  trace_event *ring;
  size_t cap; /* power of two */
  atomic_size_t n;
  dev_pair *dev;
  int n_dev;
  atomic_int dev_used;
  atomic_size_t dev_dropped;
  cddp_event *ref; /* recorded at init on the compute stream */
  double ref_s;    /* host time at which ref completed */
  char (*track_names)[64];
} g;

atomic_int cddp_trace_active_;

double cddp_trace_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cddp_trace_init(const cddp_backend *be, size_t capacity, int device_spans) {
  size_t cap = 1024;
  while (cap < capacity) cap <<= 1;
  g.be = be;
  g.cap = cap;
  g.ring = cddp_xcalloc(cap * sizeof *g.ring, "trace ring");
  atomic_store(&g.n, 0);
  g.track_names = cddp_xcalloc((size_t)CDDP_TRACK_MAX * sizeof *g.track_names, "trace tracks");
  static const struct { int t; const char *n; } fixed[] = {
      {CDDP_TRACK_STEP, "step"},          {CDDP_TRACK_COMPUTE, "compute (host)"},
      {CDDP_TRACK_DATA, "data"},          {CDDP_TRACK_COMM, "communication thread"},
      {CDDP_TRACK_GPU_COMPUTE, "GPU compute stream"}, {CDDP_TRACK_GPU_COPY, "GPU copy stream"},
      {CDDP_TRACK_GPU_COMM, "GPU communication stream"}};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
    snprintf(g.track_names[fixed[i].t], 64, "%s", fixed[i].n);
  if (be && be->is_device && device_spans > 0) {
    g.n_dev = device_spans;
    g.dev = cddp_xcalloc((size_t)device_spans * sizeof *g.dev, "trace device events");
    for (int i = 0; i < device_spans; i++) {
      g.dev[i].start = be->event_create();
      g.dev[i].end = be->event_create();
    }
    g.ref = be->event_create();
    be->event_record(g.ref, be->compute);
    be->event_sync(g.ref);
    g.ref_s = cddp_trace_now();
  }
}

void cddp_trace_set_active(int on) {
  atomic_store_explicit(&cddp_trace_active_, on && g.ring, memory_order_relaxed);
}

void cddp_trace_name_track(int track, const char *fmt, ...) {
  if (!g.ring || track < 0 || track >= CDDP_TRACK_MAX) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g.track_names[track], 64, fmt, ap);
  va_end(ap);
}

static void push(int track, const char *cat, const char *name, int idx, double t0, double dur,
                 long long bytes, int dev) {
  size_t i = atomic_fetch_add_explicit(&g.n, 1, memory_order_relaxed);
  trace_event *e = &g.ring[i & (g.cap - 1)];
  *e = (trace_event){.ts = t0, .dur = dur, .cat = cat, .name = name, .bytes = bytes, .idx = idx,
                     .track = track, .dev = dev};
}

void cddp_trace_span(int track, const char *cat, const char *name, int idx, double t0, double t1,
                     long long bytes) {
  if (!cddp_trace_active()) return;
  push(track, cat, name, idx, t0, t1 > t0 ? t1 - t0 : 0, bytes, -1);
}

void cddp_trace_since(int track, const char *cat, const char *name, int idx, double t0,
                      long long bytes) {
  if (t0 != 0) push(track, cat, name, idx, t0, cddp_trace_now() - t0, bytes, -1);
}

void cddp_trace_instant(int track, const char *cat, const char *name, int idx, double t,
                        long long bytes) {
  if (!cddp_trace_active()) return;
  push(track, cat, name, idx, t, -1, bytes, -1);
}

int cddp_trace_dev_begin(cddp_stream *s) {
  if (!g.n_dev || !cddp_trace_active()) return -1;
  int k = atomic_fetch_add(&g.dev_used, 1);
  if (k >= g.n_dev) {
    atomic_fetch_add(&g.dev_dropped, 1);
    return -1;
  }
  g.be->event_record(g.dev[k].start, s);
  return k;
}

void cddp_trace_dev_end(int slot, cddp_stream *s, int track, const char *cat, const char *name,
                        int idx, long long bytes) {
  if (slot < 0) return;
  g.be->event_record(g.dev[slot].end, s);
  push(track, cat, name, idx, 0, 0, bytes, slot);
}

cddp_trace_mark cddp_trace_begin(void) {
  if (!cddp_trace_active()) return (cddp_trace_mark){0, -1};
  int dev = g.n_dev ? cddp_trace_dev_begin(g.be->compute) : -1;
  return (cddp_trace_mark){cddp_trace_now(), dev};
}

void cddp_trace_end(cddp_trace_mark m, int track, const char *cat, const char *name, int idx,
                    long long bytes) {
  if (m.t == 0) return;
  push(track, cat, name, idx, m.t, cddp_trace_now() - m.t, bytes, -1);
  cddp_trace_dev_end(m.dev, g.be ? g.be->compute : NULL, CDDP_TRACK_GPU_COMPUTE, cat, name, idx,
                     bytes);
}

static size_t first_live(void) {
  size_t n = atomic_load(&g.n);
  return n > g.cap ? n - g.cap : 0;
}

void cddp_trace_flush_device(void) {
  if (!g.n_dev) return;
  size_t n = atomic_load(&g.n);
  for (size_t i = first_live(); i < n; i++) {
    trace_event *e = &g.ring[i & (g.cap - 1)];
    if (e->dev < 0) continue;
    dev_pair *p = &g.dev[e->dev];
    g.be->event_sync(p->end);
    e->ts = g.ref_s + 1e-3 * g.be->event_elapsed_ms(g.ref, p->start);
    e->dur = 1e-3 * g.be->event_elapsed_ms(p->start, p->end);
    e->dev = -1;
  }
  atomic_store(&g.dev_used, 0);
}

size_t cddp_trace_dropped(void) {
  return first_live() + atomic_load(&g.dev_dropped);
}

/* ---- rendering --------------------------------------------------------------- */
typedef struct {
  char *s;
  size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (k < 0) cddp_die(CDDP_EXIT_RUNTIME, "trace: formatting failed");
    if ((size_t)k < b->cap - b->len) {
      b->len += (size_t)k;
      return;
    }
    b->cap = 2 * b->cap + (size_t)k;
    b->s = realloc(b->s, b->cap);
    if (!b->s) cddp_die(CDDP_EXIT_RUNTIME, "trace: out of memory rendering %zu bytes", b->cap);
  }
}

/* JSON string body: names are ASCII identifiers, but escape what JSON needs. */
static void put_str(sbuf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\' || c < 0x20) {
      put(b, "\\u%04x", c);
    } else {
      if (b->len + 2 > b->cap) put(b, "%c", c);
      else b->s[b->len++] = (char)c, b->s[b->len] = 0;
    }
  }
}

char *cddp_trace_render(int pid, const char *process_name, double origin_s, double offset_s,
                        size_t *len) {
  sbuf b = {cddp_xmalloc(1 << 16, "trace text"), 0, 1 << 16};
  b.s[0] = 0;
  put(&b, "%s{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":\"",
      pid > 0 ? ",\n" : "", pid);
  put_str(&b, process_name);
  put(&b, "\",\"clock_offset_us\":%.3f}},\n", 1e6 * offset_s);
  put(&b, "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_sort_index\",\"args\":{\"sort_index\":%d}}",
      pid, pid);
  static unsigned char used[CDDP_TRACK_MAX];
  memset(used, 0, sizeof used);
  size_t n = atomic_load(&g.n);
  for (size_t i = first_live(); i < n && g.ring; i++) {
    const trace_event *e = &g.ring[i & (g.cap - 1)];
    if (e->dev >= 0) continue; /* device span never flushed */
    used[e->track] = 1;
    double ts = 1e6 * (e->ts - offset_s - origin_s);
    put(&b, ",\n{\"ph\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,", e->dur < 0 ? "i" : "X", pid,
        e->track, ts);
    if (e->dur < 0) put(&b, "\"s\":\"t\",");
    else put(&b, "\"dur\":%.3f,", 1e6 * e->dur);
    put(&b, "\"cat\":\"");
    put_str(&b, e->cat);
    put(&b, "\",\"name\":\"");
    put_str(&b, e->name);
    if (e->idx >= 0) put(&b, "%d", e->idx);
    put(&b, "\"");
    if (e->bytes > 0) put(&b, ",\"args\":{\"bytes\":%lld}", e->bytes);
    put(&b, "}");
  }
  for (int t = 0; t < CDDP_TRACK_MAX && g.ring; t++) {
    if (!used[t]) continue;
    put(&b, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"",
        pid, t);
    put_str(&b, g.track_names[t][0] ? g.track_names[t] : "track");
    put(&b, "\"}},\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_sort_index\","
        "\"args\":{\"sort_index\":%d}}", pid, t, t);
  }
  *len = b.len;
  return b.s;
}

void cddp_trace_shutdown(void) {
  cddp_trace_set_active(0);
  if (g.dev) {
    for (int i = 0; i < g.n_dev; i++) {
      g.be->event_destroy(g.dev[i].start);
      g.be->event_destroy(g.dev[i].end);
    }
    g.be->event_destroy(g.ref);
  }
  free(g.dev);
  free(g.ring);
  free(g.track_names);
  memset(&g, 0, sizeof g);
}
