// Conformance of the CUDA device with the CPU device: every operation of kernels.Device on
// odd sizes, inputs at odd offsets inside guarded storage, outputs compared with the
// tolerance rule of style.md (exactly where the operation only moves data). runConformance
// is shared by the emulated run here and the GPU run (gpu_test.go, build tag cuda).
//
// Test: go test ./kernels/cuda -run Conformance
package cuda

import (
	"fmt"
	"math"
	"testing"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

func TestConformance(t *testing.T) {
	runConformance(t, NewEmulated())
}

// TestConformanceReverse runs the suite with the threads of each block resumed last to
// first between barriers, so that a barrier missing between a write and a read by a
// lower-numbered thread shows too.
func TestConformanceReverse(t *testing.T) {
	drv := NewEmuDriver()
	drv.Mode = EmuFibersReverse
	runConformance(t, NewDevice(drv, "cuda-emu-reverse"))
}

// TestConformanceOneBlock runs the suite with 1-D grids capped at one block of 256 threads,
// so that each thread of a grid-stride loop takes many elements of the odd-sized cases and
// the carried indices of GRID_STRIDE_BTC (common.h) wrap in every way (a stride of 256 over
// C = 37 and T = 5 carries both the column and the row).
func TestConformanceOneBlock(t *testing.T) {
	d := NewEmulated()
	d.maxBlocks = 1
	runConformance(t, d)
}

// conformanceCases lists the subtests; each gets a fresh env on the same device.
var conformanceCases = []struct {
	name string
	fn   func(e *env)
}{
	{"Memory", testMemory},
	{"Elementwise", testElementwise},
	{"AddRowScaled", testAddRowScaled},
	{"AddBias", testAddBias},
	{"BiasBackward", testBiasBackward},
	{"ToBF16", testToBF16},
	{"MMATile", testMMATile},
	{"Gemm", testGemm},
	{"GemmStridedBatched", testGemmStridedBatched},
	{"GemmHalf", testGemmHalf},
	{"Linear", testLinear},
	{"LinearBackward", testLinearBackward},
	{"LinearGelu", testLinearGelu},
	{"Gelu", testGelu},
	{"Silu", testSilu},
	{"LayerNorm", testLayerNorm},
	{"Modulate", testModulate},
	{"LayerNormModulate", testLayerNormModulate},
	{"Gate", testGate},
	{"ModulateGateVec", testModulateGateVec},
	{"Softmax", testSoftmax},
	{"Embedding", testEmbedding},
	{"TimestepEmbedding", testTimestepEmbedding},
	{"MeanPool", testMeanPool},
	{"Patchify", testPatchify},
	{"Permute", testPermute},
	{"Concat", testConcat},
	{"Sum", testSum},
	{"MSE", testMSE},
	{"AdamW", testAdamW},
	{"Rand", testRand},
	{"Attention", testAttention},
	{"AttentionTF32", testAttentionTF32},
	{"AttentionBF16", testAttentionBF16},
}

func runConformance(t *testing.T, dev *Device) {
	for _, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) { c.fn(newEnv(t, dev)) })
	}
}

func testMemory(e *env) {
	x := normals(1, 37)
	a := e.pair(x, 37)
	e.same("FromHost", a)
	z := e.dev.New(5, 3)
	got := make([]float32, 15)
	e.dev.CopyToHost(got, z)
	for i, v := range got {
		if v != 0 {
			e.t.Fatalf("New: element %d = %g, want 0", i, v)
		}
	}
	b := e.pair(nil, 37)
	e.dev.Copy(b.d, a.d)
	e.cpu.Copy(b.c, a.c)
	e.same("Copy", b)
	e.dev.Fill(b.d, -2.5)
	e.cpu.Fill(b.c, -2.5)
	e.same("Fill", b)
	e.dev.CopyFromHost(b.d, x)
	e.cpu.CopyFromHost(b.c, x)
	e.same("CopyFromHost", b)
	for _, sh := range []int{-5, 5} { // overlapping views of one storage, both directions
		lo, hi := max(0, -sh), max(0, sh)
		e.dev.Copy(b.d.View(hi, 30), b.d.View(lo, 30))
		e.cpu.Copy(b.c.View(hi, 30), b.c.View(lo, 30))
		e.same("Copy overlapping", b)
	}
	empty := e.dev.New(0)
	e.dev.Fill(empty, 1)
	e.dev.Free(empty)
	e.dev.Free(z)
	e.free(a, b)
	if err := e.dev.Synchronize(); err != nil {
		e.t.Fatal(err)
	}
}

