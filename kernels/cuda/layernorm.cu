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
//   layernorm_modulate_backward  layernorm_backward_dx with scale (the adaLN modulation after
//                              the norm) and modulate_backward's column sums of the same rows
//                              in one pass, for C <= 32*ROW_REG: dshift[b] += sum_t dout,
//                              dscale[b] += sum_t dout*norm. With weight instead of scale (an
//                              affine norm, B = 1 sample of all the rows), the same sums are
//                              layernorm_backward_params' dbias and dweight (either output may
//                              be null). Where gate is not null, also
//                              gate_backward of the result (a gated branch whose output is the
//                              norm's input, dinp its gradient): dy = gate[b]*dinp (dy and/or
//                              its BF16 copy dy16), dgate[b] += sum_t dinp*y (y or its BF16
//                              copy y16). Block (b, s) takes rows [s*rows, (s+1)*rows) of
//                              sample b (rows = ceil(T/S), S = gridDim.y), warp w every
//                              LNM_WARPS-th of them from the w-th; each warp sums its rows in
//                              float in shared memory, the warps' sums are added in float64
//                              and, with S > 1, written to part (sum o of block s at
//                              part[(o*S + s)*B*C + b*C + c]); the last block of sample b to
//                              finish (count[b], zero before and after) adds the S of them in
//                              order s = 0, 1, ...
//                              grid (B, S), block 32*LNM_WARPS, at most 168 registers so that
//                              three blocks fit a multiprocessor
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

#define LN_ROWS 8    // rows (warps) per block
#define LNM_WARPS 4  // warps per block of layernorm_modulate_backward
#define LNM_COLS (32 * ROW_REG)

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

// ln_forward_row is layernorm_forward's work on a row of C <= 32*K in registers, its mean
// and rstd into m and r; EXACT: C == 32*K (no test per column).
#define IN(c) (EXACT || (c) < C)
template <int K, bool EXACT>
DEVFN void ln_forward_row(float* o, const float* weight, const float* bias, float* mo, unsigned short* mo16,
                          const float* sh, const float* sc, const float* x, const float* gt, const float* y,
                          const unsigned short* y16, float* xs, int C, float eps, float& m, float& r) {
  const int lane = threadIdx.x & 31;
  float xr[K], s = 0.0f, v = 0.0f;
UNROLL
  for (int k = 0; k < K; k++) {
    int c = lane + 32 * k;
    xr[k] = IN(c) ? ln_gated(x, gt, y, y16, c) : 0.0f;
    if (IN(c)) s += xr[k];
  }
  if (xs)
UNROLL
    for (int k = 0; k < K; k++)
      if (IN(lane + 32 * k)) xs[lane + 32 * k] = xr[k];
  m = warp_sum(s) / (float)C;
UNROLL
  for (int k = 0; k < K; k++) {
    float d = xr[k] - m;
    if (IN(lane + 32 * k)) v += d * d;
  }
  r = 1.0f / KM_SQRTF(warp_sum(v) / (float)C + eps);
UNROLL
  for (int k = 0; k < K; k++)
    if (IN(lane + 32 * k)) ln_store(o, weight, bias, mo, mo16, sh, sc, lane + 32 * k, (xr[k] - m) * r);
}
#undef IN

