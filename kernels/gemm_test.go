// Tests of the CPU GEMM paths (pure Go with every micro-kernel this CPU runs, sgemmSerial,
// OpenBLAS, the device's Gemm and GemmStridedBatched) against a float64 reference, on
// sizes that are not multiples of any tile or block, all transpose combinations, several
// alpha/beta, beta = 0 over NaN, padded leading dimensions and offset views.
//
// Test: go test -run 'Gemm|BLAS' ./kernels
// Also: go test -tags purego -run Gemm ./kernels ; CGO_ENABLED=0 go test -run Gemm ./kernels
package kernels

import (
	"fmt"
	"math"
	"os"
	"testing"
	"time"
)

// gemmFunc is the host-slice GEMM contract shared by every path.
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int)

type gemmPath struct {
	name string
	fn   gemmFunc
	skip string // reason to skip, if the path is unavailable
}

// gemmPaths lists every way of running a GEMM on host slices.
func gemmPaths() []gemmPath {
	var ps []gemmPath
	for _, kern := range gemmKernels {
		for _, th := range []int{1, 3} {
			ps = append(ps, gemmPath{name: fmt.Sprintf("go-%s-%dthreads", kern.name, th),
				fn: func(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int,
					beta float32, c []float32, ldc int) {
					gemmGoKernel(kern, th, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
				}})
		}
	}
	ps = append(ps, gemmPath{name: "sgemmSerial", fn: sgemmSerial})
	ob := gemmPath{name: "openblas", fn: func(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int) {
		gemmOpenBLAS(2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}}
	if !openblasAvailable() {
		ob.skip = "OpenBLAS not loaded: " + loadOpenBLAS().Reason
	}
	ps = append(ps, ob)
	ps = append(ps, gemmPath{name: "gemmHost", fn: func(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int) {
		NewCPU(2).gemmHost(2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}})
	return ps
}

// gemmRef is C = alpha*op(A)*op(B) + beta*C in float64, returned densely (m x n); the beta
// term is skipped when beta == 0, as the contract says.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	ref := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += float64(x) * float64(y)
			}
			s *= float64(alpha)
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
			}
			ref[i*n+j] = s
		}
	}
	return ref
}

// gemmTol is the absolute tolerance for products of entries in [-1, 1]: float32 sums of k
// terms lose about k*2^-24 of their magnitude at worst, with a wide margin.
func gemmTol(k int, alpha, beta float32) float64 {
	return 1e-6*float64(k+1)*math.Max(1, math.Abs(float64(alpha))) + 1e-6*math.Abs(float64(beta))
}

// gemmSentinel fills the padding of C (columns past n of each row) and is checked after.
const gemmSentinel = 12345.5

// denseRows copies an m x n matrix with leading dimension ld into a dense slice.
func denseRows(c []float32, m, n, ld int) []float32 {
	out := make([]float32, 0, m*n)
	for i := 0; i < m; i++ {
		out = append(out, c[i*ld:i*ld+n]...)
	}
	return out
}

type gemmCase struct {
	m, n, k     int
	alpha, beta float32
	pad         int // extra elements in every leading dimension
}

func (c gemmCase) String() string {
	return fmt.Sprintf("%dx%dx%d/a=%g/b=%g/pad=%d", c.m, c.n, c.k, c.alpha, c.beta, c.pad)
}

