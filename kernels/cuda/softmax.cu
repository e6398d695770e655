// softmax.cu: row-wise softmax, forward and backward (reference kernels/softmax_cpu.go).
//
//   softmax_forward   one warp per row of (N,C): m = max, e = exp(x - m), out = e/sum(e);
//                     a row of -Inf gives zeros. grid ceil(N/8), block 256
//   softmax_backward  one warp per row: dinp = out*(dout - sum(dout*out)).
//                     grid ceil(N/8), block 256
//
// out may alias inp (forward) and dinp may alias dout or out (backward): a lane writes only
// the elements it has read.
//
// Test: go test ./kernels/cuda -run 'Conformance/Softmax'
#include "common.h"

#define SM_ROWS 8

KERNEL void softmax_forward(float* out, const float* inp, int N, int C) {
  int row = blockIdx.x * SM_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* x = inp + (long long)row * C;
  float* o = out + (long long)row * C;
  float m = -km_inff();
  for (int c = lane; c < C; c += 32) m = x[c] > m ? x[c] : m;
  m = warp_max(m);
  if (m == -km_inff()) {
    for (int c = lane; c < C; c += 32) o[c] = 0.0f;
    return;
  }
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) {
    float e = km_expf(x[c] - m);
    o[c] = e;
    s += e;
  }
  float inv = 1.0f / warp_sum(s);
  for (int c = lane; c < C; c += 32) o[c] *= inv;
}
EMU_KERNEL(softmax_forward);

KERNEL void softmax_backward(float* dinp, const float* dout, const float* out, int N, int C) {
  int row = blockIdx.x * SM_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* g = dout + (long long)row * C;
  const float* y = out + (long long)row * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) s += g[c] * y[c];
  s = warp_sum(s);
  float* dx = dinp + (long long)row * C;
  for (int c = lane; c < C; c += 32) dx[c] = y[c] * (g[c] - s);
}
EMU_KERNEL(softmax_backward);