func testElementwise(e *env) {
	for _, n := range []int{1, 37, 8191} { // 8191 > 32 blocks of 256: threads loop
		x, y := e.pair(normals(2, n), n), e.pair(normals(3, n), n)
		out := e.pair(nil, n)
		e.dev.Add(out.d, x.d, y.d)
		e.cpu.Add(out.c, x.c, y.c)
		e.same("Add", out)
		e.dev.Mul(out.d, x.d, y.d)
		e.cpu.Mul(out.c, x.c, y.c)
		e.same("Mul", out)
		e.dev.Axpby(out.d, 0.75, x.d, -1.25, y.d)
		e.cpu.Axpby(out.c, 0.75, x.c, -1.25, y.c)
		e.check("Axpby", out, tol32, eps32)
		e.dev.Axpy(out.d, 1.5, x.d)
		e.cpu.Axpy(out.c, 1.5, x.c)
		e.check("Axpy", out, tol32, eps32)
		// Scale is checked bit for bit, so on equal inputs: Axpby and Axpy above may round
		// differently within their tolerance.
		e.dev.CopyFromHost(out.d, kernels.Host(out.c))
		e.dev.Scale(out.d, -0.3)
		e.cpu.Scale(out.c, -0.3)
		e.same("Scale", out)
		e.dev.Add(x.d, x.d, y.d) // aliasing
		e.cpu.Add(x.c, x.c, y.c)
		e.same("Add aliased", x)
		e.free(x, y, out)
	}
}

func testAddRowScaled(e *env) {
	rows, cols := 5, 37
	x, y, s := e.pair(normals(4, rows*cols), rows, cols), e.pair(normals(5, rows*cols), rows, cols), e.pair(normals(6, rows), rows)
	out := e.pair(nil, rows, cols)
	e.dev.AddRowScaled(out.d, x.d, s.d, y.d, rows, cols)
	e.cpu.AddRowScaled(out.c, x.c, s.c, y.c, rows, cols)
	e.check("AddRowScaled", out, tol32, eps32)
	e.free(x, y, s, out)
}

func testAddBias(e *env) {
	N, C := 7, 45
	x, b := e.pair(normals(7, N*C), N, C), e.pair(normals(8, C), C)
	out := e.pair(nil, N, C)
	e.dev.AddBias(out.d, x.d, b.d, N, C)
	e.cpu.AddBias(out.c, x.c, b.c, N, C)
	e.same("AddBias", out)
	e.dev.AddBias(x.d, x.d, b.d, N, C)
	e.cpu.AddBias(x.c, x.c, b.c, N, C)
	e.same("AddBias in place", x)
	e.free(x, b, out)
}

func testBiasBackward(e *env) {
	for _, sz := range [][2]int{{1, 1}, {19, 45}, {300, 33}} {
		N, C := sz[0], sz[1]
		g, db := e.pair(normals(9, N*C), N, C), e.pair(normals(10, C), C)
		e.dev.BiasBackward(db.d, g.d, N, C)
		e.cpu.BiasBackward(db.c, g.c, N, C)
		e.check("BiasBackward", db, tol32, eps32)
		e.free(g, db)
	}
}

// bf16Nearest is the bfloat16 nearest to f (ties to the even one), found by comparing the
// two candidates around it rather than by the kernel's bit trick; NaN maps to 0x7fc0 or
// 0xffc0 as a marker (any NaN of the same sign is accepted).
func bf16Nearest(f float32) uint16 {
	b := math.Float32bits(f)
	sign, mag := uint16(b>>16)&0x8000, b&0x7fffffff
	switch {
	case f != f:
		return sign | 0x7fc0
	case mag >= 0x7f800000: // Inf
		return uint16(b >> 16)
	}
	value := func(bits uint32) float64 { // magnitude, Inf counted as 2^128 (IEEE's overflow rule)
		if bits == 0x7f800000 {
			return math.Ldexp(1, 128)
		}
		return float64(math.Float32frombits(bits))
	}
	lo := mag &^ 0xffff
	hi := lo + 0x10000
	x := float64(math.Float32frombits(mag))
	dl, dh := x-value(lo), value(hi)-x
	if dh < dl || dh == dl && (hi>>16)&1 == 0 {
		return sign | uint16(hi>>16)
	}
	return sign | uint16(lo>>16)
}

