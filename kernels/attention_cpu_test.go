// Tests of the CPU attention against a plain float64 attention that materialises the
// softmax, forward and backward, and of the backward against central finite differences
// of the loss sum(out ⊙ R) computed with that reference.
//
// Test: go test ./kernels -run Attention -v
package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attnCase is one attention test configuration. masked[b] is how many of the textLen
// text tokens at the start of the sequence of batch b are padding (key bias -Inf); -1
// masks every key of the batch. A nil masked means no keyBias at all.
type attnCase struct {
	name         string
	B, T, NH, HS int
	textLen      int
	masked       []int
	finiteBias   bool // also give kept keys small non-zero biases
	fdSample     int  // finite-difference check on this many qkv entries; 0 checks all
	threads      []int
}

func TestAttention(t *testing.T) {
	cases := []attnCase{
		{name: "B2T37NH3HS13", B: 2, T: 37, NH: 3, HS: 13, fdSample: 1000, threads: []int{1, 3}},
		{name: "B2T37NH3HS13/textmask", B: 2, T: 37, NH: 3, HS: 13, textLen: 8, masked: []int{2, 7},
			threads: []int{1, 4}},
		{name: "B3T37NH3HS13/allmasked", B: 3, T: 37, NH: 3, HS: 13, textLen: 8, masked: []int{0, 5, -1},
			threads: []int{2, 16}},
		{name: "B2T37NH2HS13/finitebias", B: 2, T: 37, NH: 2, HS: 13, textLen: 6, masked: []int{3, 1},
			finiteBias: true, fdSample: 1000, threads: []int{1, 7}},
		{name: "B2T1NH2HS5", B: 2, T: 1, NH: 2, HS: 5, threads: []int{1, 8}},
		{name: "B2T1NH2HS5/allmasked", B: 2, T: 1, NH: 2, HS: 5, textLen: 1, masked: []int{0, -1},
			threads: []int{1, 8}},
		{name: "B1T70NH2HS64/textmask", B: 1, T: 70, NH: 2, HS: 64, textLen: 10, masked: []int{4},
			fdSample: 300, threads: []int{1, 5}},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) { attnRunCase(t, c, uint64(ci)+1) })
	}
}

func attnRunCase(t *testing.T, c attnCase, seed uint64) {
	B, T, NH, HS := c.B, c.T, c.NH, c.HS
	C := NH * HS
	rng := rand.New(rand.NewPCG(seed, 0xa77e))
	qkv, R, bias := attnInputs(c, rng) // R: dout, and the weights of the loss sum(out ⊙ R)

	x64, r64, bias64 := attnF64(qkv), attnF64(R), attnF64(bias)
	wantOut, wantLSE, wantDX := attnRef(x64, bias64, r64, B, T, NH, HS)
	fdIdx, fdWant := attnFiniteDiff(x64, bias64, r64, B, T, NH, HS, c.fdSample, rng)
	if !attnClose(t, "reference dqkv vs finite differences", attnF32(attnPick(wantDX, fdIdx)), fdWant, 1e-6, 1e-6) {
		t.Fatal("the float64 reference backward disagrees with finite differences")
	}
	// A batch whose keys are all masked: every query of it has no key left, a zero output
	// and the finite lse sentinel in place of the reference's log(0).
	allMasked := func(b int) bool { return c.masked != nil && c.masked[b] < 0 }
	for b := range B {
		if allMasked(b) {
			for i := range NH * T {
				wantLSE[b*NH*T+i] = attnMaskedLSE
			}
		}
	}

	for _, threads := range c.threads {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			d := NewCPU(threads)
			g := &attnGuard{d: d}
			tQKV := g.tensor(qkv, B, T, 3, NH, HS)
			tR := g.tensor(R, B, T, NH, HS)
			var tBias *Tensor
			if bias != nil {
				tBias = g.tensor(bias, B, T)
			}
			tOut := g.tensor(attnNaNs(B*T*C), B, T, NH, HS)
			tLSE := g.tensor(attnNaNs(B*NH*T), B, NH, T)
			tDX := g.tensor(attnNaNs(B*T*3*C), B, T, 3, NH, HS)

			d.AttentionForward(tOut, tLSE, tQKV, tBias, B, T, NH, HS)
			attnClose(t, "out", Host(tOut), wantOut, 1e-5, 1e-4)
			attnClose(t, "lse", Host(tLSE), wantLSE, 1e-5, 1e-5)

			d.AttentionBackward(tDX, tR, tOut, tLSE, tQKV, tBias, B, T, NH, HS)
			gotDX := Host(tDX)
			attnClose(t, "dqkv vs reference", gotDX, wantDX, 1e-4, 1e-3)
			attnClose(t, "dqkv vs finite differences", attnPick(gotDX, fdIdx), fdWant, 1e-4, 1e-3)
			for b := range B {
				if !allMasked(b) {
					continue
				}
				for i, v := range gotDX[b*T*3*C : (b+1)*T*3*C] {
					if v != 0 {
						t.Fatalf("dqkv[%d] = %v in a fully masked batch, want 0", b*T*3*C+i, v)
					}
				}
			}
			g.check(t)
		})
	}
}

