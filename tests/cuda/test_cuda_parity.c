/* Parity of the CUDA backend with the CPU backend: every op of ops.h on
 * random inputs, compared normwise (fp32 <= 1e-5, TF32 <= 1e-3, fp16/bf16
 * <= 1e-2) or bit for bit (ids, casts, flags). Exits 77 (ctest: skipped)
 * where no CUDA device is usable. */
#include "tests/cuda/parity_util.h"

#include "core/dtype.h"
#include "core/log.h"
#include "kernels/cuda/cuda_backend.h"

const cddp_backend *CPU, *GPU;

static int teardown(void **state) {
  (void)state;
  pu_free_all();
  return 0;
}

/* every op of the list is in the CUDA table (a NULL entry would crash only
 * when a model first calls it) */
static void t_table_complete(void **state) {
  (void)state;
  const char *missing = cddp_backend_missing_op(GPU);
  if (missing) fail_msg("the CUDA table has no %s", missing);
  assert_string_equal(GPU->name, "cuda");
  assert_int_equal(GPU->is_device, 1);
  assert_non_null(GPU->compute);
}

/* ---- memory, streams, events ------------------------------------------------ */
static void t_memory(void **state) {
  (void)state;
  pu_seed(1);
  pair *a = pu_rand(1000, -1, 1); /* uploaded on the compute stream */
  float *d2 = GPU->malloc(1000 * sizeof(float));
  cddp_event *e0 = GPU->event_create(), *e1 = GPU->event_create();
  GPU->event_record(e0, GPU->compute);
  GPU->stream_wait_event(GPU->copy, e0); /* the copy stream reads a->d */
  GPU->event_record(e0, GPU->copy);
  GPU->memcpy_d2d(d2, a->d, 1000 * sizeof(float), GPU->copy);
  GPU->event_record(e1, GPU->copy);
  GPU->stream_wait_event(GPU->compute, e1);
  GPU->scale(d2, 1000, 2.0f);
  GPU->event_sync(e1);
  assert_true(GPU->event_elapsed_ms(e0, e1) >= 0.0f);
  float *back = malloc(1000 * sizeof(float));
  GPU->memcpy_d2h(back, d2, 1000 * sizeof(float), GPU->compute);
  for (int i = 0; i < 1000; i++) assert_true(back[i] == 2.0f * PH(a)[i]);
  GPU->memset0(d2, 1000 * sizeof(float), GPU->comm);
  GPU->stream_sync(GPU->comm);
  GPU->memcpy_d2h(back, d2, 1000 * sizeof(float), GPU->compute);
  for (int i = 0; i < 1000; i++) assert_true(back[i] == 0.0f);
  float *pinned = GPU->host_alloc(64);
  GPU->host_free(pinned);
  GPU->event_destroy(e0);
  GPU->event_destroy(e1);
  GPU->free(d2);
  free(back);
}

/* ---- GEMM ------------------------------------------------------------------- */
static pair *typed_matrix(size_t n, cddp_dtype t) {
  float *f = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) f[i] = pu_f(-1, 1);
  pair *p;
  if (t == CDDP_F32) {
    p = pu_floats(f, n);
  } else {
    uint16_t *h = malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = t == CDDP_F16 ? cddp_f32_to_f16(f[i]) : cddp_f32_to_bf16(f[i]);
    p = pu_bytes(h, n * sizeof(uint16_t));
    free(h);
  }
  free(f);
  return p;
}

static void gemm_case_res(cddp_dtype ab, int ta, int tb, int m, int n, int k, int bias,
                          cddp_act act, int pre, float beta, int ldc_pad, int res, double tol) {
  char what[160];
  snprintf(what, sizeof what, "gemm %s ta%d tb%d %dx%dx%d bias%d act%d pre%d beta%g ldc+%d res%d",
           cddp_dtype_name(ab), ta, tb, m, n, k, bias, (int)act, pre, beta, ldc_pad, res);
  int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + ldc_pad;
  pair *A = typed_matrix((size_t)(ta ? k : m) * lda, ab);
  pair *B = typed_matrix((size_t)(tb ? n : k) * ldb, ab);
  pair *C = pu_rand((size_t)m * ldc, -1, 1);
  pair *bv = bias ? pu_rand(n, -1, 1) : NULL;
  pair *pa = pre ? pu_zero((size_t)m * n * sizeof(float)) : NULL;
  pair *rv = res ? pu_rand((size_t)m * ldc, -1, 1) : NULL; /* residual, ld = ldc */
  cddp_gemm_args a = {.transa = ta, .transb = tb, .m = m, .n = n, .k = k, .alpha = 0.75f,
                      .beta = beta, .ab_type = ab, .lda = lda, .ldb = ldb, .ldc = ldc, .act = act};
  a.A = A->h; a.B = B->h; a.C = PH(C); a.bias = bv ? PH(bv) : NULL; a.pre_act = pa ? PH(pa) : NULL;
  a.residual = rv ? PH(rv) : NULL;
  CPU->gemm(&a);
  a.A = A->d; a.B = B->d; a.C = PD(C); a.bias = bv ? PD(bv) : NULL; a.pre_act = pa ? PD(pa) : NULL;
  a.residual = rv ? PD(rv) : NULL;
  GPU->gemm(&a);
  pu_check(what, C, (size_t)m * ldc, tol);
  if (pa) pu_check(what, pa, (size_t)m * n, tol);
  pu_free_all();
}

