// attention.cu: fused multi-head self-attention, forward and backward, flash-attention style
// (reference kernels/attention_cpu.go): scores are computed tile by tile with an online
// softmax and never stored, so memory is linear in T. qkv (B,T,3,NH,HS), out and dout
// (B,T,NH,HS), lse and dd (B,NH,T), key_bias (B,T) or null. s_ij = q_i.k_j*scale + bias_j;
// keys with bias -Inf get probability 0; a query with no key left gets out = 0, lse = 0.
// HS <= ATT_HS_MAX.
//
//   attention_forward      one warp per query, ATT_WARPS queries per block; K and V tiles of
//                          32 keys in shared memory; lane j scores key j of the tile, then
//                          lane d accumulates output dims d, d+32, ...; keeps the running max
//                          m and sum l; writes out = acc/l and lse = m + log l.
//                          grid (ceil(T/ATT_WARPS), NH, B), block 32*ATT_WARPS,
//                          dynamic shared (68*HS + 192)*4 bytes
//   attention_backward_dd  dd = sum_d dout*out per (b,t,h), one warp each; from the BF16 copies
//                          do16 and out16 instead where do16 is not null (the tensor-core path
//                          with dQ's shares; without them the dq kernel forms dd).
//                          grid ceil(B*T*NH/8), block 256
//   attention_backward_dq  one warp per query: P_ij = exp(s_ij - lse_i), dP_ij = dout_i.v_j,
//                          dS = P*(dP - dd_i), dq_i = scale*sum_j dS_ij k_j.
//                          grid (ceil(T/ATT_WARPS), NH, B), block 32*ATT_WARPS,
//                          dynamic shared (72*HS + 224)*4 bytes
//   attention_backward_dkv one warp per key, query tiles of 32 in shared memory:
//                          dv_j = sum_i P_ij dout_i, dk_j = scale*sum_i dS_ij q_i.
//                          grid (ceil(T/ATT_WARPS), NH, B), block 32*ATT_WARPS,
//                          dynamic shared (72*HS + 384)*4 bytes
//
//   attention_forward_mma  attention_forward on tensor cores for HS = 64 in BF16 mode: Q, K, V
//                          read as the BF16 copy of qkv (q16: (B,T,3,NH,64) bfloat16 bits, 16-byte
//                          aligned), S = Q K^T and O += P V by mma.sync m16n8k16 (FP32
//                          accumulation, P rounded to BF16 for its product), the online softmax
//                          on the S fragments in registers, in base 2 (scores times log2 e,
//                          powers by exp2_approx, the special function unit's one instruction;
//                          lse written in natural log as every path's); the same out and lse as
//                          attention_forward (up to BF16 rounding), and out's BF16 copy into out16
//                          where not null. Each warp takes 16 queries,
//                          each block MMA_WARPS warps; K and V tiles of 64 keys in shared
//                          memory. grid (ceil(T/(16*MMA_WARPS)), NH, B), block 32*MMA_WARPS
//   attention_backward_dkv_mma  the backward on tensor cores (BF16 mode, HS = 64), one warp per
//                          16 keys over tiles of 64 queries: S^T = K Q^T and dP^T = V dO^T (mma),
//                          P^T = exp(scale*S^T + bias - lse) (as a power of 2, exp2_approx),
//                          dS^T = P^T*(dP^T - dd) in registers,
//                          dV += P^T dO, dK += dS^T Q (mma, P and dS rounded to BF16); dK*scale
//                          and dV into dqkv (and their BF16 copies into dqkv16 where not null);
//                          a key with bias -Inf gets dK = dV = 0. Where dq_part is not null, also
//                          each block's share of dQ: dS (its 64 keys by the tile's 64 queries)
//                          through shared memory, dS K (mma) into dq_part (B,NH,blocks,T,64),
//                          unscaled; attention_dq_sum then adds the blocks' shares. q16 and do16:
//                          BF16 copies of qkv and dout (16-byte aligned); dd from
//                          attention_backward_dd. grid (ceil(T/64), NH, B), block 128
//   attention_dq_sum       dQ = scale * the sum of dq_part over its blocks, in block order, into
//                          dqkv and its BF16 copy dqkv16 (each where not null). 1-D grid-stride
//                          over B*T*NH*64, block 256
//   attention_backward_dq_mma   dQ (by default; with dQ's shares where they would not fit):
//                          one warp per 16 queries over tiles of 64 keys, S = Q K^T and
//                          dP = dO V^T formed again, dQ += dS K; first dd = rowsum(dO O) of
//                          its queries from do16 and out16 (out16 2-byte aligned), written to
//                          dd for attention_backward_dkv_mma, launched after it. Same grid
//                          and block as attention_backward_dkv_mma
//   attention_mma_tile     D = A B for one tile, A (16,16) and B (16,16) row-major bfloat16 bits,
//                          through mma_bf16_16816: d[0..128) = A by B's first 8 columns (16,8),
//                          each lane loading its fragments by PTX's layout formulas; d[128..384)
//                          = A B (16,16), B's fragments from shared memory by
//                          ldmatrix_x4_trans; d[384..1152) = A B three times more, B's fragments
//                          by ldmatrix_x4 from B^T, then A's by ldmatrix_x4 from A, then A's by
//                          ldmatrix_x4_trans from A^T: the check that the GPU's tensor cores and
//                          ldmatrix and the emulation agree on the layouts. grid 1, block 32
//
// The backward pass writes dQ and dK/dV from separate kernels (dQ's per-block shares summed in
// a fixed order), so no atomics are needed and results are the same in every run.
//
// The GEMM path (attention.go, used when the (B,NH,T,T) score matrices fit a budget) does
// the products with cuBLAS and the rest with the kernels below (and attention_backward_dd);
// row r = (b*NH+h)*T+i of a (B,NH,T,T) score array is row r of lse and dd:
//   attention_softmax      on s = scale*Q K^T: s_ij += bias_j, m = max_j s_ij,
//                          l = sum_j exp(s_ij - m), P_ij = exp(s_ij - m)/l, lse_i = m + log l;
//                          P in place, or as bfloat16 bits into p16 when it is not null;
//                          a row with every key masked (m = -Inf) gets P = 0, lse = 0, as
//                          attention_forward; the row in registers up to T = 1024 (ROW_REG).
//                          One warp per row, grid ceil(rows/8), block 256
//   attention_probs        in place: P_ij = exp(s_ij + bias_j - lse_i), the backward's
//                          recomputation (masked keys and fully masked rows give 0); also
//                          as bfloat16 bits into p16 when it is not null.
//                          One warp per row, grid ceil(rows/8), block 256
//   attention_dscores      in place on dP: dS_ij = P_ij*(dP_ij - dd_i), or as bfloat16 bits
//                          into ds16 (dP left as it was) when it is not null. One warp per row,
//                          grid ceil(rows/8), block 256
//
// Test: go test ./kernels/cuda -run 'Conformance/Attention'
#include "common.h"

#define ATT_WARPS 4
#define ATT_HS_MAX 128
#define ATT_R (ATT_HS_MAX / 32)  // output dims per lane