// attnInputs draws a case's qkv (N(0, 1.5^2)), dout (N(0, 1)) and key bias (nil without
// c.masked: c.masked[b] padding keys at the end of sample b's text, all its keys where -1,
// and with c.finiteBias small negative biases on the others).
func attnInputs(c attnCase, rng *rand.Rand) (qkv, dout, bias []float32) {
	B, T, C := c.B, c.T, c.NH*c.HS
	qkv = make([]float32, B*T*3*C)
	for i := range qkv {
		qkv[i] = float32(1.5 * rng.NormFloat64())
	}
	dout = make([]float32, B*T*C)
	for i := range dout {
		dout[i] = float32(rng.NormFloat64())
	}
	if c.masked != nil {
		bias = make([]float32, B*T)
		for b := range B {
			for j := range T {
				if c.finiteBias {
					bias[b*T+j] = float32(-0.5 * rng.Float64())
				}
				if c.masked[b] < 0 || (j < c.textLen && j >= c.textLen-c.masked[b]) {
					bias[b*T+j] = float32(math.Inf(-1))
				}
			}
		}
	}
	return qkv, dout, bias
}

// ---- float64 reference ----

// attnRef is plain attention in float64 with the softmax materialised: out (B,T,NH,HS),
// lse (B,NH,T) (-Inf for a query with no key) and dqkv for dout = R.
func attnRef(x, bias, R []float64, B, T, NH, HS int) (out, lse, dx []float64) {
	C := NH * HS
	out, lse, dx = make([]float64, B*T*C), make([]float64, B*NH*T), make([]float64, B*T*3*C)
	for b := range B {
		for h := range NH {
			o, l, p := attnRefHead(x, bias, b, h, T, NH, HS)
			copy(lse[(b*NH+h)*T:], l)
			for i := range T {
				copy(out[(b*T+i)*C+h*HS:][:HS], o[i*HS:])
			}
			attnRefHeadBackward(dx, R, x, o, p, b, h, T, NH, HS)
		}
	}
	return out, lse, dx
}

// attnRefHead returns head (b,h)'s output o (T,HS), lse (T) and probabilities p (T,T).
func attnRefHead(x, bias []float64, b, h, T, NH, HS int) (o, lse, p []float64) {
	C := NH * HS
	q, k, v := make([]float64, T*HS), make([]float64, T*HS), make([]float64, T*HS)
	for t := range T {
		base := (b*T+t)*3*C + h*HS
		copy(q[t*HS:(t+1)*HS], x[base:])
		copy(k[t*HS:(t+1)*HS], x[base+C:])
		copy(v[t*HS:(t+1)*HS], x[base+2*C:])
	}
	scale := 1 / math.Sqrt(float64(HS))
	o, lse, p = make([]float64, T*HS), make([]float64, T), make([]float64, T*T)
	for i := range T {
		s := p[i*T : (i+1)*T]
		m := math.Inf(-1)
		for j := range T {
			var dot float64
			for c, qc := range q[i*HS : (i+1)*HS] {
				dot += qc * k[j*HS+c]
			}
			s[j] = dot * scale
			if bias != nil {
				s[j] += bias[b*T+j]
			}
			m = max(m, s[j])
		}
		if math.IsInf(m, -1) {
			lse[i] = m // no key: p and o are zero
			clear(s)
			continue
		}
		var sum float64
		for _, sj := range s {
			sum += math.Exp(sj - m)
		}
		lse[i] = m + math.Log(sum)
		oi := o[i*HS : (i+1)*HS]
		for j, sj := range s {
			s[j] = math.Exp(sj - lse[i])
			for c, vc := range v[j*HS : (j+1)*HS] {
				oi[c] += s[j] * vc
			}
		}
	}
	return o, lse, p
}

