// Tests of the BF16 Go GEMM (gemm_bf16.go): the rounding against hand-computed cases and the
// hardware conversion, the pair packing, VDPBF16PS's sums in Go, and the blocked product bit
// for bit against a reference written from the instruction's definition, on every layout.
//
// Test: go test ./kernels -run BF16
package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// needBF16 skips a test of the BF16 kernel on a CPU without AVX512_BF16.
func needBF16(t *testing.T) {
	t.Helper()
	if bf16GemmKernel == nil {
		t.Skip("this CPU has no AVX512_BF16")
	}
}

func TestBF16Bits(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // 1 + 2^-8, halfway: to the even 1
		{0x3f818000, 0x3f82}, // 1 + 3*2^-8, halfway: to the even 1 + 2^-6
		{0x3f808001, 0x3f81}, // just above halfway: up
		{0x3f807fff, 0x3f80}, // just below: down
		{0xbf80c000, 0xbf81}, // -1 - 3*2^-9: up in magnitude
		{0x7f7fffff, 0x7f80}, // the largest float32 rounds to +Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7fc00000, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // signalling NaN, quieted (the carry would have made it Inf)
		{0xffffffff, 0xffff}, // NaN with every bit set stays one
		{0x00000001, 0x0000}, // denormals to zero
		{0x807fffff, 0x8000}, // of their sign
		{0x00800000, 0x0080}, // the smallest normal stays
		{0x80000000, 0x8000}, // -0
	} {
		if got := bf16Bits(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("bf16Bits(%08x) = %04x, want %04x", c.in, got, c.want)
		}
	}
}

