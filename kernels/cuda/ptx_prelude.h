// ptx_prelude.h: what the CUDA headers would provide, for clang's PTX build without the
// CUDA toolkit (clang -x cuda --cuda-device-only -nocudainc -nocudalib, see `make ptx` and
// toolchain.md §4). Only NVVM builtins are used; no libdevice, so the kernels take their
// math from kmath.h. common.h includes this file when KERNELS_CLANG_PTX is defined.
//
// Test: make ptx (then go test ./kernels/cuda -run PTX checks the committed PTX)
#pragma once

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __forceinline__ __attribute__((always_inline)) inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define EMU_DYNAMIC_SHARED(T, name) extern __shared__ T name[]

#include <__clang_cuda_builtin_vars.h>

typedef unsigned long long size_t_;

__device__ __forceinline__ unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
__device__ __forceinline__ float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
__device__ __forceinline__ int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
__device__ __forceinline__ float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
__device__ __forceinline__ long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }
__device__ __forceinline__ double __longlong_as_double(long long x) { return __builtin_bit_cast(double, x); }

__device__ __forceinline__ void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
__device__ __forceinline__ void __threadfence() { __nvvm_membar_gl(); }

__device__ __forceinline__ float __shfl_xor_sync(unsigned m, float v, int lane_mask, int = 32) {
  return __nvvm_shfl_sync_bfly_f32(m, v, lane_mask, 0x1f);
}
__device__ __forceinline__ int __shfl_xor_sync(unsigned m, int v, int lane_mask, int = 32) {
  return __nvvm_shfl_sync_bfly_i32(m, v, lane_mask, 0x1f);
}
__device__ __forceinline__ unsigned __shfl_xor_sync(unsigned m, unsigned v, int lane_mask, int = 32) {
  return (unsigned)__nvvm_shfl_sync_bfly_i32(m, (int)v, lane_mask, 0x1f);
}
__device__ __forceinline__ double __shfl_xor_sync(unsigned m, double v, int lane_mask, int = 32) {
  long long b = __double_as_longlong(v);
  int lo = __nvvm_shfl_sync_bfly_i32(m, (int)b, lane_mask, 0x1f);
  int hi = __nvvm_shfl_sync_bfly_i32(m, (int)(b >> 32), lane_mask, 0x1f);
  return __longlong_as_double(((long long)hi << 32) | (unsigned)lo);
}
__device__ __forceinline__ float __shfl_sync(unsigned m, float v, int src, int = 32) {
  return __nvvm_shfl_sync_idx_f32(m, v, src, 0x1f);
}
__device__ __forceinline__ int __shfl_sync(unsigned m, int v, int src, int = 32) {
  return __nvvm_shfl_sync_idx_i32(m, v, src, 0x1f);
}

__device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
__device__ __forceinline__ int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
__device__ __forceinline__ double atomicAdd(double* p, double v) { return __nvvm_atom_add_gen_d(p, v); }

// Kernels register themselves with the CPU emulation only.
#define EMU_KERNEL(name)
