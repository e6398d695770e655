// CPU device GEMM: Gemm and GemmStridedBatched of the Device contract (device.go) on
// contiguous row-major tensors, dispatched to OpenBLAS when it is chosen and loaded
// (blas.go) and to the pure-Go GEMM otherwise (gemm_go.go); plus GemmProbe, the GFLOP/s figure that
// `align info` prints.
//
// Test: go test -run Gemm ./kernels        Bench: go test -run '^$' -bench Gemm ./kernels
package kernels

import (
	"fmt"
	"sync"
	"time"
)

// useOpenBLAS is decided once per process: OpenBLAS chosen (blas.go) and loaded.
var useOpenBLAS = sync.OnceValue(func() bool { return LoadBLAS().Used })

// gemmHost is the CPU device's GEMM on host slices (contract of gemmGo), in BF16 where the
// device is set to (gemm_bf16.go). Otherwise OpenBLAS, when
// chosen (blas.go: not where the Go GEMM has its AVX-512 kernel), is used at every size:
// its small-matrix kernels beat the Go GEMM even at 8^3 (BenchmarkGemmSmall: 73 ns against
// 206 ns; 64^3: 155 against 78 GFLOP/s).
func (d *CPU) gemmHost(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if d.bf16 {
		gemmGoKernel(bf16GemmKernel, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if useOpenBLAS() {
		gemmOpenBLAS(threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmGo(threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmLDs are the leading dimensions of contiguous row-major op(A) (m,k) and op(B) (k,n).
func gemmLDs(transA, transB bool, m, n, k int) (lda, ldb int) {
	lda, ldb = k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	return max(lda, 1), max(ldb, 1)
}

// gemmOperand returns the host slice of t, which must hold at least n elements
// (exactly n when exact); a nil tensor is accepted for an empty operand.
func gemmOperand(op string, t *Tensor, n int, exact bool) []float32 {
	if t == nil && n == 0 {
		return nil
	}
	if t == nil {
		panic(fmt.Sprintf("kernels: %s: nil tensor where %d elements were expected", op, n))
	}
	if exact {
		mustLen(op, t, n)
	} else if t.Len() < n {
		panic(fmt.Sprintf("kernels: %s: %v has %d elements, need at least %d", op, t, t.Len(), n))
	}
	return Host(t)
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C (see Device.Gemm).
func (d *CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: Gemm with negative size m=%d n=%d k=%d", m, n, k))
	}
	ha := gemmOperand("Gemm A", a, m*k, true)
	hb := gemmOperand("Gemm B", b, k*n, true)
	hc := gemmOperand("Gemm C", c, m*n, true)
	lda, ldb := gemmLDs(transA, transB, m, n, k)
	d.gemmHost(d.threads, transA, transB, m, n, k, alpha, ha, lda, hb, ldb, beta, hc, max(n, 1))
}

// Batched strategy (BenchmarkGemmBatched, 2 threads): single-threaded Go products spread
// over the batch beat one multi-threaded product after another (OpenBLAS or Go) at every
// size measured, from 60x256x64 (102 against 89 GFLOP/s) to 512^3 (314 against 250),
// because there is no synchronisation inside a product. Only an uneven split of the batch
// over the threads can make them lose: below gemmBatchBalance of the threads busy on
// average, matrices larger than gemmBatchSerialFlops (a 256^3 product) go one by one.
const (
	gemmBatchSerialFlops = 1 << 25
	gemmBatchBalance     = 0.75
)

// GemmStridedBatched runs batch Gemms; matrix i of A starts at element i*strideA of a,
// likewise B and C (see Device.GemmStridedBatched). Strides of A and B may be 0 (the same
// matrix for every product); C's must not make the outputs overlap.
func (d *CPU) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a *Tensor, strideA int,
	b *Tensor, strideB int, beta float32, c *Tensor, strideC int, batch int) {
	if m < 0 || n < 0 || k < 0 || batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("kernels: GemmStridedBatched with negative size m=%d n=%d k=%d batch=%d strides %d,%d,%d",
			m, n, k, batch, strideA, strideB, strideC))
	}
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if batch > 1 && strideC < m*n {
		panic(fmt.Sprintf("kernels: GemmStridedBatched: strideC %d < m*n = %d makes the outputs overlap", strideC, m*n))
	}
	last := batch - 1
	ha := gemmOperand("GemmStridedBatched A", a, span(last, strideA, m*k), false)
	hb := gemmOperand("GemmStridedBatched B", b, span(last, strideB, k*n), false)
	hc := gemmOperand("GemmStridedBatched C", c, span(last, strideC, m*n), false)
	lda, ldb := gemmLDs(transA, transB, m, n, k)
	ldc := max(n, 1)
	one := func(i, threads int) {
		var ai, bi []float32 // empty operands (k == 0) stay nil
		if m*k > 0 {
			ai = ha[i*strideA:]
		}
		if k*n > 0 {
			bi = hb[i*strideB:]
		}
		ci := hc[i*strideC:]
		if threads == 1 {
			gemmGoKernel(d.goKernel(), 1, transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)
		} else {
			d.gemmHost(threads, transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)
		}
	}
	// Fraction of thread time used when the batch is split evenly over the threads.
	balance := float64(batch) / float64(d.threads*ceilDiv(batch, d.threads))
	if batch > 1 && (balance >= gemmBatchBalance || (batch >= d.threads && 2*m*n*k <= gemmBatchSerialFlops)) {
		d.parallel(batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i, 1)
			}
		})
		return
	}
	for i := 0; i < batch; i++ {
		one(i, d.threads)
	}
}

