/* The model interface the trainer drives. A model is an ordered list of
 * layers with hand-written forward and backward (DESIGN §3); it calls only
 * ops.h. Each model is described by a cddp_model_desc defined in its own
 * file and listed in model_list.h: dlrm, two_tower and vit. */
#ifndef CDDP_MODEL_MODEL_H
#define CDDP_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"
#include "data/batch.h"
#include "model/params.h"

/* Called during backward the moment a parameter's gradient is final (dense:
 * its slice of params.grad; sparse: its sp_ids/sp_rows). The DDP reducer
 * installs it; NULL fn means nobody listens. */
typedef struct {
  void (*fn)(void *ctx, int param_id);
  void *ctx;
} cddp_ready_hook;

/* Collectives the two-tower model needs to use negatives from all ranks. The
 * trainer provides them from src/ddp; the model knows no MPI or NCCL. Both
 * act on device buffers in compute-stream order and return when the result
 * may be used by the next op on the compute stream. */
typedef struct {
  int rank, world;
  void *ctx;
  /* recv[r*bytes ... ] = send of rank r, for every rank r */
  void (*allgather)(void *ctx, const void *send, void *recv, size_t bytes);
  /* buf = sum over ranks of buf (fp32) */
  void (*allreduce_sum)(void *ctx, float *buf, size_t n);
  /* Sharded embeddings: posts an all-to-all(v) (byte counts and displacements
   * per rank, as cddp_alltoallv; the arrays stay valid until the wait) and
   * returns at once with a handle for wait(). */
  void *(*alltoallv)(void *ctx, const void *send, const size_t *send_bytes,
                     const size_t *send_displs, void *recv, const size_t *recv_bytes,
                     const size_t *recv_displs);
  void (*wait)(void *ctx, void *handle);
  /* Set-up only (may be NULL): the bytes, send plus receive side, of the
   * largest all-to-all(v) a caller keeps in flight, so that the backend can
   * plan its buffers for it next to everyone else's (cddp_comm_reserve). */
  void (*reserve)(void *ctx, size_t bytes);
} cddp_model_comm;

typedef struct {
  const char *arch;    /* "dlrm", "two_tower", "vit" */
  const char *variant; /* dlrm: "kaggle"|"terabyte"; vit: "vit-fmnist"|"deit-tiny"|"deit-small";
                          two_tower: "default" */
  int batch;           /* rows per rank per micro-step (capacity) */
  cddp_dtype precision;/* F32, F16 or BF16 (GEMM/attention inputs) */
  uint64_t seed;       /* initialisation */
  int64_t dense_embedding_threshold; /* tables with rows <= this get dense gradients */
  float label_smoothing;  /* vit */
  float temperature;      /* two_tower */
  int gather_negatives;   /* two_tower: in-batch negatives from all ranks */
  int emb_dim;            /* two_tower embedding width (0 = default) */
  /* Embedding tables across ranks (model/shard_plan.h): mode replicated|table|
   * row|auto (NULL: replicated), per-table overrides, and the optimizer floats
   * per embedding weight (for the plan's memory report). Needs the comm. */
  const char *embedding_sharding, *embedding_plan;
  int emb_state_floats;
  cddp_dtype grad_wire; /* --grad-compress: F32, F16 or BF16 (sharded tables' gradients) */
  int grad_accum;       /* micro-steps per optimizer step (sharded tables keep them all) */
} cddp_model_config;

typedef struct cddp_model cddp_model;

typedef struct {
  /* Forward on a device batch (b->n rows valid). Accumulates the sum of the
   * per-sample losses into *m->loss_sum and, when train != 0, also computes
   * the gradient of the loss w.r.t. the output, scaled by grad_scale (the
   * trainer passes 1/b->n) and by *loss_scale if not NULL (AMP). */
  void (*forward)(cddp_model *m, const cddp_batch *b, int train, float grad_scale,
                  const float *loss_scale);
  /* Backward of the last training forward: parameter gradients accumulate
   * into params.grad (dense) or are written to sp_ids/sp_rows (sparse),
   * and hook->fn is called for every parameter once, when its gradient is
   * final. */
  void (*backward)(cddp_model *m, const cddp_batch *b, const cddp_ready_hook *hook);
  /* two_tower only (NULL otherwise): L2-normalised embeddings for evaluation,
   * out [n, emb_dim] on the device. embed_items takes the ids on the device
   * and their host copies (sharded tables bucket ids on the host; on the CPU
   * backend they may be the same arrays). */
  void (*embed_users)(cddp_model *m, const cddp_batch *b, float *out);
  void (*embed_items)(cddp_model *m, const int32_t *item_id, const int32_t *item_cat,
                      const int32_t *h_item_id, const int32_t *h_item_cat, int n, float *out);
  void (*destroy)(cddp_model *m);
  /* Optional (NULL for models without any): host state outside the
   * parameters that training changes and that a bit-exact resume needs
   * (two_tower: the logQ estimator). The size is fixed at creation;
   * save_extra_state writes exactly that many bytes to dst, and
   * load_extra_state restores them (this rank's state; ranks may differ).
   * Use the cddp_model_*extra_state wrappers below. */
  size_t (*extra_state_bytes)(const cddp_model *m);
  void (*save_extra_state)(const cddp_model *m, void *dst);
  void (*load_extra_state)(cddp_model *m, const void *src);
} cddp_model_ops;