static void gemm_case(cddp_dtype ab, int ta, int tb, int m, int n, int k, int bias, cddp_act act,
                      int pre, float beta, int ldc_pad, double tol) {
  gemm_case_res(ab, ta, tb, m, n, k, bias, act, pre, beta, ldc_pad, 0, tol);
}

static void t_gemm(void **state) {
  (void)state;
  pu_seed(2);
  cddp_cuda_set_tf32(0);
  const cddp_dtype types[3] = {CDDP_F32, CDDP_F16, CDDP_BF16};
  for (int fused = 1; fused >= 0; fused--) {
    cddp_cuda_set_gemm_fusion(fused);
    for (int ti = 0; ti < 3; ti++) {
      double tol = types[ti] == CDDP_F32 ? TOL_F32 : TOL_HALF;
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) gemm_case(types[ti], ta, tb, 37, 45, 70, 0, CDDP_ACT_NONE, 0, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_NONE, 0, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_RELU, 0, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_GELU, 0, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 0, CDDP_ACT_GELU, 0, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_RELU, 1, 0.0f, 0, tol);
      gemm_case(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_GELU, 1, 0.0f, 0, tol);  /* GELU_AUX_BIAS */
      gemm_case(types[ti], 1, 0, 33, 45, 64, 1, CDDP_ACT_GELU, 1, 0.0f, 0, tol);  /* n % 8 != 0 */
      gemm_case(types[ti], 0, 0, 21, 40, 17, 1, CDDP_ACT_NONE, 1, 0.5f, 5, tol);  /* beta, ldc > n */
      gemm_case(types[ti], 1, 1, 21, 40, 17, 1, CDDP_ACT_RELU, 0, 1.0f, 3, tol);
      gemm_case(types[ti], 0, 1, 5, 8, 0, 1, CDDP_ACT_GELU, 1, 0.5f, 0, tol);     /* k = 0 */
      gemm_case_res(types[ti], 0, 1, 33, 48, 64, 1, CDDP_ACT_NONE, 0, 0.0f, 4, 1, tol); /* residual */
    }
  }
  cddp_cuda_set_gemm_fusion(1);
  cddp_cuda_set_tf32(1);
  gemm_case(CDDP_F32, 0, 1, 64, 96, 128, 1, CDDP_ACT_GELU, 1, 0.0f, 0, TOL_TF32);
  gemm_case(CDDP_F32, 1, 0, 50, 30, 200, 0, CDDP_ACT_NONE, 0, 0.0f, 0, TOL_TF32);
  cddp_cuda_set_tf32(0);
}

