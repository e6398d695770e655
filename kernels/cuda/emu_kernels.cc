// emu_kernels.cc: the CPU emulation of the CUDA device's "driver", compiled by cgo with
// g++ -std=c++20: every .cu kernel file of this directory built on emu.h, the kernel table
// (name, parameter signature, thunk), launches with a watchdog, host memory standing in for
// device memory, and a plain column-major GEMM with cuBLAS GemmEx semantics. emu.go is its
// Go side; the .cu files are also embedded there so that editing one rebuilds this file.
//
// Test: go test ./kernels/cuda
#include "emu.h"

#include "activation.cu"
#include "adamw.cu"
#include "attention.cu"
#include "elementwise.cu"
#include "embedding.cu"
#include "layernorm.cu"
#include "layout.cu"
#include "loss.cu"
#include "modulate.cu"
#include "reduce.cu"
#include "rng.cu"
#include "softmax.cu"
#include "emu_selftest.cu"

#include <csignal>
#include <cstdio>

#include <pthread.h>

namespace {

std::mutex g_launch_mu;
std::atomic<bool> g_wedged{false};
std::string g_wedged_by;

struct Job {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::string err;
  emu::Thunk thunk = nullptr;
  dim3 grid, block;
  unsigned shmem = 0;
  bool fiber = true, reverse = false;
  bool abandoned = false;  // the watchdog gave up on it
  std::vector<uint64_t> slots;
  std::vector<void*> argv;
};

void run_job(std::shared_ptr<Job> j) {
  // Signals go to the Go threads, never to this thread or the CUDA threads it starts (they
  // inherit the mask): a handler would otherwise run on a 64 KiB fiber stack.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_ptr<unsigned char[]> dyn(new unsigned char[j->shmem + 16]);
  std::memset(dyn.get(), 0xFF, j->shmem + 16);
  emu::g_fiber = j->fiber;
  emu::g_reverse = j->reverse;
  emu::g_gridDim = j->grid;
  emu::g_blockDim = j->block;
  emu::g_dyn_shared = dyn.get();
  emu::g_thunk = j->thunk;
  emu::g_args = j->argv.data();
  emu::Block blk;
  blk.setup(j->block);
  std::string err;
  if (j->fiber)
    err = emu::run_fibers(blk, j->grid);
  else
    emu::run_threads(blk, j->grid);
  emu::g_warps.reset();
  std::lock_guard<std::mutex> lk(j->mu);
  j->err = err;
  j->finished = true;
  if (j->abandoned) g_wedged = false;  // a late finish makes the emulator usable again
  j->cv.notify_all();
}

void set_err(char* err, int errlen, const std::string& msg) {
  if (errlen <= 0) return;
  std::snprintf(err, errlen, "%s", msg.c_str());
}

std::string dims(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}

// Memory blocks carry a red zone behind them, checked when they are freed.
constexpr size_t kRedZone = 64;
constexpr unsigned char kRedByte = 0xA5;
std::mutex g_mem_mu;
std::map<uintptr_t, size_t> g_blocks;

}  // namespace