// testToBF16 checks the conversion the BF16 GEMMs run on their operands, at every 16-byte
// alignment (the kernel's vector path and its scalar loop) with ties, overflow, subnormals,
// zeros, infinities and NaNs among ordinary values.
func testToBF16(e *env) {
	special := []float32{
		math.Float32frombits(0x3f808000), // 1 + 2^-8: a tie, to 1 (even)
		math.Float32frombits(0x3f818000), // a tie, up to the even 0x3f82
		math.Float32frombits(0x3f808001), // just above a tie: up
		math.MaxFloat32,                  // rounds to +Inf
		-math.MaxFloat32,
		math.Float32frombits(0x7f7f7fff), // stays finite
		float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0xff800001), math.Float32frombits(0x7fffffff),
		math.Float32frombits(0x00000001), math.Float32frombits(0x00008000), math.Float32frombits(0x00018000),
		float32(math.Copysign(0, -1)), 0,
	}
	for _, n := range []int{1, 3, 4, 7, 16, 1029} {
		for off := 0; off < 4; off++ {
			x := append(normals(uint64(20+n), off), normals(uint64(21+n), n)...)
			copy(x[off:], special)
			t := e.dev.FromHost(x, len(x))
			q, release := e.dev.toBF16(e.dev.ptr(t)+DevPtr(4*off), n)
			got := make([]uint16, n)
			if err := e.dev.drv.DtoH(unsafe.Pointer(&got[0]), q, 2*n); err != nil {
				e.t.Fatal(err)
			}
			release()
			e.dev.Free(t)
			for i, v := range x[off:] {
				want := bf16Nearest(v)
				ok := got[i] == want
				if v != v { // NaN: exponent all ones, a mantissa bit, the same sign
					ok = got[i]&0x7f80 == 0x7f80 && got[i]&0x7f != 0 && got[i]&0x8000 == want&0x8000
				}
				if !ok {
					e.t.Errorf("ToBF16 n=%d offset %d: element %d (%#08x) became %#04x, want %#04x",
						n, off, i, math.Float32bits(v), got[i], want)
				}
			}
		}
	}
}

// gemmTol is the tolerance of products of k standard normals: the CPU sums in float32.
func gemmTol(k int) float64 { return 2e-6 * math.Sqrt(float64(k)+1) * 4 }

// precTol is the tolerance of a product over k terms of standard normals in precision p:
// gemmTol in FP32; TF32 and BF16 round each input to 2^-11 and 2^-8 (relative).
func precTol(p GemmPrecision, k int) float64 {
	switch p {
	case GemmTF32:
		return 2 * math.Sqrt(float64(k)) * 1e-3
	case GemmBF16:
		return 2 * math.Sqrt(float64(k)) * 8e-3
	}
	return gemmTol(k)
}

// bf16Reference is a CPU device whose products take BF16 inputs (nil where the CPU has no
// AVX512_BF16): it rounds the inputs as the device's BF16 mode does (to nearest even), so
// only the order and rounding of the FP32 sums differ, and the BF16 products are checked
// within bf16SumTol as well as precTol's allowance for the inputs' rounding, which a wrong
// conversion fits in nearly everywhere (truncating instead of rounding to nearest: no Gemm
// value outside precTol, every one outside bf16SumTol).
func bf16Reference() *kernels.CPU {
	d := kernels.NewCPU(2)
	if d.SetGemmBF16(true) != nil {
		return nil
	}
	return d
}

// bf16SumTol is the tolerance of a BF16 product over k terms of standard normals against
// bf16Reference's: FP32 sums in another order (tensor cores' own rounding included).
func bf16SumTol(k int) float64 { return 4 * gemmTol(k) }

// checkBF16 compares p's device values with want, bf16Reference's, within bf16SumTol(k).
func (e *env) checkBF16(name string, p pair, want *kernels.Tensor, k int) {
	e.t.Helper()
	assertClose(e.t, name+" (against the CPU's BF16 products)", e.host(p), kernels.Host(want), bf16SumTol(k), 1e-5)
}

