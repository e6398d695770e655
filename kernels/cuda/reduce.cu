// reduce.cu: full reductions in float64 (reference kernels/reduce_cpu.go). Two launches,
// no atomics, so the result is the same in every run. Also the second step of split column
// sums (common.h).
//
//   sum_partial  part[blockIdx.x] = sum of the elements the block's grid-stride loop
//                visits. grid G, block 256
//   sum_final    out[0] = sum of part[0..nparts). grid 1, block 256
//   col_finish   out[c] += sum_s part[s*C + c], s = 0..splits-1 in order (float64).
//                1-D grid-stride over C, block 256
//   sum_squares_chunks  part[b] = sum of squares of chunk b of a table, 2 words per chunk:
//                the chunk's first element's address, its length. grid (chunks), block 256
//   sum_chunks_final    out[t] = sum of part[first[t] .. first[t+1]) in order: tensor t's
//                chunks. grid (tensors), block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/(Sum|BiasBackward|LayerNorm)|ColumnSum'
#include "common.h"

KERNEL void sum_partial(double* part, const float* x, int n) {
  double s = 0.0;
  GRID_STRIDE(i, n) s += (double)x[i];
  s = block_sum_d(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}
EMU_KERNEL(sum_partial);

KERNEL void sum_final(double* out, const double* part, int nparts) {
  double s = 0.0;
  for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += part[i];
  s = block_sum_d(s);
  if (threadIdx.x == 0) out[0] = s;
}
EMU_KERNEL(sum_final);

KERNEL void sum_squares_chunks(double* part, const unsigned long long* table) {
  const unsigned long long* e = table + 2 * (long long)blockIdx.x;
  const float* x = (const float*)e[0];
  int n = (int)e[1];
  double s = 0.0;
  // Four of a thread's values loaded before any is added, in the order they are added (as
  // COL_UNROLL): four loads in flight per thread instead of one.
  for (int i0 = threadIdx.x; i0 < n; i0 += 4 * blockDim.x) {
    float v[4];
UNROLL
    for (int u = 0; u < 4; u++) {
      const int i = i0 + u * blockDim.x;
      v[u] = i < n ? x[i] : 0.0f;
    }
UNROLL
    for (int u = 0; u < 4; u++) {
      if (i0 + u * (int)blockDim.x >= n) break;
      const double d = v[u];
      s += d * d;
    }
  }
  s = block_sum_d(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}
EMU_KERNEL(sum_squares_chunks);

KERNEL void sum_chunks_final(double* out, const double* part, const unsigned long long* first) {
  long long a = (long long)first[blockIdx.x], b = (long long)first[blockIdx.x + 1];
  double s = 0.0;
  for (long long i = a + threadIdx.x; i < b; i += blockDim.x) s += part[i];
  s = block_sum_d(s);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}
EMU_KERNEL(sum_chunks_final);

KERNEL void col_finish(float* out, const double* part, int splits, int C) {
  GRID_STRIDE(c, C) {
    double s = 0.0;
    for (int k = 0; k < splits; k++) s += part[(long long)k * C + c];
    out[c] += (float)s;
  }
}
EMU_KERNEL(col_finish);
