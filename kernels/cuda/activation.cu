// activation.cu: GELU (tanh approximation) and SiLU, forward and backward (reference
// kernels/activation_cpu.go, which computes in float64; these compute in float32 with
// km_expf).
//
//   gelu_forward   out = x*s, s = 1/(1 + exp(-2u)), u = sqrt(2/pi)*(x + 0.044715x^3)
//   gelu_backward  dinp = dout*(s + 2x*s*(e*s)*sqrt(2/pi)*(1 + 3*0.044715x^2)), e = exp(-2u)
//   silu_forward   out = x/(1 + exp(-x))
//   silu_backward  dinp = dout*s*(1 + x*(1 - s)), s = sigmoid(x)
//
// gelu_forward, gelu_backward and silu_forward also write their output's BF16 copy to out16
// / dinp16 where not null (the next product's operand: an MLP's, the adaLN modulation's), and
// with out / dinp null the copy alone.
//
// Launch: 1-D grid-stride over n elements, block 256. The exponent -2u is capped at 80 as in
// the reference, so that e*s never becomes Inf*0.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Gelu|Silu)'
#include "common.h"

#define GELU_SCALE 0.797884560802865f  // sqrt(2/pi)
#define GELU_MAX_EXP 80.0f

DEVFN float gelu_exp(float x, float* u) {
  *u = GELU_SCALE * (x + 0.044715f * x * x * x);
  float a = -2.0f * *u;
  return km_expf(a < GELU_MAX_EXP ? a : GELU_MAX_EXP);
}

// gelu_value is gelu(x); gelu_grad is gelu'(x). The emulated GEMM's GELU epilogues use them
// too (emu_kernels.cc).
DEVFN float gelu_value(float x) {
  float u;
  return x / (1.0f + gelu_exp(x, &u));
}

DEVFN float gelu_grad(float x) {
  float u, e = gelu_exp(x, &u);
  float s = 1.0f / (1.0f + e);
  return s + 2.0f * x * s * (e * s) * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
}

KERNEL void gelu_forward(float* out, unsigned short* out16, const float* inp, int n) {
  GRID_STRIDE(i, n) {
    float y = gelu_value(inp[i]);
    if (out) out[i] = y;
    if (out16) out16[i] = (unsigned short)bf16_bits(y);
  }
}
EMU_KERNEL(gelu_forward);

KERNEL void gelu_backward(float* dinp, unsigned short* dinp16, const float* inp, const float* dout, int n) {
  GRID_STRIDE(i, n) {
    float g = gelu_grad(inp[i]) * dout[i];
    if (dinp) dinp[i] = g;
    if (dinp16) dinp16[i] = (unsigned short)bf16_bits(g);
  }
}
EMU_KERNEL(gelu_backward);

KERNEL void silu_forward(float* out, unsigned short* out16, const float* inp, int n) {
  GRID_STRIDE(i, n) {
    float x = inp[i], y = x / (1.0f + km_expf(-x));
    if (out) out[i] = y;
    if (out16) out16[i] = (unsigned short)bf16_bits(y);
  }
}
EMU_KERNEL(silu_forward);

KERNEL void silu_backward(float* dinp, const float* inp, const float* dout, int n) {
  GRID_STRIDE(i, n) {
    float x = inp[i];
    float s = 1.0f / (1.0f + km_expf(-x));
    dinp[i] = dout[i] * s * (1.0f + x * (1.0f - s));
  }
}
EMU_KERNEL(silu_backward);
