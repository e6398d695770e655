// OpenBLAS for the CPU device: loaded once at run time (dlopen, blas_openblas.go), never
// linked, so the align binary starts and works without it (the Go GEMM of gemm_go.go
// takes over). This file holds the build-independent part: the environment rules, the
// choice of OPENBLAS_CORETYPE, BLASInfo for `align info`, and the host-slice entry point.
//
// Which GEMM the device uses: on a CPU where the Go GEMM runs an assembly kernel (AVX-512, or
// AVX2 with FMA), the Go GEMM; elsewhere (the portable Go kernel: no AVX2, other
// architectures) OpenBLAS when it loads. The Go kernels match OpenBLAS at 1024^3
// (BenchmarkGemmTable: AVX-512 at 458 against OpenBLAS's 255 GFLOP/s, and, on the same
// 2-core machine, the AVX2 kernel at 245-252 against OpenBLAS's Haswell kernel at 248-261
// with OPENBLAS_CORETYPE=Haswell), a transformer block runs faster on them (OpenBLAS's threads
// keep spinning after each call and take the cores from the goroutines of the operations
// that follow; DiT block forward+backward, B16 T272 C256, 2 cores: 275-298 against 420-512 ms
// of CPU time per step), and their results do not depend on the number of threads or on a
// product's other rows, where OpenBLAS's do: a sample then depends on the batch it is drawn
// in (the tests that check it skip where OpenBLAS multiplies).
//
// Environment:
//
//	ALIGN_BLAS=go        never load OpenBLAS (the device uses the Go GEMM)
//	ALIGN_BLAS=openblas  use OpenBLAS whenever it loads, even where the Go GEMM is preferred
//	ALIGN_OPENBLAS=path  library tried first, before libopenblas.so.0 and libopenblas.so
//	OPENBLAS_CORETYPE    left alone when set; otherwise set from the CPU features before
//	                     loading: AVX-512 F+BW+DQ+VL -> SkylakeX, AVX2+FMA -> Haswell.
//	                     OpenBLAS 0.3.21 takes recent Xeons for Prescott (4-5x slower), and
//	                     SkylakeX on a CPU without AVX-512 dies with SIGILL, hence the check.
//
// Debian package: libopenblas0-pthread (run time only; no headers are needed to build).
//
// Test: go test -run 'BLAS|Gemm' ./kernels
package kernels

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"
)

// BLASInfo says whether the CPU device's Gemm uses OpenBLAS, and which one.
type BLASInfo struct {
	Used         bool   // Gemm calls OpenBLAS
	Library      string // file of the loaded library
	CoreName     string // kernel set OpenBLAS runs (openblas_get_corename), e.g. "SkylakeX"
	CoreType     string // OPENBLAS_CORETYPE at load time ("" = OpenBLAS's own detection)
	CoreTypeFrom string // "align" (chosen from the CPU features), "user" (environment) or ""
	Threads      int    // OpenBLAS threads at load time (openblas_get_num_threads)
	Reason       string // why OpenBLAS is not used, when !Used
}

func (i BLASInfo) String() string {
	if !i.Used {
		return "OpenBLAS not used (" + i.Reason + "); pure-Go GEMM, kernel " + gemmDefault.name
	}
	ct := "auto-detected"
	if i.CoreType != "" {
		ct = fmt.Sprintf("OPENBLAS_CORETYPE=%s set by %s", i.CoreType, i.CoreTypeFrom)
	}
	return fmt.Sprintf("OpenBLAS %s, core %s (%s), %d threads", i.Library, i.CoreName, ct, i.Threads)
}

var (
	blasOnce sync.Once
	blasLib  BLASInfo // the library as loaded, whatever ALIGN_BLAS says
)

