/* The table of model descriptors, model creation, destruction and the
 * memory report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "model/model_internal.h"

cddp_model *cddp_model_alloc(const cddp_model_config *cfg, const cddp_data_info *data,
                             const cddp_backend *be, const cddp_model_ops *ops, cddp_lctx *c) {
  if (cfg->precision != CDDP_F32 && cfg->precision != CDDP_F16 && cfg->precision != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "--precision: %s is not fp32, fp16 or bf16",
             cddp_dtype_name(cfg->precision));
  if (cfg->batch < 1) cddp_die(CDDP_EXIT_USAGE, "--batch-size %d: must be >= 1", cfg->batch);
  cddp_model *m = cddp_xcalloc(sizeof *m, "model");
  m->ops = ops;
  m->be = be;
  m->cfg = *cfg;
  m->data = *data;
  cddp_params_init(&m->params);
  *c = (cddp_lctx){.be = be, .ps = &m->params, .amp = cfg->precision};
  return m;
}

void cddp_model_alloc_params(cddp_model *m, cddp_lctx *c) {
  cddp_params_finalize(&m->params);
  cddp_params_alloc(&m->params, m->be, m->cfg.precision);
  m->loss_sum = m->be->malloc(sizeof(float));
  m->be->memset0(m->loss_sum, sizeof(float), m->be->compute);
}

void cddp_model_plan(cddp_model *m, cddp_planner *pl, void (*plan)(cddp_model *, cddp_planner *)) {
  cddp_planner_measure(pl);
  plan(m, pl);
  size_t act = pl->act.used, ws = pl->ws_peak;
  cddp_planner_alloc(pl, m->be, act, ws);
  plan(m, pl);
  m->activation_bytes = act;
  m->workspace_bytes = ws;
}

void cddp_model_free_common(cddp_model *m) {
  if (m->loss_sum) m->be->free(m->loss_sum);
  cddp_params_free(&m->params);
  free(m);
}

static const cddp_model_desc *const g_models[] = {
#define CDDP_MODEL(name) &cddp_model_##name,
#include "model/model_list.h"
};
#define N_MODELS ((int)(sizeof g_models / sizeof *g_models))

const cddp_model_desc *cddp_model_at(int i) { return i >= 0 && i < N_MODELS ? g_models[i] : NULL; }

const cddp_model_desc *cddp_model_find(const char *name) {
  for (int i = 0; name && i < N_MODELS; i++)
    if (!strcmp(g_models[i]->name, name)) return g_models[i];
  return NULL;
}

const char *cddp_model_variant_name(const cddp_model_desc *d, int i) {
  if (i < 0 || i >= d->n_variants) return NULL;
  return *(const char *const *)((const char *)d->variants + (size_t)i * d->variant_size);
}

const void *cddp_model_variant(const cddp_model_desc *d, const char *name) {
  char known[256];
  size_t len = 0;
  for (int i = 0; name && i < d->n_variants; i++) {
    const char *v = cddp_model_variant_name(d, i);
    if (!strcmp(v, name)) return (const char *)d->variants + (size_t)i * d->variant_size;
    len += snprintf(known + len, sizeof known - len, "%s%s", i ? "|" : "", v);
  }
  if (!name || !*name || !strcmp(name, "auto")) return d->variants;
  cddp_die(CDDP_EXIT_USAGE, "--variant %s: not a variant of --model %s (one of %s)", name,
           d->name, known);
}

cddp_model *cddp_model_create(const cddp_model_config *cfg, const cddp_data_info *data,
                              const cddp_backend *be, const cddp_model_comm *comm) {
  const cddp_model_desc *d = cddp_model_find(cfg->arch);
  if (!d) {
    char known[256];
    size_t len = 0;
    for (int i = 0; i < N_MODELS; i++)
      len += snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", g_models[i]->name);
    cddp_die(CDDP_EXIT_USAGE, "--model %s: unknown (%s)", cfg->arch ? cfg->arch : "(none)", known);
  }
  if (data->schema != d->schema)
    cddp_die(CDDP_EXIT_USAGE, "--model %s needs a %s dataset", d->name, cddp_schema_name(d->schema));
  return d->create(cfg, data, be, comm);
}

void cddp_model_destroy(cddp_model *m) {
  if (m) m->ops->destroy(m);
}

size_t cddp_model_extra_state_bytes(const cddp_model *m) {
  return m->ops->extra_state_bytes ? m->ops->extra_state_bytes(m) : 0;
}

void cddp_model_save_extra_state(const cddp_model *m, void *dst) {
  if (m->ops->save_extra_state) m->ops->save_extra_state(m, dst);
}

void cddp_model_load_extra_state(cddp_model *m, const void *src) {
  if (m->ops->load_extra_state) m->ops->load_extra_state(m, src);
}

static double mib(size_t bytes) { return bytes / (1024.0 * 1024.0); }

void cddp_model_print_memory(const cddp_model *m, int optimizer_states_per_param) {
  const cddp_params *ps = &m->params;
  size_t pbytes = ps->n_master * sizeof(float);
  size_t hbytes = ps->half ? ps->n_dense * cddp_dtype_size(ps->half_t) : 0;
  size_t gbytes = ps->n_dense * sizeof(float);
  size_t obytes = (size_t)optimizer_states_per_param * ps->n_master * sizeof(float);
  size_t nsparse = 0;
  for (int i = 0; i < ps->n; i++) nsparse += (ps->p[i].flags & CDDP_PARAM_SPARSE) != 0;
  cddp_log_info("model %s (%s): %d parameter tensors (%zu sparse tables), %zu parameters",
                m->cfg.arch, m->cfg.variant ? m->cfg.variant : "default", ps->n, nsparse,
                ps->n_master);
  cddp_log_info("memory: parameters %.2f MiB (+ half copy %.2f MiB), gradients %.2f MiB, "
                "optimizer state %.2f MiB, activations %.2f MiB, scratch %.2f MiB",
                mib(pbytes), mib(hbytes), mib(gbytes), mib(obytes), mib(m->activation_bytes),
                mib(m->workspace_bytes));
}
