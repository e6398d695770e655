// modulate.cu: adaLN-Zero modulation and gated residual of DiT, forward and backward
// (reference kernels/modulate_cpu.go). x, out, y, dout (B,T,C); shift, scale, gate (B,C).
//
//   modulate_forward   out = x*(1 + scale[b]) + shift[b]          1-D grid-stride, block 256;
//                      4 columns a step where C % 4 == 0 and the pointers are 16-byte aligned;
//                      out16 (or null): out's BF16 copy, the next product's operand; out null:
//                      the copy alone (a tensor kept in BF16 only, Device.StoreHalf)
//   modulate_backward  dx = dout*(1 + scale[b]) (written, where dx is not null); dshift[b] +=
//                      sum_t dout, dscale[b] += sum_t dout*x (float64 sums); with mean and
//                      rstd, x is a LayerNorm's input and its output (x - mean)*rstd is used;
//                      dout from its BF16 copy dout16 where that is not null

//                      grid (ceil(C/32), B), block 32*COL_WARPS; warp w takes t = w, w+8, ...
//   gate_forward       out = x + gate[b]*y                        1-D grid-stride, block 256;
//                      4 columns a step as modulate_forward; y read from its BF16 copy
//                      y16 where that is not null (a tensor kept in BF16 only)
//   gate_backward      dy = gate[b]*dout (written); dgate[b] += sum_t dout*y
//                      grid (ceil(C/32), B), block 32*COL_WARPS; dy16 (or null): dy's BF16 copy;
//                      dy null: the copy alone; y from y16 where not null, as gate_forward
//
// Outputs may alias inputs: each element is written by the thread that read it.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Modulate|Gate)'
#include "common.h"

KERNEL void modulate_forward(float* out, unsigned short* out16, const float* x, const float* shift,
                             const float* scale, int B, int T, int C) {
  if (C % 4 == 0 && aligned16(out) && aligned8(out16) && aligned16(x) && aligned16(shift) && aligned16(scale)) {
    const int C4 = C / 4;  // 4 columns per step (common.h f32x4): a quarter of the index work
    btc_t k = btc_start(T, C4);
    GRID_STRIDE_BTC(i, k, (long long)B * T * C4) {
      long long bc = k.b * C4 + k.c;
      f32x4 v = ((const f32x4*)x)[i], sc = ((const f32x4*)scale)[bc], sh = ((const f32x4*)shift)[bc], r;
      for (int e = 0; e < 4; e++) r[e] = v[e] * (1.0f + sc[e]) + sh[e];
      if (out) ((f32x4*)out)[i] = r;
      if (out16) store_bf16x4(out16 + 4 * i, r);
    }
    return;
  }
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    long long bc = k.b * C + k.c;
    float r = x[i] * (1.0f + scale[bc]) + shift[bc];
    if (out) out[i] = r;
    if (out16) out16[i] = (unsigned short)bf16_bits(r);
  }
}
EMU_KERNEL(modulate_forward);

KERNEL void modulate_backward(float* dx, float* dshift, float* dscale, const float* dout, const unsigned short* dout16,
                              const float* x, const float* scale, const float* mean, const float* rstd, int B, int T,
                              int C) {
  __shared__ double part[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31), b = blockIdx.y;
  double ash = 0.0, asc = 0.0;
  if (c < C) {
    const float sc = 1.0f + scale[(long long)b * C + c];
    float g[COL_UNROLL] = {}, xv[COL_UNROLL] = {};
    col_rows(
        T,
        [&](int u, int t) {
          const long long row = (long long)b * T + t, i = row * C + c;
          g[u] = dout16 ? bf16_value(dout16[i]) : dout[i];
          xv[u] = mean ? (x[i] - mean[row]) * rstd[row] : x[i];  // the norm recomputed as layernorm_forward has it
        },
        [&](int u, int t) {
          ash += g[u];
          asc += (double)g[u] * xv[u];
          if (dx) dx[((long long)b * T + t) * C + c] = g[u] * sc;
        });
  }
  ash = col_total(ash, part);
  asc = col_total(asc, part);
  if (threadIdx.x < 32 && c < C) {
    dshift[(long long)b * C + c] += (float)ash;
    dscale[(long long)b * C + c] += (float)asc;
  }
}
EMU_KERNEL(modulate_backward);

KERNEL void gate_forward(float* out, const float* x, const float* gate, const float* y, const unsigned short* y16,
                         int B, int T, int C) {
  if (C % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(gate) && (y16 ? aligned8(y16) : aligned16(y))) {
    const int C4 = C / 4;  // as modulate_forward
    btc_t k = btc_start(T, C4);
    GRID_STRIDE_BTC(i, k, (long long)B * T * C4) {
      f32x4 v = ((const f32x4*)x)[i], g = ((const f32x4*)gate)[k.b * C4 + k.c], r;
      f32x4 w = y16 ? load_bf16x4(y16 + 4 * i) : ((const f32x4*)y)[i];
      for (int e = 0; e < 4; e++) r[e] = v[e] + g[e] * w[e];
      ((f32x4*)out)[i] = r;
    }
    return;
  }
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    long long bc = k.b * C + k.c;
    out[i] = x[i] + gate[bc] * (y16 ? bf16_value(y16[i]) : y[i]);
  }
}
EMU_KERNEL(gate_forward);

KERNEL void gate_backward(float* dy, unsigned short* dy16, float* dgate, const float* dout, const float* gate,
                          const float* y, const unsigned short* y16, int B, int T, int C) {
  __shared__ double part[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31), b = blockIdx.y;
  double ag = 0.0;
  if (c < C) {
    const float gt = gate[(long long)b * C + c];
    float g[COL_UNROLL] = {}, yv[COL_UNROLL] = {};
    col_rows(
        T,
        [&](int u, int t) {
          const long long i = ((long long)b * T + t) * C + c;
          g[u] = dout[i];
          yv[u] = y16 ? bf16_value(y16[i]) : y[i];
        },
        [&](int u, int t) {
          const long long i = ((long long)b * T + t) * C + c;
          ag += (double)g[u] * yv[u];
          if (dy) dy[i] = gt * g[u];
          if (dy16) dy16[i] = (unsigned short)bf16_bits(gt * g[u]);
        });
  }
  ag = col_total(ag, part);
  if (threadIdx.x < 32 && c < C) dgate[(long long)b * C + c] += (float)ag;
}
EMU_KERNEL(gate_backward);
