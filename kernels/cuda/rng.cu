// rng.cu: Philox4x32-10 random numbers (the stream rule of kernels/rng.go: element i of a
// draw at counter offset o comes from word i%4 of the block o + i/4 under the key
// (seed low, seed high)). Results match the CPU device: uniforms bit for bit, normals to
// float64 rounding.
//
//   rand_uniform  out[i] = ((w>>8) + 0.5)*2^-24 (float64, rounded to float32, capped at
//                 1 - 2^-24). 1-D grid-stride over ceil(n/4) counter blocks, block 256
//   rand_normal   Box-Muller on the word pairs (0,1) and (2,3) of a block, in float64:
//                 sqrt(-2 ln u0)*(cos, sin)(2 pi u1). Same launch shape
//
// Test: go test ./kernels/cuda -run 'Conformance/Rand'
#include "common.h"

DEVFN void philox(unsigned long long blk, unsigned long long seed, unsigned w[4]) {
  unsigned c0 = (unsigned)blk, c1 = (unsigned)(blk >> 32), c2 = 0, c3 = 0;
  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    unsigned long long p0 = (unsigned long long)c0 * 0xD2511F53u;
    unsigned long long p1 = (unsigned long long)c2 * 0xCD9E8D57u;
    unsigned n0 = (unsigned)(p1 >> 32) ^ c1 ^ k0, n2 = (unsigned)(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = (unsigned)p1;
    c2 = n2;
    c3 = (unsigned)p0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}

DEVFN double uniform_of(unsigned x) { return ((double)(x >> 8) + 0.5) * (1.0 / 16777216.0); }

KERNEL void rand_uniform(float* out, int n, unsigned long long seed, unsigned long long offset) {
  GRID_STRIDE(j, ((long long)n + 3) / 4) {
    unsigned w[4];
    philox(offset + (unsigned long long)j, seed, w);
    for (int k = 0; k < 4 && 4 * j + k < n; k++) {
      float u = (float)uniform_of(w[k]);
      out[4 * j + k] = u < 0.99999994f ? u : 0.99999994f;
    }
  }
}
EMU_KERNEL(rand_uniform);

KERNEL void rand_normal(float* out, int n, unsigned long long seed, unsigned long long offset) {
  GRID_STRIDE(j, ((long long)n + 3) / 4) {
    unsigned w[4];
    philox(offset + (unsigned long long)j, seed, w);
    double z[4];
    for (int h = 0; h < 2; h++) {
      double r = KM_SQRT(-2.0 * km_log(uniform_of(w[2 * h])));
      double s, c;
      km_sincos(2.0 * 3.141592653589793 * uniform_of(w[2 * h + 1]), &s, &c);
      z[2 * h] = r * c;
      z[2 * h + 1] = r * s;
    }
    for (int k = 0; k < 4 && 4 * j + k < n; k++) out[4 * j + k] = (float)z[k];
  }
}
EMU_KERNEL(rand_normal);