func testGemm(e *env) {
	defer func(v float64) { e.dev.bf16Intensity = v }(e.dev.bf16Intensity)
	e.dev.bf16Intensity = 0 // these small products in BF16 too
	for _, prec := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
		e.dev.SetGemmPrecision(prec)
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, sz := range [][3]int{{7, 9, 13}, {1, 5, 1}, {3, 4, 0}} {
				m, n, k := sz[0], sz[1], sz[2]
				a, b := e.pair(normals(11, m*k), m*k), e.pair(normals(12, k*n), k*n)
				c := e.pair(normals(13, m*n), m, n)
				e.dev.Gemm(tr[0], tr[1], m, n, k, 0.5, a.d, b.d, 0.25, c.d)
				if bf := bf16Reference(); prec == GemmBF16 && bf != nil {
					want := bf.FromHost(normals(13, m*n), m, n)
					bf.Gemm(tr[0], tr[1], m, n, k, 0.5, a.c, b.c, 0.25, want)
					e.checkBF16("bf16 Gemm", c, want, k)
				}
				e.cpu.Gemm(tr[0], tr[1], m, n, k, 0.5, a.c, b.c, 0.25, c.c)
				e.check(prec.String()+" Gemm", c, precTol(prec, k), 1e-5)
				e.free(a, b, c)
			}
		}
	}
	e.dev.SetGemmPrecision(GemmFP32)
}

// testLinear checks the product with the bias in its epilogue against the CPU device's
// Gemm then AddBias, without a bias too, in every precision (BF16 forced on these small
// sizes).
func testLinear(e *env) {
	defer func(v float64) { e.dev.bf16Intensity = v }(e.dev.bf16Intensity)
	e.dev.bf16Intensity = 0
	N, in, out := 9, 13, 7
	x, w, bias := e.pair(normals(17, N*in), N, in), e.pair(normals(18, out*in), out, in), e.pair(normals(19, out), out)
	for _, prec := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
		e.dev.SetGemmPrecision(prec)
		tol := precTol(prec, in)
		for _, withBias := range []bool{true, false} {
			y := e.pair(normals(20, N*out), N, out) // garbage the product must overwrite
			bd, bc := bias.d, bias.c
			if !withBias {
				bd, bc = nil, nil
			}
			e.dev.Linear(y.d, x.d, w.d, bd, N, in, out)
			e.cpu.Linear(y.c, x.c, w.c, bc, N, in, out)
			e.check(fmt.Sprintf("%s Linear bias=%v", prec, withBias), y, tol, 1e-5)
			if bf := bf16Reference(); prec == GemmBF16 && bf != nil {
				want := bf.New(N, out)
				bf.Linear(want, x.c, w.c, bc, N, in, out)
				e.checkBF16(fmt.Sprintf("bf16 Linear bias=%v", withBias), y, want, in)
			}
			e.free(y)
		}
	}
	e.dev.SetGemmPrecision(GemmFP32)
	e.free(x, w, bias)
}

// testGemmHalf: in BF16 mode a product into a C read by products only (StoreHalf) writes C's
// BF16 copy alone, and a second one with beta 1 reads it back (a LoRA layer's sum, nn.Linear),
// which on a GPU is cuBLASLt's default epilogue with a BF16 C in place; against the CPU.
func testGemmHalf(e *env) {
	defer func(v float64) { e.dev.bf16Intensity = v }(e.dev.bf16Intensity)
	e.dev.bf16Intensity = 0
	e.dev.SetGemmPrecision(GemmBF16)
	defer e.dev.SetGemmPrecision(GemmFP32)
	m, n, k, r := 16, 24, 32, 8
	a, b := e.alignedPair(normals(41, m*k), m, k), e.alignedPair(normals(42, n*k), n, k)
	u, v := e.alignedPair(normals(43, m*r), m, r), e.alignedPair(normals(44, n*r), n, r)
	c := e.alignedPair(normals(45, m*n), m, n) // garbage the first product must overwrite
	e.dev.StoreHalf(c.d)
	e.dev.Gemm(false, true, m, n, r, 0.5, u.d, v.d, 0, c.d)
	e.dev.Gemm(false, true, m, n, k, 1, a.d, b.d, 1, c.d)
	if !e.dev.storageOf(c.d).f32Stale {
		e.t.Error("GemmHalf: C was not written in BF16 alone (the driver refused a BF16 C, with beta 0 or 1)")
	}
	e.cpu.Gemm(false, true, m, n, r, 0.5, u.c, v.c, 0, c.c)
	e.cpu.Gemm(false, true, m, n, k, 1, a.c, b.c, 1, c.c)
	e.check("GemmHalf", c, precTol(GemmBF16, k), 1e-2)
	e.free(a, b, u, v, c)
}