// runGemmCase checks every path on one case for the four transpose combinations.
func runGemmCase(t *testing.T, paths []gemmPath, gc gemmCase, seed uint64) {
	m, n, k := gc.m, gc.n, gc.k
	for tr := 0; tr < 4; tr++ {
		transA, transB := tr&1 != 0, tr&2 != 0
		rowsA, colsA := m, k
		if transA {
			rowsA, colsA = k, m
		}
		rowsB, colsB := k, n
		if transB {
			rowsB, colsB = n, k
		}
		lda, ldb, ldc := colsA+gc.pad, colsB+gc.pad, n+gc.pad
		a := testUniforms(seed, max(rowsA*lda, 1), -1, 1)
		b := testUniforms(seed+1, max(rowsB*ldb, 1), -1, 1)
		c0 := testUniforms(seed+2, m*ldc, -1, 1)
		if gc.beta == 0 {
			for i := range c0 {
				c0[i] = float32(math.NaN()) // must vanish: beta == 0 does not read C
			}
		}
		for i := 0; i < m; i++ {
			for j := n; j < ldc; j++ {
				c0[i*ldc+j] = gemmSentinel
			}
		}
		ref := gemmRef(transA, transB, m, n, k, gc.alpha, a, lda, b, ldb, gc.beta, c0, ldc)
		for _, p := range paths {
			if p.skip != "" {
				continue
			}
			c := append([]float32(nil), c0...)
			p.fn(transA, transB, m, n, k, gc.alpha, a, lda, b, ldb, gc.beta, c, ldc)
			name := fmt.Sprintf("%s/%v/tA=%v,tB=%v", p.name, gc, transA, transB)
			assertClose(t, name, denseRows(c, m, n, ldc), ref, gemmTol(k, gc.alpha, gc.beta), 1e-5)
			for i := 0; i < m; i++ {
				for j := n; j < ldc; j++ {
					if c[i*ldc+j] != gemmSentinel {
						t.Fatalf("%s: wrote C[%d][%d] past column n", name, i, j)
					}
				}
			}
		}
	}
}

func TestGemmPaths(t *testing.T) {
	paths := gemmPaths()
	for _, p := range paths {
		if p.skip != "" {
			t.Logf("skipping %s: %s", p.name, p.skip)
		}
	}
	ab := [][2]float32{{1, 0}, {0.5, -1.5}, {-2, 1}, {1.25, 0}}
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 33}, {7, 1, 65}, {7, 33, 65}, {33, 65, 7}, {65, 129, 33},
		{129, 65, 257}, {257, 129, 65}, {1, 257, 129}, {129, 1, 257}, {13, 37, 3},
		// Crossing the cache blocks: k > kc = 384, n > nc = 640, m > mc = 384.
		{397, 653, 389},
	}
	for i, s := range sizes {
		gc := gemmCase{m: s[0], n: s[1], k: s[2], alpha: ab[i%len(ab)][0], beta: ab[i%len(ab)][1], pad: i % 3 * 5}
		runGemmCase(t, paths, gc, uint64(100+i))
	}
}

// TestGemmSpecialScalars covers alpha == 0 and k == 0 (C = beta*C, A and B unread) and
// beta == 0 over NaN.
func TestGemmSpecialScalars(t *testing.T) {
	paths := gemmPaths()
	for _, gc := range []gemmCase{
		{m: 9, n: 70, k: 0, alpha: 1, beta: 0.5},
		{m: 9, n: 70, k: 0, alpha: 1, beta: 0},
		{m: 31, n: 17, k: 5, alpha: 0, beta: -1},
		{m: 31, n: 17, k: 5, alpha: 0, beta: 0},
		{m: 50, n: 45, k: 40, alpha: 2, beta: 0},
	} {
		runGemmCase(t, paths, gc, 7)
	}
}

