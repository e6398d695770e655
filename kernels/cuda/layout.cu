// layout.cu: data movement without arithmetic (reference kernels/layout_cpu.go); results
// are exact.
//
//   patchify   between images/videos (B,T,C,H,W) and tokens (B,(T/pt)(H/p)(W/p),C*pt*p*p):
//              tokens[b,(ti*Hp+hi)*Wp+wi,((c*pt+dt)*p+dy)*p+dx] = img[b,ti*pt+dt,c,hi*p+dy,wi*p+dx];
//              to_tokens = 1 copies images to tokens (Patchify), 0 back (Unpatchify).
//              1-D grid-stride over the token elements, block 256
//   permute    out = inp transposed; out element i has coordinates (i_0..i_{r-1}) in the
//              output dims d0..d{r-1} and reads inp at sum_j i_j*s_j (s_j: input stride of
//              the dimension that output dim j comes from). 1-D grid-stride, block 256
//   concat     out (outer, na+nb) = [a | b]; 1-D grid-stride over out, block 256
//   split      a, b from inp (outer, na+nb); 1-D grid-stride over inp, block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/(Patchify|Permute|Concat)'
#include "common.h"

KERNEL void patchify(float* img, float* tok, int B, int T, int C, int H, int W, int pt, int p, int to_tokens) {
  int Hp = H / p, Wp = W / p, ntok = (T / pt) * Hp * Wp, F = C * pt * p * p;
  GRID_STRIDE(i, (long long)B * ntok * F) {
    long long r = i / F;
    int f = (int)(i % F), b = (int)(r / ntok), k = (int)(r % ntok);
    int ti = k / (Hp * Wp), hi = (k / Wp) % Hp, wi = k % Wp;
    int c = f / (pt * p * p), rem = f % (pt * p * p);
    int dt = rem / (p * p), dy = (rem / p) % p, dx = rem % p;
    long long src = (((long long)b * T + ti * pt + dt) * C + c) * H * W + (long long)(hi * p + dy) * W + wi * p + dx;
    if (to_tokens)
      tok[i] = img[src];
    else
      img[src] = tok[i];
  }
}
EMU_KERNEL(patchify);

KERNEL void permute(float* out, const float* inp, int n, int rank, int d0, int d1, int d2, int d3, int d4, int d5,
                    int s0, int s1, int s2, int s3, int s4, int s5) {
  int d[6] = {d0, d1, d2, d3, d4, d5};
  int s[6] = {s0, s1, s2, s3, s4, s5};
  GRID_STRIDE(i, n) {
    long long rem = i, off = 0;
    for (int j = rank - 1; j >= 0; j--) {
      off += (rem % d[j]) * s[j];
      rem /= d[j];
    }
    out[i] = inp[off];
  }
}
EMU_KERNEL(permute);

KERNEL void concat(float* out, const float* a, const float* b, int outer, int na, int nb) {
  int w = na + nb;
  GRID_STRIDE(i, (long long)outer * w) {
    long long r = i / w;
    int j = (int)(i % w);
    out[i] = j < na ? a[r * na + j] : b[r * nb + j - na];
  }
}
EMU_KERNEL(concat);

KERNEL void split(float* a, float* b, const float* inp, int outer, int na, int nb) {
  int w = na + nb;
  GRID_STRIDE(i, (long long)outer * w) {
    long long r = i / w;
    int j = (int)(i % w);
    if (j < na)
      a[r * na + j] = inp[i];
    else
      b[r * nb + j - na] = inp[i];
  }
}
EMU_KERNEL(split);
