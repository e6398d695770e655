// layernorm.cu: layer normalisation, forward and backward (reference kernels/layernorm_cpu.go).
//
//   layernorm_forward          one warp per row of inp (N,C): two-pass mean and biased
//                              variance, rstd = 1/sqrt(var+eps), out = (x-mean)*rstd*w + b
//                              (no affine when weight is null); writes mean, rstd (N). The
//                              row in registers up to C = 1024 (ROW_REG). Where shift is not
//                              null (rows (b,t) of T per sample), also the adaLN modulation of
//                              the normalised row, mout = out*(1 + scale[b]) + shift[b], as
//                              modulate_forward computes it, into mout and its BF16 copy mout16
//                              (each where not null); out null: the normalised row not stored.
//                              Where gate is not null the input is x + gate[b]*y (y or its
//                              BF16 copy gy16, as gate_forward), written to xsum.
//                              grid ceil(N/8), block 256 (8 warps = 8 rows)
//   layernorm_backward_dx      one warp per row: g = w*dout (dout without affine; with
//                              scale, dout*(1 + scale[row/T]): the gradient of the adaLN
//                              modulation that follows the norm), dinp = (g - mean(g) -
//                              norm*mean(g*norm))*rstd, plus resid where not null (a
//                              residual branch's gradient); dout from its BF16 copy dout16
//                              where not null; rows up to 32*ROW_REG in registers.
//                              grid ceil(N/8), block 256
//   layernorm_backward_params  dweight[c] += sum_n dout*norm, dbias[c] += sum_n dout (either
//                              pointer may be null); column sums in float64, split totals
//                              in part (dweight's) and part + splits*C (dbias's).
//                              grid (ceil(C/32), row splits), block 32*COL_WARPS
//
// Row statistics are float32 sums over the warp. The launcher runs _params before _dx so
// that dinp may overwrite dout.
//
// Test: go test ./kernels/cuda -run 'Conformance/LayerNorm'
#include "common.h"

#define LN_ROWS 8  // rows (warps) per block

// ln_store writes element c of the normalised row and, where sh is not null, its modulation.
DEVFN void ln_store(float* o, const float* weight, const float* bias, float* mo, unsigned short* mo16,
                    const float* sh, const float* sc, int c, float nrm) {
  const float y = weight ? nrm * weight[c] + bias[c] : nrm;
  if (o) o[c] = y;
  if (sh) {
    const float z = y * (1.0f + sc[c]) + sh[c];
    if (mo) mo[c] = z;
    if (mo16) mo16[c] = (unsigned short)bf16_bits(z);
  }
}

// ln_gated is element c of the norm's input: x, or with gate, x + gate*y (y from y16 where
// that is not null), the gated residual of gate_forward, computed as it computes it.
DEVFN float ln_gated(const float* x, const float* gate, const float* y, const unsigned short* y16, int c) {
  if (!gate) return x[c];
  return x[c] + gate[c] * (y16 ? bf16_value(y16[c]) : y[c]);
}

KERNEL void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, float* mout, unsigned short* mout16, const float* shift,
                              const float* scale, const float* gate, const float* gy, const unsigned short* gy16,
                              float* xsum, int N, int T, int C, float eps) {
  int row = blockIdx.x * LN_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warps leave together
  const float* x = inp + (long long)row * C;
  float* o = out ? out + (long long)row * C : nullptr;
  const long long b = shift || gate ? row / T : 0, ro = (long long)row * C;  // the modulation's sample
  float* mo = mout ? mout + ro : nullptr;
  unsigned short* mo16 = mout16 ? mout16 + ro : nullptr;
  const float *sh = shift ? shift + b * C : nullptr, *sc = shift ? scale + b * C : nullptr;
  const float* gt = gate ? gate + b * C : nullptr;  // with gate: the input is x + gate*y, stored in xsum
  const float* y = gy ? gy + ro : nullptr;
  const unsigned short* y16 = gy16 ? gy16 + ro : nullptr;
  float* xs = xsum ? xsum + ro : nullptr;
  float s = 0.0f, v = 0.0f, m, r;
  if (C <= 32 * ROW_REG) {  // the row in registers (common.h): one read of it
    float xr[ROW_REG];
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      int c = lane + 32 * k;
      xr[k] = c < C ? ln_gated(x, gt, y, y16, c) : 0.0f;
      if (c < C) s += xr[k];
      if (xs && c < C) xs[c] = xr[k];
    }
    m = warp_sum(s) / (float)C;
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      float d = xr[k] - m;
      if (lane + 32 * k < C) v += d * d;
    }
    r = 1.0f / KM_SQRTF(warp_sum(v) / (float)C + eps);
