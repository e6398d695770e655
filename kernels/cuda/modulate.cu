// modulate.cu: adaLN-Zero modulation and gated residual of DiT, forward and backward
// (reference kernels/modulate_cpu.go). x, out, y, dout (B,T,C); shift, scale, gate (B,C).
//
//   modulate_forward   out = x*(1 + scale[b]) + shift[b]          1-D grid-stride, block 256
//   modulate_backward  dx = dout*(1 + scale[b]) (written); dshift[b] += sum_t dout,
//                      dscale[b] += sum_t dout*x (float64 sums)
//                      grid (ceil(C/32), B), block 32*COL_WARPS; warp w takes t = w, w+8, ...
//   gate_forward       out = x + gate[b]*y                        1-D grid-stride, block 256
//   gate_backward      dy = gate[b]*dout (written); dgate[b] += sum_t dout*y
//                      grid (ceil(C/32), B), block 32*COL_WARPS
//
// Outputs may alias inputs: each element is written by the thread that read it.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Modulate|Gate)'
#include "common.h"

KERNEL void modulate_forward(float* out, const float* x, const float* shift, const float* scale, int B, int T,
                             int C) {
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    long long bc = k.b * C + k.c;
    out[i] = x[i] * (1.0f + scale[bc]) + shift[bc];
  }
}
EMU_KERNEL(modulate_forward);

KERNEL void modulate_backward(float* dx, float* dshift, float* dscale, const float* dout, const float* x,
                              const float* scale, int B, int T, int C) {
  __shared__ double part[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31), b = blockIdx.y;
  double ash = 0.0, asc = 0.0;
  if (c < C) {
    float sc = 1.0f + scale[(long long)b * C + c];
    for (int t = threadIdx.x >> 5; t < T; t += COL_WARPS) {
      long long i = ((long long)b * T + t) * C + c;
      float g = dout[i];
      ash += g;
      asc += (double)g * x[i];
      dx[i] = g * sc;
    }
  }
  ash = col_total(ash, part);
  asc = col_total(asc, part);
  if (threadIdx.x < 32 && c < C) {
    dshift[(long long)b * C + c] += (float)ash;
    dscale[(long long)b * C + c] += (float)asc;
  }
}
EMU_KERNEL(modulate_backward);

KERNEL void gate_forward(float* out, const float* x, const float* gate, const float* y, int B, int T, int C) {
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    long long bc = k.b * C + k.c;
    out[i] = x[i] + gate[bc] * y[i];
  }
}
EMU_KERNEL(gate_forward);

KERNEL void gate_backward(float* dy, float* dgate, const float* dout, const float* gate, const float* y, int B,
                          int T, int C) {
  __shared__ double part[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31), b = blockIdx.y;
  double ag = 0.0;
  if (c < C) {
    float gt = gate[(long long)b * C + c];
    for (int t = threadIdx.x >> 5; t < T; t += COL_WARPS) {
      long long i = ((long long)b * T + t) * C + c;
      float g = dout[i];
      ag += (double)g * y[i];
      dy[i] = gt * g;
    }
  }
  ag = col_total(ag, part);
  if (threadIdx.x < 32 && c < C) dgate[(long long)b * C + c] += (float)ag;
}
EMU_KERNEL(gate_backward);
