// loss.cu: per-sample mean squared error, forward and backward (reference
// kernels/loss_cpu.go). pred, target, dpred (B,D); loss, dloss (B).
//
//   mse_forward   loss[b] = sum_d (pred - target)^2 / D, differences and sums in float64.
//                 grid B, block 256 (one block per sample)
//   mse_backward  dpred = (dloss[b]*2/D)*(pred - target), float32 as in the reference.
//                 1-D grid-stride over B*D, block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/MSE'
#include "common.h"

KERNEL void mse_forward(float* loss, const float* pred, const float* target, int B, int D) {
  const float* p = pred + (long long)blockIdx.x * D;
  const float* t = target + (long long)blockIdx.x * D;
  double s = 0.0;
  for (int i = threadIdx.x; i < D; i += blockDim.x) {
    double d = (double)p[i] - (double)t[i];
    s += d * d;
  }
  s = block_sum_d(s);
  if (threadIdx.x == 0) loss[blockIdx.x] = (float)(s / D);
}
EMU_KERNEL(mse_forward);

KERNEL void mse_backward(float* dpred, const float* dloss, const float* pred, const float* target, int B, int D) {
  btc_t r = btc_start(1, D);
  GRID_STRIDE_BTC(i, r, (long long)B * D) {
    float k = dloss[r.b] * 2.0f / (float)D;
    dpred[i] = k * (pred[i] - target[i]);
  }
}
EMU_KERNEL(mse_backward);