KERNEL void attention_forward(float* out, float* lse, const float* qkv, const float* key_bias, int T, int NH, int HS,
                              float scale) {
  EMU_DYNAMIC_SHARED(float, sm);
  const int C = NH * HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int qi = blockIdx.x * ATT_WARPS + warp;
  const bool active = qi < T;  // the same for the whole warp
  float* sq = sm;                           // (ATT_WARPS, HS) queries
  float* sk = sq + ATT_WARPS * HS;          // (32, HS+1) key tile, padded against bank conflicts
  float* sv = sk + 32 * (HS + 1);           // (32, HS) value tile
  float* sp = sv + 32 * HS;                 // (ATT_WARPS, 32) probabilities
  float* skb = sp + ATT_WARPS * 32;         // (32) key bias of the tile
  const float* x = qkv + (long long)b * T * C3 + h * HS;
  if (active)
    for (int d = lane; d < HS; d += 32) sq[warp * HS + d] = x[(long long)qi * C3 + d];
  float m = -km_inff(), l = 0.0f, acc[ATT_R];
  for (int r = 0; r < ATT_R; r++) acc[r] = 0.0f;
  for (int k0 = 0; k0 < T; k0 += 32) {
    __syncthreads();  // the previous tile is consumed
    for (int i = threadIdx.x; i < 32 * HS; i += blockDim.x) {
      int j = i / HS, d = i % HS, t = k0 + j;
      sk[j * (HS + 1) + d] = t < T ? x[(long long)t * C3 + C + d] : 0.0f;
      sv[j * HS + d] = t < T ? x[(long long)t * C3 + 2 * C + d] : 0.0f;
    }
    if (threadIdx.x < 32) {
      int t = k0 + threadIdx.x;
      skb[threadIdx.x] = t < T ? (key_bias ? key_bias[(long long)b * T + t] : 0.0f) : -km_inff();
    }
    __syncthreads();
    if (!active) continue;
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += sq[warp * HS + d] * sk[lane * (HS + 1) + d];
    s = s * scale + skb[lane];
    float mt = warp_max(s);
    float mn = mt > m ? mt : m;
    if (mn == -km_inff()) continue;  // every key so far is masked
    float p = km_expf(s - mn), corr = km_expf(m - mn);
    l = l * corr + warp_sum(p);
    sp[warp * 32 + lane] = p;
    __syncwarp();
    for (int r = 0; r < ATT_R; r++) {
      int d = lane + 32 * r;
      if (d < HS) {
        float a = acc[r] * corr;
        for (int j = 0; j < 32; j++) a += sp[warp * 32 + j] * sv[j * HS + d];
        acc[r] = a;
      }
    }
    __syncwarp();
    m = mn;
  }
  if (!active) return;
  float* o = out + ((long long)b * T + qi) * C + h * HS;
  float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int r = 0; r < ATT_R; r++) {
    int d = lane + 32 * r;
    if (d < HS) o[d] = acc[r] * inv;
  }
  if (lane == 0) lse[((long long)b * NH + h) * T + qi] = l > 0.0f ? m + km_logf(l) : 0.0f;
}
EMU_KERNEL(attention_forward);

KERNEL void attention_backward_dd(float* dd, const float* dout, const float* out, const unsigned short* do16,
                                  const unsigned short* out16, int B, int T, int NH, int HS) {
  long long row = (long long)blockIdx.x * 8 + (threadIdx.x >> 5);  // row (b,t,h) of (B,T,NH)
  int lane = threadIdx.x & 31;
  if (row >= (long long)B * T * NH) return;
  float s = 0.0f;
  if (do16) {  // the BF16 copies the tensor-core backward reads
    const unsigned short *g = do16 + row * HS, *o = out16 + row * HS;
    for (int d = lane; d < HS; d += 32) s += __uint_as_float((unsigned)g[d] << 16) * __uint_as_float((unsigned)o[d] << 16);
  } else {
    const float *g = dout + row * HS, *o = out + row * HS;
    for (int d = lane; d < HS; d += 32) s += g[d] * o[d];
  }
  s = warp_sum(s);
  if (lane == 0) {
    int h = (int)(row % NH);
    long long bt = row / NH;
    int b = (int)(bt / T), t = (int)(bt % T);
    dd[((long long)b * NH + h) * T + t] = s;
  }
}
EMU_KERNEL(attention_backward_dd);

KERNEL void attention_backward_dq(float* dqkv, const float* dout, const float* lse, const float* dd, const float* qkv,
                                  const float* key_bias, int T, int NH, int HS, float scale) {
  EMU_DYNAMIC_SHARED(float, sm);
  const int C = NH * HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int qi = blockIdx.x * ATT_WARPS + warp;
  const bool active = qi < T;
  float* sq = sm;                       // (ATT_WARPS, HS)
  float* sdo = sq + ATT_WARPS * HS;     // (ATT_WARPS, HS)
  float* sk = sdo + ATT_WARPS * HS;     // (32, HS+1)
  float* sv = sk + 32 * (HS + 1);       // (32, HS+1)
  float* sds = sv + 32 * (HS + 1);      // (ATT_WARPS, 32)
  float* skb = sds + ATT_WARPS * 32;    // (32)
  const float* x = qkv + (long long)b * T * C3 + h * HS;
  float li = 0.0f, di = 0.0f;
  if (active) {
    const float* g = dout + ((long long)b * T + qi) * C + h * HS;
    for (int d = lane; d < HS; d += 32) {
      sq[warp * HS + d] = x[(long long)qi * C3 + d];
      sdo[warp * HS + d] = g[d];
    }
    li = lse[((long long)b * NH + h) * T + qi];
    di = dd[((long long)b * NH + h) * T + qi];
  }
  float acc[ATT_R];
  for (int r = 0; r < ATT_R; r++) acc[r] = 0.0f;
  for (int k0 = 0; k0 < T; k0 += 32) {
    __syncthreads();
    for (int i = threadIdx.x; i < 32 * HS; i += blockDim.x) {
      int j = i / HS, d = i % HS, t = k0 + j;
      sk[j * (HS + 1) + d] = t < T ? x[(long long)t * C3 + C + d] : 0.0f;
      sv[j * (HS + 1) + d] = t < T ? x[(long long)t * C3 + 2 * C + d] : 0.0f;
    }
    if (threadIdx.x < 32) {
      int t = k0 + threadIdx.x;
      skb[threadIdx.x] = t < T ? (key_bias ? key_bias[(long long)b * T + t] : 0.0f) : -km_inff();
    }
    __syncthreads();
    if (!active) continue;
    float s = 0.0f, dp = 0.0f;
    for (int d = 0; d < HS; d++) {
      s += sq[warp * HS + d] * sk[lane * (HS + 1) + d];
      dp += sdo[warp * HS + d] * sv[lane * (HS + 1) + d];
    }
    float p = km_expf(s * scale + skb[lane] - li);
    sds[warp * 32 + lane] = p * (dp - di);
    __syncwarp();
    for (int r = 0; r < ATT_R; r++) {
      int d = lane + 32 * r;
      if (d < HS) {
        float a = acc[r];
        for (int j = 0; j < 32; j++) a += sds[warp * 32 + j] * sk[j * (HS + 1) + d];
        acc[r] = a;
      }
    }
    __syncwarp();
  }
  if (!active) return;
  float* dq = dqkv + ((long long)b * T + qi) * C3 + h * HS;
  for (int r = 0; r < ATT_R; r++) {
    int d = lane + 32 * r;
    if (d < HS) dq[d] = acc[r] * scale;
  }
}
EMU_KERNEL(attention_backward_dq);

