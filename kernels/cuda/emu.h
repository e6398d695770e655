// emu.h: runs the CUDA kernels of this directory on the CPU, so that g++ -std=c++20 compiles
// the same .cu sources that clang turns into PTX. emu_kernels.cc includes this header and
// every .cu file; the Go tests reach it through cgo (emu.go).
//
// Model. A launch runs the blocks of the grid one after another. Inside a block every CUDA
// thread is either
//   - a fiber (the default): all threads of the block share one OS thread and switch at
//     barriers, with a 15-instruction stack switch on x86-64 (ucontext elsewhere). Fast and
//     deterministic; a deadlock (threads waiting at barriers nobody else will reach) is seen
//     exactly and reported. Threads run first to last between barriers, or last to first
//     (reverse mode), so a missing barrier shows in one of the two orders; or
//   - a std::thread: one OS thread per CUDA thread, so data races between the threads of a
//     block can really happen, as on a GPU.
// __syncthreads is a block barrier, __syncwarp and the shuffles use a barrier per warp. A
// thread that returns drops out of its barriers, so early exits do not deadlock.
// __shared__ becomes `static`: one object for all blocks, correct only because blocks never
// run at the same time. Dynamic shared memory is EMU_DYNAMIC_SHARED(T, name), filled with
// 0xFF bytes (NaN) at each launch so that reads of unwritten shared memory show.
//
// Each launch runs on a worker thread; the caller waits at most a timeout (the watchdog) and
// reports a launch that does not finish (an endless loop, or a deadlock in thread mode) as
// an error. Such a worker cannot be stopped: the emulator refuses launches until it ends.
//
// Limits: shuffles need the full warp (masks are ignored; blocks are multiples of 32 threads),
// no cooperative groups, textures, half types or <<<>>> syntax (use emu_launch).
//
// Test: go test ./kernels/cuda
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#define EMU_CPU 1

// ---- CUDA qualifiers ----
#define __global__
#define __device__ inline
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ __attribute__((always_inline))
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)
#define EMU_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(emu::g_dyn_shared)

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