// loadOpenBLAS loads the library once; ALIGN_BLAS is not consulted here so that tests and
// benchmarks can reach OpenBLAS explicitly.
func loadOpenBLAS() BLASInfo {
	blasOnce.Do(func() {
		var info BLASInfo
		if v := os.Getenv("OPENBLAS_CORETYPE"); v != "" {
			info.CoreType, info.CoreTypeFrom = v, "user"
		} else if v := openblasCoreType(); v != "" {
			// Must precede dlopen: OpenBLAS picks its kernels in the library constructor.
			if err := os.Setenv("OPENBLAS_CORETYPE", v); err == nil {
				info.CoreType, info.CoreTypeFrom = v, "align"
			}
		}
		var paths []string
		if p := os.Getenv("ALIGN_OPENBLAS"); p != "" {
			paths = append(paths, p)
		}
		paths = append(paths, "libopenblas.so.0", "libopenblas.so")
		var errs []string
		for _, p := range paths {
			lib, core, threads, err := openblasOpen(p)
			if err != nil {
				if msg := err.Error(); !slices.Contains(errs, msg) {
					errs = append(errs, msg)
				}
				continue
			}
			if real, err := filepath.EvalSymlinks(lib); err == nil {
				lib = real // Debian reaches the pthread or openmp build through alternatives links
			}
			info.Used, info.Library, info.CoreName, info.Threads = true, lib, core, threads
			blasLib = info
			return
		}
		info.Reason = strings.Join(errs, "; ")
		blasLib = info
	})
	return blasLib
}

// LoadBLAS loads OpenBLAS if the CPU device's Gemm is to use it (once per process; see
// the file header for the choice) and reports what that Gemm uses. `align info` prints it.
func LoadBLAS() BLASInfo {
	switch os.Getenv("ALIGN_BLAS") {
	case "go":
		return BLASInfo{Reason: "disabled by ALIGN_BLAS=go"}
	case "openblas":
		return loadOpenBLAS()
	}
	if goGemmPreferred() {
		return BLASInfo{Reason: "the Go GEMM's " + gemmDefault.name + " kernel is preferred on this CPU; ALIGN_BLAS=openblas overrides"}
	}
	return loadOpenBLAS()
}

// BatchInvariant reports whether the CPU device's products give each row of a result the
// same bits whatever the product's other rows and the number of threads, so that a sample or
// a score does not depend on the batch it is computed in: true with the Go GEMM, false where
// OpenBLAS multiplies (its kernels and blocking follow the sizes and the threads).
func BatchInvariant() bool { return !useOpenBLAS() }

// goGemmPreferred reports whether the Go GEMM runs an assembly kernel here, which makes it
// the default over OpenBLAS.
func goGemmPreferred() bool { return gemmDefault != genericGemmKernel }

// openblasAvailable reports whether OpenBLAS can be called (gemmOpenBLAS), ignoring ALIGN_BLAS.
func openblasAvailable() bool { return loadOpenBLAS().Used }

// openblasCoreType maps the CPU features to the OPENBLAS_CORETYPE that is safe and fast
// on this CPU, or "" to let OpenBLAS decide.
func openblasCoreType() string {
	x := cpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL:
		return "SkylakeX"
	case x.HasAVX2 && x.HasFMA:
		return "Haswell"
	}
	return ""
}

// gemmOpenBLAS is cblas_sgemm on host slices (row-major, same contract as gemmGo), run on
// threads OpenBLAS threads. It panics if OpenBLAS is not loaded.
func gemmOpenBLAS(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !openblasAvailable() {
		panic("kernels: OpenBLAS is not loaded: " + loadOpenBLAS().Reason)
	}
	checkGemmArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	if max(m, n, k, lda, ldb, ldc) > math.MaxInt32 {
		// CBLAS takes 32-bit sizes.
		gemmGo(threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	openblasSetThreads(threads)
	openblasSgemm(transA, transB, m, n, k, alpha, &a[0], lda, &b[0], ldb, beta, &c[0], ldc)
}

// GoGemmKernel names the micro-kernel the pure-Go GEMM runs on this CPU (e.g. "avx512-12x32").
func GoGemmKernel() string { return gemmDefault.name }
