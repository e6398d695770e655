// Test helpers of package cuda: pairs of tensors holding the same data on the CPU device
// (the reference) and on a CUDA device (by default the emulated one), the CUDA tensor placed
// at an odd offset inside storage guarded by NaN sentinels, and comparison with llm.c's
// tolerance rule |got - want| <= tol + |want|*eps (first 5 mismatches printed).
//
// Test: go test ./kernels/cuda
package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// Tolerances of style.md for float32 results.
const (
	tol32 = 1e-5
	eps32 = 1e-5
)

// assertClose checks got against want with tol + |want|*eps; NaN wants NaN and an infinity
// the same infinity.
func assertClose(t testing.TB, name string, got, want []float32, tol, eps float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	var bad int
	var maxDiff float64
	var lines []string
	for i := range want {
		w, g := float64(want[i]), float64(got[i])
		var ok bool
		switch {
		case math.IsNaN(w):
			ok = math.IsNaN(g)
		case math.IsInf(w, 0):
			ok = g == w
		default:
			diff := math.Abs(g - w)
			ok = diff <= tol+math.Abs(w)*eps
			if !(diff <= maxDiff) {
				maxDiff = diff
			}
		}
		if !ok {
			bad++
			if len(lines) < 5 {
				lines = append(lines, fmt.Sprintf("  [%d] got %.9g want %.9g", i, g, w))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance (tol %g, eps %g; max |diff| %g)\n%s",
			name, bad, len(want), tol, eps, maxDiff, strings.Join(lines, "\n"))
		return false
	}
	return true
}

func normals(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0xc0da))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func uniforms(seed uint64, n int, lo, hi float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0xc0da))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return x
}

// guardPad is the number of sentinel elements on each side of a CUDA test tensor (odd, so
// that every tensor starts at an unaligned address).
const guardPad = 3

var guardValue = math.Float32frombits(0x7fc0dead)

// env runs an operation on the CPU device and on a CUDA device.
type env struct {
	t   *testing.T
	cpu *kernels.CPU
	dev *Device
}

func newEnv(t *testing.T, dev *Device) *env {
	return &env{t: t, cpu: kernels.NewCPU(2), dev: dev}
}

// pair is one tensor on both devices; base is the guarded storage around d, pad the guard's
// length on each side.
type pair struct {
	c, d, base *kernels.Tensor
	pad        int
}

// pair returns data (zeros when nil) on both devices, d at an unaligned address.
func (e *env) pair(data []float32, shape ...int) pair { return e.pairPad(guardPad, data, shape...) }

// alignedPair is pair with d 32-byte aligned (guards of 8 elements in a 256-byte aligned
// block), for the kernels' vector paths: its FP32 values and their BF16 copy 16-byte aligned.
func (e *env) alignedPair(data []float32, shape ...int) pair { return e.pairPad(8, data, shape...) }

func (e *env) pairPad(pad int, data []float32, shape ...int) pair {
	n := 1
	for _, s := range shape {
		n *= s
	}
	if data == nil {
		data = make([]float32, n)
	}
	if len(data) != n {
		panic(fmt.Sprintf("pair: %d values for shape %v", len(data), shape))
	}
	all := make([]float32, n+2*pad)
	for i := range all {
		all[i] = guardValue
	}
	copy(all[pad:], data)
	base := e.dev.FromHost(all, n+2*pad)
	return pair{c: e.cpu.FromHost(data, shape...), d: base.View(pad, shape...), base: base, pad: pad}
}

// host returns the CUDA tensor's values.
func (e *env) host(p pair) []float32 {
	out := make([]float32, p.d.Len())
	e.dev.CopyToHost(out, p.d)
	return out
}

// check compares the CUDA tensor with the CPU one and checks its guards.
func (e *env) check(name string, p pair, tol, eps float64) {
	e.t.Helper()
	assertClose(e.t, name, e.host(p), kernels.Host(p.c), tol, eps)
	e.checkGuard(name, p)
}

// same requires bit-identical values.
func (e *env) same(name string, p pair) {
	e.t.Helper()
	got, want := e.host(p), kernels.Host(p.c)
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad < 5 {
				e.t.Errorf("%s: [%d] got %.9g want %.9g", name, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		e.t.Errorf("%s: %d of %d values differ", name, bad, len(want))
	}
	e.checkGuard(name, p)
}

func (e *env) checkGuard(name string, p pair) {
	e.t.Helper()
	all := make([]float32, p.base.Len())
	e.dev.CopyToHost(all, p.base)
	n := p.d.Len()
	for i, v := range all {
		if i >= p.pad && i < p.pad+n {
			continue
		}
		if math.Float32bits(v) != math.Float32bits(guardValue) {
			e.t.Errorf("%s: element %d of the guard around the tensor was overwritten with %g", name, i, v)
			return
		}
	}
}

// free releases the CUDA side of pairs.
func (e *env) free(ps ...pair) {
	for _, p := range ps {
		e.dev.Free(p.base)
	}
}

// kernelsAdamW returns the hyper-parameters of AdamW step `step` used by the tests.
func kernelsAdamW(step int) kernels.AdamWParams {
	return kernels.AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: step}
}