namespace emu {

// Barrier is a reusable barrier for `expected` participants; a generation counter tells
// waiters that they were released.
struct Barrier {
  int expected = 0, arrived = 0;
  unsigned gen = 0;
  std::condition_variable cv;  // thread mode only
};

struct Warp {
  Barrier bar;
  uint64_t slot[32];  // shuffle exchange, one value per lane
  unsigned mma_a[32][4], mma_b[32][2];  // mma_bf16_16816's fragments, one set per lane
  const unsigned short* ldm[32];         // ldmatrix_x4's row addresses, one per lane
};

// Thread is one CUDA thread of the running block.
struct Thread {
  dim3 tid;
  int lane = 0, warp = 0;
  bool done = false;
  const char* waiting = nullptr;  // fiber mode: the barrier it waits at, for deadlock reports
  void* sp = nullptr;             // fiber mode: saved stack pointer
#if !defined(__x86_64__)
  ucontext_t uc;
#endif
};

inline thread_local Thread* tcur = nullptr;
inline dim3 g_blockIdx, g_blockDim, g_gridDim;
inline unsigned char* g_dyn_shared = nullptr;
inline bool g_fiber = true;
inline bool g_reverse = false;  // fiber mode: resume the threads last to first
inline std::mutex g_block_mu;  // thread mode: guards the barriers
inline Barrier g_block_bar;
inline std::unique_ptr<Warp[]> g_warps;
inline uint64_t g_progress = 0;  // fiber mode: arrivals, releases and exits

void fiber_yield();

inline void release(Barrier& b) {
  b.arrived = 0;
  b.gen++;
  g_progress++;
  if (!g_fiber) b.cv.notify_all();
}

// wait arrives at b and returns when all expected participants have arrived.
inline void wait(Barrier& b, const char* what) {
  if (g_fiber) {
    unsigned g = b.gen;
    g_progress++;
    if (++b.arrived >= b.expected) {
      release(b);
      return;
    }
    tcur->waiting = what;
    while (b.gen == g) fiber_yield();
    tcur->waiting = nullptr;
    return;
  }
  std::unique_lock<std::mutex> lk(g_block_mu);
  unsigned g = b.gen;
  if (++b.arrived >= b.expected) {
    release(b);
    return;
  }
  b.cv.wait(lk, [&] { return b.gen != g; });
}

// drop removes one participant for good (a returning thread); the caller holds the lock in
// thread mode.
inline void drop(Barrier& b) {
  b.expected--;
  g_progress++;
  if (b.arrived > 0 && b.arrived >= b.expected) release(b);
}

inline Warp& warp() { return g_warps[tcur->warp]; }

template <class T>
inline T shuffle(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
  Warp& w = warp();
  std::memcpy(&w.slot[tcur->lane], &v, sizeof(T));
  wait(w.bar, "a warp shuffle");
  T r;
  std::memcpy(&r, &w.slot[src], sizeof(T));
  wait(w.bar, "a warp shuffle");
  return r;
}

// bf16_value is the value of the bfloat16 in the low (half 0) or high (half 1) 16 bits of reg.
inline float bf16_value(unsigned reg, int half) {
  unsigned u = half ? (reg & 0xffff0000u) : (reg << 16);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// mma_bf16_16816 is mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 for the calling
// warp: D = A*B + C with A (16,16), B (16,8), C and D (16,8), each lane holding the fragments
// PTX defines (g = lane/4, q = lane%4): A element i (i < 8, two per register, the lower index
// in the low half) at row g + 8*(i/2 % 2), column 2q + i%2 + 8*(i/4); B element i (i < 4) at
// row 2q + i%2 + 8*(i/2), column g; C and D element i at row g + 8*(i/2), column 2q + i%2.
// The lanes post their fragments, then each sums its four outputs in float64 (the products
// of bfloat16 values are exact) and rounds once.
inline void mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  Warp& w = warp();
  const int lane = tcur->lane;
  std::memcpy(w.mma_a[lane], a, sizeof w.mma_a[lane]);
  std::memcpy(w.mma_b[lane], b, sizeof w.mma_b[lane]);
  wait(w.bar, "mma_bf16_16816");
  float r[4];
  for (int i = 0; i < 4; i++) {
    const int row = (lane >> 2) + 8 * (i >> 1), col = 2 * (lane & 3) + (i & 1);
    double s = c[i];
    for (int k = 0; k < 16; k++) {
      const int ia = (k >= 8 ? 4 : 0) + (row >= 8 ? 2 : 0) + (k & 1);  // A(row, k)
      const int la = (row & 7) * 4 + ((k & 7) >> 1);
      const int ib = (k >= 8 ? 2 : 0) + (k & 1);  // B(k, col)
      const int lb = col * 4 + ((k & 7) >> 1);
      s += (double)bf16_value(w.mma_a[la][ia >> 1], ia & 1) * (double)bf16_value(w.mma_b[lb][ib >> 1], ib & 1);
    }
    r[i] = (float)s;
  }
  wait(w.bar, "mma_bf16_16816");  // every lane has read the fragments
  for (int i = 0; i < 4; i++) d[i] = r[i];
}

// ldmatrix_x4 is ldmatrix.sync.aligned.m8n8.x4.shared.b16 for the calling warp, and with trans
// its .trans form: lane l posts the address of row l%8 of matrix l/8 (8 consecutive 16-bit
// values), and each lane t receives in register m matrix m's elements (row t/4, column
// 2(t%4)) and (row t/4, column 2(t%4)+1), the first in the low half: mma's A and B fragments
// of row-major tiles; with trans (row 2(t%4), column t/4) and (row 2(t%4)+1, column t/4):
// the transpose's fragment.
inline void ldmatrix_x4(unsigned r[4], const unsigned short* p, bool trans) {
  Warp& w = warp();
  const int lane = tcur->lane;
  w.ldm[lane] = p;
  wait(w.bar, "ldmatrix_x4");
  unsigned v[4];
  for (int m = 0; m < 4; m++) {
    const unsigned short *lo, *hi;  // the two 16-bit values' addresses
    if (trans) {
      lo = w.ldm[m * 8 + 2 * (lane & 3)] + (lane >> 2);
      hi = w.ldm[m * 8 + 2 * (lane & 3) + 1] + (lane >> 2);
    } else {
      lo = w.ldm[m * 8 + (lane >> 2)] + 2 * (lane & 3);
      hi = lo + 1;
    }
    v[m] = (unsigned)*lo | (unsigned)*hi << 16;
  }
  wait(w.bar, "ldmatrix_x4");  // every lane has read the addresses
  for (int m = 0; m < 4; m++) r[m] = v[m];
}

}  // namespace emu

#define threadIdx (emu::tcur->tid)
#define blockIdx (emu::g_blockIdx)
#define blockDim (emu::g_blockDim)
#define gridDim (emu::g_gridDim)
#define warpSize 32

