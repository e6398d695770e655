// Shared test helpers of package kernels: tolerance-aware comparison in the style of
// llm.c (|got - want| <= tol + |want|*eps, the first 5 mismatches printed), deterministic
// random test data, tensors placed at an odd offset inside guarded storage (so every test
// also exercises views), and central finite differences on float64 reference functions.
//
// Test: go test ./kernels
package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// assertClose checks got against the float64 reference want element by element with the
// tolerance tol + |want|*eps. A NaN reference requires a NaN; an infinite reference requires
// the same infinity. It reports the first 5 mismatches and a summary, and returns whether
// everything matched.
func assertClose(t testing.TB, name string, got []float32, want []float64, tol, eps float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	var (
		bad     int
		maxDiff float64
		maxAt   = -1
		lines   []string
	)
	for i, w := range want {
		g := float64(got[i])
		ok := true
		switch {
		case math.IsNaN(w):
			ok = math.IsNaN(g)
		case math.IsInf(w, 0):
			ok = g == w
		default:
			diff := math.Abs(g - w)
			ok = diff <= tol+math.Abs(w)*eps // false for a NaN got
			if math.IsNaN(diff) || diff > maxDiff {
				maxDiff, maxAt = diff, i
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
		t.Errorf("%s: %d of %d values out of tolerance (tol %g, eps %g; max |diff| %g at %d)\n%s",
			name, bad, len(want), tol, eps, maxDiff, maxAt, strings.Join(lines, "\n"))
		return false
	}
	return true
}

// assertSame checks that got and want hold bit-identical values (NaNs included).
func assertSame(t testing.TB, name string, got, want []float32) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	bad := 0
	var lines []string
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			bad++
			if len(lines) < 5 {
				lines = append(lines, fmt.Sprintf("  [%d] got %.9g want %.9g", i, got[i], want[i]))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ\n%s", name, bad, len(want), strings.Join(lines, "\n"))
		return false
	}
	return true
}

// testNormals returns n standard normal float32 values from a fixed seed.
func testNormals(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// testUniforms returns n float32 values uniform in [lo, hi) from a fixed seed.
func testUniforms(seed uint64, n int, lo, hi float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return x
}

// f64s widens a float32 slice.
func f64s(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// guardPad is the number of sentinel elements on each side of a guarded tensor; odd so that
// views start at an unaligned offset.
const guardPad = 3

// guardBits is the NaN pattern stored around guarded tensors.
const guardBits = 0x7fc0dead

// guarded returns a CPU tensor of the given shape holding data (zeros when data is nil),
// as a view at Offset guardPad inside storage whose other elements hold a sentinel NaN.
// assertGuard checks later that an operation wrote nothing outside the view.
func guarded(d *CPU, data []float32, shape ...int) *Tensor {
	n := numel(shape)
	if data != nil && len(data) != n {
		panic(fmt.Sprintf("guarded: %d values for shape %v", len(data), shape))
	}
	base := d.New(n + 2*guardPad)
	all := Host(base)
	for i := range all {
		all[i] = math.Float32frombits(guardBits)
	}
	v := base.View(guardPad, shape...)
	if data != nil {
		copy(Host(v), data)
	} else {
		clear(Host(v))
	}
	return v
}

// assertGuard checks that the storage around the guarded view x still holds the sentinel.
func assertGuard(t testing.TB, name string, x *Tensor) {
	t.Helper()
	all := x.Mem.(*cpuStorage).data
	for i, v := range all {
		if i >= x.Offset && i < x.Offset+x.Len() {
			continue
		}
		if math.Float32bits(v) != guardBits {
			t.Errorf("%s: element %d outside the view [%d, %d) was overwritten with %g",
				name, i, x.Offset, x.Offset+x.Len(), v)
			return
		}
	}
}

// fdGrad returns the central finite-difference gradient of f at x with step h, for every
// coordinate of x (x is restored afterwards).
func fdGrad(f func(x []float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f(x)
		x[i] = old - h
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// assertClose64 is assertClose for float64 values (used to check float64 references against
// finite differences).
func assertClose64(t testing.TB, name string, got, want []float64, tol, eps float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return false
	}
	bad := 0
	var lines []string
	for i := range want {
		d := math.Abs(got[i] - want[i])
		if !(d <= tol+math.Abs(want[i])*eps) {
			bad++
			if len(lines) < 5 {
				lines = append(lines, fmt.Sprintf("  [%d] got %.12g want %.12g", i, got[i], want[i]))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance (tol %g, eps %g)\n%s",
			name, bad, len(want), tol, eps, strings.Join(lines, "\n"))
		return false
	}
	return true
}

// dot64 is sum_i a[i]*b[i].
func dot64(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// threadCounts are the CPU device sizes that determinism tests compare.
var threadCounts = []int{1, 2, 7}