// attnRefHeadBackward writes head (b,h)'s part of dx from dout = R, its output o and
// probabilities p.
func attnRefHeadBackward(dx, R, x, o, p []float64, b, h, T, NH, HS int) {
	C := NH * HS
	at := func(t, part, c int) float64 { return x[((b*T+t)*3+part)*C+h*HS+c] }
	dAt := func(t, part, c int) *float64 { return &dx[((b*T+t)*3+part)*C+h*HS+c] }
	dO := func(t, c int) float64 { return R[(b*T+t)*C+h*HS+c] }
	scale := 1 / math.Sqrt(float64(HS))
	for i := range T {
		var D float64
		for c := range HS {
			D += dO(i, c) * o[i*HS+c]
		}
		for j := range T {
			var dp float64
			for c := range HS {
				dp += dO(i, c) * at(j, 2, c)
				*dAt(j, 2, c) += p[i*T+j] * dO(i, c)
			}
			ds := p[i*T+j] * (dp - D)
			for c := range HS {
				*dAt(i, 0, c) += scale * ds * at(j, 1, c)
				*dAt(j, 1, c) += scale * ds * at(i, 0, c)
			}
		}
	}
}

// attnFiniteDiff returns the indices of qkv it checked (all, or sample random ones) and
// the central differences (L(x+e)-L(x-e))/2e of L = sum(out ⊙ R) there. An entry of qkv
// only affects its own head, so only that head is recomputed.
func attnFiniteDiff(x, bias, R []float64, B, T, NH, HS, sample int, rng *rand.Rand) (idx []int, fd []float64) {
	C := NH * HS
	if sample <= 0 {
		idx = make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
	} else {
		idx = make([]int, sample)
		for i := range idx {
			idx[i] = rng.IntN(len(x))
		}
	}
	loss := func(b, h int) float64 {
		o, _, _ := attnRefHead(x, bias, b, h, T, NH, HS)
		var l float64
		for i := range T {
			for c := range HS {
				l += o[i*HS+c] * R[(b*T+i)*C+h*HS+c]
			}
		}
		return l
	}
	const eps = 1e-4
	fd = make([]float64, len(idx))
	for n, i := range idx {
		b, h := i/(T*3*C), (i%C)/HS
		x0 := x[i]
		x[i] = x0 + eps
		lp := loss(b, h)
		x[i] = x0 - eps
		lm := loss(b, h)
		x[i] = x0
		fd[n] = (lp - lm) / (2 * eps)
	}
	return idx, fd
}

// ---- helpers ----

// attnClose reports whether every got[i] is within tol + rel*|want[i]| of want[i]; it
// logs the first 5 mismatches and the largest difference, and marks t failed on any.
func attnClose(t *testing.T, what string, got []float32, want []float64, tol, rel float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return false
	}
	bad, maxDiff := 0, 0.0
	for i, w := range want {
		g := float64(got[i])
		diff := math.Abs(g - w)
		if math.IsNaN(diff) {
			diff = math.Inf(1)
		}
		maxDiff = max(maxDiff, diff)
		if diff <= tol+rel*math.Abs(w) {
			continue
		}
		if bad < 5 {
			t.Errorf("%s: [%d] = %.7g, want %.7g (diff %.3g)", what, i, g, w, diff)
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values off, max diff %.3g", what, bad, len(want), maxDiff)
		return false
	}
	t.Logf("%s: OK, %d values, max diff %.3g", what, len(want), maxDiff)
	return true
}

// attnGuard makes tensors as views at an Offset inside larger buffers whose margins hold
// a known value, so a test can check that an operation stays inside its tensors.
type attnGuard struct {
	d    *CPU
	bufs []*Tensor
}

const attnGuardValue = 12345

func (g *attnGuard) tensor(data []float32, shape ...int) *Tensor {
	const margin = 11
	buf := g.d.New(len(data) + 2*margin)
	g.d.Fill(buf, attnGuardValue)
	v := buf.View(margin, shape...)
	copy(Host(v), data)
	g.bufs = append(g.bufs, buf)
	return v
}