KERNEL void attention_backward_dkv(float* dqkv, const float* dout, const float* lse, const float* dd, const float* qkv,
                                   const float* key_bias, int T, int NH, int HS, float scale) {
  EMU_DYNAMIC_SHARED(float, sm);
  const int C = NH * HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kj = blockIdx.x * ATT_WARPS + warp;
  const bool active = kj < T;
  float* sk = sm;                        // (ATT_WARPS, HS) this block's keys
  float* sv = sk + ATT_WARPS * HS;       // (ATT_WARPS, HS) and values
  float* sq = sv + ATT_WARPS * HS;       // (32, HS+1) query tile
  float* sdo = sq + 32 * (HS + 1);       // (32, HS+1) dout tile
  float* sl = sdo + 32 * (HS + 1);       // (32) lse of the tile
  float* sd = sl + 32;                   // (32) dd of the tile
  float* sp = sd + 32;                   // (ATT_WARPS, 32) P
  float* sds = sp + ATT_WARPS * 32;      // (ATT_WARPS, 32) dS
  const float* x = qkv + (long long)b * T * C3 + h * HS;
  const float* g = dout + (long long)b * T * C + h * HS;
  float kb = 0.0f;
  if (active) {
    for (int d = lane; d < HS; d += 32) {
      sk[warp * HS + d] = x[(long long)kj * C3 + C + d];
      sv[warp * HS + d] = x[(long long)kj * C3 + 2 * C + d];
    }
    if (key_bias) kb = key_bias[(long long)b * T + kj];
  }
  float dk[ATT_R], dv[ATT_R];
  for (int r = 0; r < ATT_R; r++) dk[r] = dv[r] = 0.0f;
  for (int q0 = 0; q0 < T; q0 += 32) {
    __syncthreads();
    for (int i = threadIdx.x; i < 32 * HS; i += blockDim.x) {
      int j = i / HS, d = i % HS, t = q0 + j;
      sq[j * (HS + 1) + d] = t < T ? x[(long long)t * C3 + d] : 0.0f;
      sdo[j * (HS + 1) + d] = t < T ? g[(long long)t * C + d] : 0.0f;
    }
    if (threadIdx.x < 32) {
      int t = q0 + threadIdx.x;
      long long row = ((long long)b * NH + h) * T + t;
      sl[threadIdx.x] = t < T ? lse[row] : km_inff();  // +Inf: probability 0
      sd[threadIdx.x] = t < T ? dd[row] : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    float s = 0.0f, dp = 0.0f;
    for (int d = 0; d < HS; d++) {
      s += sq[lane * (HS + 1) + d] * sk[warp * HS + d];
      dp += sdo[lane * (HS + 1) + d] * sv[warp * HS + d];
    }
    float p = km_expf(s * scale + kb - sl[lane]);
    sp[warp * 32 + lane] = p;
    sds[warp * 32 + lane] = p * (dp - sd[lane]);
    __syncwarp();
    for (int r = 0; r < ATT_R; r++) {
      int d = lane + 32 * r;
      if (d < HS) {
        float av = dv[r], ak = dk[r];
        for (int i = 0; i < 32; i++) {
          av += sp[warp * 32 + i] * sdo[i * (HS + 1) + d];
          ak += sds[warp * 32 + i] * sq[i * (HS + 1) + d];
        }
        dv[r] = av;
        dk[r] = ak;
      }
    }
    __syncwarp();
  }
  if (!active) return;
  float* o = dqkv + ((long long)b * T + kj) * C3 + h * HS;
  for (int r = 0; r < ATT_R; r++) {
    int d = lane + 32 * r;
    if (d < HS) {
      o[C + d] = dk[r] * scale;
      o[2 * C + d] = dv[r];
    }
  }
}
EMU_KERNEL(attention_backward_dkv);

// ---- GEMM path: layout and row kernels ----

#define ATT_ROWS 8  // rows (one warp each) per block of the row kernels


KERNEL void attention_softmax(float* s, float* lse, const float* key_bias, unsigned short* p16, int rows, int T,
                              int NH) {
  int row = blockIdx.x * ATT_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  float* x = s + (long long)row * T;
  const float* kb = key_bias ? key_bias + (long long)(row / T / NH) * T : nullptr;
  const bool reg = T <= 32 * ROW_REG;  // the row in registers (common.h): one read of it
  float xr[ROW_REG] = {};
  float m = -km_inff();
  if (reg) {
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      int j = lane + 32 * k;
      xr[k] = j < T ? (kb ? x[j] + kb[j] : x[j]) : -km_inff();
      m = xr[k] > m ? xr[k] : m;
    }
  } else {
    for (int j = lane; j < T; j += 32) {
      float v = kb ? x[j] + kb[j] : x[j];
      m = v > m ? v : m;
    }
  }
  m = warp_max(m);
  unsigned short* y = p16 ? p16 + (long long)row * T : nullptr;
  if (m == -km_inff()) {  // every key masked
    for (int j = lane; j < T; j += 32) {
      if (y)
        y[j] = 0;
      else
        x[j] = 0.0f;
    }
    if (lane == 0) lse[row] = 0.0f;
    return;
  }
  float l = 0.0f;  // e = exp(s - m): one exp per score
  if (reg) {
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      xr[k] = km_expf(xr[k] - m);  // exp(-Inf) = 0 past the row's end
      if (lane + 32 * k < T) l += xr[k];
    }
  } else {
    for (int j = lane; j < T; j += 32) {  // kept in place
      float e = km_expf((kb ? x[j] + kb[j] : x[j]) - m);
      x[j] = e;
      l += e;
    }
  }
  l = warp_sum(l);
  float inv = 1.0f / l;
  if (reg) {
UNROLL
    for (int k = 0; k < ROW_REG; k++) {
      int j = lane + 32 * k;
      if (j < T && y)
        y[j] = (unsigned short)bf16_bits(xr[k] * inv);
      else if (j < T)
        x[j] = xr[k] * inv;
    }
  } else {
    for (int j = lane; j < T; j += 32) {
      if (y)
        y[j] = (unsigned short)bf16_bits(x[j] * inv);
      else
        x[j] *= inv;
    }
  }
  if (lane == 0) lse[row] = m + km_logf(l);
}
EMU_KERNEL(attention_softmax);

KERNEL void attention_probs(float* s, const float* lse, const float* key_bias, unsigned short* p16, int rows, int T,
                            int NH) {
  int row = blockIdx.x * ATT_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  float* x = s + (long long)row * T;
  unsigned short* y = p16 ? p16 + (long long)row * T : nullptr;
  const float* kb = key_bias ? key_bias + (long long)(row / T / NH) * T : nullptr;
  const float li = lse[row];
  for (int j = lane; j < T; j += 32) {
    x[j] = km_expf((kb ? x[j] + kb[j] : x[j]) - li);
    if (y) y[j] = (unsigned short)bf16_bits(x[j]);
  }
}
EMU_KERNEL(attention_probs);

KERNEL void attention_dscores(float* dp, const float* p, const float* dd, unsigned short* ds16, int rows, int T) {
  int row = blockIdx.x * ATT_ROWS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  float* g = dp + (long long)row * T;
  unsigned short* y = ds16 ? ds16 + (long long)row * T : nullptr;
  const float* pr = p + (long long)row * T;
  const float di = dd[row];
  for (int j = lane; j < T; j += 32) {
    float v = pr[j] * (g[j] - di);
    if (y)
      y[j] = (unsigned short)bf16_bits(v);
    else
      g[j] = v;
  }
}
EMU_KERNEL(attention_dscores);