/* ---- elementwise -------------------------------------------------------------- */
static void t_elementwise(void **state) {
  (void)state;
  pu_seed(3);
  const size_t n = 10007;
  for (int act = CDDP_ACT_RELU; act <= CDDP_ACT_GELU; act++) {
    pair *x = pu_rand(n, -4, 4), *dy = pu_rand(n, -1, 1), *y = pu_zero(n * 4), *dx = pu_zero(n * 4);
    CPU->act_fwd((cddp_act)act, PH(x), PH(y), n);
    GPU->act_fwd((cddp_act)act, PD(x), PD(y), n);
    pu_check("act_fwd", y, n, TOL_F32);
    CPU->act_bwd((cddp_act)act, PH(x), PH(dy), PH(dx), n);
    GPU->act_bwd((cddp_act)act, PD(x), PD(dy), PD(dx), n);
    pu_check("act_bwd", dx, n, TOL_F32);
    pair *db = pu_rand(97, -1, 1); /* act_bias_bwd over [n/97 rows, 97] */
    CPU->act_bias_bwd((cddp_act)act, PH(x), PH(dy), PH(dx), (int)(n / 97), 97, PH(db));
    GPU->act_bias_bwd((cddp_act)act, PD(x), PD(dy), PD(dx), (int)(n / 97), 97, PD(db));
    pu_check("act_bias_bwd dx", dx, (n / 97) * 97, TOL_F32);
    pu_check("act_bias_bwd db", db, 97, TOL_F32);
    pu_free_all();
  }
  pair *a = pu_rand(n, -1, 1), *b = pu_rand(n, -1, 1), *o = pu_zero(n * 4);
  CPU->fill(PH(o), n, 1.5f); GPU->fill(PD(o), n, 1.5f);
  pu_check_exact("fill", o);
  CPU->axpy(PH(o), PH(a), n, -0.3f); GPU->axpy(PD(o), PD(a), n, -0.3f);
  pu_check("axpy", o, n, TOL_F32);
  CPU->scale(PH(o), n, 1.7f); GPU->scale(PD(o), n, 1.7f);
  pu_check("scale", o, n, TOL_F32);
  CPU->add(PH(a), PH(a), PH(b), n); GPU->add(PD(a), PD(a), PD(b), n); /* aliasing */
  pu_check_exact("add", a);
  float rf[30];
  for (int r = 0; r < 30; r++) rf[r] = r % 4 ? 1.0f / (float)(r + 1) : 1.0f;
  pair *f = pu_floats(rf, 30), *sr = pu_rand(30 * 20, -1, 1);
  CPU->scale_rows(PH(sr), 20, 30, 13, PH(f)); GPU->scale_rows(PD(sr), 20, 30, 13, PD(f));
  pu_check_exact("scale_rows", sr);
  pair *src = pu_rand(30 * 17, -1, 1), *dst = pu_rand(30 * 20, -1, 1);
  CPU->copy2d(PH(dst), 20, PH(src), 17, 30, 13); GPU->copy2d(PD(dst), 20, PD(src), 17, 30, 13);
  pu_check_exact("copy2d", dst);
  pair *big = pu_rand(n, -70000, 70000);
  PH(big)[5] = 1e-6f; PH(big)[6] = 3e-41f; /* subnormal in fp32 */
  GPU->memcpy_h2d(big->d, big->h, big->bytes, GPU->compute);
  for (int t = CDDP_F16; t <= CDDP_BF16; t++) {
    pair *h = pu_zero(n * 2), *back = pu_zero(n * 4);
    CPU->cast(h->h, (cddp_dtype)t, PH(big), CDDP_F32, n);
    GPU->cast(h->d, (cddp_dtype)t, PD(big), CDDP_F32, n);
    pu_check_exact("cast f32->half", h);
    CPU->cast(PH(back), CDDP_F32, h->h, (cddp_dtype)t, n);
    GPU->cast(PD(back), CDDP_F32, h->d, (cddp_dtype)t, n);
    pu_check_exact("cast half->f32", back);
  }
  pair *dy = pu_rand(50 * 40, -1, 1), *db = pu_rand(33, -1, 1);
  CPU->bias_grad(PH(dy), 50, 33, 40, PH(db)); GPU->bias_grad(PD(dy), 50, 33, 40, PD(db));
  pu_check("bias_grad", db, 33, TOL_F32);
  pair *dy2 = pu_rand(5000 * 7, -1, 1), *db2 = pu_rand(7, -1, 1);
  CPU->bias_grad(PH(dy2), 5000, 7, 7, PH(db2)); GPU->bias_grad(PD(dy2), 5000, 7, 7, PD(db2));
  pu_check("bias_grad tall", db2, 7, TOL_F32);
}

/* ---- normalisation ---------------------------------------------------------------- */
static void t_norm(void **state) {
  (void)state;
  pu_seed(4);
  const int Ns[2] = {67, 300}, Cs[2] = {96, 5};
  for (int c = 0; c < 2; c++) {
    int N = Ns[c], C = Cs[c];
    size_t nc = (size_t)N * C;
    pair *x = pu_rand(nc, -2, 3), *w = pu_rand(C, 0.5f, 1.5f), *b = pu_rand(C, -1, 1);
    pair *y = pu_zero(nc * 4), *mu = pu_zero(N * 4), *rs = pu_zero(N * 4);
    CPU->layernorm_fwd(PH(x), PH(w), PH(b), PH(y), PH(mu), PH(rs), N, C, 1e-5f);
    GPU->layernorm_fwd(PD(x), PD(w), PD(b), PD(y), PD(mu), PD(rs), N, C, 1e-5f);
    pu_check("layernorm y", y, nc, TOL_F32);
    pu_check("layernorm mean", mu, N, TOL_F32);
    pu_check("layernorm rstd", rs, N, TOL_F32);
    pair *dy = pu_rand(nc, -1, 1), *dx = pu_zero(nc * 4), *dw = pu_rand(C, -1, 1), *db = pu_rand(C, -1, 1);
    CPU->layernorm_bwd(PH(dy), PH(x), PH(w), PH(mu), PH(rs), PH(dx), PH(dw), PH(db), N, C, 0);
    GPU->layernorm_bwd(PD(dy), PD(x), PD(w), PD(mu), PD(rs), PD(dx), PD(dw), PD(db), N, C, 0);
    pu_check("layernorm dx", dx, nc, TOL_F32);
    CPU->layernorm_bwd(PH(dy), PH(x), PH(w), PH(mu), PH(rs), PH(dx), PH(dw), PH(db), N, C, 1);
    GPU->layernorm_bwd(PD(dy), PD(x), PD(w), PD(mu), PD(rs), PD(dx), PD(dw), PD(db), N, C, 1);
    pu_check("layernorm dx accumulated", dx, nc, TOL_F32);
    pu_check("layernorm dw", dw, C, TOL_F32);
    pu_check("layernorm db", db, C, TOL_F32);

    PH(x)[0] = PH(x)[1] = PH(x)[2] = PH(x)[3] = PH(x)[4] = 1e-9f; /* row 0 (C=5) clamps */
    GPU->memcpy_h2d(x->d, x->h, x->bytes, GPU->compute);
    pair *nr = pu_zero(N * 4), *y2 = pu_zero(nc * 4), *dx2 = pu_zero(nc * 4);
    CPU->l2norm_fwd(PH(x), PH(y2), PH(nr), N, C, 1e-6f);
    GPU->l2norm_fwd(PD(x), PD(y2), PD(nr), N, C, 1e-6f);
    pu_check("l2norm y", y2, nc, TOL_F32);
    pu_check("l2norm norm", nr, N, TOL_F32);
    CPU->l2norm_bwd(PH(dy), PH(y2), PH(nr), PH(dx2), N, C);
    GPU->l2norm_bwd(PD(dy), PD(y2), PD(nr), PD(dx2), N, C);
    pu_check("l2norm dx", dx2, nc, TOL_F32);

    pair *s = pu_zero(nc * 4), *ds = pu_zero(nc * 4);
    CPU->softmax_fwd(PH(x), PH(s), N, C);
    GPU->softmax_fwd(PD(x), PD(s), N, C);
    pu_check("softmax y", s, nc, TOL_F32);
    CPU->softmax_bwd(PH(s), PH(dy), PH(ds), N, C);
    GPU->softmax_bwd(PD(s), PD(dy), PD(ds), N, C);
    pu_check("softmax dx", ds, nc, TOL_F32);
    pu_free_all();
  }
}

