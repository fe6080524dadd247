/* The op list of the backend table (ops.h): one CDDP_OP(ret, name, params)
 * per function pointer of struct cddp_backend, in table order, each with its
 * contract (the conventions that hold for every op are at the top of ops.h).
 *
 * X-macro: define CDDP_OP before including this file; it is expanded once per
 * op and undefined at the end. From this one list come the struct itself
 * (ops.h), the prototypes of every backend (a backend named PREFIX defines
 * PREFIX_name for every op: cpu_* in kernels/cpu, cu_* in kernels/cuda), each
 * backend's table and the completeness check (cddp_backend_missing_op). A new
 * op is one entry here plus its implementation in every backend.
 * No include guard: it is meant to be included several times. */
/* ---- memory, streams, events ------------------------------------------ */
CDDP_OP(void *, malloc, (size_t bytes))           /* dies on failure; set-up only */
CDDP_OP(void, free, (void *p))
CDDP_OP(void *, host_alloc, (size_t bytes))       /* pinned on CUDA; dies on failure */
CDDP_OP(void, host_free, (void *p))
CDDP_OP(void, memcpy_h2d, (void *dst, const void *src, size_t bytes, cddp_stream *s))
CDDP_OP(void, memcpy_d2h, (void *dst, const void *src, size_t bytes, cddp_stream *s))
CDDP_OP(void, memcpy_d2d, (void *dst, const void *src, size_t bytes, cddp_stream *s))
CDDP_OP(void, memset0, (void *dst, size_t bytes, cddp_stream *s))
CDDP_OP(void, stream_sync, (cddp_stream *s))
CDDP_OP(cddp_event *, event_create, (void))
CDDP_OP(void, event_destroy, (cddp_event *e))
CDDP_OP(void, event_record, (cddp_event *e, cddp_stream *s))
CDDP_OP(void, stream_wait_event, (cddp_stream *s, cddp_event *e)) /* s waits on e, host does not */
CDDP_OP(void, event_sync, (cddp_event *e))       /* host waits */
CDDP_OP(float, event_elapsed_ms, (cddp_event *start, cddp_event *end)) /* both completed */
CDDP_OP(void, set_threads, (int n))              /* CPU: OpenMP + OpenBLAS threads; CUDA: no-op */
CDDP_OP(void, shutdown, (void))

/* ---- dense linear algebra --------------------------------------------- */
CDDP_OP(void, gemm, (const cddp_gemm_args *a))
/* db[j] += sum_i dy[i*ldy + j], i < m, j < n */
CDDP_OP(void, bias_grad, (const float *dy, int m, int n, int ldy, float *db))
/* dx[i] = dy[i] * act'(pre[i]), n elements */
CDDP_OP(void, act_bwd, (cddp_act act, const float *pre, const float *dy, float *dx, size_t n))
/* act_bwd over m contiguous rows of n, then bias_grad of the result
 * (db[j] += sum_i dx[i*n + j]); one pass where the backend can fuse them */
CDDP_OP(void, act_bias_bwd, (cddp_act act, const float *pre, const float *dy, float *dx, int m,
        int n, float *db))
/* y[i] = act(x[i]) (ReLU/GELU as a standalone op) */
CDDP_OP(void, act_fwd, (cddp_act act, const float *x, float *y, size_t n))

/* ---- elementwise / copies --------------------------------------------- */
CDDP_OP(void, fill, (float *x, size_t n, float v))
CDDP_OP(void, scale, (float *x, size_t n, float alpha))                  /* x *= alpha */
/* x[r*ld + c] *= f[r] for r < rows, c < cols (a factor per row) */
CDDP_OP(void, scale_rows, (float *x, int ld, int rows, int cols, const float *f))
CDDP_OP(void, axpy, (float *y, const float *x, size_t n, float alpha))   /* y += alpha x */
/* out = a + b (out may alias a or b) */
CDDP_OP(void, add, (float *out, const float *a, const float *b, size_t n))
/* dst[r*ldd + c] = src[r*lds + c] for r < rows, c < cols */
CDDP_OP(void, copy2d, (float *dst, int ldd, const float *src, int lds, int rows, int cols))
/* element type conversion; F32 <-> F16/BF16 (RNE), n elements */
CDDP_OP(void, cast, (void *dst, cddp_dtype dst_t, const void *src, cddp_dtype src_t, size_t n))

/* ---- normalisation ------------------------------------------------------ */
/* y = (x - mean) * rstd * w + b over the last dim C, N rows; saves mean/rstd [N] */
CDDP_OP(void, layernorm_fwd, (const float *x, const float *w, const float *b, float *y,
        float *mean, float *rstd, int N, int C, float eps))
/* dw, db accumulate; dx is overwritten, or accumulated into when
 * accumulate_dx is nonzero (a residual stream's gradient updated in place) */
CDDP_OP(void, layernorm_bwd, (const float *dy, const float *x, const float *w, const float *mean,
        const float *rstd, float *dx, float *dw, float *db, int N, int C, int accumulate_dx))