extern "C" {

int emu_kernel_count(void) { return (int)emu::kernels().size(); }
const char* emu_kernel_name(int i) { return emu::kernels()[i].name; }
const char* emu_kernel_sig(int i) { return emu::kernels()[i].sig.c_str(); }

// emu_launch runs kernel `name` over grid x block with shmem bytes of dynamic shared memory,
// with one OS thread per CUDA thread (fiber 0), fibers (1) or fibers resumed last to first (2).
// args holds one 8-byte slot per parameter (4-byte values in the low half); sig is the
// caller's idea of the parameter types, checked against the kernel's. Returns 0, or 1 with
// a message in err.
int emu_launch(const char* name, const char* sig, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
               unsigned by, unsigned bz, unsigned shmem, const uint64_t* args, int nargs, int fiber,
               long long timeout_ms, char* err, int errlen) {
  std::unique_lock<std::mutex> launch_lock(g_launch_mu);
  if (g_wedged) {
    set_err(err, errlen, "emulator busy with a launch the watchdog gave up on: " + g_wedged_by);
    return 1;
  }
  const emu::Kernel* k = nullptr;
  for (auto& e : emu::kernels())
    if (std::strcmp(e.name, name) == 0) k = &e;
  if (!k) {
    set_err(err, errlen, std::string("no kernel named ") + name);
    return 1;
  }
  if (k->sig != sig || (int)k->sig.size() != nargs) {
    set_err(err, errlen, std::string("kernel ") + name + " takes (" + k->sig + "), launched with (" + sig + ")");
    return 1;
  }
  auto j = std::make_shared<Job>();
  j->thunk = k->thunk;
  j->grid = dim3(gx, gy, gz);
  j->block = dim3(bx, by, bz);
  j->shmem = shmem;
  j->fiber = fiber != 0;
  j->reverse = fiber == 2;
  j->slots.assign(args, args + nargs);
  for (int i = 0; i < nargs; i++) j->argv.push_back(&j->slots[i]);
  std::thread(run_job, j).detach();
  std::unique_lock<std::mutex> lk(j->mu);
  if (!j->cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return j->finished; })) {
    g_wedged_by = std::string("watchdog: kernel ") + name + " grid " + dims(gx, gy, gz) + " block " +
                  dims(bx, by, bz) + " did not finish within " + std::to_string(timeout_ms) +
                  " ms (an endless loop or a deadlock); launches are refused until it ends";
    g_wedged = true;
    j->abandoned = true;
    set_err(err, errlen, g_wedged_by);
    return 1;
  }
  if (!j->err.empty()) {
    set_err(err, errlen, std::string("kernel ") + name + ": " + j->err);
    return 1;
  }
  return 0;
}

uintptr_t emu_alloc(size_t bytes) {
  void* p = std::aligned_alloc(256, (bytes + kRedZone + 255) / 256 * 256);
  if (!p) return 0;
  // Fresh device memory holds garbage on a GPU; fill it with NaN (all bits set) so that a
  // kernel reading memory it never wrote fails its test here too.
  std::memset(p, 0xFF, bytes);
  std::memset(static_cast<char*>(p) + bytes, kRedByte, kRedZone);
  std::lock_guard<std::mutex> lk(g_mem_mu);
  g_blocks[(uintptr_t)p] = bytes;
  return (uintptr_t)p;
}

// emu_free releases a block; it returns 1 if the block was unknown, 2 if something wrote
// past its end (its red zone changed), else 0.
int emu_free(uintptr_t p) {
  size_t bytes;
  {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    auto it = g_blocks.find(p);
    if (it == g_blocks.end()) return 1;
    bytes = it->second;
    g_blocks.erase(it);
  }
  int rc = 0;
  const unsigned char* z = reinterpret_cast<const unsigned char*>(p) + bytes;
  for (size_t i = 0; i < kRedZone; i++)
    if (z[i] != kRedByte) rc = 2;
  std::free(reinterpret_cast<void*>(p));
  return rc;
}

// emu_check_ptr returns 1 if [p, p+bytes) lies inside a live block.
int emu_check_ptr(uintptr_t p, size_t bytes) {
  std::lock_guard<std::mutex> lk(g_mem_mu);
  auto it = g_blocks.upper_bound(p);
  if (it == g_blocks.begin()) return 0;
  --it;
  return p + bytes <= it->first + it->second ? 1 : 0;
}

void emu_htod(uintptr_t dst, const void* src, size_t n) { std::memcpy(reinterpret_cast<void*>(dst), src, n); }
void emu_dtoh(void* dst, uintptr_t src, size_t n) { std::memcpy(dst, reinterpret_cast<const void*>(src), n); }
void emu_dtod(uintptr_t dst, uintptr_t src, size_t n) {
  std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
}
void emu_memset32(uintptr_t dst, unsigned v, size_t n) {
  unsigned* p = reinterpret_cast<unsigned*>(dst);
  for (size_t i = 0; i < n; i++) p[i] = v;
}