/* ---- attention -------------------------------------------------------------------- */
/* forward and backward of one attention shape and compute type, CPU vs GPU */
static void attention_case(int B, int T, int H, int D, cddp_dtype t, double tol) {
  size_t nq = (size_t)B * T * 3 * H * D, no = (size_t)B * T * H * D;
  size_t wc = CPU->attention_ws_bytes(B, T, H, D), wg = GPU->attention_ws_bytes(B, T, H, D);
  pair *qkv = pu_rand(nq, -2, 2), *out = pu_zero(no * 4), *ws = pu_zero(wc > wg ? wc : wg);
  CPU->attention_fwd(PH(qkv), PH(out), ws->h, B, T, H, D, t);
  GPU->attention_fwd(PD(qkv), PD(out), ws->d, B, T, H, D, t);
  pu_check("attention out", out, no, tol);
  pair *dout = pu_rand(no, -1, 1), *dqkv = pu_zero(nq * 4);
  CPU->attention_bwd(PH(dout), PH(qkv), PH(out), ws->h, PH(dqkv), B, T, H, D, t);
  GPU->attention_bwd(PD(dout), PD(qkv), PD(out), ws->d, PD(dqkv), B, T, H, D, t);
  pu_check("attention dqkv", dqkv, nq, tol);
  pu_free_all();
}

static void t_attention(void **state) {
  (void)state;
  pu_seed(5);
  cddp_cuda_set_tf32(0);
  const cddp_dtype types[3] = {CDDP_F32, CDDP_F16, CDDP_BF16};
  for (int i = 0; i < 3; i++)
    attention_case(2, 13, 3, 8, types[i], types[i] == CDDP_F32 ? TOL_F32 : TOL_HALF);
}

/* cuDNN's fused attention (--attention cudnn) against the CPU backend, at the
 * ViT shapes (vit-fmnist T = 50, D = 24 and DeiT T = 197, D = 64). Builds
 * without cuDNN (the CPU emulation) skip it, saying so. */
static void t_attention_cudnn(void **state) {
  (void)state;
  if (!cddp_cuda_set_attention(1)) {
    printf("attention_cudnn: this build has no cuDNN; not compared\n");
    skip();
  }
  pu_seed(6);
  const int shapes[2][4] = {{4, 50, 4, 24}, {2, 197, 6, 64}}; /* B, T, H, D */
  for (int s = 0; s < 2; s++) {
    attention_case(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], CDDP_F16, TOL_HALF);
    attention_case(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], CDDP_BF16, TOL_HALF);
  }
  cddp_cuda_set_attention(0);
}