/* y = x / max(||x||_2, eps) per row; saves norm [N] (the clamped norm) */
CDDP_OP(void, l2norm_fwd, (const float *x, float *y, float *norm, int N, int C, float eps))
CDDP_OP(void, l2norm_bwd, (const float *dy, const float *y, const float *norm, float *dx, int N,
        int C))
/* row softmax over C columns (numerically stable) and its backward */
CDDP_OP(void, softmax_fwd, (const float *x, float *y, int N, int C))
CDDP_OP(void, softmax_bwd, (const float *y, const float *dy, float *dx, int N, int C))

/* ---- attention ----------------------------------------------------------- */
/* Multi-head scaled dot-product attention, no mask, scale 1/sqrt(D).
 * qkv: fp32 [B, T, 3, H, D] (timm's qkv Linear output); out: fp32 [B, T, H, D].
 * compute: F32, or F16/BF16 to take half-precision q, k, v (fp32 accumulation).
 * ws: saved state for backward, attention_ws_bytes(B,T,H,D) bytes (the CPU
 * backend keeps the probabilities, a flash kernel the log-sum-exp). */
CDDP_OP(size_t, attention_ws_bytes, (int B, int T, int H, int D))
CDDP_OP(void, attention_fwd, (const float *qkv, float *out, void *ws, int B, int T, int H, int D,
        cddp_dtype compute))
/* dqkv overwritten, same layout as qkv */
CDDP_OP(void, attention_bwd, (const float *dout, const float *qkv, const float *out,
        const void *ws, float *dqkv, int B, int T, int H, int D, cddp_dtype compute))

/* ---- losses ---------------------------------------------------------------
 * grad_scale multiplies every gradient (the caller passes 1/local_batch);
 * loss_scale, if not NULL, is the AMP loss scale (device scalar) and multiplies
 * the gradients too. loss_sum (device scalar) accumulates the SUM of the
 * per-sample losses (unscaled). */
/* BCE with logits; labels fp32 0/1; dlogits[i] = s * (sigmoid(x_i) - y_i) */
CDDP_OP(void, bce_logits, (const float *logits, const float *labels, int n, float grad_scale,
        const float *loss_scale, float *loss_sum, float *dlogits))
/* softmax cross-entropy over C classes, logits with row stride ld, int32
 * labels in [0,C); label smoothing eps as PyTorch (target = (1-eps) one-hot
 * + eps/C). dlogits has row stride ld. Rows with label -1 are ignored. */
CDDP_OP(void, xent, (const float *logits, int ld, const int32_t *labels, int N, int C,
        float smoothing, float grad_scale, const float *loss_scale, float *loss_sum,
        float *dlogits))

/* ---- embeddings --------------------------------------------------------------
 * A bag is bag_size ids (a fixed width; -1 pads); bag b's ids start at
 * ids + b*ids_ld (ids_ld >= bag_size; DLRM reads column t of sparse[B,26]
 * with ids = sparse + t, ids_ld = 26, bag_size = 1).
 * mean != 0 divides by the number of valid ids (an empty bag gives zeros). */
/* out[b*ldo + d] = sum/mean over ids of table[id*dim + d] */
CDDP_OP(void, embbag_fwd, (const float *table, int dim, const int32_t *ids, int ids_ld, int nbags,
        int bag_size, int mean, float *out, int ldo))
/* Sparse gradient of one table: the per-id sums of dout rows (divided by the
 * bag count for mean), as SORTED unique ids. Output capacity is
 * cap = nbags*bag_size: out_ids[cap], out_rows[cap*dim]; after the unique ids
 * the remaining entries are id -1 with zero rows. ws: embbag_bwd_ws_bytes. */
CDDP_OP(size_t, embbag_bwd_ws_bytes, (int cap, int dim))
CDDP_OP(void, embbag_bwd, (const int32_t *ids, int ids_ld, int nbags, int bag_size, int mean,
        const float *dout, int ldo, int dim, int32_t *out_ids, float *out_rows, void *ws))
/* Merge (id, row) pairs: sums rows with equal ids, output sorted unique ids
 * padded with -1/zero rows to n. Deterministic (same input, same bits).
 * ws: sparse_coalesce_ws_bytes(n, dim). */
CDDP_OP(size_t, sparse_coalesce_ws_bytes, (int n, int dim))
CDDP_OP(void, sparse_coalesce, (const int32_t *ids, const float *rows, int n, int dim,
        int32_t *out_ids, float *out_rows, void *ws))
/* dense[id*dim + d] += rows[i*dim + d] (for tables reduced densely) */
CDDP_OP(void, sparse_to_dense, (const int32_t *ids, const float *rows, int n, int dim,
        float *dense))
/* Segmented bags (PyTorch's EmbeddingBag with offsets): segment s holds
 * ids[ends[s-1] .. ends[s]) (ends[-1] = 0, ends non-decreasing), any length.
 * Forward sums its rows: out[s*ldo + d] = sum of table[id*dim + d] (zeros for
 * an empty segment), in id order. Backward gives each id its segment's
 * gradient, unmerged: rows[k*dim + d] = dout[s*ldo + d] for every k of
 * segment s (ends[nseg-1] rows written; coalesce them with sparse_coalesce). */