// ---- synchronisation ----
inline void __syncthreads() { emu::wait(emu::g_block_bar, "__syncthreads"); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::wait(emu::warp().bar, "__syncwarp"); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  int lane = emu::tcur->lane;
  return emu::shuffle(v, (lane & ~(width - 1)) | (src & (width - 1)));
}
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  int lane = emu::tcur->lane, src = lane ^ mask;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return emu::shuffle(v, src);
}
template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  int lane = emu::tcur->lane, src = lane + (int)delta;
  if ((lane & (width - 1)) + (int)delta >= width) src = lane;
  return emu::shuffle(v, src);
}
template <class T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  int lane = emu::tcur->lane, src = lane - (int)delta;
  if ((lane & (width - 1)) < (int)delta) src = lane;
  return emu::shuffle(v, src);
}
inline unsigned __ballot_sync(unsigned, int pred) {
  emu::Warp& w = emu::warp();
  w.slot[emu::tcur->lane] = pred != 0;
  emu::wait(w.bar, "__ballot_sync");
  unsigned r = 0;
  for (int i = 0; i < 32; i++) r |= (w.slot[i] == 1 ? 1u : 0u) << i;
  emu::wait(w.bar, "__ballot_sync");
  return r;
}

// ---- atomics (std::atomic_ref: real atomics in thread mode, harmless with fibers) ----
template <class T>
inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
inline int atomicMax(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
inline T atomicCAS(T* p, T cmp, T v) {
  std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
  return cmp;
}
template <class T>
inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }

// ---- intrinsics ----
template <class T>
inline T __ldg(const T* p) { return *p; }
inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
inline int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
inline float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
inline long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }
inline double __longlong_as_double(long long x) { return __builtin_bit_cast(double, x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }

// ---- launching ----
namespace emu {

using Thunk = void (*)(void** args);

// Kernel is one entry of the kernel table: its name, a thunk that unpacks a launch's argument
// array into a call, and its parameter signature (one letter per parameter: p pointer,
// i int, u unsigned, f float, d double, q 64-bit integer).
struct Kernel {
  const char* name;
  Thunk thunk;
  std::string sig;
};

inline std::vector<Kernel>& kernels() {
  static std::vector<Kernel> k;
  return k;
}

template <class T>
constexpr char sig_char() {
  if constexpr (std::is_pointer_v<T>) return 'p';
  else if constexpr (std::is_same_v<T, float>) return 'f';
  else if constexpr (std::is_same_v<T, double>) return 'd';
  else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) return 'q';
  else if constexpr (std::is_same_v<T, unsigned>) return 'u';
  else if constexpr (std::is_same_v<T, int>) return 'i';
  else static_assert(sizeof(T) == 0, "kernel parameter of an unsupported type");
  return '?';
}

template <auto F>
struct Entry;
template <class... A, void (*F)(A...)>
struct Entry<F> {
  template <size_t... I>
  static void call(void** args, std::index_sequence<I...>) {
    F(*static_cast<std::remove_reference_t<A>*>(args[I])...);
  }
  static void thunk(void** args) { call(args, std::index_sequence_for<A...>{}); }
  static std::string sig() { return std::string{sig_char<A>()...}; }
};

struct Register {
  Register(const char* name, Thunk t, std::string sig) { kernels().push_back({name, t, std::move(sig)}); }
};

// ---- fibers ----
constexpr size_t kFiberStack = 64 << 10;

inline std::vector<void*>& fiber_stacks() {
  static std::vector<void*> s;
  return s;
}

// stack returns the i-th fiber stack (allocated once, with a guard page below it).
inline char* stack(size_t i) {
  auto& s = fiber_stacks();
  while (s.size() <= i) {
    size_t page = 4096;
    void* m = mmap(nullptr, kFiberStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) abort();
    mprotect(m, page, PROT_NONE);
    s.push_back(m);
  }
  return static_cast<char*>(s[i]) + 4096;
}

inline Thunk g_thunk = nullptr;
inline void** g_args = nullptr;
inline void* g_sched_sp = nullptr;
#if !defined(__x86_64__)
inline ucontext_t g_sched_uc;
#endif

}  // namespace emu

#if defined(__x86_64__)
// emu_switch saves the callee-saved registers on the current stack, stores the stack pointer
// in *save and continues on the stack `to` (System V x86-64 ABI).
extern "C" void emu_switch(void** save, void* to);
asm(R"(
  .text
  .globl emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
#endif

namespace emu {

inline void thread_exit();

inline void fiber_body() {
  g_thunk(g_args);
  thread_exit();
  tcur->done = true;
  g_progress++;
#if defined(__x86_64__)
  emu_switch(&tcur->sp, g_sched_sp);
#else
  swapcontext(&tcur->uc, &g_sched_uc);
#endif
  abort();  // a finished fiber is never resumed
}

inline void fiber_yield() {
#if defined(__x86_64__)
  emu_switch(&tcur->sp, g_sched_sp);
#else
  swapcontext(&tcur->uc, &g_sched_uc);
#endif
}

inline void fiber_init(Thread& t, size_t i) {
  char* top = stack(i) + kFiberStack;
#if defined(__x86_64__)
  void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15));
  *--sp = nullptr;                                 // return address slot of fiber_body
  *--sp = reinterpret_cast<void*>(&fiber_body);    // popped by `ret`
  for (int r = 0; r < 6; r++) *--sp = nullptr;     // rbp rbx r12 r13 r14 r15
  t.sp = sp;
#else
  getcontext(&t.uc);
  t.uc.uc_stack.ss_sp = top - kFiberStack;
  t.uc.uc_stack.ss_size = kFiberStack;
  t.uc.uc_link = nullptr;
  makecontext(&t.uc, fiber_body, 0);
#endif
}

