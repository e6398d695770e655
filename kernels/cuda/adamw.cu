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
//                 (the next step's products read it). 4 elements a step where the
//                 chunk's addresses are 16-byte aligned and its length a multiple of 4.
//                 grid (chunks), block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/AdamW'
#include "common.h"

// adamw_math is one element's update from its scaled gradient g, moments m0, v0 and value
// p0: the new moments into *mi, *vi, the new value returned.
DEVFN float adamw_math(float g, float m0, float v0, float p0, float* mi, float* vi, float lr, float b1, float b2,
                       float eps, float decay, float bc1, float bc2) {
  *mi = b1 * m0 + (1.0f - b1) * g;
  *vi = b2 * v0 + (1.0f - b2) * g * g;
  float p = p0 - decay * p0;
  float den = KM_SQRTF(*vi / bc2) + eps;
  return p - lr * (*mi / bc1) / den;
}

// All four loads come first: the compiler may not move a load of param past the stores to m
// and v (the pointers might alias), and a load issued after them waited for the first
// loads' values to be computed and stored: two trips to memory per element instead of one.
DEVFN float adamw_elem(float* param, const float* grad, float* m, float* v, long long i, float gscale, float lr,
                       float b1, float b2, float eps, float decay, float bc1, float bc2) {
  const float g = grad[i] * gscale, m0 = m[i], v0 = v[i], p0 = param[i];
  float mi, vi;
  const float r = adamw_math(g, m0, v0, p0, &mi, &vi, lr, b1, b2, eps, decay, bc1, bc2);
  m[i] = mi;
  v[i] = vi;
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
  if (n % 4 == 0 && aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v) && (!p16 || aligned8(p16))) {
    // Four elements a step by 16-byte accesses (the BF16 copy by one 8-byte store), each
    // updated by the same arithmetic as alone.
    for (int i = threadIdx.x; i < n / 4; i += blockDim.x) {
      const f32x4 g = ((const f32x4*)grad)[i], m0 = ((const f32x4*)m)[i], v0 = ((const f32x4*)v)[i],
                  p0 = ((const f32x4*)param)[i];
      f32x4 mo, vo, r;
      for (int k = 0; k < 4; k++) {
        float mi, vi;
        r[k] = adamw_math(g[k] * gscale, m0[k], v0[k], p0[k], &mi, &vi, lr, b1, b2, eps, decay, bc1, bc2);
        mo[k] = mi;
        vo[k] = vi;
      }
      ((f32x4*)m)[i] = mo;
      ((f32x4*)v)[i] = vo;
      ((f32x4*)param)[i] = r;
      if (p16) store_bf16x4(p16 + 4 * i, r);
    }
    return;
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float r = adamw_elem(param, grad, m, v, i, gscale, lr, b1, b2, eps, decay, bc1, bc2);
    if (p16) p16[i] = (unsigned short)bf16_bits(r);
  }
}
EMU_KERNEL(adamw_chunks);
