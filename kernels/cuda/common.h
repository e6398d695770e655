// common.h: included first by every .cu file of this directory. It picks the compiler's
// way of spelling CUDA (the CPU emulation in emu.h, clang's PTX build through ptx_prelude.h,
// or nvcc natively), then adds kmath.h and the reduction helpers the kernels share.
//
// Conventions for every kernel here: `extern "C"` (unmangled names for cuModuleGetFunction),
// blocks of a multiple of 32 threads (whole warps, which the emulation needs for shuffles),
// parameters that are pointers, int, float or unsigned long long only (gorgonia.org/cu
// passes every argument as 8 bytes), and EMU_KERNEL(name) after each kernel.
//
// Test: go test ./kernels/cuda
#pragma once

#if defined(EMU_CPU)
// emu.h is included before the kernels (emu_kernels.cc).
#elif defined(KERNELS_CLANG_PTX)
#include "ptx_prelude.h"
#else
#define EMU_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#define EMU_KERNEL(name)
#endif

#include "kmath.h"

#define KERNEL extern "C" __global__
#define DEVFN __device__ __forceinline__
#define FULL_MASK 0xffffffffu

// warp_sum returns the sum of v over the 32 lanes of the warp, in every lane.
DEVFN float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}
DEVFN double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}
// warp_max returns the maximum of v over the warp (NaN-free inputs).
DEVFN float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    float w = __shfl_xor_sync(FULL_MASK, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// block_sum_d returns the sum of v over the whole block (at most 1024 threads, a multiple
// of 32), in every thread. Every thread of the block must call it.
DEVFN double block_sum_d(double v) {
  __shared__ double part[32];
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum_d(v);
  if (lane == 0) part[wid] = v;
  __syncthreads();
  double t = lane < nw ? part[lane] : 0.0;
  t = warp_sum_d(t);
  __syncthreads();  // part may be reused by the next call
  return t;
}

// ROW_REG is how many values of a row each lane of a warp keeps in registers in the row
// kernels that pass over a row more than once (layernorm_forward, attention_softmax): rows
// up to 32*ROW_REG = 1024 are read from memory once, longer ones again on each pass. The
// loops over the register slots are unrolled (UNROLL) so that the slots stay registers.
#define ROW_REG 32

// UNROLL before a loop of a fixed trip count unrolls it completely, so that the register
// arrays it indexes stay registers (an array indexed at run time lives in local memory).
#if defined(EMU_CPU)
#define UNROLL _Pragma("GCC unroll 32")
#else
#define UNROLL _Pragma("unroll")
#endif

// f32x4 is four floats loaded or stored as one 16-byte access, for the streaming kernels'
// vector paths where their pointers are 16-byte aligned (aligned16) and rows a multiple of 4.
typedef float f32x4 __attribute__((vector_size(16)));
// f32x2: two floats as one 8-byte access (8-byte aligned).
typedef float f32x2 __attribute__((vector_size(8)));
DEVFN bool aligned16(const void* p) { return ((unsigned long long)p & 15) == 0; }

// bf16_bits rounds x to bfloat16: the upper 16 bits after adding half a unit of the last
// place, ties to even; a NaN keeps its sign and gets a quiet bit so it cannot become Inf.
DEVFN unsigned bf16_bits(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// store_bf16x4 writes the BF16 roundings of v's four values as one 8-byte store (p 8-byte
// aligned): the BF16 copy a streaming kernel's vector path writes beside its output.
DEVFN void store_bf16x4(unsigned short* p, f32x4 v) {
  *(unsigned long long*)p = (unsigned long long)bf16_bits(v[0]) | (unsigned long long)bf16_bits(v[1]) << 16 |
                            (unsigned long long)bf16_bits(v[2]) << 32 | (unsigned long long)bf16_bits(v[3]) << 48;
}
DEVFN bool aligned8(const void* p) { return ((unsigned long long)p & 7) == 0; }

// bf16_value widens bfloat16 bits to the float they stand for (exact); load_bf16x4 reads four
// as one 8-byte load (p 8-byte aligned): an input kept as a BF16 copy alone.
DEVFN float bf16_value(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

// bf16_pair reads p[0] and p[1] (bfloat16, p 2-byte aligned) into one register, p[0] low.
DEVFN unsigned bf16_pair(const unsigned short* p) { return (unsigned)p[0] | (unsigned)p[1] << 16; }

// dot_bf16x2 is a.x*b.x + a.y*b.y of two registers of two bfloat16 each (low half first).
DEVFN float dot_bf16x2(unsigned a, unsigned b) {
  return bf16_value((unsigned short)a) * bf16_value((unsigned short)b) +
         bf16_value((unsigned short)(a >> 16)) * bf16_value((unsigned short)(b >> 16));
}
DEVFN f32x4 load_bf16x4(const unsigned short* p) {
  unsigned long long u = *(const unsigned long long*)p;
  f32x4 r;
  for (int e = 0; e < 4; e++) r[e] = bf16_value((unsigned short)(u >> (16 * e)));
  return r;
}

// mma_bf16_16816 is the tensor cores' D = A*B + C for one warp: A (16,16) BF16 row-major, B
// (16,8) BF16 column-major, C and D (16,8) FP32, in the fragments of PTX's
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (g = lane/4, q = lane%4): a[4] holds A's
// elements (g, 2q..2q+1), (g+8, 2q..), (g, 2q+8..), (g+8, 2q+8..), two bfloat16 per register,
// the lower column in the low half; b[2] holds B's (2q..2q+1, g) and (2q+8.., g); c and d
// hold (g, 2q), (g, 2q+1), (g+8, 2q), (g+8, 2q+1). Every lane of the warp must call it.
// sm_80 and later; the emulation computes it in emu.h.
#if defined(EMU_CPU)
DEVFN void mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  emu::mma_bf16_16816(d, a, b, c);
}
#else
DEVFN void mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}
#endif

// ldmatrix_x4_trans loads four 8x8 matrices of 16-bit values from shared memory, transposed,
// for the calling warp (ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16): lane l gives p, the
// address (smem_t) of row l%8 of matrix l/8 (16 bytes, 16-byte aligned), and receives in r[m] matrix
// m's elements (2(l%4), l/4) and (2(l%4)+1, l/4), the lower row in the low half. Matrices of
// rows k..k+7 and k+8..k+15 of a row-major (k, n) tile, at columns n0..n0+7, give the B
// fragment of mma_bf16_16816 for that 16x8 block, without a transposed copy of the tile.
// Every lane of the warp must call it; sm_75 and later; the emulation is in emu.h.
//
// ldmatrix_x4 (ldmatrix.sync.aligned.m8n8.x4.shared.b16) is the same without the transpose:
// lane l receives in r[m] matrix m's elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1), the lower
// column in the low half. Matrices of rows r..r+7 and r+8..r+15 at columns c and c+8 of a
// row-major tile give an A fragment of mma_bf16_16816 (matrices (r, c), (r+8, c), (r, c+8),
// (r+8, c+8)); rows n..n+7 at columns c, c+8, c+16, c+24 give the B fragments of two k-steps
// for a B whose columns are the tile's rows (B = tile^T).
//
// smem_t is an address in shared memory as ldmatrix takes it: on the GPU the 32-bit shared
// address (smem_of converts a generic pointer once; smem_at adds elements as bytes, so that
// ptxas folds constant offsets into the loads), in the emulation the pointer itself. The
// ldmatrix assembly declares that it reads memory ("memory"), so that the compiler keeps it
// after the stores and barriers before it (the committed PTX is the same with and without).
#if defined(EMU_CPU)
typedef const unsigned short* smem_t;
DEVFN smem_t smem_of(const unsigned short* p) { return p; }
DEVFN smem_t smem_at(smem_t s, int elems) { return s + elems; }
DEVFN void ldmatrix_x4(unsigned r[4], smem_t p) { emu::ldmatrix_x4(r, p, false); }
DEVFN void ldmatrix_x4_trans(unsigned r[4], smem_t p) { emu::ldmatrix_x4(r, p, true); }
#else
typedef unsigned smem_t;
DEVFN smem_t smem_of(const unsigned short* p) {
  unsigned s;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(s) : "l"(p));
  return s;
}
DEVFN smem_t smem_at(smem_t s, int elems) { return s + 2u * (unsigned)elems; }
DEVFN void ldmatrix_x4(unsigned r[4], smem_t p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(p)
               : "memory");
}
DEVFN void ldmatrix_x4_trans(unsigned r[4], smem_t p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(p)
               : "memory");
}
#endif