inline void fiber_resume(Thread& t) {
  tcur = &t;
#if defined(__x86_64__)
  emu_switch(&g_sched_sp, t.sp);
#else
  swapcontext(&g_sched_uc, &t.uc);
#endif
}

inline void thread_exit() {
  if (g_fiber) {
    drop(g_block_bar);
    drop(warp().bar);
    return;
  }
  std::lock_guard<std::mutex> lk(g_block_mu);
  drop(g_block_bar);
  drop(warp().bar);
}

// Threads is the CUDA threads of one block.
struct Block {
  std::vector<Thread> th;
  int nwarps = 0;

  void setup(dim3 block) {
    int n = block.x * block.y * block.z;
    th.assign(n, Thread{});
    nwarps = (n + 31) / 32;
    g_warps.reset(new Warp[nwarps]);
    for (int i = 0; i < n; i++) {
      Thread& t = th[i];
      t.tid = dim3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
      t.lane = i % 32;
      t.warp = i / 32;
    }
  }
  void reset_barriers() {
    int n = (int)th.size();
    g_block_bar.expected = n;
    g_block_bar.arrived = 0;
    for (int w = 0; w < nwarps; w++) {
      g_warps[w].bar.expected = std::min(32, n - 32 * w);
      g_warps[w].bar.arrived = 0;
    }
  }
};

inline std::string dim_str(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// run_fibers runs every block of the grid with one fiber per thread. It returns an error
// message on a deadlock.
inline std::string run_fibers(Block& blk, dim3 grid) {
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        g_blockIdx = dim3(bx, by, bz);
        blk.reset_barriers();
        for (size_t i = 0; i < blk.th.size(); i++) {
          blk.th[i].done = false;
          blk.th[i].waiting = nullptr;
          fiber_init(blk.th[i], i);
        }
        size_t live = blk.th.size();
        while (live > 0) {
          uint64_t before = g_progress;
          size_t n = blk.th.size();
          for (size_t k = 0; k < n; k++) {
            Thread& t = blk.th[g_reverse ? n - 1 - k : k];
            if (t.done) continue;
            fiber_resume(t);
            if (t.done) live--;
          }
          if (live > 0 && g_progress == before) {
            std::map<std::string, int> at;
            int exited = 0;
            for (auto& t : blk.th) {
              if (t.done) exited++;
              else at[t.waiting ? t.waiting : "?"]++;
            }
            std::string msg = "deadlock in block " + dim_str(g_blockIdx) + ":";
            for (auto& [what, n] : at) msg += " " + std::to_string(n) + " threads wait at " + what + ";";
            msg += " " + std::to_string(exited) + " threads returned";
            tcur = nullptr;
            return msg;
          }
        }
      }
  tcur = nullptr;
  return "";
}

// run_threads runs every block of the grid with one std::thread per CUDA thread; the
// threads are started once and loop over the blocks.
inline void run_threads(Block& blk, dim3 grid) {
  int n = (int)blk.th.size();
  std::mutex mu;
  std::condition_variable cv;
  unsigned start = 0;
  int running = 0;
  bool quit = false;
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (int i = 0; i < n; i++) {
    ts.emplace_back([&, i] {
      tcur = &blk.th[i];
      unsigned seen = 0;
      for (;;) {
        {
          std::unique_lock<std::mutex> lk(mu);
          cv.wait(lk, [&] { return quit || start != seen; });
          if (quit) return;
          seen = start;
        }
        g_thunk(g_args);
        thread_exit();
        std::lock_guard<std::mutex> lk(mu);
        if (--running == 0) cv.notify_all();
      }
    });
  }
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        std::unique_lock<std::mutex> lk(mu);
        g_blockIdx = dim3(bx, by, bz);
        {
          std::lock_guard<std::mutex> bl(g_block_mu);
          blk.reset_barriers();
        }
        running = n;
        start++;
        cv.notify_all();
        cv.wait(lk, [&] { return running == 0; });
      }
  {
    std::lock_guard<std::mutex> lk(mu);
    quit = true;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
}

}  // namespace emu

// EMU_KERNEL(name) adds a __global__ function to the kernel table (after its definition).
#define EMU_KERNEL(name) \
  static emu::Register emu_register_##name(#name, &emu::Entry<name>::thunk, emu::Entry<name>::sig())
