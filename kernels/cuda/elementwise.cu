// elementwise.cu: streaming elementwise kernels of the CUDA device (kernels.Device contract,
// reference kernels/elementwise_cpu.go).
//
//   add_f32         out = a + b                      1-D grid-stride, block 256
//   axpy_f32        y += alpha*x                     1-D grid-stride, block 256
//   axpby_f32       out = a*x + b*y                  1-D grid-stride, block 256
//   scale_f32       x *= alpha                       1-D grid-stride, block 256
//   mul_f32         out = a*b                        1-D grid-stride, block 256
//   add_row_scaled  out[r,c] = x[r,c] + s[r]*y[r,c]  1-D grid-stride over rows*cols, block 256
//   add_bias        out[n,c] = inp[n,c] + bias[c]    1-D grid-stride over N*C, block 256
//   bias_backward   dbias[c] += sum_n dout[n,c]      grid (ceil(C/32), row splits), block
//                                                    32*COL_WARPS; float64 sums, deterministic
//                                                    (split totals in part, common.h)
//   bf16_to_f32     the float of bf16 bits x (exact): FP32 values kept only as a BF16 copy;
//   f32_to_bf16     bf16 bits of x (round to nearest even; NaN stays NaN), for BF16 GEMM;
//                   1-D grid-stride, 4 per thread where x is 16-byte aligned
//   fill_chunks     every element of chunk b of a table (2 words per chunk: the address of
//                   its first element, its length) set to v. grid (chunks), block 256
//
// Every output element is written by the thread that read its inputs, so outputs may alias
// inputs as the contract allows.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Add|Axpy|Axpby|Scale|Mul|AddRowScaled|AddBias|BiasBackward)'
#include "common.h"

KERNEL void add_f32(float* out, const float* a, const float* b, int n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
EMU_KERNEL(add_f32);

KERNEL void axpy_f32(float* y, float alpha, const float* x, int n) {
  GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
EMU_KERNEL(axpy_f32);

KERNEL void axpby_f32(float* out, float a, const float* x, float b, const float* y, int n) {
  GRID_STRIDE(i, n) out[i] = a * x[i] + b * y[i];
}
EMU_KERNEL(axpby_f32);

KERNEL void scale_f32(float* x, float alpha, int n) {
  GRID_STRIDE(i, n) x[i] *= alpha;
}
EMU_KERNEL(scale_f32);

KERNEL void mul_f32(float* out, const float* a, const float* b, int n) {
  GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}
EMU_KERNEL(mul_f32);

KERNEL void add_row_scaled(float* out, const float* x, const float* s, const float* y, int rows, int cols) {
  btc_t k = btc_start(1, cols);
  GRID_STRIDE_BTC(i, k, (long long)rows * cols) out[i] = x[i] + s[k.b] * y[i];
}
EMU_KERNEL(add_row_scaled);

KERNEL void add_bias(float* out, const float* inp, const float* bias, int N, int C) {
  btc_t k = btc_start(1, C);
  GRID_STRIDE_BTC(i, k, (long long)N * C) out[i] = inp[i] + bias[k.c];
}
EMU_KERNEL(add_bias);

KERNEL void bias_backward(float* dbias, double* part, const float* dout, int N, int C) {
  __shared__ double tot[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31);
  int rows = col_split_rows(N), n0 = blockIdx.y * rows, n1 = n0 + rows < N ? n0 + rows : N;
  double s = 0.0;
  if (c < C)
    for (int n = n0 + (threadIdx.x >> 5); n < n1; n += COL_WARPS) s += dout[(long long)n * C + c];
  s = col_total(s, tot);
  col_store(dbias, part, s, c, C);
}
EMU_KERNEL(bias_backward);


// Four floats per thread where x is 16-byte aligned (one 16-byte load, one 8-byte store;
// out is scratch from the allocator, 256-byte aligned): the scalar loop moved 6 bytes per
// element in two narrow accesses and ran at about 40% of the memory bandwidth in a BF16
// training step. A view at another offset takes the scalar loop.
KERNEL void bf16_to_f32(float* out, const unsigned short* x, int n) {
  GRID_STRIDE(i, n) out[i] = __uint_as_float((unsigned)x[i] << 16);
}
EMU_KERNEL(bf16_to_f32);

KERNEL void f32_to_bf16(unsigned short* out, const float* x, int n) {
  if (!aligned16(x)) {
    GRID_STRIDE(i, n) out[i] = (unsigned short)bf16_bits(x[i]);
    return;
  }
  int n4 = n / 4;
  const f32x4* x4 = (const f32x4*)x;
  GRID_STRIDE(i, n4) store_bf16x4(out + 4 * i, x4[i]);
  GRID_STRIDE(i, n - 4 * n4) out[4 * n4 + i] = (unsigned short)bf16_bits(x[4 * n4 + i]);
}
EMU_KERNEL(f32_to_bf16);

KERNEL void fill_chunks(const unsigned long long* table, float v) {
  const unsigned long long* e = table + 2 * (long long)blockIdx.x;
  float* x = (float*)e[0];
  const int n = (int)e[1];
  for (int i = threadIdx.x; i < n; i += blockDim.x) x[i] = v;
}
EMU_KERNEL(fill_chunks);
