// Shared test helpers of package nn: a host-side random source, random device tensors,
// parameter names, tolerance-aware comparison, and gradCheck, which compares a layer's
// analytic Backward with central finite differences of loss = sum(out ⊙ R) for a fixed
// random R.
//
// Test: go test ./nn
package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// testDev is the device every nn test runs on.
var testDev kernels.Device = kernels.NewCPU(0)

// hostRand implements Rand with math/rand on the host (test data must not depend on the
// device's generator under test elsewhere).
type hostRand struct{ r *rand.Rand }

func newHostRand(seed uint64) *hostRand { return &hostRand{rand.New(rand.NewPCG(seed, 0x5eed))} }

func (h *hostRand) Normal(t *kernels.Tensor) {
	buf := make([]float32, t.Len())
	for i := range buf {
		buf[i] = float32(h.r.NormFloat64())
	}
	t.Dev.CopyFromHost(t, buf)
}

// values returns n draws from N(0, std^2).
func (h *hostRand) values(n int, std float64) []float32 {
	buf := make([]float32, n)
	for i := range buf {
		buf[i] = float32(h.r.NormFloat64() * std)
	}
	return buf
}

// tensor returns a device tensor of N(0, std^2) draws.
func (h *hostRand) tensor(std float64, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return testDev.FromHost(h.values(n, std), shape...)
}

// toHost copies a device tensor to a new host slice.
func toHost(t *kernels.Tensor) []float32 {
	buf := make([]float32, t.Len())
	t.Dev.CopyToHost(buf, t)
	return buf
}

// to64 widens a float32 slice.
func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// checkParamNames fails unless ps are trainable parameters named want, in that order.
func checkParamNames(t *testing.T, ps []Param, want []string) {
	t.Helper()
	if len(ps) != len(want) {
		t.Fatalf("got %d params, want %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.Name != want[i] || p.G == nil {
			t.Errorf("param %d: %q (trainable %v), want %q", i, p.Name, p.G != nil, want[i])
		}
	}
}

// assertClose checks |got - want| <= atol + rtol*|want| element by element and reports the
// first 5 mismatches.
func assertClose(t testing.TB, name string, got []float32, want []float64, atol, rtol float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	bad, maxDiff := 0, 0.0
	var lines []string
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if d > maxDiff || math.IsNaN(d) {
			maxDiff = d
		}
		if !(d <= atol+rtol*math.Abs(w)) {
			bad++
			if len(lines) < 5 {
				lines = append(lines, fmt.Sprintf("  [%d] got %.7g want %.7g", i, got[i], w))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance (atol %g, rtol %g, max diff %.3g)\n%s",
			name, bad, len(want), atol, rtol, maxDiff, strings.Join(lines, "\n"))
		return false
	}
	return true
}

// gcVar is one tensor whose gradient gradCheck verifies: x is perturbed in place, grad
// returns the analytic gradient (read right after the Backward).
type gcVar struct {
	name string
	x    *kernels.Tensor
	grad func() *kernels.Tensor
}

// paramVars turns the trainable parameters into gcVars.
func paramVars(ps []Param) []gcVar {
	var vs []gcVar
	for _, p := range ps {
		if p.G == nil {
			continue
		}
		g := p.G
		vs = append(vs, gcVar{name: p.Name, x: p.W, grad: func() *kernels.Tensor { return g }})
	}
	return vs
}

// gcOpts tunes gradCheck; zero fields take the defaults in brackets.
type gcOpts struct {
	h        float64 // step [1e-2]
	atol     float64 // [1e-3]
	rtol     float64 // [2e-2]
	maxElems int     // elements checked per tensor, a random subset beyond [48]
	seed     uint64  // [1]
}

// gradCheck runs fwd, then bwd with dout = R, and compares every gradient in vars with
// the central difference (L(x+h) - L(x-h)) / 2h of L = sum(fwd() ⊙ R), accumulated in
// float64. Parameter gradients must be zero before the call (layers start that way;
// ZeroGrad otherwise) and vars must not share storage.
func gradCheck(t testing.TB, fwd func() *kernels.Tensor, bwd func(dout *kernels.Tensor), vars []gcVar, o gcOpts) {
	t.Helper()
	if o.h == 0 {
		o.h = 1e-2
	}
	if o.atol == 0 {
		o.atol = 1e-3
	}
	if o.rtol == 0 {
		o.rtol = 2e-2
	}
	if o.maxElems == 0 {
		o.maxElems = 48
	}
	if o.seed == 0 {
		o.seed = 1
	}
	rng := newHostRand(o.seed)
	out := fwd()
	R := rng.values(out.Len(), 1)
	bwd(testDev.FromHost(R, out.Shape...))
	analytic := make([][]float32, len(vars))
	for i, v := range vars {
		analytic[i] = toHost(v.grad())
	}
	loss := func() float64 {
		y := toHost(fwd())
		s := 0.0
		for i, v := range y {
			s += float64(v) * float64(R[i])
		}
		return s
	}
	for vi, v := range vars {
		x := toHost(v.x)
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
		if len(idx) > o.maxElems {
			rng.r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:o.maxElems]
		}
		got := make([]float32, len(idx))
		want := make([]float64, len(idx))
		for k, i := range idx {
			orig := x[i]
			x[i] = orig + float32(o.h)
			hp := float64(x[i]) - float64(orig) // the step actually taken in float32
			testDev.CopyFromHost(v.x, x)
			fp := loss()
			x[i] = orig - float32(o.h)
			hm := float64(orig) - float64(x[i])
			testDev.CopyFromHost(v.x, x)
			fm := loss()
			x[i] = orig
			testDev.CopyFromHost(v.x, x)
			want[k] = (fp - fm) / (hp + hm)
			got[k] = analytic[vi][i]
		}
		// Tolerance relative to the tensor's gradient scale, so tiny entries are not
		// held to a relative bound that float32 cannot meet.
		scale := 0.0
		for _, w := range want {
			scale = math.Max(scale, math.Abs(w))
		}
		assertClose(t, "grad "+v.name, got, want, o.atol+o.rtol*0.1*scale, o.rtol)
	}
}

// failRecorder is a testing.TB that records failures instead of reporting them.
type failRecorder struct {
	testing.TB
	failed bool
}

func (f *failRecorder) Errorf(string, ...any) { f.failed = true }

// gradCheck must notice a wrong gradient: here Linear's dx is scaled by 1.05.
func TestGradCheckCatchesWrongGradient(t *testing.T) {
	r := newHostRand(9)
	l := NewLinear(testDev, r, 12, 5, true)
	x := r.tensor(1, 2, 7, 12)
	var dx *kernels.Tensor
	rec := &failRecorder{TB: t}
	gradCheck(rec, func() *kernels.Tensor { return l.Forward(x) },
		func(d *kernels.Tensor) { dx = l.Backward(d); testDev.Scale(dx, 1.05) },
		[]gcVar{{"x", x, func() *kernels.Tensor { return dx }}}, gcOpts{})
	if !rec.failed {
		t.Fatal("gradCheck accepted a gradient that is 5% off")
	}
}