// ln_forward_width is ln_forward_row compiled for the row's width where that is a common
// one and the output is written in BF16 (a DiT-S, -B or -L block in BF16: 384, 768, 1024),
// else for any C up to 32*ROW_REG (ln_backward_width's reasons).
DEVFN void ln_forward_width(float* o, const float* weight, const float* bias, float* mo, unsigned short* mo16,
                            const float* sh, const float* sc, const float* x, const float* gt, const float* y,
                            const unsigned short* y16, float* xs, int C, float eps, float& m, float& r) {
  if (mo16 && C == 384)
    ln_forward_row<12, true>(o, weight, bias, mo, mo16, sh, sc, x, gt, y, y16, xs, C, eps, m, r);
  else if (mo16 && C == 768)
    ln_forward_row<24, true>(o, weight, bias, mo, mo16, sh, sc, x, gt, y, y16, xs, C, eps, m, r);
  else if (mo16 && C == 1024)
    ln_forward_row<32, true>(o, weight, bias, mo, mo16, sh, sc, x, gt, y, y16, xs, C, eps, m, r);
  else
    ln_forward_row<ROW_REG, false>(o, weight, bias, mo, mo16, sh, sc, x, gt, y, y16, xs, C, eps, m, r);
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
    ln_forward_width(o, weight, bias, mo, mo16, sh, sc, x, gt, y, y16, xs, C, eps, m, r);
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

// ln_load is element c of dout: g, or its BF16 copy g16 where that is not null.
DEVFN float ln_load(const float* g, const unsigned short* g16, int c) { return g16 ? bf16_value(g16[c]) : g[c]; }

// ln_scaled is the normalised row's gradient of dout's element v: v times the weight
// (affine) or 1 + scale (the adaLN modulation after the norm).
DEVFN float ln_scaled(float v, const float* weight, const float* sc, int c) {
  if (weight) return v * weight[c];
  return sc ? v * (1.0f + sc[c]) : v;
}

// ln_gate is a gated branch whose output's gradient is a norm's input gradient dinp (the
// row's, in ln_backward_row): dy = g*dinp into dy and/or its BF16 copy dy16, and the
// column sums of dinp*y (y or its BF16 copy y16) for dgate. g null: none.
struct ln_gate {
  const float* g;
  const float* y;
  const unsigned short* y16;
  float* dy;
  unsigned short* dy16;
};

// ln_backward_row is the backward of one row of C <= 32*ROW_REG, in registers: dx = (g -
// mean(g) - norm*mean(g*norm))*rstd (+ res where not null), g = ln_scaled(dout). Where acc
// is not null it also adds the row's terms of the modulation's gradient to the warp's
// column sums, acc[c] += dout and acc[LNM_COLS + c] += dout*norm, and with gt.g those of the
// gate's, acc[2*LNM_COLS + c] += dx*y. Each loop's loads come before its stores (a store
// before a load could be to the same address, so the load would wait for it). HALF: dout
// read from its BF16 copy g16, chosen once per row rather than per element; K values per
// lane (C <= 32*K); EXACT: C == 32*K.
#define IN(c) (EXACT || (c) < C)  // in ln_backward_row: column c of the row (always, where C == 32*K)
template <bool HALF, int K, bool EXACT>
DEVFN void ln_backward_row(float* dx, const float* g, const unsigned short* g16, const float* x, const float* weight,
                           const float* sc, const float* res, float m, float r, int C, float* acc, ln_gate gt) {
  const int lane = threadIdx.x & 31;
  float gr[K], xm[K], sg = 0.0f, sgn = 0.0f;
UNROLL
  for (int k = 0; k < K; k++) {
    int c = lane + 32 * k;
    gr[k] = IN(c) ? (HALF ? bf16_value(g16[c]) : g[c]) : 0.0f;
    xm[k] = IN(c) ? x[c] - m : 0.0f;
  }
  if (acc) {
UNROLL
    for (int k = 0; k < K; k++) {
      int c = lane + 32 * k;
      if (!IN(c)) continue;
      acc[c] += gr[k];
      acc[LNM_COLS + c] += gr[k] * (xm[k] * r);
    }
  }
UNROLL
  for (int k = 0; k < K; k++) {
    int c = lane + 32 * k;
    if (!IN(c)) continue;
    gr[k] = ln_scaled(gr[k], weight, sc, c);
    sg += gr[k];
    sgn += gr[k] * xm[k] * r;
  }
  float mg = warp_sum(sg) / (float)C, mgn = warp_sum(sgn) / (float)C;
UNROLL
  for (int k = 0; k < K; k++) gr[k] = (gr[k] - mg - xm[k] * r * mgn) * r;  // xm free from here
  if (res) {
UNROLL
    for (int k = 0; k < K; k++) xm[k] = IN(lane + 32 * k) ? res[lane + 32 * k] : 0.0f;
UNROLL
    for (int k = 0; k < K; k++) gr[k] = xm[k] + gr[k];
  }
UNROLL
  for (int k = 0; k < K; k++)
    if (IN(lane + 32 * k)) dx[lane + 32 * k] = gr[k];
  if (!gt.g) return;
UNROLL
  for (int k = 0; k < K; k++) {
    int c = lane + 32 * k;
    xm[k] = IN(c) ? (gt.y16 ? bf16_value(gt.y16[c]) : gt.y[c]) : 0.0f;
  }
UNROLL
  for (int k = 0; k < K; k++) {
    int c = lane + 32 * k;
    if (!IN(c)) continue;
    const float e = gt.g[c] * gr[k];
    acc[2 * LNM_COLS + c] += gr[k] * xm[k];
    if (gt.dy) gt.dy[c] = e;
    if (gt.dy16) gt.dy16[c] = (unsigned short)bf16_bits(e);
  }
}
#undef IN

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
  if (C <= 32 * ROW_REG) {  // the row's g and x - mean in registers: one read of dout and inp
    if (g16)
      ln_backward_row<true, ROW_REG, false>(dx, g, g16, x, weight, sc, res, m, r, C, nullptr, ln_gate{});
    else
      ln_backward_row<false, ROW_REG, false>(dx, g, g16, x, weight, sc, res, m, r, C, nullptr, ln_gate{});
    return;
  }
  float sg = 0.0f, sgn = 0.0f;
  for (int c = lane; c < C; c += 32) {
    float gv = ln_scaled(ln_load(g, g16, c), weight, sc, c);
    sg += gv;
    sgn += gv * (x[c] - m) * r;
  }
  float mg = warp_sum(sg) / (float)C, mgn = warp_sum(sgn) / (float)C;
  for (int c = lane; c < C; c += 32) {
    float gv = ln_scaled(ln_load(g, g16, c), weight, sc, c);
    float nrm = (x[c] - m) * r;
    float v = (gv - mg - nrm * mgn) * r;
    dx[c] = res ? res[c] + v : v;
  }
}
EMU_KERNEL(layernorm_backward_dx);