UNROLL
    for (int k = 0; k < ROW_REG; k++)
      if (lane + 32 * k < C) ln_store(o, weight, bias, mo, mo16, sh, sc, lane + 32 * k, (xr[k] - m) * r);
  } else {  // longer rows: the gated input stored in the first pass, read back in the others
    for (int c = lane; c < C; c += 32) {
      float xv = ln_gated(x, gt, y, y16, c);
      if (xs) xs[c] = xv;
      s += xv;
    }
    if (xs) x = xs;
    m = warp_sum(s) / (float)C;
    for (int c = lane; c < C; c += 32) {
      float d = x[c] - m;
      v += d * d;
    }
    r = 1.0f / KM_SQRTF(warp_sum(v) / (float)C + eps);
    for (int c = lane; c < C; c += 32) ln_store(o, weight, bias, mo, mo16, sh, sc, c, (x[c] - m) * r);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}
EMU_KERNEL(layernorm_forward);

// ln_grad is element c of the normalised row's gradient: dout (g, or its BF16 copy g16 where
// that is not null), times the weight (affine) or 1 + scale (the adaLN modulation after the
// norm).
DEVFN float ln_grad(const float* g, const unsigned short* g16, const float* weight, const float* sc, int c) {
  float v = g16 ? bf16_value(g16[c]) : g[c];
  if (weight) return v * weight[c];
  return sc ? v * (1.0f + sc[c]) : v;
}

KERNEL void layernorm_backward_dx(float* dinp, const float* dout, const unsigned short* dout16, const float* inp,
                                  const float* weight, const float* mean, const float* rstd, const float* resid,
                                  const float* scale, int N, int T, int C) {
  int row = blockIdx.x * LN_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* x = inp + (long long)row * C;
  const float* g = dout16 ? nullptr : dout + (long long)row * C;
  const unsigned short* g16 = dout16 ? dout16 + (long long)row * C : nullptr;
  const float* res = resid ? resid + (long long)row * C : nullptr;
  // With scale (no affine), dout is the modulation's gradient: the norm's is dout*(1 + scale[b]).
  const float* sc = scale ? scale + (long long)(row / T) * C : nullptr;
  float* dx = dinp + (long long)row * C;
  float m = mean[row], r = rstd[row];
  float sg = 0.0f, sgn = 0.0f;
  if (C <= 32 * ROW_REG) {  // the row's g and x - mean in registers: one read of dout and inp
    float gr[ROW_REG], xm[ROW_REG];
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      int c = lane + 32 * k;
      gr[k] = c < C ? ln_grad(g, g16, weight, sc, c) : 0.0f;
      xm[k] = c < C ? x[c] - m : 0.0f;
      if (c < C) {
        sg += gr[k];
        sgn += gr[k] * xm[k] * r;
      }
    }
    float mg = warp_sum(sg) / (float)C, mgn = warp_sum(sgn) / (float)C;
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      int c = lane + 32 * k;
      if (c >= C) continue;
      float v = (gr[k] - mg - xm[k] * r * mgn) * r;
      dx[c] = res ? res[c] + v : v;
    }
    return;
  }
  for (int c = lane; c < C; c += 32) {
    float gv = ln_grad(g, g16, weight, sc, c);
    sg += gv;
    sgn += gv * (x[c] - m) * r;
  }
  float mg = warp_sum(sg) / (float)C, mgn = warp_sum(sgn) / (float)C;
  for (int c = lane; c < C; c += 32) {
    float gv = ln_grad(g, g16, weight, sc, c);
    float nrm = (x[c] - m) * r;
    float v = (gv - mg - nrm * mgn) * r;
    dx[c] = res ? res[c] + v : v;
  }
}
EMU_KERNEL(layernorm_backward_dx);

KERNEL void layernorm_backward_params(float* dweight, float* dbias, double* part, const float* dout,
                                      const float* inp, const float* mean, const float* rstd, int N, int C) {
  __shared__ double tot[COL_WARPS][32];
  int c = blockIdx.x * 32 + (threadIdx.x & 31);
  int rows = col_split_rows(N), n0 = blockIdx.y * rows, n1 = n0 + rows < N ? n0 + rows : N;
  double sw = 0.0, sb = 0.0;
  if (c < C)
    for (int n = n0 + (threadIdx.x >> 5); n < n1; n += COL_WARPS) {
      double g = dout[(long long)n * C + c];
      sw += g * ((double)inp[(long long)n * C + c] - mean[n]) * rstd[n];
      sb += g;
    }
  sw = col_total(sw, tot);
  sb = col_total(sb, tot);
  col_store(dweight, part, sw, c, C);
  col_store(dbias, part + (long long)gridDim.y * C, sb, c, C);
}
EMU_KERNEL(layernorm_backward_params);