struct cddp_model {
  const cddp_model_ops *ops;
  const cddp_backend *be;
  cddp_model_config cfg;
  cddp_data_info data;
  cddp_params params;
  float *loss_sum;   /* device scalar */
  /* Output of the last forward, device memory: ctr: [n] logits;
   * vit: [n, out_cols] logits; two_tower: [n, out_cols] in-batch logits. */
  float *logits;
  int out_cols;
  int emb_dim;       /* two_tower: output embedding width */
  size_t activation_bytes, workspace_bytes; /* planned memory, for the start-up report */
  /* Sharded embeddings, accumulated since the trainer last reset them: time
   * the model waited on its all-to-alls and bytes this rank sent in them. */
  double a2a_wait_ms, a2a_bytes;
  int sharded;       /* some table is split across ranks (forward is collective) */
  int micro;         /* set by the trainer before each backward: micro-step of the step */
  void *impl;
};

/* What the rest of cddp knows about a model: the CLI help, option
 * validation, the schema check, the evaluation metric and the start-up
 * agreement are derived from these fields. */
typedef struct {
  const char *name; /* --model */
  /* The variants (--variant): an array of the model's own config structs,
   * each beginning with its name (const char *); the first is the default. */
  const void *variants;
  size_t variant_size;
  int n_variants;
  cddp_schema schema;  /* the dataset schema it trains and evaluates on */
  const char *metric;  /* evaluation metric: "auc", "accuracy" or "recall" */
  const char *options; /* the model-specific options it reads (for --help) */
  cddp_model *(*create)(const cddp_model_config *cfg, const cddp_data_info *data,
                        const cddp_backend *be, const cddp_model_comm *comm);
} cddp_model_desc;

/* Fills the variant fields of a cddp_model_desc from a static array. */
#define CDDP_MODEL_VARIANTS(array) \
  .variants = (array), .variant_size = sizeof *(array), .n_variants = sizeof(array) / sizeof *(array)

#define CDDP_MODEL(name) extern const cddp_model_desc cddp_model_##name;
#include "model/model_list.h"

/* The model called `name`, or NULL. */
const cddp_model_desc *cddp_model_find(const char *name);
/* The i-th model of model_list.h (NULL past the end). */
const cddp_model_desc *cddp_model_at(int i);
/* The name of variant i of d (NULL past the end). */
const char *cddp_model_variant_name(const cddp_model_desc *d, int i);
/* The config of the variant called `name` (NULL, "" and "auto": the first);
 * dies with exit 2 naming the variants when d has none of that name. */
const void *cddp_model_variant(const cddp_model_desc *d, const char *name);

/* Builds a model: registers parameters, plans and allocates every buffer,
 * initialises parameters from cfg->seed as the PyTorch reference does (the
 * distributions, not the same random stream). comm may be NULL (world 1).
 * Dies with exit code 2 on a bad configuration, naming the option. */
cddp_model *cddp_model_create(const cddp_model_config *cfg, const cddp_data_info *data,
                              const cddp_backend *be, const cddp_model_comm *comm);
void cddp_model_destroy(cddp_model *m);
/* Prints planned memory (parameters, gradients, optimizer state given its
 * floats per parameter, activations), as llm.c does, on rank 0. */
void cddp_model_print_memory(const cddp_model *m, int optimizer_states_per_param);
/* The optional extra state of m->ops (0 bytes / no-ops when the model has none). */
size_t cddp_model_extra_state_bytes(const cddp_model *m);
void cddp_model_save_extra_state(const cddp_model *m, void *dst);
void cddp_model_load_extra_state(cddp_model *m, const void *src);

#endif