#define MMA_WARPS 4
#define MMA_HS 64
#define MMA_KEYS 64             // keys per tile
#define MMA_LD (MMA_HS + 8)     // row stride of the shared tiles in bfloat16: rows 16 bytes apart mod 128,
                                // so the 8 rows a fragment load touches fall in different banks


KERNEL void attention_mma_tile(float* d, const unsigned short* a, const unsigned short* b) {
  alignas(16) __shared__ unsigned short sb[16 * MMA_LD];  // B row-major, rows MMA_LD apart as in the kernels' tiles
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  unsigned af[4], bf[2];
UNROLL
  for (int r = 0; r < 4; r++) {  // A element i = 2r + e at row g + 8*(i/2 % 2), column 2q + e + 8*(i/4)
    const int row = g + 8 * (r & 1), col = 2 * q + 8 * (r >> 1);
    af[r] = (unsigned)a[row * 16 + col] | (unsigned)a[row * 16 + col + 1] << 16;
  }
UNROLL
  for (int r = 0; r < 2; r++) {  // B element i = 2r + e at row 2q + e + 8*(i/2), column g
    const int row = 2 * q + 8 * r;
    bf[r] = (unsigned)b[row * 16 + g] | (unsigned)b[(row + 1) * 16 + g] << 16;
  }
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f}, o[4];
  mma_bf16_16816(o, af, bf, c);
UNROLL
  for (int i = 0; i < 4; i++) d[(g + 8 * (i >> 1)) * 8 + 2 * q + (i & 1)] = o[i];
  // The same A by all of B, its fragments from ldmatrix_x4_trans: lane l points at row l%16,
  // columns 8*(l/16)..: matrices 0 and 1 are B's first 8 columns, 2 and 3 its last 8.
  for (int i = lane; i < 16 * 16; i += 32) sb[(i / 16) * MMA_LD + i % 16] = b[i];
  __syncwarp();
  unsigned bt[4];
  ldmatrix_x4_trans(bt, smem_of(sb + (lane & 15) * MMA_LD + 8 * (lane >> 4)));
  // Each of the other loads is checked against a product whose other operand came by the
  // formulas or by a load already checked (with both operands from one wrong layout, a
  // consistent reordering of k would cancel): d[384..640) = A (formulas) by B's fragments by
  // ldmatrix_x4 from B^T (row-major: B's columns as rows); d[640..896) = A's by ldmatrix_x4
  // from A by B's as in d[128..); d[896..1152) = A's by ldmatrix_x4_trans from A^T by the same.
  alignas(16) __shared__ unsigned short sa[16 * MMA_LD], sat[16 * MMA_LD], sbt[16 * MMA_LD];
  for (int i = lane; i < 16 * 16; i += 32) {
    sa[(i / 16) * MMA_LD + i % 16] = a[i];
    sat[(i % 16) * MMA_LD + i / 16] = a[i];
    sbt[(i % 16) * MMA_LD + i / 16] = b[i];
  }
  __syncwarp();
  unsigned a1[4], a2[4], b1[4];
  // Lane l points at row l%8 + 8*(l/8%2), column 8*(l/16): matrices (rows 0-7, 8-15) x (columns 0-7, 8-15).
  ldmatrix_x4(a1, smem_of(sa + ((lane & 7) + 8 * ((lane >> 3) & 1)) * MMA_LD + 8 * (lane >> 4)));
  // Lane l points at row l%8 + 8*(l/16), column 8*(l/8%2): B^T's columns 0-7, 8-15 of each 8 rows.
  ldmatrix_x4(b1, smem_of(sbt + ((lane & 7) + 8 * (lane >> 4)) * MMA_LD + 8 * ((lane >> 3) & 1)));
  ldmatrix_x4_trans(a2, smem_of(sat + ((lane & 7) + 8 * (lane >> 4)) * MMA_LD + 8 * ((lane >> 3) & 1)));
  const unsigned* as[4] = {af, af, a1, a2};
  const unsigned* bs[4] = {bt, b1, bt, bt};
UNROLL
  for (int k = 0; k < 4; k++)
UNROLL
    for (int half = 0; half < 2; half++) {
      mma_bf16_16816(o, as[k], bs[k] + 2 * half, c);
UNROLL
      for (int i = 0; i < 4; i++) d[128 + 256 * k + (g + 8 * (i >> 1)) * 16 + 8 * half + 2 * q + (i & 1)] = o[i];
    }
}
EMU_KERNEL(attention_mma_tile);

// mma_a_frags loads a warp's A fragments of the 16 rows (r0 = row of lanes g, r1 = r0 + 8; rows
// at or past T are zero) of a (T, stride) bfloat16 array x, 64 columns from x.
DEVFN void mma_a_frags(unsigned fr[MMA_HS / 16][4], const unsigned short* x, long long stride, int r0, int T) {
  const int q = (threadIdx.x & 31) & 3, r1 = r0 + 8;
UNROLL
  for (int ks = 0; ks < MMA_HS / 16; ks++) {
    const int d = ks * 16 + 2 * q;
    fr[ks][0] = r0 < T ? *(const unsigned*)(x + r0 * stride + d) : 0u;
    fr[ks][1] = r1 < T ? *(const unsigned*)(x + r1 * stride + d) : 0u;
    fr[ks][2] = r0 < T ? *(const unsigned*)(x + r0 * stride + d + 8) : 0u;
    fr[ks][3] = r1 < T ? *(const unsigned*)(x + r1 * stride + d + 8) : 0u;
  }
}

// mma_a_frags_tile loads a warp's A fragments of 16 rows of a tile in shared memory (row-major,
// rows MMA_LD apart; 64 columns) by ldmatrix_x4: lane l points at row l%8 + 8*(l/8%2),
// column 8*(l/16) of each k-step.
DEVFN void mma_a_frags_tile(unsigned fr[MMA_HS / 16][4], const unsigned short* tile) {
  const int lane = threadIdx.x & 31;
  const smem_t row = smem_of(tile + ((lane & 7) + 8 * ((lane >> 3) & 1)) * MMA_LD + 8 * (lane >> 4));
UNROLL
  for (int ks = 0; ks < MMA_HS / 16; ks++) ldmatrix_x4(fr[ks], smem_at(row, ks * 16));
}

// mma_a_frags_tile_trans loads a warp's A fragments of the 16 columns from c0 of a tile in
// shared memory (row-major, rows MMA_LD apart, 64 rows: A = those columns transposed, the
// tile's rows its k-steps) by ldmatrix_x4_trans: lane l points at row l%8 + 8*(l/16), column
// c0 + 8*(l/8%2) of each k-step.
DEVFN void mma_a_frags_tile_trans(unsigned fr[MMA_KEYS / 16][4], const unsigned short* tile, int c0) {
  const int lane = threadIdx.x & 31;
  const smem_t row = smem_of(tile + ((lane & 7) + 8 * (lane >> 4)) * MMA_LD + c0 + 8 * ((lane >> 3) & 1));
UNROLL
  for (int kt = 0; kt < MMA_KEYS / 16; kt++) ldmatrix_x4_trans(fr[kt], smem_at(row, kt * 16 * MMA_LD));
}

// The tiles are 16-byte aligned (alignas), as ldmatrix needs its rows.