// TestToBF16Vector: the vector conversion (VCVTNEPS2BF16) and bf16Bits agree. All 2^32
// inputs were compared once (4.6 s); here the hand-picked cases' neighbourhoods and a
// million random bit patterns, at every length around the vector width.
func TestToBF16Vector(t *testing.T) {
	needBF16(t)
	r := rand.New(rand.NewPCG(1, 2))
	var src []float32
	for _, b := range []uint32{0, 0x00800000, 0x3f808000, 0x3f818000, 0x7f7fffff, 0x7f800000, 0x7fc00000} {
		for d := uint32(0); d < 64; d++ {
			src = append(src, math.Float32frombits(b+d), math.Float32frombits(b-d), math.Float32frombits(b|0x80000000+d))
		}
	}
	for len(src) < 1<<20 {
		src = append(src, math.Float32frombits(r.Uint32()))
	}
	dst := make([]uint16, len(src))
	toBF16(dst, src)
	for i, v := range src {
		if want := bf16Bits(v); dst[i] != want {
			t.Fatalf("toBF16(%08x) = %04x, want %04x", math.Float32bits(v), dst[i], want)
		}
	}
	for n := 0; n <= 40; n++ {
		d := make([]uint16, n+1)
		d[n] = 0xbeef
		toBF16(d[:n], src[5:5+n])
		for i := 0; i < n; i++ {
			if d[i] != bf16Bits(src[5+i]) {
				t.Fatalf("n=%d: element %d", n, i)
			}
		}
		if d[n] != 0xbeef {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
}

// TestPairBF16: the pairs of two rows, contiguous (ds = pairPanel) and across panels ds
// words apart, at every length around the vector and panel widths, with and without an odd
// row; nothing outside the panels' columns is written.
func TestPairBF16(t *testing.T) {
	even := testUniforms(3, 120, -4, 4)
	odd := testUniforms(4, 120, -4, 4)
	const sentinel = 0xdeadbeef
	for _, ds := range []int{pairPanel, pairPanel + 5, 3 * pairPanel} {
		for n := 0; n <= 100; n++ {
			for _, withOdd := range []bool{true, false} {
				d := make([]uint32, (n/pairPanel+1)*ds+1)
				for i := range d {
					d[i] = sentinel
				}
				var o []float32
				if withOdd {
					o = odd[1 : 1+n]
				}
				pairBF16(d, ds, even[1:1+n], o)
				written := map[int]bool{}
				for i := 0; i < n; i++ {
					want := uint32(bf16Bits(even[1+i]))
					if withOdd {
						want |= uint32(bf16Bits(odd[1+i])) << 16
					}
					at := i/pairPanel*ds + i%pairPanel
					written[at] = true
					if d[at] != want {
						t.Fatalf("ds=%d n=%d odd=%v: pair %d = %08x, want %08x", ds, n, withOdd, i, d[at], want)
					}
				}
				for i, v := range d {
					if !written[i] && v != sentinel {
						t.Fatalf("ds=%d n=%d odd=%v: wrote word %d outside the panels", ds, n, withOdd, i)
					}
				}
			}
		}
	}
}

func TestBF16DotStep(t *testing.T) {
	for _, c := range []struct {
		acc, a, b, want float32
	}{
		{1, 1, 0x1p-24, 1},                                      // 1 + half an ulp: to the even 1
		{1, 3, 0x1p-24, 1 + 0x1p-22},                            // 1 + 1.5 ulp: halfway, to the even 1 + 2 ulp
		{1, 5, 0x1p-24, 1 + 0x1p-22},                            // 1 + 2.5 ulp: halfway, to the even 1 + 2 ulp
		{0.5, 0.25, -2, 0},                                      // exact
		{0x1p-126, -1, 0x1p-127, 0},                             // 2^-127 is denormal: flushed
		{-0x1p-126, 1, 0x1p-127, float32(math.Copysign(0, -1))}, // to a zero of its sign
		{0, 0x1p-100, 0x1p-30, 0},                               // a product below the normal range
		{3, 0x1p-70, 0x1p-70, 3},
	} {
		got := bf16DotStep(c.acc, c.a, c.b)
		if math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("bf16DotStep(%g, %g, %g) = %g (%08x), want %g", c.acc, c.a, c.b, got, math.Float32bits(got), c.want)
		}
	}
}

// gemmBF16Ref is the BF16 GEMM by VDPBF16PS's definition: for each output and k block of kc,
// acc sums the block's pairs (odd product first, each step bf16DotStep; a partner past the
// block's end is 0), then C = alpha*acc + beta'*C (beta' = beta for the first block, 1 after;
// exactly the kernel's store where alpha is 1 and beta' is 0 or 1).
func gemmBF16Ref(kc int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	opA := func(i, p int) float32 {
		if transA {
			return bf16Value(bf16Bits(a[p*lda+i]))
		}
		return bf16Value(bf16Bits(a[i*lda+p]))
	}
	opB := func(p, j int) float32 {
		if transB {
			return bf16Value(bf16Bits(b[j*ldb+p]))
		}
		return bf16Value(bf16Bits(b[p*ldb+j]))
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			for pc := 0; pc < k; pc += kc {
				end := min(pc+kc, k)
				acc := float32(0)
				for p := pc; p < end; p += 2 {
					var a1, b1 float32
					if p+1 < end {
						a1, b1 = opA(i, p+1), opB(p+1, j)
					}
					acc = bf16DotStep(acc, a1, b1)
					acc = bf16DotStep(acc, opA(i, p), opB(p, j))
				}
				bet := beta
				if pc > 0 {
					bet = 1
				}
				if bet == 0 {
					c[i*ldc+j] = alpha * acc
				} else {
					c[i*ldc+j] = alpha*acc + bet*c[i*ldc+j]
				}
			}
		}
	}
}