/* ---- losses ------------------------------------------------------------------------- */
static void t_loss(void **state) {
  (void)state;
  pu_seed(6);
  const int n = 1000;
  float *lab = malloc(n * sizeof(float));
  for (int i = 0; i < n; i++) lab[i] = (float)pu_int(2);
  for (int with_scale = 0; with_scale < 2; with_scale++) {
    pair *x = pu_rand(n, -8, 8), *y = pu_floats(lab, n), *g = pu_zero(n * 4);
    float init = 3.5f, ls = 1024.0f;
    pair *sum = pu_floats(&init, 1), *scale = pu_floats(&ls, 1);
    CPU->bce_logits(PH(x), PH(y), n, 1.0f / n, with_scale ? PH(scale) : NULL, PH(sum), PH(g));
    GPU->bce_logits(PD(x), PD(y), n, 1.0f / n, with_scale ? PD(scale) : NULL, PD(sum), PD(g));
    pu_check("bce dlogits", g, n, TOL_F32);
    pu_check("bce loss_sum", sum, 1, TOL_F32);
    pu_free_all();
  }
  free(lab);
  const int N = 77, C = 10, ld = 12;
  int32_t labels[77];
  for (int i = 0; i < N; i++) labels[i] = i % 9 == 4 ? -1 : pu_int(C);
  for (int sm = 0; sm < 2; sm++) {
    pair *x = pu_rand((size_t)N * ld, -5, 5), *l = pu_ints(labels, N);
    pair *g = pu_rand((size_t)N * ld, -1, 1); /* padding columns must stay as they are */
    float init = -1.0f, ls = 8.0f;
    pair *sum = pu_floats(&init, 1), *scale = pu_floats(&ls, 1);
    float smooth = sm ? 0.1f : 0.0f;
    CPU->xent(PH(x), ld, IH(l), N, C, smooth, 1.0f / N, PH(scale), PH(sum), PH(g));
    GPU->xent(PD(x), ld, ID(l), N, C, smooth, 1.0f / N, PD(scale), PD(sum), PD(g));
    pu_check("xent dlogits", g, (size_t)N * ld, TOL_F32);
    pu_check("xent loss_sum", sum, 1, TOL_F32);
    pu_free_all();
  }
  /* many classes (two-tower in-batch softmax) */
  const int N2 = 64, C2 = 1500;
  int32_t lab2[64];
  for (int i = 0; i < N2; i++) lab2[i] = pu_int(C2);
  pair *x = pu_rand((size_t)N2 * C2, -3, 3), *l = pu_ints(lab2, N2), *g = pu_zero((size_t)N2 * C2 * 4);
  pair *sum = pu_zero(4);
  CPU->xent(PH(x), C2, IH(l), N2, C2, 0.0f, 0.5f, NULL, PH(sum), PH(g));
  GPU->xent(PD(x), C2, ID(l), N2, C2, 0.0f, 0.5f, NULL, PD(sum), PD(g));
  pu_check("xent wide dlogits", g, (size_t)N2 * C2, TOL_F32);
  pu_check("xent wide loss_sum", sum, 1, TOL_F32);
}