// span is the number of elements a strided batch needs: last*stride + size (0 if size is 0).
func span(last, stride, size int) int {
	if size == 0 {
		return 0
	}
	return last*stride + size
}

// GemmProbe measures dev's SGEMM speed: it runs 1024x1024x1024 products (C = A*B) for
// about d after one untimed warm-up and returns the mean rate in GFLOP/s (2*m*n*k flops
// per product). `align info` calls it with one second.
func GemmProbe(dev Device, d time.Duration) (gflops float64) {
	const s = 1024
	host := make([]float32, s*s)
	for i := range host {
		host[i] = float32(i%13)/13 - 0.5 // any finite values; the timing does not depend on them
	}
	a := dev.FromHost(host, s, s)
	b := dev.FromHost(host, s, s)
	c := dev.New(s, s)
	defer func() { dev.Free(a); dev.Free(b); dev.Free(c) }()
	dev.Gemm(false, false, s, s, s, 1, a, b, 0, c)
	if err := dev.Synchronize(); err != nil {
		return 0
	}
	var runs int
	start := time.Now()
	for runs == 0 || time.Since(start) < d {
		dev.Gemm(false, false, s, s, s, 1, a, b, 0, c)
		if err := dev.Synchronize(); err != nil {
			return 0
		}
		runs++
	}
	return 2 * s * s * s * float64(runs) / time.Since(start).Seconds() / 1e9
}

// Linear is Gemm(false, true, N, out, in, 1, x, w, 0, y), then AddBias where bias is set
// (in the Go GEMM's epilogue where it multiplies: gemm_epilogue.go).
func (d *CPU) Linear(y, x, w, bias *Tensor, N, in, out int) {
	if bias != nil && d.linearEpilogue(y, nil, x, w, bias, N, in, out) {
		return
	}
	d.Gemm(false, true, N, out, in, 1, x, w, 0, y)
	if bias != nil {
		d.AddBias(y, y, bias, N, out)
	}
}

// LinearBackward is Gemm(false, false, N, in, out, 1, dy, w, 0, dx), then where set
// Gemm(true, false, out, in, N, 1, dy, x, 1, dw) and BiasBackward(dbias, dy, N, out).
func (d *CPU) LinearBackward(dx, dw, dbias, dy, x, w *Tensor, N, in, out int) {
	d.Gemm(false, false, N, in, out, 1, dy, w, 0, dx)
	if dw != nil {
		d.Gemm(true, false, out, in, N, 1, dy, x, 1, dw)
	}
	if dbias != nil {
		d.BiasBackward(dbias, dy, N, out)
	}
}

// LinearGelu is Linear into h, then GeluForward(g, h); with h nil, Linear into g and GELU in
// place (both in the Go GEMM's epilogue where it multiplies and GELU is fusable).
func (d *CPU) LinearGelu(g, h, x, w, bias *Tensor, N, in, out int) {
	if h == nil {
		h = g
	}
	if d.linearEpilogue(h, g, x, w, bias, N, in, out) {
		return
	}
	d.Linear(h, x, w, bias, N, in, out)
	d.GeluForward(g, h)
}

// GeluLinearBackward is LinearBackward with dh in the place of dx (dh = dy·W), then
// GeluBackward(dh, h, dh) in place and, where set, BiasBackward(dbiasH, dh, N, in).
func (d *CPU) GeluLinearBackward(dh, dbiasH, dw, dbias, dy, x, w, h *Tensor, N, in, out int) {
	d.LinearBackward(dh, dw, dbias, dy, x, w, N, in, out)
	d.GeluBackward(dh, h, dh)
	if dbiasH != nil {
		d.BiasBackward(dbiasH, dh, N, in)
	}
}