// emu_gemm is cublasGemmStridedBatchedEx on column-major matrices: for each batch item,
// C = alpha*op(A)*op(B) + beta*C with op(A) (m,k), op(B) (k,n), C (m,n). A and B are float32
// (type 0) or bfloat16 bits (1); compute 0 is FP32, 1 rounds the inputs to TF32 first.
// Products are summed in float64. beta == 0 does not read C. C, the bias, the bias gradient
// and aux have type ctype (a bfloat16 store rounds to nearest even, bf16_bits). Epilogues, as
// cuBLASLt's (GemmArgs): bias, where not 0, is a vector of m added to every column of C; gelu
// 1 stores P = op(A)op(B) + bias in aux (leading dimension ldaux; not where aux is 0) and
// gelu(P) in C; gelu 2
// stores P * gelu'(aux) in C and, with bgrad, the m row sums of C (float64, from the values
// before rounding); without gelu, bgrad receives the n column sums of op(B) over k, summed in
// float64 from the inputs as stored (BGRADB).
static float gemm_in(const void* base, int type, long long i, int compute) {
  float v;
  if (type == 1) {
    unsigned u = (unsigned)static_cast<const unsigned short*>(base)[i] << 16;
    std::memcpy(&v, &u, 4);
  } else {
    v = static_cast<const float*>(base)[i];
  }
  if (compute == 1) {
    unsigned u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
    std::memcpy(&v, &u, 4);
  }
  return v;
}

static void gemm_out(uintptr_t base, int type, long long i, float v) {
  if (type == 1)
    reinterpret_cast<unsigned short*>(base)[i] = (unsigned short)bf16_bits(v);
  else
    reinterpret_cast<float*>(base)[i] = v;
}

void emu_gemm(int transa, int transb, int m, int n, int k, float alpha, uintptr_t a, int atype, int lda,
              long long strideA, uintptr_t b, int btype, int ldb, long long strideB, float beta, uintptr_t c,
              int ctype, int ldc, long long strideC, int batch, int compute, uintptr_t bias, uintptr_t bgrad,
              int gelu, uintptr_t aux, int ldaux) {
  const int esA = atype == 1 ? 2 : 4, esB = btype == 1 ? 2 : 4, esC = ctype == 1 ? 2 : 4;
  const void* biasp = reinterpret_cast<const void*>(bias);
  const void* auxp = reinterpret_cast<const void*>(aux);
  std::vector<double> rows(gelu == 2 && bgrad != 0 ? m : 0, 0.0);
  for (int bi = 0; bi < batch; bi++) {
    const char* A = reinterpret_cast<const char*>(a) + (long long)bi * strideA * esA;
    const char* B = reinterpret_cast<const char*>(b) + (long long)bi * strideB * esB;
    uintptr_t C = c + (uintptr_t)((long long)bi * strideC * esC);
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        double s = 0;
        for (int l = 0; l < k; l++) {
          long long ia = transa ? l + (long long)i * lda : i + (long long)l * lda;
          long long ib = transb ? j + (long long)l * ldb : l + (long long)j * ldb;
          s += (double)gemm_in(A, atype, ia, compute) * (double)gemm_in(B, btype, ib, compute);
        }
        long long ic = i + (long long)j * ldc, ix = i + (long long)j * ldaux;
        float r = alpha * (float)s;
        if (beta != 0.0f) r += beta * gemm_in(reinterpret_cast<const void*>(C), ctype, ic, 0);
        if (bias != 0) r += gemm_in(biasp, ctype, i, 0);
        if (gelu == 1) {
          if (aux != 0) gemm_out(aux, ctype, ix, r);
          r = gelu_value(r);
        } else if (gelu == 2) {
          r *= gelu_grad(gemm_in(auxp, ctype, ix, 0));
          if (bgrad != 0) rows[i] += (double)r;
        }
        gemm_out(C, ctype, ic, r);
      }
    if (bgrad == 0) continue;
    if (gelu == 2) {
      for (int i = 0; i < m; i++) gemm_out(bgrad, ctype, i, (float)rows[i]);
      continue;
    }
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int l = 0; l < k; l++) s += (double)gemm_in(B, btype, transb ? j + (long long)l * ldb : l + (long long)j * ldb, 0);
      gemm_out(bgrad, ctype, j, (float)s);
    }
  }
}

}  // extern "C"