// TestSgemmSerialLeadingDims runs sgemmSerial on sub-blocks of larger matrices, as attention
// does (rows of one head are C apart), and checks nothing outside the block changes.
func TestSgemmSerialLeadingDims(t *testing.T) {
	const lda, ldb, ldc = 101, 77, 93
	m, n, k := 43, 35, 60
	for tr := 0; tr < 4; tr++ {
		transA, transB := tr&1 != 0, tr&2 != 0
		a := testUniforms(1, 80*lda, -1, 1)
		b := testUniforms(2, 80*ldb, -1, 1)
		c := testUniforms(3, 50*ldc, -1, 1)
		c0 := append([]float32(nil), c...)
		// Operate on the block starting at row 2, column 3 of every matrix.
		ao, bo, co := 2*lda+3, 2*ldb+3, 2*ldc+3
		ref := gemmRef(transA, transB, m, n, k, 0.75, a[ao:], lda, b[bo:], ldb, -0.5, c[co:], ldc)
		sgemmSerial(transA, transB, m, n, k, 0.75, a[ao:], lda, b[bo:], ldb, -0.5, c[co:], ldc)
		name := fmt.Sprintf("sgemmSerial/tA=%v,tB=%v", transA, transB)
		assertClose(t, name, denseRows(c[co:], m, n, ldc), ref, gemmTol(k, 0.75, -0.5), 1e-5)
		for i := range c {
			r, col := (i-co)/ldc, (i-co)%ldc
			inside := i >= co && r < m && col < n
			if !inside && c[i] != c0[i] {
				t.Fatalf("%s: element %d outside the block changed", name, i)
			}
		}
	}
}

// TestGemmDevice runs CPU.Gemm on offset views (guarded storage) for each transpose pair.
func TestGemmDevice(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		d := NewCPU(threads)
		for _, s := range [][3]int{{33, 65, 7}, {129, 70, 257}, {1, 1, 1}} {
			m, n, k := s[0], s[1], s[2]
			for tr := 0; tr < 4; tr++ {
				transA, transB := tr&1 != 0, tr&2 != 0
				ha := testUniforms(11, m*k, -1, 1)
				hb := testUniforms(12, k*n, -1, 1)
				hc := testUniforms(13, m*n, -1, 1)
				lda, ldb := gemmLDs(transA, transB, m, n, k)
				ref := gemmRef(transA, transB, m, n, k, 1.5, ha, lda, hb, ldb, 0.25, hc, n)
				a, b, c := guarded(d, ha, m, k), guarded(d, hb, k, n), guarded(d, hc, m, n)
				d.Gemm(transA, transB, m, n, k, 1.5, a, b, 0.25, c)
				name := fmt.Sprintf("CPU(%d).Gemm/%dx%dx%d/tA=%v,tB=%v", threads, m, n, k, transA, transB)
				assertClose(t, name, Host(c), ref, gemmTol(k, 1.5, 0.25), 1e-5)
				assertGuard(t, name+"/C", c)
			}
		}
	}
}

// TestGemmStridedBatched covers both batched strategies (parallel single-threaded products
// for small matrices, one multi-threaded product after another for large ones), a shared B
// (stride 0) and padded strides.
func TestGemmStridedBatched(t *testing.T) {
	for _, s := range []struct {
		m, n, k, batch, padA, padC int
		threads                    int
		shareB, oneTrans           bool
	}{
		{m: 17, n: 9, k: 33, batch: 5, padA: 3, padC: 1, threads: 2},
		{m: 60, n: 64, k: 130, batch: 4, shareB: true, threads: 2},
		{m: 1, n: 1, k: 1, batch: 1, threads: 2},
		{m: 70, n: 50, k: 90, batch: 1, threads: 2},
		// 2mnk > gemmBatchSerialFlops and 5 products on 4 threads: one product at a time.
		{m: 260, n: 261, k: 259, batch: 5, padC: 7, threads: 4, oneTrans: true},
	} {
		d := NewCPU(s.threads)
		for tr := 0; tr < 4; tr++ {
			if s.oneTrans && tr != 2 {
				continue
			}
			transA, transB := tr&1 != 0, tr&2 != 0
			m, n, k, batch := s.m, s.n, s.k, s.batch
			sA, sB, sC := m*k+s.padA, k*n, m*n+s.padC
			if s.shareB {
				sB = 0
			}
			ha := testUniforms(21, (batch-1)*sA+m*k, -1, 1)
			hb := testUniforms(22, (batch-1)*sB+k*n, -1, 1)
			hc := testUniforms(23, (batch-1)*sC+m*n, -1, 1)
			lda, ldb := gemmLDs(transA, transB, m, n, k)
			want := append([]float32(nil), hc...)
			ref := make([]float64, len(hc))
			for i := range ref {
				ref[i] = float64(hc[i]) // padding between matrices stays as it was
			}
			for i := 0; i < batch; i++ {
				r := gemmRef(transA, transB, m, n, k, -0.5, ha[i*sA:], lda, hb[i*sB:], ldb, 2, want[i*sC:], n)
				for j, v := range r {
					ref[i*sC+j] = v
				}
			}
			a, b, c := guarded(d, ha, len(ha)), guarded(d, hb, len(hb)), guarded(d, hc, len(hc))
			d.GemmStridedBatched(transA, transB, m, n, k, -0.5, a, sA, b, sB, 2, c, sC, batch)
			name := fmt.Sprintf("GemmStridedBatched/%dx%dx%d*%d/tA=%v,tB=%v", m, n, k, batch, transA, transB)
			assertClose(t, name, Host(c), ref, gemmTol(k, -0.5, 2), 1e-5)
			assertGuard(t, name+"/C", c)
		}
	}
}