// ln_backward_width is ln_backward_row, compiled for the row's width where
// that is a common one and dout is read from its BF16 copy (a DiT-S, -B or -L training step
// in BF16: 384, 768 or 1024, no test per column, which halves the instructions per row: 1428
// against 3000 at 768 on sm_90), else for any C up to 32*ROW_REG. The width is the same for
// every row, so each warp takes the same branch. (Every width's own copy would make the
// PTX, and the driver's compilation of it at the first start, several times larger.)
template <bool HALF>
DEVFN void ln_backward_width(float* dx, const float* g, const unsigned short* g16, const float* x, const float* weight,
                             const float* sc, const float* res, float m, float r, int C, float* acc, ln_gate gt) {
  if (HALF && C == 384)
    ln_backward_row<HALF, 12, true>(dx, g, g16, x, weight, sc, res, m, r, C, acc, gt);
  else if (HALF && C == 768)
    ln_backward_row<HALF, 24, true>(dx, g, g16, x, weight, sc, res, m, r, C, acc, gt);
  else if (HALF && C == 1024)
    ln_backward_row<HALF, 32, true>(dx, g, g16, x, weight, sc, res, m, r, C, acc, gt);
  else
    ln_backward_row<HALF, ROW_REG, false>(dx, g, g16, x, weight, sc, res, m, r, C, acc, gt);
}

// lnm_shared is layernorm_modulate_backward's shared memory: each warp's column sums
// (dout, dout*norm, and with a gate dinp*y), then, once they are read, whether the block
// is its sample's last.
union lnm_shared {
  float acc[LNM_WARPS][3 * LNM_COLS];
  int last;
};

KERNEL void __launch_bounds__(32 * LNM_WARPS, 3)
    layernorm_modulate_backward(float* dinp, float* dshift, float* dscale, double* part, int* count, const float* dout,
                                const unsigned short* dout16, const float* inp, const float* mean, const float* rstd,
                                const float* resid, const float* scale, const float* weight, float* dy,
                                unsigned short* dy16, float* dgate, const float* gate, const float* y,
                                const unsigned short* y16, int T, int C) {
  __shared__ lnm_shared sm;
  const int b = blockIdx.x, B = gridDim.x, s = blockIdx.y, S = gridDim.y;
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, sums = gate ? 3 : 2;
  const int rows = (T + S - 1) / S, t1 = (s + 1) * rows < T ? (s + 1) * rows : T;
  float* a = sm.acc[w];
  for (int o = 0; o < sums; o++)
    for (int c = lane; c < C; c += 32) a[o * LNM_COLS + c] = 0.0f;  // the lane's own columns
  const long long BC = (long long)B * C, bc = (long long)b * C;
  const float *sc = scale ? scale + bc : nullptr, *gb = gate ? gate + bc : nullptr;
  for (int t = s * rows + w; t < t1; t += LNM_WARPS) {
    const long long row = (long long)b * T + t, o = row * C;
    const float* res = resid ? resid + o : nullptr;
    ln_gate gt{gb, y ? y + o : nullptr, y16 ? y16 + o : nullptr, dy ? dy + o : nullptr, dy16 ? dy16 + o : nullptr};
    if (dout16)
      ln_backward_width<true>(dinp + o, nullptr, dout16 + o, inp + o, weight, sc, res, mean[row], rstd[row], C, a, gt);
    else
      ln_backward_width<false>(dinp + o, dout + o, nullptr, inp + o, weight, sc, res, mean[row], rstd[row], C, a, gt);
  }
  __syncthreads();
  // out(o) is sum o's output (a select, where an array of the three would live in local memory)
  auto out = [&](int o) { return o == 0 ? dshift : o == 1 ? dscale : dgate; };
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    for (int o = 0; o < sums; o++) {
      double v = 0.0;
      for (int k = 0; k < LNM_WARPS; k++) v += sm.acc[k][o * LNM_COLS + c];
      if (S > 1)
        part[((long long)o * S + s) * BC + bc + c] = v;
      else if (out(o))
        out(o)[bc + c] += (float)v;
    }
  if (S == 1) return;
  __threadfence();  // this block's totals visible to the block that adds them
  __syncthreads();  // and every warp's sums read: sm.acc free
  if (threadIdx.x == 0) sm.last = atomicAdd(count + b, 1) == S - 1;
  __syncthreads();
  if (!sm.last) return;
  const volatile double* vp = part;  // written by other blocks: not from this SM's L1
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    for (int o = 0; o < sums; o++) {
      double v = 0.0;
      for (int k = 0; k < S; k++) v += vp[((long long)o * S + k) * BC + bc + c];
      if (out(o)) out(o)[bc + c] += (float)v;
    }
  if (threadIdx.x == 0) count[b] = 0;
}
EMU_KERNEL(layernorm_modulate_backward);

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
