// emu_selftest.cu: kernels that test the CPU emulation itself and kmath.h; compiled into the
// emulation only (not into the PTX).
//
//   emu_test_deadlock  half a warp waits at __syncthreads, the other half at a shuffle
//   emu_test_spin      spins until *flag != 0 (for the watchdog)
//   emu_test_race      every thread adds 1 to *counter, plain and atomically; block sums of
//                      the thread indices through shared memory, shuffles and barriers
//   kmath_eval_f       out[i] = f(x[i]) for f = km_expf (0), km_logf (1), exp2_approx (2)
//   kmath_eval_d       out[i] = f(x[i]) for f = km_exp (0), km_log (1), sin (2), cos (3) of km_sincos
//
// Test: go test ./kernels/cuda -run 'Emu|KMath'
#include "common.h"

KERNEL void emu_test_deadlock(float* x) {
  if (threadIdx.x & 16)
    x[threadIdx.x] = __shfl_xor_sync(FULL_MASK, 1.0f, 1);
  else
    __syncthreads();
}
EMU_KERNEL(emu_test_deadlock);

KERNEL void emu_test_spin(int* flag) {
  while (atomicAdd(flag, 0) == 0) {
  }
}
EMU_KERNEL(emu_test_spin);

// out[0] += 1 per thread atomically; out[1 + blockIdx.x] = sum of threadIdx.x over the block
// (shared memory + __syncthreads), out[1 + gridDim.x + blockIdx.x] = the same through
// block_sum_d (shuffles).
KERNEL void emu_test_race(double* out, int* counter) {
  __shared__ int acc[1024];
  atomicAdd(counter, 1);
  acc[threadIdx.x] = threadIdx.x;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) acc[threadIdx.x] += acc[threadIdx.x + s];
    __syncthreads();
  }
  double t = block_sum_d((double)threadIdx.x);
  if (threadIdx.x == 0) {
    out[blockIdx.x] = acc[0];
    out[gridDim.x + blockIdx.x] = t;
  }
}
EMU_KERNEL(emu_test_race);

KERNEL void kmath_eval_f(float* out, const float* x, int n, int fn) {
  GRID_STRIDE(i, n) out[i] = fn == 0 ? km_expf(x[i]) : fn == 1 ? km_logf(x[i]) : exp2_approx(x[i]);
}
EMU_KERNEL(kmath_eval_f);

KERNEL void kmath_eval_d(double* out, const double* x, int n, int fn) {
  GRID_STRIDE(i, n) {
    double s, c;
    km_sincos(x[i], &s, &c);
    out[i] = fn == 0 ? km_exp(x[i]) : fn == 1 ? km_log(x[i]) : fn == 2 ? s : c;
  }
}
EMU_KERNEL(kmath_eval_d);