func (g *attnGuard) check(t *testing.T) {
	t.Helper()
	for _, buf := range g.bufs {
		h := Host(buf)
		for _, i := range []int{0, 10, len(h) - 11, len(h) - 1} {
			if h[i] != attnGuardValue {
				t.Fatalf("write outside a view: margin element %d of %v is %v", i, buf, h[i])
			}
		}
	}
}

func attnF64(x []float32) []float64 {
	if x == nil {
		return nil
	}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func attnF32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func attnPick[E any](x []E, idx []int) []E {
	y := make([]E, len(idx))
	for n, i := range idx {
		y[n] = x[i]
	}
	return y
}

func attnNaNs(n int) []float32 {
	y := make([]float32, n)
	for i := range y {
		y[i] = float32(math.NaN())
	}
	return y
}

// TestAttentionExp checks attnExpRow against math.Exp over the range the softmax uses.
func TestAttentionExp(t *testing.T) {
	const n = 200001
	row, want := make([]float32, n), make([]float64, n)
	var wantSum float64
	for i := range row {
		row[i] = float32(-86 + 166*float64(i)/(n-1))
		want[i] = math.Exp(float64(row[i] - 0.5)) // the argument attnExpRow sees, rounded to float32
		wantSum += want[i]
	}
	sum := attnExpRow(row, 0.5)
	worst := 0.0
	for i, w := range want {
		worst = max(worst, math.Abs(float64(row[i])-w)/w)
	}
	if worst > 3e-7 {
		t.Errorf("attnExpRow: worst relative error %.3g, want <= 3e-7", worst)
	}
	if math.Abs(float64(sum)-wantSum) > 1e-5*wantSum {
		t.Errorf("attnExpRow: sum %v, want %v", sum, wantSum)
	}
	edge := []float32{-200, float32(math.Inf(-1)), 0, 1000, float32(math.NaN())}
	attnExpRow(edge, 0)
	if edge[0] != 0 || edge[1] != 0 || edge[2] != 1 || edge[3] < 1e38 || !math.IsNaN(float64(edge[4])) {
		t.Errorf("attnExpRow(-200, -Inf, 0, 1000, NaN) = %v", edge)
	}
}

// TestAttentionExpEdges runs attnExpRow's edge cases at every position of rows of 1 to 40
// elements, so that both the vector loop (multiples of 8, where the CPU has one) and the
// element-wise tail see them.
func TestAttentionExpEdges(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct{ in, want float32 }{
		{-200, 0}, {-inf, 0}, {-87.5, 0}, {0, 1}, {1000, 0}, {nan, nan}, {-86.5, float32(math.Exp(-86.5))},
		{88, float32(math.Exp(88))}, {-3.25, float32(math.Exp(-3.25))}, {10.5, float32(math.Exp(10.5))},
	}
	for n := 1; n <= 40; n++ {
		for pos := 0; pos < n; pos++ {
			for _, c := range cases {
				row := make([]float32, n)
				for i := range row {
					row[i] = float32(i%5) - 2
				}
				row[pos] = c.in
				var want float64
				for i, v := range row {
					w := math.Exp(float64(v))
					if i == pos {
						w = float64(c.want)
					}
					want += w
				}
				sum := attnExpRow(row, 0)
				got := row[pos]
				switch {
				case c.in == 1000:
					if got < 1e38 || math.IsInf(float64(got), 0) {
						t.Fatalf("n=%d pos=%d: exp(1000) = %v, want saturation near MaxFloat32", n, pos, got)
					}
					continue
				case math.IsNaN(float64(c.want)):
					if !math.IsNaN(float64(got)) || !math.IsNaN(float64(sum)) {
						t.Fatalf("n=%d pos=%d: exp(NaN) = %v, sum %v, want NaN", n, pos, got, sum)
					}
					continue
				case c.want == 0:
					if got != 0 {
						t.Fatalf("n=%d pos=%d: exp(%v) = %v, want 0", n, pos, c.in, got)
					}
				case math.Abs(float64(got-c.want)) > 3e-7*float64(c.want):
					t.Fatalf("n=%d pos=%d: exp(%v) = %v, want %v", n, pos, c.in, got, c.want)
				}
				if math.Abs(float64(sum)-want) > 1e-6*want {
					t.Fatalf("n=%d pos=%d in=%v: sum %v, want %v", n, pos, c.in, sum, want)
				}
			}
		}
	}
}

// TestAttentionBF16 runs attention in BF16 mode (SetGemmBF16): forward and backward bit for
// bit as with every product replaced by the reference BF16 product (gemmBF16Ref: inputs
// rounded to BF16, VDPBF16PS's sums), on 1 and 3 threads; and close to, but not equal to,
// FP32 attention (so the products do run in BF16). The cases have masked keys, key biases,
// several query blocks, and more keys than a k block of the kernel (kc), so P V sums over
// two blocks.
func TestAttentionBF16(t *testing.T) {
	needBF16(t)
	for ci, c := range []attnCase{
		{name: "B2T37NH3HS13/textmask", B: 2, T: 37, NH: 3, HS: 13, textLen: 8, masked: []int{2, 7}, finiteBias: true},
		{name: "B1T70NH2HS64", B: 1, T: 70, NH: 2, HS: 64},
		{name: "B1T401NH1HS16", B: 1, T: 401, NH: 1, HS: 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			B, T, NH, HS := c.B, c.T, c.NH, c.HS
			C := NH * HS
			qkv, dout, bias := attnInputs(c, rand.New(rand.NewPCG(uint64(ci)+7, 0xbf16)))
			// run returns out, lse and dqkv on d.
			run := func(d *CPU) (out, lse, dx []float32) {
				g := &attnGuard{d: d}
				tQKV, tDO := g.tensor(qkv, B, T, 3, NH, HS), g.tensor(dout, B, T, NH, HS)
				var tBias *Tensor
				if bias != nil {
					tBias = g.tensor(bias, B, T)
				}
				tOut, tLSE := g.tensor(attnNaNs(B*T*C), B, T, NH, HS), g.tensor(attnNaNs(B*NH*T), B, NH, T)
				tDX := g.tensor(attnNaNs(B*T*3*C), B, T, 3, NH, HS)
				d.AttentionForward(tOut, tLSE, tQKV, tBias, B, T, NH, HS)
				d.AttentionBackward(tDX, tDO, tOut, tLSE, tQKV, tBias, B, T, NH, HS)
				g.check(t)
				return Host(tOut), Host(tLSE), Host(tDX)
			}
			bf16 := func(threads int) *CPU {
				d := NewCPU(threads)
				if err := d.SetGemmBF16(true); err != nil {
					t.Fatal(err)
				}
				return d
			}
			// The reference: every product gemmBF16Ref (put back even if the run fails).
			refRun := func() (out, lse, dx []float32) {
				defer func(asm attnProduct) { attnProductBF16 = asm }(attnProductBF16)
				attnProductBF16 = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
					b []float32, ldb int, beta float32, c []float32, ldc int) {
					gemmBF16Ref(bf16GemmKernel.kc, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
				}
				return run(bf16(1))
			}
			wantOut, wantLSE, wantDX := refRun()
			for _, threads := range []int{1, 3} {
				out, lse, dx := run(bf16(threads))
				name := fmt.Sprintf("%d threads", threads)
				sameBits(t, name+"/out", out, wantOut)
				sameBits(t, name+"/lse", lse, wantLSE)
				sameBits(t, name+"/dqkv", dx, wantDX)
			}
			f32Out, _, f32DX := run(NewCPU(1))
			for _, v := range []struct {
				what      string
				got, want []float32
			}{{"out", wantOut, f32Out}, {"dqkv", wantDX, f32DX}} {
				differ, maxDiff, maxAbs := 0, 0.0, 0.0
				for i, w := range v.want {
					if v.got[i] != w {
						differ++
					}
					maxDiff = math.Max(maxDiff, math.Abs(float64(v.got[i]-w)))
					maxAbs = math.Max(maxAbs, math.Abs(float64(w)))
				}
				t.Logf("%s: %d of %d values differ from FP32 attention's, by up to %.3g (values up to %.3g)", v.what, differ, len(v.want), maxDiff, maxAbs)
				if differ == 0 || maxDiff > 0.05*maxAbs {
					t.Errorf("%s: %d values differ from FP32 attention's, by up to %.3g of %.3g (want some, within 5%%)", v.what, differ, maxDiff, maxAbs)
				}
			}
		})
	}
}