// TestGemmBF16 runs the BF16 GEMM on 1 and 3 threads against gemmBF16Ref, bit for bit, on
// every transpose combination, odd k (a pair's partner past the end), k across kc, m across
// mc, n across nc, edge tiles, padded leading dimensions, beta 0 (C not read) and 1.
func TestGemmBF16(t *testing.T) {
	needBF16(t)
	kern := bf16GemmKernel
	for _, gc := range []gemmCase{
		{m: 1, n: 1, k: 1, alpha: 1},
		{m: 25, n: 45, k: 9, alpha: 1, beta: 1, pad: 3},
		{m: 12, n: 32, k: 2*kern.kc + 3, alpha: 1, beta: 1},
		{m: 50, n: 70, k: kern.kc + 1, alpha: 1},
		{m: kern.mc + 7, n: 33, k: 20, alpha: 1, beta: 1, pad: 1},
		{m: 13, n: kern.nc + 40, k: 50, alpha: 1},
	} {
		m, n, k := gc.m, gc.n, gc.k
		for tr := 0; tr < 4; tr++ {
			transA, transB := tr&1 != 0, tr&2 != 0
			rowsA, colsA, rowsB, colsB := m, k, k, n
			if transA {
				rowsA, colsA = k, m
			}
			if transB {
				rowsB, colsB = n, k
			}
			lda, ldb, ldc := colsA+gc.pad, colsB+gc.pad, n+gc.pad
			a := testUniforms(31, rowsA*lda, -1, 1)
			b := testUniforms(32, rowsB*ldb, -1, 1)
			c0 := testUniforms(33, m*ldc, -1, 1)
			if gc.beta == 0 {
				for i := range c0 {
					c0[i] = float32(math.NaN())
				}
			}
			want := append([]float32(nil), c0...)
			gemmBF16Ref(kern.kc, transA, transB, m, n, k, gc.alpha, a, lda, b, ldb, gc.beta, want, ldc)
			for _, threads := range []int{1, 3} {
				got := append([]float32(nil), c0...)
				gemmGoKernel(kern, threads, transA, transB, m, n, k, gc.alpha, a, lda, b, ldb, gc.beta, got, ldc)
				name := fmt.Sprintf("%v/tA=%v,tB=%v/%d threads", gc, transA, transB, threads)
				sameBits(t, name, got, want)
			}
		}
	}
}

// TestGemmBF16Scaled: alpha and beta other than 1 and 0 (the store's fused multiply-add,
// which the reference's float32 arithmetic does not copy bit for bit) within an ulp or two.
func TestGemmBF16Scaled(t *testing.T) {
	needBF16(t)
	m, n, k := 30, 40, 50
	a := testUniforms(41, m*k, -1, 1)
	b := testUniforms(42, k*n, -1, 1)
	c := testUniforms(43, m*n, -1, 1)
	want := append([]float32(nil), c...)
	gemmBF16Ref(bf16GemmKernel.kc, false, false, m, n, k, -1.5, a, k, b, n, 0.75, want, n)
	gemmGoKernel(bf16GemmKernel, 2, false, false, m, n, k, -1.5, a, k, b, n, 0.75, c, n)
	ref := make([]float64, len(want))
	for i, v := range want {
		ref[i] = float64(v)
	}
	assertClose(t, "alpha -1.5, beta 0.75", c, ref, 1e-6, 1e-6)
}

// TestGemmBF16SmallIntegers: on integers of at most 4 bits every product and sum is exact
// in both precisions, so the BF16 GEMM gives the FP32 GEMM's bits, and both the exact sums.
func TestGemmBF16SmallIntegers(t *testing.T) {
	needBF16(t)
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 29, 47, 1001
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(r.IntN(17) - 8)
	}
	for i := range b {
		b[i] = float32(r.IntN(17) - 8)
	}
	c16, c32 := make([]float32, m*n), make([]float32, m*n)
	gemmGoKernel(bf16GemmKernel, 2, false, true, m, n, k, 1, a, k, b, k, 0, c16, n)
	gemmGoKernel(gemmDefault, 2, false, true, m, n, k, 1, a, k, b, k, 0, c32, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0
			for p := 0; p < k; p++ {
				s += int(a[i*k+p]) * int(b[j*k+p])
			}
			if c16[i*n+j] != float32(s) || c32[i*n+j] != float32(s) {
				t.Fatalf("C[%d][%d]: bf16 %g, fp32 %g, want %d", i, j, c16[i*n+j], c32[i*n+j], s)
			}
		}
	}
}