// bf16x2 packs the bfloat16 roundings of lo and hi into one register, lo in the low half
// (an mma fragment's two elements). On the GPU one cvt.rn.bf16x2.f32 (sm_80 and later) where
// bf16_bits takes about five integer instructions a value; the same bits but for a NaN's
// (the GPU's is canonical, bf16_bits keeps the sign and payload: both stay NaN).
#if defined(EMU_CPU)
DEVFN unsigned bf16x2(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }
#else
DEVFN unsigned bf16x2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#endif

// exp2_approx is 2^x by the GPU's special function unit (ex2.approx.ftz.f32: relative error
// about 2^-22, results below 2^-126 flushed to 0, 2^-Inf = 0): one instruction where km_expf
// takes about thirty. For the tensor-core attention kernels only, whose probabilities are
// rounded to BF16 for their products anyway and which compute exp(x) as 2^(x log2 e) with
// the factor folded into the scores' scale. The emulation rounds the exact 2^x to float and
// flushes the same way, so it may differ from a GPU in the last bit or two.
//
// fma_rn is a*b + c rounded once (fma.rn.f32; the emulation's fmaf gives the same bits). The
// kernels are compiled with contraction off, so a fused multiply-add is written out.
#define KM_LOG2E 1.44269504f
#define KM_LN2 0.693147181f
DEVFN float fma_rn(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

// max_f is the larger of a and b, or the one that is not NaN (max.f32, one instruction where
// a comparison and a select take two; the emulation's fmaxf is the same).
DEVFN float max_f(float a, float b) { return __builtin_fmaxf(a, b); }
#if defined(EMU_CPU)
DEVFN float exp2_approx(float x) {
  const float r = (float)__builtin_exp2((double)x);
  return r < 1.17549435e-38f ? 0.0f : r;
}
#else
DEVFN float exp2_approx(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
#endif

// GRID_STRIDE loops i over [0, n) with every thread of the grid, blockDim.x*gridDim.x apart.
#define GRID_STRIDE(i, n) \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
       i += (long long)gridDim.x * blockDim.x)

// Division-free indices of a grid-stride loop over a (B, T, C) array: b = i / (T*C),
// t = i / C % T, c = i % C, found by division once per thread and then carried along as i
// advances by the grid's stride S = (db*T + dt)*C + dc. A 64-bit (or even 32-bit) integer
// division is a long instruction sequence on the GPU; once per element it likely kept the
// streaming kernels from the memory bandwidth (modulate_forward at 44% of it on an H200).
// T = 1 gives the (row, column) pair of a (B, C) array: b = i / C, c = i % C.
//   btc_t k = btc_start(T, C);
//   GRID_STRIDE_BTC(i, k, n) out[i] = ... k.b ... k.c ...;
typedef struct {
  long long b, t, c, db, dt, dc, T, C;
} btc_t;
DEVFN btc_t btc_start(long long T, long long C) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, s = (long long)gridDim.x * blockDim.x;
  btc_t x;
  x.T = T;
  x.C = C;
  x.c = i % C;
  x.t = i / C % T;
  x.b = i / C / T;
  x.dc = s % C;
  x.dt = s / C % T;
  x.db = s / C / T;
  return x;
}
DEVFN void btc_next(btc_t* x) {
  x->c += x->dc;
  x->t += x->dt;
  x->b += x->db;
  if (x->c >= x->C) {  // c + dc < 2C and t + dt + 1 < 2T: one carry each
    x->c -= x->C;
    x->t++;
  }
  if (x->t >= x->T) {
    x->t -= x->T;
    x->b++;
  }
}
#define GRID_STRIDE_BTC(i, k, n) \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
       i += (long long)gridDim.x * blockDim.x, btc_next(&(k)))

