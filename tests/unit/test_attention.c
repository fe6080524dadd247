/* Multi-head attention: forward and backward against a double reference
 * (with the same half roundings for F16/BF16), backward against finite
 * differences, thread-count independence. */
#include "test_util.h"

static const cddp_backend *be;

/* Reference in double. r(t, x) rounds matmul inputs when compute is half.
 * Fills out [B,T,H,D] and, if dout != NULL, dqkv. */
static void reference(const float *qkv, const float *dout, double *out, double *dqkv, int B, int T,
                      int H, int D, cddp_dtype ct) {
  int ldq = 3 * H * D;
  double scale = 1 / sqrt((double)D);
  double *P = malloc((size_t)T * T * 8), *dP = malloc((size_t)T * T * 8);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
#define Q(t, d) tu_round(ct, qkv[((size_t)b * T + (t)) * ldq + (size_t)h * D + (d)])
#define K(t, d) tu_round(ct, qkv[((size_t)b * T + (t)) * ldq + (size_t)(H + h) * D + (d)])
#define V(t, d) tu_round(ct, qkv[((size_t)b * T + (t)) * ldq + (size_t)(2 * H + h) * D + (d)])
#define DO(t, d) tu_round(ct, dout[((size_t)b * T + (t)) * H * D + (size_t)h * D + (d)])
      for (int i = 0; i < T; i++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < T; j++) {
          double v = 0;
          for (int d = 0; d < D; d++) v += Q(i, d) * K(j, d);
          /* the scale is applied to the fp32 product in the kernel */
          P[i * T + j] = (float)(v * (float)scale);
          mx = fmax(mx, P[i * T + j]);
        }
        for (int j = 0; j < T; j++) s += (P[i * T + j] = exp(P[i * T + j] - mx));
        for (int j = 0; j < T; j++) P[i * T + j] /= s;
      }
      for (int i = 0; i < T; i++)
        for (int d = 0; d < D; d++) {
          double v = 0;
          for (int j = 0; j < T; j++) v += tu_round(ct, (float)P[i * T + j]) * V(j, d);
          out[((size_t)b * T + i) * H * D + (size_t)h * D + d] = v;
        }
      if (!dout) continue;
      for (int i = 0; i < T; i++) {
        double rs = 0;
        for (int j = 0; j < T; j++) {
          double v = 0;
          for (int d = 0; d < D; d++) v += DO(i, d) * V(j, d);
          dP[i * T + j] = v;
          rs += v * P[i * T + j];
        }
        for (int j = 0; j < T; j++) dP[i * T + j] = P[i * T + j] * (dP[i * T + j] - rs);
      }
      for (int i = 0; i < T; i++)
        for (int d = 0; d < D; d++) {
          double dq = 0, dk = 0, dv = 0;
          for (int j = 0; j < T; j++) {
            double dS_ij = tu_round(ct, (float)dP[i * T + j]), dS_ji = tu_round(ct, (float)dP[j * T + i]);
            dq += dS_ij * K(j, d);
            dk += dS_ji * Q(j, d);
            dv += tu_round(ct, (float)P[j * T + i]) * DO(j, d);
          }
          size_t base = ((size_t)b * T + i) * ldq + (size_t)h * D + d;
          dqkv[base] = scale * dq;
          dqkv[base + (size_t)H * D] = scale * dk;
          dqkv[base + (size_t)2 * H * D] = dv;
        }
    }
  free(P); free(dP);
}

typedef struct { float *qkv, *out, *dout; void *ws; int B, T, H, D; } actx;
static double att_obj(void *p) {
  actx *c = p;
  be->attention_fwd(c->qkv, c->out, c->ws, c->B, c->T, c->H, c->D, CDDP_F32);
  return tu_dot(c->dout, c->out, (size_t)c->B * c->T * c->H * c->D);
}

static void att_case(int B, int T, int H, int D, cddp_dtype ct, int fd, uint64_t seed) {
  tu_seed(seed);
  size_t nq = (size_t)B * T * 3 * H * D, no = (size_t)B * T * H * D;
  float *qkv = tu_rand(nq, -1.5f, 1.5f), *out = malloc(no * 4), *dout = tu_rand(no, -1, 1);
  float *dqkv = malloc(nq * 4);
  void *ws = malloc(be->attention_ws_bytes(B, T, H, D));
  double *rout = malloc(no * 8), *rdq = malloc(nq * 8);
  reference(qkv, dout, rout, rdq, B, T, H, D, ct);
  be->attention_fwd(qkv, out, ws, B, T, H, D, ct);
  double tol = ct == CDDP_F32 ? 2e-5 : ct == CDDP_F16 ? 2e-3 : 1.5e-2;
  tu_close("attention out", out, rout, no, tol, tol);
  be->attention_bwd(dout, qkv, out, ws, dqkv, B, T, H, D, ct);
  tu_close("attention dqkv", dqkv, rdq, nq, tol * 2, tol * 2);
  if (fd) {
    actx c = {qkv, out, dout, ws, B, T, H, D};
    tu_fd("attention fd", qkv, nq, dqkv, att_obj, &c, 1e-2f, 5e-3, 1);
  }
  free(qkv); free(out); free(dout); free(dqkv); free(ws); free(rout); free(rdq);
}

static void test_attention_f32(void **state) {
  (void)state;
  att_case(2, 5, 3, 4, CDDP_F32, 1, 1);
  att_case(1, 1, 1, 3, CDDP_F32, 1, 2);
  att_case(3, 17, 2, 8, CDDP_F32, 0, 3);
}

static void test_attention_half(void **state) {
  (void)state;
  att_case(2, 9, 2, 8, CDDP_F16, 0, 4);
  att_case(2, 9, 2, 8, CDDP_BF16, 0, 5);
}

/* parallel over (b, h) with OpenBLAS held to one thread; same bits as 1 thread */
static void test_attention_threads(void **state) {
  (void)state;
  int B = 4, T = 33, H = 4, D = 16;
  att_case(B, T, H, D, CDDP_F32, 0, 6);
  be->set_threads(2);
  att_case(B, T, H, D, CDDP_BF16, 0, 7);
  tu_seed(8);
  size_t nq = (size_t)B * T * 3 * H * D, no = (size_t)B * T * H * D;
  float *qkv = tu_rand(nq, -1, 1), *dout = tu_rand(no, -1, 1);
  float *o1 = malloc(no * 4), *o2 = malloc(no * 4), *g1 = malloc(nq * 4), *g2 = malloc(nq * 4);
  void *ws = malloc(be->attention_ws_bytes(B, T, H, D));
  be->attention_fwd(qkv, o2, ws, B, T, H, D, CDDP_F32);
  be->attention_bwd(dout, qkv, o2, ws, g2, B, T, H, D, CDDP_F32);
  be->set_threads(1);
  be->attention_fwd(qkv, o1, ws, B, T, H, D, CDDP_F32);
  be->attention_bwd(dout, qkv, o1, ws, g1, B, T, H, D, CDDP_F32);
  assert_memory_equal(o1, o2, no * 4);
  assert_memory_equal(g1, g2, nq * 4);
  free(qkv); free(dout); free(o1); free(o2); free(g1); free(g2); free(ws);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_attention_f32),
                                     cmocka_unit_test(test_attention_half),
                                     cmocka_unit_test(test_attention_threads)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