// A tile (64 rows of 64 BF16 values) moves from global to shared memory in MMA_PIECES
// 16-byte pieces per thread of a block (piece p: row p/8, columns 8*(p%8)..+7), held in
// registers in between: mma_tile_fetch loads them, mma_tile_put stores them, so a kernel can
// fetch the next tile before the products of this one and have the loads' latency covered.
#define MMA_PIECES (MMA_KEYS * MMA_HS / 8 / (32 * MMA_WARPS))
typedef unsigned u32x4 __attribute__((vector_size(16)));

// mma_tile_fetch loads this thread's pieces of rows t0.. t0+63 (zero past T) of the 64
// columns at x (row stride stride, a multiple of 8; x 16-byte aligned) by 16-byte loads.
DEVFN void mma_tile_fetch(u32x4 r[MMA_PIECES], const unsigned short* x, long long stride, int t0, int T) {
UNROLL
  for (int i = 0; i < MMA_PIECES; i++) {
    const int p = threadIdx.x + i * 32 * MMA_WARPS, t = t0 + (p >> 3);
    r[i] = t < T ? *(const u32x4*)(x + t * stride + 8 * (p & 7)) : u32x4{0u, 0u, 0u, 0u};
  }
}

// mma_tile_put stores the pieces of mma_tile_fetch into a shared tile, row j at tile +
// j*MMA_LD: the B operand both of the products that reduce over its columns
// (mma_rows_by_tile) and, through ldmatrix_x4_trans, of those that reduce over its rows
// (mma_acc_frags).
DEVFN void mma_tile_put(unsigned short* tile, const u32x4 r[MMA_PIECES]) {
UNROLL
  for (int i = 0; i < MMA_PIECES; i++) {
    const int p = threadIdx.x + i * 32 * MMA_WARPS;
    *(u32x4*)(tile + (p >> 3) * MMA_LD + 8 * (p & 7)) = r[i];
  }
}

// mma_tile_load copies rows t0.. t0+63 (zero past T) of x into a shared tile at once.
DEVFN void mma_tile_load(unsigned short* tile, const unsigned short* x, long long stride, int t0, int T) {
  u32x4 r[MMA_PIECES];
  mma_tile_fetch(r, x, stride, t0, T);
  mma_tile_put(tile, r);
}

// The tiles' rows past T are zero (mma_tile_load), and so are the P and dS values of keys
// and queries past T: the products below skip the groups of tile rows that lie wholly past
// the tile's first `rows` (T - the tile's first row), which would add exact zeros. The
// condition is the same in every lane of a warp, as mma.sync requires. At DiT-B's T = 272
// the last of five tiles has 16 such rows of 64.

// mma_rows_by_tile: acc[nt] (8 groups of 8 tile rows) = A * tile^T, A the warp's 16 rows as
// fragments over 64 columns, tile row-major in shared memory (rows of 64 columns); groups
// of rows at or past `rows` are 0.
DEVFN void mma_rows_by_tile_n(float acc[MMA_KEYS / 8][4], const unsigned a[MMA_HS / 16][4], smem_t row, int rows) {
UNROLL
  for (int nt = 0; nt < MMA_KEYS / 8; nt++)
UNROLL
    for (int i = 0; i < 4; i++) acc[nt][i] = 0.0f;
  // k-steps outer: the eight groups' products are independent of one another, so they
  // overlap where one group's chain would wait on each product.
UNROLL
  for (int kp = 0; kp < MMA_HS / 32; kp++)
UNROLL
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) {
      if (nt * 8 >= rows) continue;
      unsigned b[4];  // k-steps 2kp (b[0], b[1]) and 2kp + 1 (b[2], b[3])
      ldmatrix_x4(b, smem_at(row, nt * 8 * MMA_LD + kp * 32));
      mma_bf16_16816(acc[nt], a[2 * kp], b, acc[nt]);
      mma_bf16_16816(acc[nt], a[2 * kp + 1], b + 2, acc[nt]);
    }
}

// Each product over a tile runs in one of two inlined copies: the full tiles' with rows the
// constant MMA_KEYS, where no group is skipped and none is tested (a test per group puts a
// branch, and a reconvergence, around each group's products), and the last tile's.
DEVFN void mma_rows_by_tile(float acc[MMA_KEYS / 8][4], const unsigned a[MMA_HS / 16][4], const unsigned short* tile,
                            int rows) {
  const int lane = threadIdx.x & 31;
  // B's fragments by ldmatrix_x4, two k-steps at a time: lane l points at row l%8 of the
  // group of 8 tile rows, columns 8*(l/8).. of the pair of k-steps.
  const smem_t row = smem_of(tile + (lane & 7) * MMA_LD + 8 * (lane >> 3));
  if (rows >= MMA_KEYS)
    mma_rows_by_tile_n(acc, a, row, MMA_KEYS);
  else
    mma_rows_by_tile_n(acc, a, row, rows);
}

// mma_acc_frags: acc[dt] (8 groups of 8 of the 64 columns) += A * tile, A (16 rows, 64 tile
// rows) as A fragments a[kt] (k-steps of 16 tile rows), tile row-major in shared memory
// (mma_tile_load), B's fragments by ldmatrix_x4_trans two column groups at a time (lane l
// points at row l%16 of the k-step, column group 2*dp + l/16); k-steps at or past `rows`
// skipped (A is 0 there).
DEVFN void mma_acc_frags_n(float acc[MMA_HS / 8][4], const unsigned a[MMA_KEYS / 16][4], smem_t row, int rows) {
UNROLL
  for (int kt = 0; kt < MMA_KEYS / 16; kt++)
UNROLL
    for (int dp = 0; dp < MMA_HS / 16; dp++) {
      if (kt * 16 >= rows) continue;
      unsigned b[4];  // column groups 2dp (b[0], b[1]) and 2dp + 1 (b[2], b[3])
      ldmatrix_x4_trans(b, smem_at(row, kt * 16 * MMA_LD + dp * 16));
      mma_bf16_16816(acc[2 * dp], a[kt], b, acc[2 * dp]);
      mma_bf16_16816(acc[2 * dp + 1], a[kt], b + 2, acc[2 * dp + 1]);
    }
}

DEVFN void mma_acc_frags(float acc[MMA_HS / 8][4], const unsigned a[MMA_KEYS / 16][4], const unsigned short* tile,
                         int rows) {
  const int lane = threadIdx.x & 31;
  const smem_t row = smem_of(tile + (lane & 15) * MMA_LD + 8 * (lane >> 4));
  if (rows >= MMA_KEYS)  // the full tiles' copy (mma_rows_by_tile)
    mma_acc_frags_n(acc, a, row, MMA_KEYS);
  else
    mma_acc_frags_n(acc, a, row, rows);
}

// mma_c_to_a rounds C fragments x[nt] (16 rows, 64 columns in 8 groups of 8) to BF16 A
// fragments a[kt] (k-steps of 16 columns, two groups of 8 each): a C fragment's pairs are
// an A fragment's.
DEVFN void mma_c_to_a(unsigned a[MMA_KEYS / 16][4], const float x[MMA_KEYS / 8][4]) {
UNROLL
  for (int kt = 0; kt < MMA_KEYS / 16; kt++) {
    a[kt][0] = bf16x2(x[2 * kt][0], x[2 * kt][1]);
    a[kt][1] = bf16x2(x[2 * kt][2], x[2 * kt][3]);
    a[kt][2] = bf16x2(x[2 * kt + 1][0], x[2 * kt + 1][1]);
    a[kt][3] = bf16x2(x[2 * kt + 1][2], x[2 * kt + 1][3]);
  }
}