/* ---- embeddings ----------------------------------------------------------------------- */
static void t_embedding(void **state) {
  (void)state;
  pu_seed(7);
  const int rows = 50, nbags = 40, bag = 3, ids_ld = 5;
  const int dims[2] = {16, 5};
  int32_t ids[40 * 5];
  for (int i = 0; i < nbags * ids_ld; i++) ids[i] = pu_int(4) == 0 ? -1 : pu_int(rows / 3);
  for (int j = 0; j < bag; j++) ids[7 * ids_ld + j] = -1; /* an empty bag */
  for (int di = 0; di < 2; di++) {
    int dim = dims[di], ldo = dim + 3, cap = nbags * bag;
    for (int mean = 0; mean < 2; mean++) {
      pair *table = pu_rand((size_t)rows * dim, -1, 1), *id = pu_ints(ids, nbags * ids_ld);
      pair *out = pu_rand((size_t)nbags * ldo, -1, 1);
      CPU->embbag_fwd(PH(table), dim, IH(id), ids_ld, nbags, bag, mean, PH(out), ldo);
      GPU->embbag_fwd(PD(table), dim, ID(id), ids_ld, nbags, bag, mean, PD(out), ldo);
      pu_check("embbag_fwd", out, (size_t)nbags * ldo, TOL_F32);
      size_t wc = CPU->embbag_bwd_ws_bytes(cap, dim), wg = GPU->embbag_bwd_ws_bytes(cap, dim);
      pair *ws = pu_zero(wc > wg ? wc : wg), *dout = pu_rand((size_t)nbags * ldo, -1, 1);
      pair *oid = pu_zero((size_t)cap * 4), *orow = pu_rand((size_t)cap * dim, -1, 1);
      CPU->embbag_bwd(IH(id), ids_ld, nbags, bag, mean, PH(dout), ldo, dim, IH(oid), PH(orow), ws->h);
      GPU->embbag_bwd(ID(id), ids_ld, nbags, bag, mean, PD(dout), ldo, dim, ID(oid), PD(orow), ws->d);
      pu_check_exact("embbag_bwd ids", oid);
      pu_check("embbag_bwd rows", orow, (size_t)cap * dim, TOL_F32);
      pu_free_all();
    }
    /* coalesce (id, row) pairs; to_dense with the unique result */
    const int n = 100;
    int32_t cid[100];
    for (int i = 0; i < n; i++) cid[i] = pu_int(5) == 0 ? -1 : pu_int(30);
    pair *ci = pu_ints(cid, n), *cr = pu_rand((size_t)n * dim, -1, 1);
    size_t wc = CPU->sparse_coalesce_ws_bytes(n, dim), wg = GPU->sparse_coalesce_ws_bytes(n, dim);
    pair *ws = pu_zero(wc > wg ? wc : wg), *oid = pu_zero((size_t)n * 4), *orow = pu_zero((size_t)n * dim * 4);
    CPU->sparse_coalesce(IH(ci), PH(cr), n, dim, IH(oid), PH(orow), ws->h);
    GPU->sparse_coalesce(ID(ci), PD(cr), n, dim, ID(oid), PD(orow), ws->d);
    pu_check_exact("sparse_coalesce ids", oid);
    pu_check("sparse_coalesce rows", orow, (size_t)n * dim, TOL_F32);
    pair *dense = pu_rand((size_t)30 * dim, -1, 1);
    CPU->sparse_to_dense(IH(oid), PH(orow), n, dim, PH(dense));
    GPU->sparse_to_dense(ID(oid), PD(orow), n, dim, PD(dense));
    pu_check("sparse_to_dense", dense, (size_t)30 * dim, TOL_F32);
    /* segmented bags of 0..4 ids: same summation order, same bits */
    int32_t ends[60], sids[60 * 4], ns = 0;
    for (int s = 0; s < 60; s++) {
      for (int len = s % 7 == 3 ? 0 : pu_int(5); len > 0; len--)
        sids[ns++] = pu_int(6) == 0 ? -1 : pu_int(rows);
      ends[s] = ns;
    }
    pair *table = pu_rand((size_t)rows * dim, -1, 1), *sid = pu_ints(sids, ns), *se = pu_ints(ends, 60);
    pair *sout = pu_rand((size_t)60 * ldo, -1, 1), *srow = pu_rand((size_t)ns * dim, -1, 1);
    CPU->embbag_seg_fwd(PH(table), dim, IH(sid), IH(se), 60, PH(sout), ldo);
    GPU->embbag_seg_fwd(PD(table), dim, ID(sid), ID(se), 60, PD(sout), ldo);
    pu_check_exact("embbag_seg_fwd", sout);
    CPU->embbag_seg_bwd(PH(sout), ldo, IH(se), 60, dim, PH(srow));
    GPU->embbag_seg_bwd(PD(sout), ldo, ID(se), 60, dim, PD(srow));
    pu_check_exact("embbag_seg_bwd", srow);
    pu_free_all();
  }
}

/* ---- model-specific ------------------------------------------------------------------- */
static void t_model_ops(void **state) {
  (void)state;
  pu_seed(8);
  const int B = 5, F = 7, D = 6, ldo = D + F * (F - 1) / 2 + 2;
  pair *T = pu_rand((size_t)B * F * D, -1, 1), *out = pu_rand((size_t)B * ldo, -1, 1);
  CPU->dot_interact_fwd(PH(T), B, F, D, PH(out), ldo);
  GPU->dot_interact_fwd(PD(T), B, F, D, PD(out), ldo);
  pu_check("dot_interact_fwd", out, (size_t)B * ldo, TOL_F32);
  pair *dout = pu_rand((size_t)B * ldo, -1, 1), *dT = pu_zero((size_t)B * F * D * 4);
  CPU->dot_interact_bwd(PH(dout), ldo, PH(T), B, F, D, PH(dT));
  GPU->dot_interact_bwd(PD(dout), ldo, PD(T), B, F, D, PD(dT));
  pu_check("dot_interact_bwd", dT, (size_t)B * F * D, TOL_F32);

  const int Bi = 2, H = 8, W = 12, C = 3, P = 4, nP = (H / P) * (W / P);
  uint8_t img[2 * 8 * 12 * 3];
  for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)pu_int(256);
  float mean[3] = {0.5f, 0.4f, 0.3f}, sd[3] = {0.25f, 0.3f, 0.2f};
  pair *im = pu_bytes(img, sizeof img), *mu = pu_floats(mean, 3), *sv = pu_floats(sd, 3);
  size_t np = (size_t)Bi * nP * C * P * P;
  pair *patches = pu_zero(np * 4);
  CPU->patchify(im->h, Bi, H, W, C, P, PH(mu), PH(sv), PH(patches));
  GPU->patchify(im->d, Bi, H, W, C, P, PD(mu), PD(sv), PD(patches));
  pu_check("patchify", patches, np, TOL_F32);

  const int Bt = 3, nPt = 6, Dt = 10, Tt = nPt + 1;
  pair *pt = pu_rand((size_t)Bt * nPt * Dt, -1, 1), *cls = pu_rand(Dt, -1, 1), *pos = pu_rand((size_t)Tt * Dt, -1, 1);
  pair *x = pu_zero((size_t)Bt * Tt * Dt * 4);
  CPU->vit_tokens_fwd(PH(pt), PH(cls), PH(pos), PH(x), Bt, nPt, Dt);
  GPU->vit_tokens_fwd(PD(pt), PD(cls), PD(pos), PD(x), Bt, nPt, Dt);
  pu_check("vit_tokens_fwd", x, (size_t)Bt * Tt * Dt, TOL_F32);
  pair *dx = pu_rand((size_t)Bt * Tt * Dt, -1, 1), *dpatch = pu_zero((size_t)Bt * nPt * Dt * 4);
  pair *dcls = pu_rand(Dt, -1, 1), *dpos = pu_rand((size_t)Tt * Dt, -1, 1);
  CPU->vit_tokens_bwd(PH(dx), PH(dpatch), PH(dcls), PH(dpos), Bt, nPt, Dt);
  GPU->vit_tokens_bwd(PD(dx), PD(dpatch), PD(dcls), PD(dpos), Bt, nPt, Dt);
  pu_check("vit_tokens_bwd dpatch", dpatch, (size_t)Bt * nPt * Dt, TOL_F32);
  pu_check("vit_tokens_bwd dcls", dcls, Dt, TOL_F32);
  pu_check("vit_tokens_bwd dpos", dpos, (size_t)Tt * Dt, TOL_F32);
}

