#include "data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/schema.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct {
  cddp_batch b;
  void *mem;
  int state;
  int64_t gen, seq;
} slot;

/* A loader thread and its private buffers. */
typedef struct {
  struct cddp_loader *l;
  pthread_t thread;
  int64_t *idx;
  void *scratch;
  uint32_t *order;
  uint64_t *sortbuf;
  uint8_t *aug_tmp; /* one image, when augmenting */
} worker;

struct cddp_loader {
  cddp_loader_opts o;
  cddp_dataset *d;
  cddp_sampler *s;
  cddp_data_info info; /* tables min'd with max_table_rows */
  int64_t samples, nbatches;
  int nslots;
  slot *slots;
  int nworkers;
  worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv_prod, cv_cons;
  /* shared, under mu */
  int quit;
  int64_t gen, epoch, start_batch;
  int64_t want_seq;
  int held_prev, held_cur;
  int64_t next_seq;      /* next batch to claim */
  int64_t sampler_ready; /* generation the sampler's epoch is set for */
  int sampler_busy;      /* a thread is running set_epoch */
};

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Lays out one batch in mem (or measures when mem is NULL); returns bytes. */
static size_t layout(const cddp_data_info *in, int cap, cddp_batch *b, uint8_t *mem) {
  size_t off = 0;
  cddp_batch_field f[CDDP_BATCH_MAX_FIELDS];
  int nf = cddp_batch_fields(in, f);
  for (int i = 0; i < nf; i++) {
    if (mem) CDDP_BATCH_ARRAY(b, f[i]) = mem + off;
    off += align64(f[i].row_bytes * (size_t)cap);
  }
  if (mem) b->index = (int64_t *)(mem + off);
  off += align64(sizeof(int64_t) * (size_t)cap);
  return off;
}

/* Augmentation works on the batch's images (a schema whose layout has them). */
static int has_images(const cddp_data_info *in) {
  cddp_batch_field f[CDDP_BATCH_MAX_FIELDS];
  int nf = cddp_batch_fields(in, f);
  for (int i = 0; i < nf; i++)
    if (f[i].off == offsetof(cddp_batch, images)) return 1;
  return 0;
}

/* Reads and checks the n rows w->idx into the slot (sampler already asked). */
static void fill(worker *w, slot *sl, int n, int64_t epoch) {
  cddp_loader *l = w->l;
  cddp_batch *bt = &sl->b;
  const int64_t *rows = w->idx;
  cddp_dataset *d = l->d;
  /* Shuffled rows are visited in ascending order (results unchanged). */
  const uint32_t *ord = NULL;
  if (!l->o.eval && l->o.shuffle != CDDP_SHUFFLE_NONE) {
    cddp_dataset_sort_order(rows, n, w->order, w->sortbuf);
    ord = w->order;
  }
  cddp_fill f = {.d = d, .b = bt, .rows = rows, .order = ord, .n = n, .scratch = w->scratch,
                 .max_table_rows = l->o.max_table_rows};
  cddp_schema_get(d->info.schema)->fill(&f);
  if (w->aug_tmp)
    cddp_augment_images(&l->o.augment, bt->images, n, d->info.height, d->info.width, d->info.channels, rows,
                        l->o.seed, epoch, w->aug_tmp);
  memcpy(bt->index, rows, (size_t)n * sizeof(int64_t));
  bt->n = n;
}