func testGemmStridedBatched(e *env) {
	m, n, k, batch := 5, 6, 7, 3
	sa, sb, sc := m*k+2, 0, m*n+1 // padded A, shared B, padded C
	a := e.pair(normals(14, (batch-1)*sa+m*k), (batch-1)*sa+m*k)
	b := e.pair(normals(15, k*n), k*n)
	c := e.pair(normals(16, (batch-1)*sc+m*n), (batch-1)*sc+m*n)
	for _, tr := range [][2]bool{{false, false}, {true, true}} {
		e.dev.GemmStridedBatched(tr[0], tr[1], m, n, k, 1, a.d, sa, b.d, sb, 0, c.d, sc, batch)
		e.cpu.GemmStridedBatched(tr[0], tr[1], m, n, k, 1, a.c, sa, b.c, sb, 0, c.c, sc, batch)
		e.check("GemmStridedBatched", c, gemmTol(k), 1e-5)
	}
	e.free(a, b, c)
}

var _ kernels.Device = (*Device)(nil)

// testLinearBackward checks the input gradient, and the weight and bias gradients accumulated
// onto values already there (the bias gradient in the weight gradient's epilogue), against
// the CPU device, with and without either, in every precision (BF16 forced).
func testLinearBackward(e *env) {
	defer func(v float64) { e.dev.bf16Intensity = v }(e.dev.bf16Intensity)
	e.dev.bf16Intensity = 0
	N, in, out := 11, 13, 7
	dy, x, w := e.pair(normals(21, N*out), N, out), e.pair(normals(22, N*in), N, in), e.pair(normals(23, out*in), out, in)
	for _, prec := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
		e.dev.SetGemmPrecision(prec)
		tol := precTol(prec, N)
		for _, c := range []struct{ dw, db bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
			name := fmt.Sprintf("%s LinearBackward dw=%v dbias=%v", prec, c.dw, c.db)
			dx := e.pair(normals(24, N*in), N, in) // garbage the product must overwrite
			dw, db := e.pair(normals(25, out*in), out, in), e.pair(normals(26, out), out)
			dwd, dwc, dbd, dbc := dw.d, dw.c, db.d, db.c
			if !c.dw {
				dwd, dwc = nil, nil
			}
			if !c.db {
				dbd, dbc = nil, nil
			}
			e.dev.LinearBackward(dx.d, dwd, dbd, dy.d, x.d, w.d, N, in, out)
			if bf := bf16Reference(); prec == GemmBF16 && bf != nil {
				// dx and dw; the bias gradient sums dy as the device holds it (in BF16 on a
				// GPU, in the weight gradient's epilogue), which precTol covers below.
				wantDx, wantDw := bf.New(N, in), bf.FromHost(normals(25, out*in), out, in)
				var bw *kernels.Tensor
				if c.dw {
					bw = wantDw
				}
				bf.LinearBackward(wantDx, bw, nil, dy.c, x.c, w.c, N, in, out)
				e.checkBF16(name+" dx", dx, wantDx, out)
				if c.dw {
					e.checkBF16(name+" dw", dw, wantDw, N)
				}
			}
			e.cpu.LinearBackward(dx.c, dwc, dbc, dy.c, x.c, w.c, N, in, out)
			e.check(name+" dx", dx, tol, 1e-5)
			e.check(name+" dw", dw, tol, 1e-5)
			e.check(name+" dbias", db, tol, 1e-5)
			e.free(dx, dw, db)
		}
	}
	e.dev.SetGemmPrecision(GemmFP32)
	e.free(dy, x, w)
}

