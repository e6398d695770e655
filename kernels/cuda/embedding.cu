// embedding.cu: token embedding lookup, sinusoidal timestep embedding and masked mean
// pooling over the sequence (references kernels/embedding_cpu.go, timestep_cpu.go,
// pool_cpu.go).
//
//   embedding_forward   out[i,c] = table[ids[i],c]             1-D grid-stride over n*C, block 256
//   embedding_backward  dtable[ids[i],c] += dout[i,c], i in order: one thread per column c,
//                       so repeated ids never race and sums are bit-identical to the CPU's.
//                       1-D grid-stride over C, block 256
//   timestep_embedding  out[b,i] = cos(t[b]*f_i), out[b,half+i] = sin(t[b]*f_i),
//                       f_i = exp(-ln(maxPeriod)*i/half), all in float64 (km_exp, km_sincos).
//                       1-D grid-stride over B*half, block 256
//   pool_den            den[b] = sum_t mask[b,t] (T without a mask), float64, t in order.
//                       1-D grid-stride over B, block 256
//   mean_pool_forward   out[b,c] = sum_t m[b,t]*x[b,t,c] / den[b] (0 when den is 0); masked
//                       tokens skipped. grid (ceil(C/32), B), block 32*COL_WARPS
//   mean_pool_backward  dinp[b,t,c] = m[b,t]*dout[b,c]/den[b]. 1-D grid-stride over B*T*C
//
// Test: go test ./kernels/cuda -run 'Conformance/(Embedding|Timestep|MeanPool)'
#include "common.h"

KERNEL void embedding_forward(float* out, const float* table, const int* ids, int n, int C) {
  btc_t k = btc_start(1, C);
  GRID_STRIDE_BTC(i, k, (long long)n * C) out[i] = table[(long long)ids[k.b] * C + k.c];
}
EMU_KERNEL(embedding_forward);

KERNEL void embedding_backward(float* dtable, const float* dout, const int* ids, int n, int C) {
  GRID_STRIDE(c, C) {
    for (int i = 0; i < n; i++) dtable[(long long)ids[i] * C + c] += dout[(long long)i * C + c];
  }
}
EMU_KERNEL(embedding_backward);

KERNEL void timestep_embedding(float* out, const float* t, int B, int dim, float max_period) {
  int half = dim / 2;
  double lnp = km_log((double)max_period);
  GRID_STRIDE(k, (long long)B * half) {
    int b = (int)(k / half), i = (int)(k % half);
    double f = km_exp(-lnp * (double)i / (double)half);
    double s, c;
    km_sincos((double)t[b] * f, &s, &c);
    out[(long long)b * dim + i] = (float)c;
    out[(long long)b * dim + half + i] = (float)s;
  }
}
EMU_KERNEL(timestep_embedding);

KERNEL void pool_den(double* den, const float* mask, int B, int T) {
  GRID_STRIDE(b, B) {
    double s = 0.0;
    if (mask)
      for (int t = 0; t < T; t++) s += mask[(long long)b * T + t];
    else
      s = T;
    den[b] = s;
  }
}
EMU_KERNEL(pool_den);

KERNEL void mean_pool_forward(float* out, const float* inp, const float* mask, const double* den, int B, int T,
                              int C) {
  __shared__ double part[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31), b = blockIdx.y;
  double a = 0.0;
  if (c < C)
    for (int t = threadIdx.x >> 5; t < T; t += COL_WARPS) {
      double w = mask ? (double)mask[(long long)b * T + t] : 1.0;
      if (w != 0.0) a += w * inp[((long long)b * T + t) * C + c];
    }
  a = col_total(a, part);
  if (threadIdx.x < 32 && c < C) {
    double inv = den[b] != 0.0 ? 1.0 / den[b] : 0.0;
    out[(long long)b * C + c] = (float)(a * inv);
  }
}
EMU_KERNEL(mean_pool_forward);

KERNEL void mean_pool_backward(float* dinp, const float* dout, const float* mask, const double* den, int B, int T,
                               int C) {
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    double w = 0.0;
    if (den[k.b] != 0.0) {
      w = 1.0 / den[k.b];
      if (mask) w *= (double)mask[k.b * T + k.t];
    }
    dinp[i] = (float)(w * (double)dout[k.b * C + k.c]);
  }
}
EMU_KERNEL(mean_pool_backward);