static void *thread_main(void *arg) {
  worker *w = arg;
  cddp_loader *l = w->l;
  cddp_h5_quiet(); /* HDF5's error stack is per thread */
  pthread_mutex_lock(&l->mu);
  for (;;) {
    if (l->quit) break;
    if (l->gen == 0) {
      pthread_cond_wait(&l->cv_prod, &l->mu);
      continue;
    }
    if (l->sampler_ready != l->gen) { /* a new epoch: one thread sets the sampler up */
      if (l->sampler_busy) {
        pthread_cond_wait(&l->cv_prod, &l->mu);
        continue;
      }
      l->sampler_busy = 1;
      int64_t g = l->gen, epoch = l->epoch;
      pthread_mutex_unlock(&l->mu);
      cddp_sampler_set_epoch(l->s, epoch);
      pthread_mutex_lock(&l->mu);
      l->sampler_busy = 0;
      l->sampler_ready = g;
      pthread_cond_broadcast(&l->cv_prod);
      continue;
    }
    int free_slot = -1;
    if (l->next_seq < l->nbatches)
      for (int i = 0; i < l->nslots; i++)
        if (l->slots[i].state == SLOT_FREE) {
          free_slot = i;
          break;
        }
    if (free_slot < 0) {
      pthread_cond_wait(&l->cv_prod, &l->mu);
      continue;
    }
    slot *sl = &l->slots[free_slot];
    sl->state = SLOT_FILLING;
    sl->gen = l->gen;
    sl->seq = l->next_seq++;
    /* The sampler is shared: ask it under the lock (cheap next to the reads). */
    int64_t first = sl->seq * l->o.batch;
    int n = (int)(l->samples - first < l->o.batch ? l->samples - first : l->o.batch);
    cddp_sampler_get(l->s, first, n, w->idx);
    int64_t epoch = l->epoch;
    pthread_mutex_unlock(&l->mu);
    fill(w, sl, n, epoch);
    pthread_mutex_lock(&l->mu);
    sl->state = sl->gen == l->gen ? SLOT_READY : SLOT_FREE; /* stale after a restart */
    pthread_cond_broadcast(&l->cv_cons);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

cddp_loader *cddp_loader_open(const char *path, const cddp_loader_opts *o) {
  if (o->batch < 1) cddp_die(CDDP_EXIT_USAGE, "loader: batch must be >= 1 (got %d)", o->batch);
  if (o->max_table_rows < 0) cddp_die(CDDP_EXIT_USAGE, "loader: max_table_rows must be >= 0");
  cddp_loader *l = cddp_xcalloc(sizeof *l, "loader");
  l->o = *o;
  if (l->o.prefetch <= 0) l->o.prefetch = 2;
  if (l->o.world <= 0) l->o.world = 1;
  l->d = cddp_dataset_open(path);
  l->info = l->d->info;
  if (o->max_table_rows > 0)
    for (int k = 0; k < CDDP_CTR_SPARSE; k++)
      if (l->info.table_sizes[k] > o->max_table_rows) l->info.table_sizes[k] = o->max_table_rows;
  cddp_sampler_opts so = {
      .n = l->info.rows, .rank = l->o.rank, .world = l->o.world, .seed = o->seed, .shuffle = o->shuffle,
      .drop_last = o->drop_last, .eval = o->eval,
      .block_rows = o->block_rows ? o->block_rows : (l->d->chunk_rows ? l->d->chunk_rows : 4096),
      .window_blocks = o->window_blocks ? o->window_blocks : 16};
  l->s = cddp_sampler_create(&so);
  l->samples = cddp_sampler_num_samples(l->s);
  if (o->eval) {
    l->nbatches = (l->samples + o->batch - 1) / o->batch;
  } else {
    l->nbatches = l->samples / o->batch;
    if (l->nbatches == 0)
      cddp_die(CDDP_EXIT_USAGE, "%s: batch %d per rank is larger than the %lld samples rank %d gets per epoch",
               path, o->batch, (long long)l->samples, l->o.rank);
  }
  l->nslots = l->o.prefetch + 2;
  l->slots = cddp_xcalloc(sizeof(slot) * (size_t)l->nslots, "loader ring");
  size_t bytes = layout(&l->info, o->batch, NULL, NULL);
  for (int i = 0; i < l->nslots; i++) {
    slot *sl = &l->slots[i];
    sl->mem = o->host_alloc ? o->host_alloc(bytes) : cddp_xmalloc(bytes, "loader batch");
    if (!sl->mem) cddp_die(CDDP_EXIT_RUNTIME, "loader: host_alloc of %zu bytes failed", bytes);
    layout(&l->info, o->batch, &sl->b, sl->mem);
    sl->b.cap = o->batch;
  }
  l->held_prev = l->held_cur = -1;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_prod, NULL);
  pthread_cond_init(&l->cv_cons, NULL);
  if (o->augment.crop_pad < 0)
    cddp_die(CDDP_EXIT_USAGE, "loader: crop padding must be >= 0 (got %d)", o->augment.crop_pad);
  int augment = !o->eval && cddp_augment_active(&o->augment);
  if (augment && !has_images(&l->info))
    cddp_die(CDDP_EXIT_USAGE, "%s: image augmentation needs a cddp.image.v1 dataset", path);
  l->nworkers = o->threads > 0 ? o->threads : 1;
  l->workers = cddp_xcalloc(sizeof(worker) * (size_t)l->nworkers, "loader threads");
  for (int i = 0; i < l->nworkers; i++) {
    worker *w = &l->workers[i];
    w->l = l;
    w->idx = cddp_xmalloc(sizeof(int64_t) * (size_t)o->batch, "loader indices");
    w->scratch = cddp_xmalloc(cddp_dataset_scratch_bytes(l->d, o->batch), "loader scratch");
    w->order = cddp_xmalloc(sizeof(uint32_t) * (size_t)o->batch, "loader order");
    w->sortbuf = cddp_xmalloc(2 * sizeof(uint64_t) * (size_t)o->batch, "loader sort");
    if (augment)
      w->aug_tmp = cddp_xmalloc((size_t)l->info.height * l->info.width * l->info.channels,
                                "loader augmentation");
  }
  for (int i = 0; i < l->nworkers; i++)
    if (pthread_create(&l->workers[i].thread, NULL, thread_main, &l->workers[i]) != 0)
      cddp_die(CDDP_EXIT_RUNTIME, "loader: cannot start loader thread %d", i);
  return l;
}

const cddp_data_info *cddp_loader_info(const cddp_loader *l) { return &l->info; }
int64_t cddp_loader_batches_per_epoch(const cddp_loader *l) { return l->nbatches; }
int64_t cddp_loader_samples_per_epoch(const cddp_loader *l) { return l->samples; }

void cddp_loader_start_epoch_at(cddp_loader *l, int64_t epoch, int64_t batch_index) {
  if (epoch < 0 || batch_index < 0 || batch_index > l->nbatches)
    cddp_die(CDDP_EXIT_USAGE, "loader: cannot start epoch %lld at batch %lld (an epoch has %lld batches)",
             (long long)epoch, (long long)batch_index, (long long)l->nbatches);
  pthread_mutex_lock(&l->mu);
  l->gen++;
  l->epoch = epoch;
  l->start_batch = batch_index;
  l->want_seq = batch_index;
  l->next_seq = batch_index;
  for (int i = 0; i < l->nslots; i++)
    if (l->slots[i].state == SLOT_READY || l->slots[i].state == SLOT_HELD) l->slots[i].state = SLOT_FREE;
  l->held_prev = l->held_cur = -1;
  pthread_cond_broadcast(&l->cv_prod);
  pthread_mutex_unlock(&l->mu);
}

void cddp_loader_start_epoch(cddp_loader *l, int64_t epoch) { cddp_loader_start_epoch_at(l, epoch, 0); }

const cddp_batch *cddp_loader_next(cddp_loader *l) {
  pthread_mutex_lock(&l->mu);
  if (l->gen == 0) cddp_die(CDDP_EXIT_RUNTIME, "loader: next() before start_epoch()");
  if (l->held_prev >= 0) l->slots[l->held_prev].state = SLOT_FREE;
  l->held_prev = l->held_cur;
  l->held_cur = -1;
  pthread_cond_broadcast(&l->cv_prod);
  const cddp_batch *out = NULL;
  if (l->want_seq < l->nbatches) {
    for (;;) {
      int found = -1;
      for (int i = 0; i < l->nslots; i++)
        if (l->slots[i].state == SLOT_READY && l->slots[i].gen == l->gen && l->slots[i].seq == l->want_seq) {
          found = i;
          break;
        }
      if (found >= 0) {
        l->slots[found].state = SLOT_HELD;
        l->held_cur = found;
        l->want_seq++;
        out = &l->slots[found].b;
        break;
      }
      pthread_cond_wait(&l->cv_cons, &l->mu);
    }
  }
  pthread_mutex_unlock(&l->mu);
  return out;
}

void cddp_loader_close(cddp_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->quit = 1;
  pthread_cond_broadcast(&l->cv_prod);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nworkers; i++) pthread_join(l->workers[i].thread, NULL);
  for (int i = 0; i < l->nslots; i++) {
    if (l->o.host_alloc && l->o.host_free) l->o.host_free(l->slots[i].mem);
    else if (!l->o.host_alloc) free(l->slots[i].mem);
  }
  free(l->slots);
  for (int i = 0; i < l->nworkers; i++) {
    worker *w = &l->workers[i];
    free(w->idx);
    free(w->scratch);
    free(w->order);
    free(w->sortbuf);
    free(w->aug_tmp);
  }
  free(l->workers);
  cddp_sampler_destroy(l->s);
  cddp_dataset_close(l->d);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv_prod);
  pthread_cond_destroy(&l->cv_cons);
  free(l);
}