// testLinearGelu checks LinearGelu's g and h (and g with h nil), and GeluLinearBackward's dh, dbiasH (onto
// values already there), dw and dbias, against the CPU device in every precision (BF16
// forced): with 16 hidden features the GELU epilogues run (the aux matrix's leading
// dimension is a multiple of 8), with 13 the device falls back to separate kernels; in BF16
// mode also with g, h and dh read by products only (StoreHalf), so that the epilogues write
// BF16 (their values are then restored from BF16 for the comparison).
func testLinearGelu(e *env) {
	defer func(v float64) { e.dev.bf16Intensity = v }(e.dev.bf16Intensity)
	e.dev.bf16Intensity = 0
	const N, C = 11, 7
	for _, H := range []int{16, 13} {
		x, w1, b1 := e.pair(normals(31, N*C), N, C), e.pair(normals(32, H*C), H, C), e.pair(normals(33, H), H)
		dy, w2 := e.pair(normals(34, N*C), N, C), e.pair(normals(35, C*H), C, H)
		for _, prec := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
			for _, halfOnly := range []bool{false, true} {
				if halfOnly && prec != GemmBF16 {
					continue
				}
				e.dev.SetGemmPrecision(prec)
				name := fmt.Sprintf("%s H=%d half-only=%v", prec, H, halfOnly)
				g, h, dh := e.pair(normals(36, N*H), N, H), e.pair(normals(37, N*H), N, H), e.pair(normals(38, N*H), N, H)
				db1, dw2, db2 := e.pair(normals(39, H), H), e.pair(normals(40, C*H), C, H), e.pair(normals(41, C), C)
				if halfOnly {
					e.dev.StoreHalf(g.d)
					e.dev.StoreHalf(h.d)
					e.dev.StoreHalf(dh.d)
				}
				e.dev.LinearGelu(g.d, h.d, x.d, w1.d, b1.d, N, C, H)
				e.cpu.LinearGelu(g.c, h.c, x.c, w1.c, b1.c, N, C, H)
				e.dev.GeluLinearBackward(dh.d, db1.d, dw2.d, db2.d, dy.d, g.d, w2.d, h.d, N, H, C)
				e.cpu.GeluLinearBackward(dh.c, db1.c, dw2.c, db2.c, dy.c, g.c, w2.c, h.c, N, H, C)
				eps := 1e-5 // and relative to the values in BF16, where dw's sums reach about 10
				if prec == GemmBF16 {
					eps = 1e-2
				}
				e.check(name+" LinearGelu h", h, precTol(prec, C), eps)
				e.check(name+" LinearGelu g", g, precTol(prec, C), eps)
				e.check(name+" GeluLinearBackward dh", dh, precTol(prec, C), eps)
				e.check(name+" GeluLinearBackward dbiasH", db1, precTol(prec, N*C), eps)
				e.check(name+" GeluLinearBackward dw", dw2, precTol(prec, N), eps)
				e.check(name+" GeluLinearBackward dbias", db2, precTol(prec, N), eps)
				// Without h (a forward no backward follows): g alone, against the CPU's g.
				g2 := e.pair(normals(42, N*H), N, H)
				if halfOnly {
					e.dev.StoreHalf(g2.d)
				}
				e.dev.LinearGelu(g2.d, nil, x.d, w1.d, b1.d, N, C, H)
				e.cpu.Copy(g2.c, g.c)
				e.check(name+" LinearGelu g without h", g2, precTol(prec, C), eps)
				e.free(g, h, dh, db1, dw2, db2, g2)
			}
		}
		e.free(x, w1, b1, dy, w2)
	}
	e.dev.SetGemmPrecision(GemmFP32)
}

// testMMATile checks mma_bf16_16816's, ldmatrix_x4's and ldmatrix_x4_trans's fragment
// layouts (mmaTileCheck): a 16x16 by 16x8 product of small integers with the fragments
// loaded by PTX's formulas, and the 16x16 by 16x16 product with each ldmatrix load of A or
// B in turn, through attention_mma_tile, against the plain products. On a GPU these are the
// tensor cores' and ldmatrix's own layouts.
func testMMATile(e *env) {
	if err := e.dev.mmaTileCheck(); err != nil {
		e.t.Fatal(err)
	}
}