// TestCPUBF16Device: in BF16 mode the CPU device's products (Gemm, GemmStridedBatched, the
// linear layers forward, with GELU and backward) are gemmBF16Ref's, bit for bit, on 1 and 3
// threads (so thread and batch independence hold: the reference sums each element on its
// own), and the bias, GELU and bias gradient are FP32's.
func TestCPUBF16Device(t *testing.T) {
	needBF16(t)
	const N, in, out = 37, 130, 70
	kc := bf16GemmKernel.kc
	x := testUniforms(51, N*in, -1, 1)
	w := testUniforms(52, out*in, -1, 1)
	bias := testUniforms(53, out, -1, 1)
	dy := testUniforms(54, N*out, -1, 1)
	dw0 := testUniforms(55, out*in, -1, 1)
	for _, threads := range []int{1, 3} {
		d := NewCPU(threads)
		if err := d.SetGemmBF16(true); err != nil {
			t.Fatal(err)
		}
		f32 := NewCPU(threads)
		name := fmt.Sprintf("%d threads", threads)

		// Linear: y = x wᵀ + bias (bias in the epilogue).
		y := guarded(d, nil, N, out)
		d.Linear(y, guarded(d, x, N, in), guarded(d, w, out, in), guarded(d, bias, out), N, in, out)
		want := make([]float32, N*out)
		gemmBF16Ref(kc, false, true, N, out, in, 1, x, in, w, in, 0, want, out)
		for i := range want {
			want[i] += bias[i%out]
		}
		sameBits(t, name+"/Linear", Host(y), want)
		assertGuard(t, name+"/Linear", y)

		// LinearGelu: GELU of the same pre-activation, with FP32's GELU.
		g, h := guarded(d, nil, N, out), guarded(d, nil, N, out)
		d.LinearGelu(g, h, guarded(d, x, N, in), guarded(d, w, out, in), guarded(d, bias, out), N, in, out)
		sameBits(t, name+"/LinearGelu h", Host(h), want)
		wantG := f32.New(N, out)
		f32.GeluForward(wantG, f32.FromHost(want, N, out))
		sameBits(t, name+"/LinearGelu g", Host(g), Host(wantG))

		// LinearBackward: dx = dy w, dw += dyᵀ x (A transposed), dbias = column sums.
		dx, dw, db := guarded(d, nil, N, in), guarded(d, dw0, out, in), guarded(d, nil, out)
		d.LinearBackward(dx, dw, db, guarded(d, dy, N, out), guarded(d, x, N, in), guarded(d, w, out, in), N, in, out)
		wantDx := make([]float32, N*in)
		gemmBF16Ref(kc, false, false, N, in, out, 1, dy, out, w, in, 0, wantDx, in)
		sameBits(t, name+"/dx", Host(dx), wantDx)
		wantDw := append([]float32(nil), dw0...)
		gemmBF16Ref(kc, true, false, out, in, N, 1, dy, out, x, in, 1, wantDw, in)
		sameBits(t, name+"/dw", Host(dw), wantDw)
		wantDb := f32.New(out)
		f32.BiasBackward(wantDb, f32.FromHost(dy, N, out), N, out)
		sameBits(t, name+"/dbias", Host(db), Host(wantDb))

		// GemmStridedBatched: three products of N x out x in with a shared B.
		const batch = 3
		xs := testUniforms(56, batch*N*in, -1, 1)
		c := guarded(d, nil, batch, N, out)
		d.GemmStridedBatched(false, true, N, out, in, 1, guarded(d, xs, batch, N, in), N*in, guarded(d, w, out, in), 0, 0, c, N*out, batch)
		wantC := make([]float32, batch*N*out)
		for i := 0; i < batch; i++ {
			gemmBF16Ref(kc, false, true, N, out, in, 1, xs[i*N*in:], in, w, in, 0, wantC[i*N*out:], out)
		}
		sameBits(t, name+"/GemmStridedBatched", Host(c), wantC)
	}
}