// Column sums: kernels that sum a (rows, C) array over its rows use blocks of COL_WARPS
// warps; lane l of every warp owns column 32*blockIdx.x + l and warp w the rows w,
// w+COL_WARPS, ... of the block's rows; col_total adds the warps' partial sums (float64) in
// warp order. Sums over one long array (bias_backward, layernorm_backward_params) split its
// rows over blockIdx.y into gridDim.y runs of col_split_rows rows (the launcher picks the
// count), so that a few dozen columns of thousands of rows still give every SM blocks to
// run: col_store writes each split's total to part[split*C + c] and col_finish (reduce.cu)
// adds the splits in order; with one split it adds the total to out directly. Either way the
// sum is the same in every run.
//
// COL_UNROLL: the column kernels of the DiT block's backward (modulate_backward,
// gate_backward) load a warp's next COL_UNROLL rows before they add any (rows w, w+8, ...,
// w+8*(COL_UNROLL-1): the same rows in the same order), so that each warp has that many
// rows' loads in flight rather than one: with one, a warp's 200 or so bytes at a time kept
// these kernels at about a quarter of the memory bandwidth (41 and 37 µs on DiT-B's
// activations in the H200 profile of 2026-11-27, 1.1 to 1.3 TB/s).
#define COL_WARPS 8
#define COL_UNROLL 4
// col_rows is the row loop of those kernels for warp w: load(u, t) for the next COL_UNROLL
// of its rows t = w, w+COL_WARPS, ... below T (u = 0, 1, ...), then add(u, t) for the same
// rows in the same order.
template <class Load, class Add>
DEVFN void col_rows(int T, Load load, Add add) {
  for (int t0 = threadIdx.x >> 5; t0 < T; t0 += COL_WARPS * COL_UNROLL) {
UNROLL
    for (int u = 0; u < COL_UNROLL; u++) {
      if (t0 + u * COL_WARPS >= T) break;
      load(u, t0 + u * COL_WARPS);
    }
UNROLL
    for (int u = 0; u < COL_UNROLL; u++) {
      if (t0 + u * COL_WARPS >= T) break;
      add(u, t0 + u * COL_WARPS);
    }
  }
}
DEVFN int col_split_rows(int N) { return (N + (int)gridDim.y - 1) / (int)gridDim.y; }
DEVFN double col_total(double v, double (*part)[32]) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  part[w][lane] = v;
  __syncthreads();
  double t = 0.0;
  for (int k = 0; k < COL_WARPS; k++) t += part[k][lane];
  __syncthreads();
  return t;
}
DEVFN void col_store(float* out, double* part, double s, int c, int C) {
  if (threadIdx.x >= 32 || c >= C) return;
  if (gridDim.y == 1) {
    if (out) out[c] += (float)s;
  } else {
    part[(long long)blockIdx.y * C + c] = s;
  }
}
