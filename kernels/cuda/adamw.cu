// adamw.cu: one AdamW step (Loshchilov & Hutter 2019), elementwise over the parameter
// (reference kernels/adamw_cpu.go). The bias corrections bc1 = 1 - b1^step and
// bc2 = 1 - b2^step come from the host (float64 there, passed as float32).
//
//   adamw  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  p -= decay*p  (decay = lr*wd);
//          p -= lr*(m/bc1)/(sqrt(v/bc2) + eps)        1-D grid-stride, block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/AdamW'
#include "common.h"

KERNEL void adamw(float* param, const float* grad, float* m, float* v, int n, float lr, float b1, float b2,
                  float eps, float decay, float bc1, float bc2) {
  GRID_STRIDE(i, n) {
    float g = grad[i];
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float p = param[i] - decay * param[i];
    float den = KM_SQRTF(vi / bc2) + eps;
    param[i] = p - lr * (mi / bc1) / den;
  }
}
EMU_KERNEL(adamw);
