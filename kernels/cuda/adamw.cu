// adamw.cu: one AdamW step (Loshchilov & Hutter 2019), elementwise over the parameter
// (reference kernels/adamw_cpu.go). The bias corrections bc1 = 1 - b1^step and
// bc2 = 1 - b2^step come from the host (float64 there, passed as float32).
//
//   adamw         g = grad*gscale (global-norm clipping; 1: none);
//                 m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  p -= decay*p  (decay = lr*wd);
//                 p -= lr*(m/bc1)/(sqrt(v/bc2) + eps)        1-D grid-stride, block 256
//   adamw_chunks  the same over a table of chunks of many parameters, 7 words per chunk:
//                 param, grad, m, v (addresses of the chunk's first element), its length,
//                 the parameter's wd (float bits), and where not 0 the address of the
//                 chunk in the parameter's BF16 copy, which gets the updated values rounded
//                 (the next step's products read it). grid (chunks), block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/AdamW'
#include "common.h"

// All four loads come first: the compiler may not move a load of param past the stores to m
// and v (the pointers might alias), and a load issued after them waited for the first
// loads' values to be computed and stored: two trips to memory per element instead of one.
DEVFN float adamw_elem(float* param, const float* grad, float* m, float* v, long long i, float gscale, float lr,
                       float b1, float b2, float eps, float decay, float bc1, float bc2) {
  const float g = grad[i] * gscale, m0 = m[i], v0 = v[i], p0 = param[i];
  float mi = b1 * m0 + (1.0f - b1) * g;
  float vi = b2 * v0 + (1.0f - b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  float p = p0 - decay * p0;
  float den = KM_SQRTF(vi / bc2) + eps;
  const float r = p - lr * (mi / bc1) / den;
  param[i] = r;
  return r;
}

KERNEL void adamw(float* param, const float* grad, float* m, float* v, int n, float gscale, float lr, float b1,
                  float b2, float eps, float decay, float bc1, float bc2) {
  GRID_STRIDE(i, n) adamw_elem(param, grad, m, v, i, gscale, lr, b1, b2, eps, decay, bc1, bc2);
}
EMU_KERNEL(adamw);

// One launch for an optimizer step over a few hundred parameters (DiT-B: 161), where one
// launch each cost more than their elementwise work on the small ones. decay = lr*wd in
// float32, as the host computes it for adamw, so both kernels give the same bits.
KERNEL void adamw_chunks(const unsigned long long* table, float gscale, float lr, float b1, float b2, float eps,
                         float bc1, float bc2) {
  const unsigned long long* e = table + 7 * (long long)blockIdx.x;
  float* param = (float*)e[0];
  const float* grad = (const float*)e[1];
  float* m = (float*)e[2];
  float* v = (float*)e[3];
  int n = (int)e[4];
  float decay = lr * __uint_as_float((unsigned)e[5]);
  unsigned short* p16 = (unsigned short*)e[6];
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float r = adamw_elem(param, grad, m, v, i, gscale, lr, b1, b2, eps, decay, bc1, bc2);
    if (p16) p16[i] = (unsigned short)bf16_bits(r);
  }
}
EMU_KERNEL(adamw_chunks);