// mma_acc_by_tile is mma_acc_frags with A given as C fragments x[nt] (16 rows, 64 tile rows).
DEVFN void mma_acc_by_tile(float acc[MMA_HS / 8][4], const float x[MMA_KEYS / 8][4], const unsigned short* tile,
                           int rows) {
  unsigned a[MMA_KEYS / 16][4];
  mma_c_to_a(a, x);
  mma_acc_frags(acc, a, tile, rows);
}

// mma_zero clears a warp's 16 x 64 accumulator.
DEVFN void mma_zero(float acc[MMA_HS / 8][4]) {
UNROLL
  for (int dt = 0; dt < MMA_HS / 8; dt++)
UNROLL
    for (int i = 0; i < 4; i++) acc[dt][i] = 0.0f;
}

// The keys' tiles of the forward and the dq kernel, fetched one tile ahead (mma_kv_fetch:
// keys and values k0.. k0+63 of x, sample b's part of q16 at its head, and the first 64
// threads' key bias times log2(e), as the tensor-core kernels' exponentials are powers of 2:
// 0 without a bias, -Inf past T) and stored by mma_kv_put into sk, sv (zero past T) and skb.
struct mma_kv_regs {
  u32x4 k[MMA_PIECES], v[MMA_PIECES];
  float kb;
};

DEVFN void mma_kv_fetch(mma_kv_regs& r, const unsigned short* x, int C, const float* key_bias, int b, int k0, int T) {
  mma_tile_fetch(r.k, x + C, 3 * C, k0, T);
  mma_tile_fetch(r.v, x + 2 * C, 3 * C, k0, T);
  const int t = k0 + threadIdx.x;
  r.kb = threadIdx.x >= MMA_KEYS ? 0.0f
         : t < T                 ? (key_bias ? key_bias[(long long)b * T + t] * KM_LOG2E : 0.0f)
                                 : -km_inff();
}

DEVFN void mma_kv_put(unsigned short* sk, unsigned short* sv, float* skb, const mma_kv_regs& r) {
  mma_tile_put(sk, r.k);
  mma_tile_put(sv, r.v);
  if (threadIdx.x < MMA_KEYS) skb[threadIdx.x] = r.kb;
}

// mma_store_rows writes acc*mul (rows r0 = g-lanes' row, r0 + 8; columns 8dt + 2q, +1) into
// the rows below T of y (row stride stride; a lane's two values as one 8-byte store where y
// and the stride allow, which `aligned` asserts for a caller that knows) and its BF16 rounding
// into y16, each where not null.
DEVFN void mma_store_rows(float* y, unsigned short* y16, long long stride, const float acc[MMA_HS / 8][4], float mul,
                          int r0, int T, bool aligned = false) {
  const int q = (threadIdx.x & 31) & 3;
  const bool pairs = aligned || (aligned8(y) && stride % 2 == 0);
UNROLL
  for (int dt = 0; dt < MMA_HS / 8; dt++) {
UNROLL
    for (int half = 0; half < 2; half++) {  // rows r0 and r0 + 8
      const int r = r0 + 8 * half;
      if (r >= T) continue;
      const long long i = r * stride + dt * 8 + 2 * q;
      const float v0 = acc[dt][2 * half] * mul, v1 = acc[dt][2 * half + 1] * mul;
      if (y && pairs) {
        *(f32x2*)(y + i) = f32x2{v0, v1};
      } else if (y) {
        y[i] = v0;
        y[i + 1] = v1;
      }
      if (y16) *(unsigned*)(y16 + i) = bf16x2(v0, v1);
    }
  }
}

// Three blocks per SM (at most 168 registers: ptxas spills two values, outside the loop),
// where the next tile's registers (mma_kv_regs) would otherwise leave room for two.
KERNEL void __launch_bounds__(32 * MMA_WARPS, 3)
    attention_forward_mma(float* out, unsigned short* out16, float* lse, const unsigned short* q16,
                          const float* key_bias, int T, int NH, float scale) {
  alignas(16) __shared__ unsigned short sk[MMA_KEYS * MMA_LD];   // K tile: key j, dim d at j*MMA_LD + d
  alignas(16) __shared__ unsigned short sv[MMA_KEYS * MMA_LD];   // V tile: key j, dim d at j*MMA_LD + d
  alignas(8) __shared__ float skb[MMA_KEYS];         // key bias*log2(e) of the tile (-Inf past T)
  const int C = NH * MMA_HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, q = lane & 3;
  const int w0 = blockIdx.x * 16 * MMA_WARPS + warp * 16;  // the warp's first query
  const int r0 = w0 + (lane >> 2), r1 = r0 + 8;                // this lane's two queries
  const unsigned short* x = q16 + (long long)b * T * C3 + h * MMA_HS;
  unsigned qa[MMA_HS / 16][4];
  mma_a_frags(qa, x, C3, r0, T);
  float o[MMA_HS / 8][4];  // O: dims 8*dt + 2q, +1 of r0 (0, 1) and r1 (2, 3)
  mma_zero(o);
  // The online softmax in base 2: scores v = s*scale*log2(e) + bias*log2(e) (skb holds the
  // latter), running max m and sum l of 2^(v - m); exp(x) = 2^(x log2 e) by exp2_approx.
  const float sl2 = scale * KM_LOG2E;
  float m0 = -km_inff(), m1 = -km_inff(), l0 = 0.0f, l1 = 0.0f;
  mma_kv_regs next;
  mma_kv_fetch(next, x, C, key_bias, b, 0, T);
  for (int k0 = 0; k0 < T; k0 += MMA_KEYS) {
    __syncthreads();  // the previous tile is consumed
    mma_kv_put(sk, sv, skb, next);
    __syncthreads();
    if (k0 + MMA_KEYS < T) mma_kv_fetch(next, x, C, key_bias, b, k0 + MMA_KEYS, T);  // in flight meanwhile
    if (w0 >= T) continue;     // every query of the warp past T: none of its work is stored
    float s[MMA_KEYS / 8][4];  // keys 8nt + 2q, +1 of r0 (0, 1) and r1 (2, 3)
    mma_rows_by_tile(s, qa, sk, T - k0);  // S = Q K^T
    float mt0 = -km_inff(), mt1 = -km_inff();
UNROLL
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) {
      const f32x2 kb = *(const f32x2*)(skb + nt * 8 + 2 * q);  // keys 8nt + 2q, +1
UNROLL
      for (int i = 0; i < 4; i++) {
        const float v = fma_rn(s[nt][i], sl2, kb[i & 1]);
        s[nt][i] = v;
        if (i < 2)
          mt0 = max_f(mt0, v);
        else
          mt1 = max_f(mt1, v);
      }
    }
UNROLL
    for (int off = 1; off < 4; off <<= 1) {  // over the 4 lanes of the row group
      float w0 = __shfl_xor_sync(FULL_MASK, mt0, off), w1 = __shfl_xor_sync(FULL_MASK, mt1, off);
      mt0 = max_f(mt0, w0);
      mt1 = max_f(mt1, w1);
    }
    const float mn0 = max_f(mt0, m0), mn1 = max_f(mt1, m1);
    // A row with every key so far masked (max -Inf) subtracts 0 instead: its scores are -Inf,
    // so p = 0, and its o and l are 0 whatever the correction c (2^-Inf = 0 there).
    const float ms0 = mn0 == -km_inff() ? 0.0f : mn0, ms1 = mn1 == -km_inff() ? 0.0f : mn1;
    const float c0 = exp2_approx(m0 - ms0), c1 = exp2_approx(m1 - ms1);
    float ps0 = 0.0f, ps1 = 0.0f;
UNROLL
    for (int nt = 0; nt < MMA_KEYS / 8; nt++)
UNROLL
      for (int i = 0; i < 4; i++) {
        const float p = exp2_approx(s[nt][i] - (i < 2 ? ms0 : ms1));
        s[nt][i] = p;
        if (i < 2)
          ps0 += p;
        else
          ps1 += p;
      }
UNROLL
    for (int off = 1; off < 4; off <<= 1) {
      ps0 += __shfl_xor_sync(FULL_MASK, ps0, off);
      ps1 += __shfl_xor_sync(FULL_MASK, ps1, off);
    }
    l0 = l0 * c0 + ps0;
    l1 = l1 * c1 + ps1;
    m0 = mn0;
    m1 = mn1;
UNROLL
    for (int dt = 0; dt < MMA_HS / 8; dt++) {
      o[dt][0] *= c0;
      o[dt][1] *= c0;
      o[dt][2] *= c1;
      o[dt][3] *= c1;
    }
    mma_acc_by_tile(o, s, sv, T - k0);  // O += P V
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
UNROLL
  for (int dt = 0; dt < MMA_HS / 8; dt++) {  // inv0 on the r0 half, inv1 on the r1 half
    o[dt][0] *= inv0;
    o[dt][1] *= inv0;
    o[dt][2] *= inv1;
    o[dt][3] *= inv1;
  }
  const long long base = (long long)b * T * C + h * MMA_HS;
  mma_store_rows(out ? out + base : nullptr, out16 ? out16 + base : nullptr, C, o, 1.0f, r0, T);
  if (q == 0) {
    float* ls = lse + ((long long)b * NH + h) * T;
    if (r0 < T) ls[r0] = l0 > 0.0f ? m0 * KM_LN2 + km_logf(l0) : 0.0f;  // natural log, as every path's
    if (r1 < T) ls[r1] = l1 > 0.0f ? m1 * KM_LN2 + km_logf(l1) : 0.0f;
  }
}
EMU_KERNEL(attention_forward_mma);