/* ---- AMP, norms, optimizers ------------------------------------------------------------ */
static void t_amp(void **state) {
  (void)state;
  pu_seed(9);
  const size_t n = 20000;
  for (int bad = 0; bad < 2; bad++) {
    pair *g = pu_rand(n, -1000, 1000);
    if (bad) { PH(g)[12345] = INFINITY; GPU->memcpy_h2d(g->d, g->h, g->bytes, GPU->compute); }
    float sc = 65536.0f;
    int32_t zero = 0, track = 1999;
    pair *scale = pu_floats(&sc, 1), *flag = pu_ints(&zero, 1), *tr = pu_ints(&track, 1);
    CPU->amp_unscale_check(PH(g), n, PH(scale), IH(flag));
    GPU->amp_unscale_check(PD(g), n, PD(scale), ID(flag));
    pu_check_exact("amp_unscale_check g", g);
    pu_check_exact("amp_unscale_check flag", flag);
    assert_int_equal(IH(flag)[0], bad);
    int32_t zero2 = 0;
    pair *nf = pu_ints(&zero2, 1);
    CPU->nonfinite_any(PH(g), n, IH(nf));
    GPU->nonfinite_any(PD(g), n, ID(nf));
    pu_check_exact("nonfinite_any flag", nf);
    assert_int_equal(IH(nf)[0], bad);
    CPU->amp_update_scale(PH(scale), IH(tr), IH(flag), 2.0f, 0.5f, 2000);
    GPU->amp_update_scale(PD(scale), ID(tr), ID(flag), 2.0f, 0.5f, 2000);
    pu_check_exact("amp_update_scale scale", scale);
    pu_check_exact("amp_update_scale tracker", tr);
    pu_free_all();
  }
  pair *x = pu_rand(300001, -1, 1);
  float init = 2.0f;
  pair *acc = pu_floats(&init, 1);
  CPU->sumsq(PH(x), 300001, PH(acc));
  GPU->sumsq(PD(x), 300001, PD(acc));
  pu_check("sumsq", acc, 1, TOL_F32);
  CPU->clip_by_norm(PH(x), 300001, PH(acc), 3.0f);
  GPU->clip_by_norm(PD(x), 300001, PD(acc), 3.0f);
  pu_check("clip_by_norm", x, 300001, TOL_F32);
}

/* The half copy is the rounded parameter: compare it as floats (a one-ulp
 * rounding flip from fp32 differences stays far below TOL_HALF). */
static void check_half_copy(const char *what, pair *h, cddp_dtype t, size_t n) {
  uint16_t *g = pu_fetch(h);
  const uint16_t *c = h->h;
  double md = 0.0, mx = 0.0;
  for (size_t i = 0; i < n; i++) {
    float a = t == CDDP_F16 ? cddp_f16_to_f32(g[i]) : cddp_bf16_to_f32(g[i]);
    float b = t == CDDP_F16 ? cddp_f16_to_f32(c[i]) : cddp_bf16_to_f32(c[i]);
    double d = fabs((double)a - b);
    if (!(d <= md)) md = d;
    if (fabs((double)b) > mx) mx = fabs((double)b);
  }
  free(g);
  if (!(md <= TOL_HALF * (mx > 0 ? mx : 1.0))) fail_msg("%s: max difference %.3g", what, md);
}

