// Tests of the CPU masked mean pooling: forward and backward against float64 references
// with a mask (including a row with no valid token and NaNs under masked positions) and
// without one, the reference gradient against central differences, guarded views, and
// identical results across thread counts.
//
// Test: go test ./kernels -run MeanPool
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func refMeanPool(x, m []float64, B, T, C int) []float64 {
	out := make([]float64, B*C)
	for b := 0; b < B; b++ {
		den := 0.0
		for t := 0; t < T; t++ {
			w := 1.0
			if m != nil {
				w = m[b*T+t]
			}
			den += w
			if w == 0 {
				continue
			}
			for c := 0; c < C; c++ {
				out[b*C+c] += w * x[(b*T+t)*C+c]
			}
		}
		for c := 0; c < C; c++ {
			if den == 0 {
				out[b*C+c] = 0
			} else {
				out[b*C+c] /= den
			}
		}
	}
	return out
}

func refMeanPoolBackward(g, m []float64, B, T, C int) []float64 {
	dx := make([]float64, B*T*C)
	for b := 0; b < B; b++ {
		den := 0.0
		for t := 0; t < T; t++ {
			if m == nil {
				den++
			} else {
				den += m[b*T+t]
			}
		}
		if den == 0 {
			continue
		}
		for t := 0; t < T; t++ {
			w := 1.0
			if m != nil {
				w = m[b*T+t]
			}
			for c := 0; c < C; c++ {
				dx[(b*T+t)*C+c] = w * g[b*C+c] / den
			}
		}
	}
	return dx
}

// poolMask is a 0/1 mask (B,T) with row 1 fully masked and varying lengths elsewhere.
func poolMask(B, T int) []float32 {
	m := make([]float32, B*T)
	for b := 0; b < B; b++ {
		valid := T - b%T
		if b == 1 {
			valid = 0
		}
		for t := 0; t < valid; t++ {
			m[b*T+t] = 1
		}
	}
	return m
}

func TestMeanPoolReferenceFiniteDifferences(t *testing.T) {
	B, T, C := 3, 4, 2
	x, g, m := f64s(testNormals(101, B*T*C)), f64s(testNormals(102, B*C)), f64s(poolMask(B, T))
	for _, mask := range [][]float64{m, nil} {
		fd := fdGrad(func(v []float64) float64 { return dot64(refMeanPool(v, mask, B, T, C), g) }, x, 1e-5)
		assertClose64(t, fmt.Sprintf("mean pool dx mask=%v", mask != nil), refMeanPoolBackward(g, mask, B, T, C), fd, 1e-9, 1e-7)
	}
}

func TestMeanPoolCPU(t *testing.T) {
	for _, sz := range [][3]int{{3, 5, 67}, {4, 301, 67}} {
		B, T, C := sz[0], sz[1], sz[2]
		x, g, m := testNormals(103, B*T*C), testNormals(104, B*C), poolMask(B, T)
		// NaNs under masked tokens must not leak into the pooled features.
		xm := append([]float32(nil), x...)
		for i := range xm {
			if m[i/C] == 0 {
				xm[i] = float32(math.NaN())
			}
		}
		for _, masked := range []bool{true, false} {
			var mr []float64
			xin := x
			if masked {
				mr, xin = f64s(m), xm
			}
			wantY := refMeanPool(f64s(x), mr, B, T, C)
			wantDX := refMeanPoolBackward(f64s(g), mr, B, T, C)
			var first []float32
			for _, th := range threadCounts {
				d := NewCPU(th)
				tag := fmt.Sprintf("B=%d T=%d C=%d mask=%v threads=%d", B, T, C, masked, th)
				var tm *Tensor
				if masked {
					tm = guarded(d, m, B, T)
				}
				out, dx := guarded(d, nil, B, C), guarded(d, testNormals(105, B*T*C), B, T, C)
				d.MeanPoolForward(out, guarded(d, xin, B, T, C), tm, B, T, C)
				assertClose(t, "MeanPoolForward "+tag, Host(out), wantY, 1e-6, 1e-5)
				d.MeanPoolBackward(dx, guarded(d, g, B, C), tm, B, T, C)
				assertClose(t, "MeanPoolBackward "+tag, Host(dx), wantDX, 1e-7, 1e-6)
				assertGuard(t, tag, out)
				assertGuard(t, tag, dx)
				if first == nil {
					first = append([]float32(nil), Host(out)...)
				} else {
					assertSame(t, "MeanPoolForward deterministic "+tag, Host(out), first)
				}
			}
		}
	}
}