KERNEL void attention_backward_dq_mma(float* dqkv, unsigned short* dqkv16, const unsigned short* q16,
                                      const unsigned short* do16, const unsigned short* out16, const float* lse,
                                      float* dd, const float* key_bias, int T, int NH, float scale) {
  alignas(16) __shared__ unsigned short sk[MMA_KEYS * MMA_LD], sv[MMA_KEYS * MMA_LD];
  alignas(8) __shared__ float skb[MMA_KEYS];
  const int C = NH * MMA_HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int r0 = blockIdx.x * 16 * MMA_WARPS + warp * 16 + g, r1 = r0 + 8;
  const unsigned short* x = q16 + (long long)b * T * C3 + h * MMA_HS;
  unsigned qa[MMA_HS / 16][4], da[MMA_HS / 16][4];
  mma_a_frags(qa, x, C3, r0, T);
  mma_a_frags(da, do16 + (long long)b * T * C + h * MMA_HS, C, r0, T);
  const float* ls = lse + ((long long)b * NH + h) * T;
  // dd = rowsum(dO O) of rows r0 and r1 from the BF16 copies: the lane's 16 values of each
  // row in da by O's at the same places, summed over the row group's 4 lanes. The dkv kernel,
  // launched after this one, reads it from dd.
  const unsigned short* o = out16 + (long long)b * T * C + h * MMA_HS;
  float dd0 = 0.0f, dd1 = 0.0f;
UNROLL
  for (int ks = 0; ks < MMA_HS / 16; ks++)
UNROLL
    for (int half = 0; half < 2; half++) {  // columns ks*16 + 8*half + 2q, +1 (da[ks][2*half], [2*half + 1])
      const int c = ks * 16 + 8 * half + 2 * q;
      if (r0 < T) dd0 += dot_bf16x2(da[ks][2 * half], bf16_pair(o + (long long)r0 * C + c));
      if (r1 < T) dd1 += dot_bf16x2(da[ks][2 * half + 1], bf16_pair(o + (long long)r1 * C + c));
    }
UNROLL
  for (int off = 1; off < 4; off <<= 1) {
    dd0 += __shfl_xor_sync(FULL_MASK, dd0, off);
    dd1 += __shfl_xor_sync(FULL_MASK, dd1, off);
  }
  if (q == 0) {
    float* dds = dd + ((long long)b * NH + h) * T;
    if (r0 < T) dds[r0] = dd0;
    if (r1 < T) dds[r1] = dd1;
  }
  // P = exp(scale*S + bias - lse) = 2^(S*scale*log2(e) + (bias - lse)*log2(e)).
  const float sl2 = scale * KM_LOG2E;
  const float lse0 = r0 < T ? ls[r0] * KM_LOG2E : 0.0f, lse1 = r1 < T ? ls[r1] * KM_LOG2E : 0.0f;
  float dq[MMA_HS / 8][4];
  mma_zero(dq);
  mma_kv_regs next;
  mma_kv_fetch(next, x, C, key_bias, b, 0, T);
  for (int k0 = 0; k0 < T; k0 += MMA_KEYS) {
    __syncthreads();  // the previous tile is consumed
    mma_kv_put(sk, sv, skb, next);
    __syncthreads();
    if (k0 + MMA_KEYS < T) mma_kv_fetch(next, x, C, key_bias, b, k0 + MMA_KEYS, T);  // in flight meanwhile
    if (r0 - g >= T) continue;  // every query of the warp (its first is r0 - g) past T
    float s[MMA_KEYS / 8][4], dp[MMA_KEYS / 8][4];
    mma_rows_by_tile(s, qa, sk, T - k0);   // S = Q K^T
    mma_rows_by_tile(dp, da, sv, T - k0);  // dP = dO V^T
UNROLL
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) {
      const f32x2 kb = *(const f32x2*)(skb + nt * 8 + 2 * q);  // keys 8nt + 2q, +1
UNROLL
      for (int i = 0; i < 4; i++) {  // dS = P*(dP - dd), P = exp(scale*S + bias - lse); 2^-Inf = 0
        const float p = exp2_approx(fma_rn(s[nt][i], sl2, kb[i & 1] - (i < 2 ? lse0 : lse1)));
        s[nt][i] = p * (dp[nt][i] - (i < 2 ? dd0 : dd1));
      }
    }
    mma_acc_by_tile(dq, s, sk, T - k0);  // dQ += dS K
  }
  const long long base = (long long)b * T * C3 + h * MMA_HS;
  mma_store_rows(dqkv ? dqkv + base : nullptr, dqkv16 ? dqkv16 + base : nullptr, C3, dq, scale, r0, T);
}
EMU_KERNEL(attention_backward_dq_mma);