static void t_optim(void **state) {
  (void)state;
  pu_seed(10);
  const size_t n = 5003;
  for (int skip = 0; skip < 2; skip++) {
    int32_t sk = skip, st0 = 3;
    pair *skp = pu_ints(&sk, 1), *step = pu_ints(&st0, 1);
    for (int variant = 0; variant < 3; variant++) { /* momentum, nesterov, none */
      pair *p = pu_rand(n, -1, 1), *g = pu_rand(n, -1, 1), *m = pu_rand(n, -0.1f, 0.1f);
      pair *h = pu_zero(n * 2);
      float mom = variant == 2 ? 0.0f : 0.9f;
      CPU->sgd_update(PH(p), PH(g), PH(m), n, 0.1f, mom, variant == 1, 1e-4f, IH(skp), h->h, CDDP_BF16);
      GPU->sgd_update(PD(p), PD(g), PD(m), n, 0.1f, mom, variant == 1, 1e-4f, ID(skp), h->d, CDDP_BF16);
      pu_check("sgd p", p, n, TOL_F32);
      pu_check("sgd mom", m, n, TOL_F32);
      check_half_copy("sgd bf16 copy", h, CDDP_BF16, n);
    }
    pair *p = pu_rand(n, -1, 1), *g = pu_rand(n, -1, 1), *m = pu_rand(n, -0.1f, 0.1f);
    pair *v = pu_rand(n, 0, 0.01f), *h = pu_zero(n * 2);
    CPU->adamw_update(PH(p), PH(g), PH(m), PH(v), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, IH(step), IH(skp), h->h, CDDP_F16);
    GPU->adamw_update(PD(p), PD(g), PD(m), PD(v), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, ID(step), ID(skp), h->d, CDDP_F16);
    pu_check("adamw p", p, n, TOL_F32);
    pu_check("adamw m", m, n, TOL_F32);
    pu_check("adamw v", v, n, TOL_F32);
    check_half_copy("adamw fp16 copy", h, CDDP_F16, n);
    pair *s = pu_rand(n, 0, 0.1f);
    CPU->adagrad_update(PH(p), PH(g), PH(s), n, 0.01f, 1e-10f, 1e-4f, IH(skp), NULL, CDDP_F32);
    GPU->adagrad_update(PD(p), PD(g), PD(s), n, 0.01f, 1e-10f, 1e-4f, ID(skp), NULL, CDDP_F32);
    pu_check("adagrad p", p, n, TOL_F32);
    pu_check("adagrad sum", s, n, TOL_F32);
    CPU->step_advance(IH(step), IH(skp));
    GPU->step_advance(ID(step), ID(skp));
    pu_check_exact("step_advance", step);

    const int rows = 40, dim = 8, k = 25;
    int32_t ids[25];
    for (int i = 0; i < k; i++) ids[i] = i % 6 == 5 ? -1 : (i * 7) % rows; /* unique */
    pair *tab = pu_rand((size_t)rows * dim, -1, 1), *st = pu_rand((size_t)rows * dim, 0, 0.1f);
    pair *id = pu_ints(ids, k), *r = pu_rand((size_t)k * dim, -1, 1);
    CPU->sparse_sgd(PH(tab), dim, IH(id), PH(r), k, 0.1f, IH(skp));
    GPU->sparse_sgd(PD(tab), dim, ID(id), PD(r), k, 0.1f, ID(skp));
    pu_check("sparse_sgd", tab, (size_t)rows * dim, TOL_F32);
    CPU->sparse_adagrad(PH(tab), PH(st), dim, IH(id), PH(r), k, 0.05f, 1e-10f, IH(skp));
    GPU->sparse_adagrad(PD(tab), PD(st), dim, ID(id), PD(r), k, 0.05f, 1e-10f, ID(skp));
    pu_check("sparse_adagrad table", tab, (size_t)rows * dim, TOL_F32);
    pu_check("sparse_adagrad state", st, (size_t)rows * dim, TOL_F32);
    pu_free_all();
  }
}

int main(void) {
  if (cddp_cuda_device_count() == 0) {
    printf("skipped: no CUDA device\n");
    return 77;
  }
  cddp_log_set_quiet(1);
  CPU = cddp_cpu_backend();
  GPU = cddp_cuda_backend(0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_table_complete),
      cmocka_unit_test_teardown(t_memory, teardown),
      cmocka_unit_test_teardown(t_gemm, teardown),
      cmocka_unit_test_teardown(t_elementwise, teardown),
      cmocka_unit_test_teardown(t_norm, teardown),
      cmocka_unit_test_teardown(t_attention, teardown),
      cmocka_unit_test_teardown(t_attention_cudnn, teardown),
      cmocka_unit_test_teardown(t_loss, teardown),
      cmocka_unit_test_teardown(t_embedding, teardown),
      cmocka_unit_test_teardown(t_model_ops, teardown),
      cmocka_unit_test_teardown(t_amp, teardown),
      cmocka_unit_test_teardown(t_optim, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  GPU->shutdown();
  return rc;
}