// TestSetGemmBF16 covers the mode's switch and its refusal on a CPU without AVX512_BF16
// (simulated by hiding the kernel).
func TestSetGemmBF16(t *testing.T) {
	d := NewCPU(1)
	if d.GemmBF16() || d.Describe() != "GEMM fp32" || PrecisionOf(d) != "fp32" {
		t.Fatalf("a new CPU device multiplies in fp32: %v, %q, %q", d.GemmBF16(), d.Describe(), PrecisionOf(d))
	}
	if bf16GemmKernel != nil {
		if err := d.SetGemmBF16(true); err != nil || !d.GemmBF16() || !strings.Contains(d.Describe(), "GEMM bf16") || PrecisionOf(d) != "bf16" {
			t.Fatalf("SetGemmBF16(true): %v, %v, %q, %q", err, d.GemmBF16(), d.Describe(), PrecisionOf(d))
		}
	}
	saved := bf16GemmKernel
	bf16GemmKernel = nil
	defer func() { bf16GemmKernel = saved }()
	d = NewCPU(1)
	if err := d.SetGemmBF16(true); err == nil || !strings.Contains(err.Error(), "AVX512_BF16") || d.GemmBF16() {
		t.Fatalf("SetGemmBF16(true) without the kernel: %v, %v", err, d.GemmBF16())
	}
	if err := d.SetGemmBF16(false); err != nil {
		t.Fatalf("SetGemmBF16(false): %v", err)
	}
}

// BenchmarkGemmBF16 times the BF16 GEMM against the FP32 Go GEMM on the same operands in the
// same run, on DiT's linear layers (a batch of 16 at 272 tokens, width 256: forward, input
// gradient and weight gradient shapes) and 1024³: "bf16/fp32" is the speed-up.
func BenchmarkGemmBF16(b *testing.B) {
	if bf16GemmKernel == nil {
		b.Skip("this CPU has no AVX512_BF16")
	}
	d := NewCPU(0)
	for _, s := range []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"linear-4352x1024x256", false, true, 4352, 1024, 256},
		{"linear-4352x256x1024", false, true, 4352, 256, 1024},
		{"dx-4352x256x1024", false, false, 4352, 256, 1024},
		{"dw-1024x256x4352", true, false, 1024, 256, 4352},
		{"square-1024", false, false, 1024, 1024, 1024},
	} {
		lda, ldb := gemmLDs(s.transA, s.transB, s.m, s.n, s.k)
		x := testUniforms(1, s.m*s.k, -1, 1)
		y := testUniforms(2, s.k*s.n, -1, 1)
		z := make([]float32, s.m*s.n)
		run := func(kern *gemmKernel) time.Duration {
			gemmGoKernel(kern, d.threads, s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
			best := time.Duration(math.MaxInt64)
			for r := 0; r < 5; r++ {
				t0 := time.Now()
				gemmGoKernel(kern, d.threads, s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
				best = min(best, time.Since(t0))
			}
			return best
		}
		b.Run(s.name, func(b *testing.B) {
			var f32, bf time.Duration
			for i := 0; i < b.N; i++ {
				f32, bf = run(gemmDefault), run(bf16GemmKernel)
			}
			flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
			b.ReportMetric(flops/bf.Seconds()/1e9, "bf16-GFLOP/s")
			b.ReportMetric(flops/f32.Seconds()/1e9, "fp32-GFLOP/s")
			b.ReportMetric(f32.Seconds()/bf.Seconds(), "bf16/fp32")
		})
	}
}