KERNEL void attention_backward_dkv_mma(float* dqkv, unsigned short* dqkv16, float* dq_part,
                                       const unsigned short* q16, const unsigned short* do16,
                                       const float* lse, const float* dd, const float* key_bias, int T, int NH,
                                       float scale) {
  // sq holds a query tile for S^T = K Q^T, then (dq_part) the tile's dS^T for dQ = dS K; sk and
  // sv the block's keys and values, whose A fragments each warp takes from there on every
  // tile rather than holding them in 32 registers for the whole kernel.
  alignas(16) __shared__ unsigned short sq[MMA_KEYS * MMA_LD], sdo[MMA_KEYS * MMA_LD], sk[MMA_KEYS * MMA_LD],
      sv[MMA_KEYS * MMA_LD];
  alignas(8) __shared__ float slse[MMA_KEYS], sdd[MMA_KEYS];  // the tile's lse*log2(e) and dd
  const int C = NH * MMA_HS, C3 = 3 * C, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int k0 = blockIdx.x * 16 * MMA_WARPS, r0 = k0 + warp * 16 + g, r1 = r0 + 8;  // this lane's two keys
  const unsigned short* x = q16 + (long long)b * T * C3 + h * MMA_HS;
  const unsigned short* y = do16 + (long long)b * T * C + h * MMA_HS;
  mma_tile_load(sk, x + C, C3, k0, T);  // read after the loop's first sync
  mma_tile_load(sv, x + 2 * C, C3, k0, T);
  // dq_part + t*64 + d: this block's dQ contribution to query t (its keys only, unscaled).
  float* part = dq_part ? dq_part + (((long long)b * NH + h) * gridDim.x + blockIdx.x) * T * MMA_HS : nullptr;
  const float* kbs = key_bias ? key_bias + (long long)b * T : nullptr;
  // P^T = exp(scale*S^T + bias - lse) = 2^(S^T*scale*log2(e) + (bias - lse)*log2(e)).
  const float sl2 = scale * KM_LOG2E;
  const float kb0 = r0 < T ? (kbs ? kbs[r0] * KM_LOG2E : 0.0f) : -km_inff();
  const float kb1 = r1 < T ? (kbs ? kbs[r1] * KM_LOG2E : 0.0f) : -km_inff();
  const float* ls = lse + ((long long)b * NH + h) * T;
  const float* dds = dd + ((long long)b * NH + h) * T;
  float dk[MMA_HS / 8][4], dv[MMA_HS / 8][4];
  mma_zero(dk);
  mma_zero(dv);
  for (int t0 = 0; t0 < T; t0 += MMA_KEYS) {
    __syncthreads();  // the previous tile is consumed
    mma_tile_load(sq, x, C3, t0, T);
    mma_tile_load(sdo, y, C, t0, T);
    if (threadIdx.x < MMA_KEYS) {  // queries past T: lse +Inf, so P = 0
      const int t = t0 + threadIdx.x;
      slse[threadIdx.x] = t < T ? ls[t] * KM_LOG2E : km_inff();
      sdd[threadIdx.x] = t < T ? dds[t] : 0.0f;
    }
    __syncthreads();
    float st[MMA_KEYS / 8][4], dpt[MMA_KEYS / 8][4];
    unsigned ka[MMA_HS / 16][4], va[MMA_HS / 16][4];  // the warp's 16 keys and values
    mma_a_frags_tile(ka, sk + warp * 16 * MMA_LD);
    mma_rows_by_tile(st, ka, sq, T - t0);  // S^T = K Q^T
    mma_a_frags_tile(va, sv + warp * 16 * MMA_LD);
    mma_rows_by_tile(dpt, va, sdo, T - t0);  // dP^T = V dO^T
UNROLL
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) {  // queries 8nt + 2q, +1
      const f32x2 l2 = *(const f32x2*)(slse + nt * 8 + 2 * q), d2 = *(const f32x2*)(sdd + nt * 8 + 2 * q);
UNROLL
      for (int i = 0; i < 4; i++) {  // P^T = exp(scale*S^T + bias_key - lse_query), dS^T = P^T*(dP^T - dd_query)
        const float p = exp2_approx(fma_rn(st[nt][i], sl2, (i < 2 ? kb0 : kb1) - l2[i & 1]));
        st[nt][i] = p;
        dpt[nt][i] = p * (dpt[nt][i] - d2[i & 1]);
      }
    }
    mma_acc_by_tile(dv, st, sdo, T - t0);  // dV += P^T dO
    unsigned dsa[MMA_KEYS / 16][4];  // dS^T in BF16: the warp's 16 keys by the tile's queries
    mma_c_to_a(dsa, dpt);
    mma_acc_frags(dk, dsa, sq, T - t0);  // dK += dS^T Q
    if (part) {  // uniform across the block
      __syncthreads();  // every warp has read sq: it takes dS^T, key-major (key j at j*MMA_LD)
      unsigned short* ks = sq + (warp * 16 + g) * MMA_LD + 2 * q;  // key g of the warp's, queries 2q, 2q+1
UNROLL
      for (int kt = 0; kt < MMA_KEYS / 16; kt++) {  // the A fragments' pairs, as they are
        *(unsigned*)(ks + kt * 16) = dsa[kt][0];
        *(unsigned*)(ks + 8 * MMA_LD + kt * 16) = dsa[kt][1];
        *(unsigned*)(ks + kt * 16 + 8) = dsa[kt][2];
        *(unsigned*)(ks + 8 * MMA_LD + kt * 16 + 8) = dsa[kt][3];
      }
      __syncthreads();
      if (t0 + warp * 16 < T) {  // the warp's 16 queries of the tile, unless all past T
        unsigned da[MMA_KEYS / 16][4];  // their dS rows over the block's keys
        mma_a_frags_tile_trans(da, sq, warp * 16);
        float dq[MMA_HS / 8][4];
        mma_zero(dq);
        mma_acc_frags(dq, da, sk, T - k0);  // dQ = dS K
        mma_store_rows(part, nullptr, MMA_HS, dq, 1.0f, t0 + warp * 16 + g, T, true);  // scratch: aligned
      }
    }
  }
  const long long base = (long long)b * T * C3 + h * MMA_HS;
  mma_store_rows(dqkv ? dqkv + base + C : nullptr, dqkv16 ? dqkv16 + base + C : nullptr, C3, dk, scale, r0, T);
  mma_store_rows(dqkv ? dqkv + base + 2 * C : nullptr, dqkv16 ? dqkv16 + base + 2 * C : nullptr, C3, dv, 1.0f, r0,
                 T);
}
EMU_KERNEL(attention_backward_dkv_mma);

KERNEL void attention_dq_sum(float* dqkv, unsigned short* dqkv16, const float* dq_part, int B, int T, int NH,
                             int blocks, float scale) {
  const int C = NH * MMA_HS;
  btc_t k = btc_start(T, C);
  GRID_STRIDE_BTC(i, k, (long long)B * T * C) {
    const long long h = k.c / MMA_HS, d = k.c % MMA_HS;
    const float* p = dq_part + ((k.b * NH + h) * blocks * T + k.t) * MMA_HS + d;
    float s = 0.0f;
    for (int kb = 0; kb < blocks; kb++) s += p[(long long)kb * T * MMA_HS];
    s *= scale;
    const long long o = (k.b * T + k.t) * 3 * C + k.c;
    if (dqkv) dqkv[o] = s;
    if (dqkv16) dqkv16[o] = (unsigned short)bf16_bits(s);
  }
}
EMU_KERNEL(attention_dq_sum);