CDDP_OP(void, embbag_seg_fwd, (const float *table, int dim, const int32_t *ids,
        const int32_t *ends, int nseg, float *out, int ldo))
CDDP_OP(void, embbag_seg_bwd, (const float *dout, int ldo, const int32_t *ends, int nseg, int dim,
        float *rows))

/* ---- model-specific ---------------------------------------------------------- */
/* DLRM dot interaction. T: [B, F, D] (feature 0 = bottom-MLP output).
 * out[b, 0:D] = T[b,0,:]; then, for i in 1..F-1, j in 0..i-1 (i outer):
 * out[b, D + p] = <T[b,i,:], T[b,j,:]>  (facebookresearch/dlrm's li/lj order).
 * Row stride of out: ldo >= D + F(F-1)/2. */
CDDP_OP(void, dot_interact_fwd, (const float *T, int B, int F, int D, float *out, int ldo))
CDDP_OP(void, dot_interact_bwd, (const float *dout, int ldo, const float *T, int B, int F, int D,
        float *dT))
/* ViT input: uint8 images [B,H,W,C] -> patches fp32 [B, nP, C*P*P] with
 * patch-row-major order and (c, ky, kx) inside a patch (PyTorch conv weight
 * [D,C,P,P] flattened), value = (x/255 - mean[c]) / std[c]. */
CDDP_OP(void, patchify, (const uint8_t *img, int B, int H, int W, int C, int P, const float *mean,
        const float *std, float *out))
/* x[b,0,:] = cls + pos[0]; x[b,1+p,:] = patch[b,p,:] + pos[1+p]; T = nP+1 */
CDDP_OP(void, vit_tokens_fwd, (const float *patch, const float *cls, const float *pos, float *x,
        int B, int nP, int D))
/* dpatch overwritten; dcls, dpos accumulate */
CDDP_OP(void, vit_tokens_bwd, (const float *dx, float *dpatch, float *dcls, float *dpos, int B,
        int nP, int D))

/* ---- AMP, norms, optimizers ------------------------------------------------ */
/* g *= 1/scale; *found_inf = 1 if any result is inf/NaN (never reset here). */
CDDP_OP(void, amp_unscale_check, (float *g, size_t n, const float *scale, int *found_inf))
/* *found = 1 if any of x[0..n) is inf/NaN (never reset here); x is only read.
 * The divergence check of the parameters at logging steps. */
CDDP_OP(void, nonfinite_any, (const float *x, size_t n, int *found))
/* GradScaler update: if *found_inf: scale *= backoff, tracker = 0; else
 * tracker++, and if tracker == interval: scale *= growth, tracker = 0. */
CDDP_OP(void, amp_update_scale, (float *scale, int *tracker, const int *found_inf, float growth,
        float backoff, int interval))
/* *acc += sum x[i]^2 (accumulated in double where possible) */
CDDP_OP(void, sumsq, (const float *x, size_t n, float *acc))
/* x *= min(1, max_norm / (sqrt(*sumsq) + 1e-6)) (global-norm clipping) */
CDDP_OP(void, clip_by_norm, (float *x, size_t n, const float *sumsq, float max_norm))
/* Dense fused updates over n elements. If skip != NULL and *skip != 0 the
 * update does nothing (an AMP step with inf/NaN). If half != NULL the new
 * parameters are also written there as half_t (the AMP weight copy).
 * Semantics follow torch.optim: SGD (momentum, dampening 0, nesterov,
 * L2 weight decay added to the gradient), AdamW (decoupled decay,
 * bias correction with *step, the 1-based step count on the device),
 * Adagrad (L2 weight decay, lr_decay 0, initial accumulator 0). */
CDDP_OP(void, sgd_update, (float *p, const float *g, float *mom, size_t n, float lr,
        float momentum, int nesterov, float wd, const int *skip, void *half, cddp_dtype half_t))
CDDP_OP(void, adamw_update, (float *p, const float *g, float *m, float *v, size_t n, float lr,
        float beta1, float beta2, float eps, float wd, const int *step, const int *skip,
        void *half, cddp_dtype half_t))
CDDP_OP(void, adagrad_update, (float *p, const float *g, float *sum, size_t n, float lr, float eps,
        float wd, const int *skip, void *half, cddp_dtype half_t))
/* *step += 1 unless *skip (the device-side optimizer step count) */
CDDP_OP(void, step_advance, (int *step, const int *skip))
/* Sparse row updates of an embedding table [rows, dim] from coalesced
 * (id, row) pairs (ids -1 skipped, ids unique). Adagrad is element-wise
 * (torch.optim.Adagrad with sparse gradients); state has the table's shape. */
CDDP_OP(void, sparse_sgd, (float *table, int dim, const int32_t *ids, const float *rows, int n,
        float lr, const int *skip))
CDDP_OP(void, sparse_adagrad, (float *table, float *state, int dim, const int32_t *ids,
        const float *rows, int n, float lr, float eps, const int *skip))

#undef CDDP_OP