// TestGemmThreadsDeterministic: the Go GEMM sums every element in the same order whatever
// the thread count, so results are bit-identical.
func TestGemmThreadsDeterministic(t *testing.T) {
	m, n, k := 150, 131, 400
	a, b := testUniforms(31, m*k, -1, 1), testUniforms(32, k*n, -1, 1)
	want := make([]float32, m*n)
	gemmGo(1, false, true, m, n, k, 1, a, k, b, k, 0, want, n)
	for _, th := range []int{2, 3, 4, 7} {
		got := make([]float32, m*n)
		gemmGo(th, false, true, m, n, k, 1, a, k, b, k, 0, got, n)
		assertSame(t, fmt.Sprintf("gemmGo threads=%d", th), got, want)
	}
}

func TestGemmBadArgsPanic(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 9)
	mustPanic("short C", func() { gemmGo(1, false, false, 3, 4, 4, 1, a, 4, b, 4, 0, c, 4) })
	mustPanic("small lda", func() { gemmGo(1, false, false, 3, 3, 4, 1, a, 3, b, 3, 0, c, 3) })
	mustPanic("negative", func() { gemmGo(1, false, false, -1, 3, 4, 1, a, 4, b, 3, 0, c, 3) })
	d := NewCPU(1)
	mustPanic("tensor size", func() { d.Gemm(false, false, 3, 3, 3, 1, d.New(3, 4), d.New(3, 3), 0, d.New(3, 3)) })
	mustPanic("overlapping C", func() {
		d.GemmStridedBatched(false, false, 2, 2, 2, 1, d.New(8), 4, d.New(8), 4, 0, d.New(8), 2, 2)
	})
}

func TestBLASInfo(t *testing.T) {
	info := LoadBLAS()
	t.Logf("%v", info)
	if ct := openblasCoreType(); ct != "" {
		t.Logf("core type for this CPU: %s", ct)
	}
	if info.Used {
		if info.Library == "" || info.CoreName == "" || info.Threads < 1 {
			t.Errorf("incomplete BLASInfo: %+v", info)
		}
		if info.CoreTypeFrom == "align" && info.CoreName != info.CoreType {
			t.Errorf("OPENBLAS_CORETYPE=%s was set but OpenBLAS runs %s", info.CoreType, info.CoreName)
		}
	} else if info.Reason == "" {
		t.Errorf("OpenBLAS unused without a reason: %+v", info)
	}
	if goGemmPreferred() && os.Getenv("ALIGN_BLAS") != "openblas" && info.Used {
		t.Errorf("the Go GEMM runs %s here but OpenBLAS is used: %+v", gemmDefault.name, info)
	}
	t.Setenv("ALIGN_BLAS", "go")
	if off := LoadBLAS(); off.Used || off.Reason == "" {
		t.Errorf("ALIGN_BLAS=go: got %+v", off)
	}
	t.Setenv("ALIGN_BLAS", "openblas")
	if on := LoadBLAS(); on.Used != openblasAvailable() {
		t.Errorf("ALIGN_BLAS=openblas: got %+v, OpenBLAS available %v", on, openblasAvailable())
	}
}

func TestGemmProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1024^3 products")
	}
	g := GemmProbe(NewCPU(0), time.Millisecond)
	t.Logf("GemmProbe: %.1f GFLOP/s", g)
	if !(g > 0) {
		t.Errorf("GemmProbe = %g", g)
	}
}

// TestGemmTranspose checks the transposing half of packing (assembly blocks plus scalar
// edges) on every remainder of rows mod 8 and columns mod 8, with padded strides.
func TestGemmTranspose(t *testing.T) {
	for rows := 0; rows <= 19; rows++ {
		for _, cols := range []int{0, 1, 7, 8, 9, 16, 23, 40} {
			ss, ds := cols+3, rows+5
			src := testUniforms(uint64(rows*100+cols), max(rows*ss, 1), -1, 1)
			dst := make([]float32, max(cols*ds, 1))
			for i := range dst {
				dst[i] = gemmSentinel
			}
			transposeInto(dst, ds, src, ss, rows, cols)
			for c := 0; c < cols; c++ {
				for r := 0; r < ds; r++ {
					want := float32(gemmSentinel)
					if r < rows {
						want = src[r*ss+c]
					}
					if dst[c*ds+r] != want {
						t.Fatalf("transpose %dx%d: dst[%d*%d+%d] = %g, want %g", rows, cols, c, ds, r, dst[c*ds+r], want)
					}
				}
			}
		}
	}
}

// TestGemmCopy checks the non-transposing half of packing on runs of every length mod 8.
func TestGemmCopy(t *testing.T) {
	for rows := 0; rows <= 5; rows++ {
		for cols := 0; cols <= 37; cols++ {
			ss, ds := cols+3, cols+1
			src := testUniforms(uint64(rows*100+cols), max(rows*ss, 1), -1, 1)
			dst := make([]float32, max(rows*ds, 1))
			for i := range dst {
				dst[i] = gemmSentinel
			}
			copyInto(dst, ds, src, ss, rows, cols)
			for r := 0; r < rows; r++ {
				for c := 0; c < ds; c++ {
					want := float32(gemmSentinel)
					if c < cols {
						want = src[r*ss+c]
					}
					if dst[r*ds+c] != want {
						t.Fatalf("copy %dx%d: dst[%d*%d+%d] = %g, want %g", rows, cols, r, ds, c, dst[r*ds+c], want)
					}
				}
			}
		}
	}
}

// The kernels that read A in place give the bits of the packed path: every kernel with a
// direct variant, A with rows padded (lda > k), partial row panels and column tiles, k
// across the kc block, beta 0, 1 and other, 1 to 3 threads.
func TestGemmDirectSameBits(t *testing.T) {
	for _, kern := range gemmKernels {
		if kern.direct == nil {
			continue
		}
		for _, s := range [][4]int{{13, 40, 7, 7}, {37, 70, 390, 401}, {400, 65, 45, 48}, {24, 32, 384, 384}, {5, 700, 20, 33}} {
			m, n, k, lda := s[0], s[1], s[2], s[3]
			a, b := testNormals(1, m*lda), testNormals(2, n*k)
			for _, beta := range []float32{0, 1, -0.75} {
				for _, threads := range []int{1, 2, 3} {
					want, got := testNormals(3, m*n), testNormals(3, m*n)
					direct := kern.direct
					kern.direct = nil
					gemmGoKernel(kern, threads, false, true, m, n, k, 1.5, a, lda, b, k, beta, want, n)
					kern.direct = direct
					gemmGoKernel(kern, threads, false, true, m, n, k, 1.5, a, lda, b, k, beta, got, n)
					sameBits(t, fmt.Sprintf("%s m=%d n=%d k=%d lda=%d beta=%g threads=%d", kern.name, m, n, k, lda, beta, threads), got, want)
				}
			}
		}
	}
}
