// Tests of the CPU elementwise operations against float64 references, on odd sizes, on
// guarded views (Offset != 0), with aliased outputs, and across thread counts.
//
// Test: go test ./kernels -run 'Elementwise|AddRowScaled|Bias'
package kernels

import (
	"fmt"
	"testing"
)

// elemSizes are (rows, cols) pairs: one small, one large enough to split over threads.
var elemSizes = [][2]int{{37, 67}, {601, 67}}

func TestElementwiseBinary(t *testing.T) {
	for _, sz := range elemSizes {
		n := sz[0] * sz[1]
		a, b := testNormals(1, n), testNormals(2, n)
		for _, th := range threadCounts {
			d := NewCPU(th)
			name := fmt.Sprintf("n=%d threads=%d", n, th)
			ta, tb, out := guarded(d, a, n), guarded(d, b, n), guarded(d, nil, n)

			want := make([]float64, n)
			d.Add(out, ta, tb)
			for i := range want {
				want[i] = float64(a[i]) + float64(b[i])
			}
			assertClose(t, "Add "+name, Host(out), want, 1e-6, 1e-6)

			d.Mul(out, ta, tb)
			for i := range want {
				want[i] = float64(a[i]) * float64(b[i])
			}
			assertClose(t, "Mul "+name, Host(out), want, 1e-6, 1e-6)

			d.Axpby(out, 0.75, ta, -1.5, tb)
			for i := range want {
				want[i] = 0.75*float64(a[i]) - 1.5*float64(b[i])
			}
			assertClose(t, "Axpby "+name, Host(out), want, 1e-6, 1e-6)

			// Aliased outputs: out is a (Add) and y (Axpby).
			y := guarded(d, b, n)
			d.Axpby(y, 2, ta, 0.5, y)
			for i := range want {
				want[i] = 2*float64(a[i]) + 0.5*float64(b[i])
			}
			assertClose(t, "Axpby aliased "+name, Host(y), want, 1e-6, 1e-6)
			x := guarded(d, a, n)
			d.Add(x, x, tb)
			for i := range want {
				want[i] = float64(a[i]) + float64(b[i])
			}
			assertClose(t, "Add aliased "+name, Host(x), want, 1e-6, 1e-6)

			y = guarded(d, b, n)
			d.Axpy(y, -0.25, ta)
			for i := range want {
				want[i] = float64(b[i]) - 0.25*float64(a[i])
			}
			assertClose(t, "Axpy "+name, Host(y), want, 1e-6, 1e-6)

			d.Scale(y, 3)
			for i := range want {
				want[i] *= 3
			}
			assertClose(t, "Scale "+name, Host(y), want, 1e-6, 1e-6)

			for _, g := range []*Tensor{ta, tb, out, x, y} {
				assertGuard(t, name, g)
			}
		}
	}
}

func TestAddRowScaled(t *testing.T) {
	for _, sz := range elemSizes {
		rows, cols := sz[0], sz[1]
		x, y, s := testNormals(3, rows*cols), testNormals(4, rows*cols), testUniforms(5, rows, 0, 1)
		d := NewCPU(4)
		out := guarded(d, nil, rows, cols)
		d.AddRowScaled(out, guarded(d, x, rows, cols), guarded(d, s, rows), guarded(d, y, rows, cols), rows, cols)
		want := make([]float64, rows*cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := r*cols + c
				want[i] = float64(x[i]) + float64(s[r])*float64(y[i])
			}
		}
		assertClose(t, fmt.Sprintf("AddRowScaled %dx%d", rows, cols), Host(out), want, 1e-6, 1e-6)
		assertGuard(t, "AddRowScaled", out)
	}
}

func TestAddBiasAndBackward(t *testing.T) {
	for _, sz := range elemSizes {
		N, C := sz[0], sz[1]
		x, bias, dout := testNormals(6, N*C), testNormals(7, C), testNormals(8, N*C)
		init := testNormals(9, C)
		var first []float32
		for _, th := range threadCounts {
			d := NewCPU(th)
			name := fmt.Sprintf("N=%d C=%d threads=%d", N, C, th)
			// In place: out aliases inp.
			tx := guarded(d, x, N, C)
			d.AddBias(tx, tx, guarded(d, bias, C), N, C)
			want := make([]float64, N*C)
			for i := range want {
				want[i] = float64(x[i]) + float64(bias[i%C])
			}
			assertClose(t, "AddBias "+name, Host(tx), want, 1e-6, 1e-6)
			assertGuard(t, "AddBias", tx)

			// BiasBackward accumulates into dbias; its adjoint check: d/dbias of
			// sum(dout ⊙ (x + bias)) is sum_n dout.
			db := guarded(d, init, C)
			d.BiasBackward(db, guarded(d, dout, N, C), N, C)
			wantDB := f64s(init)
			fwd := func(b []float64) float64 {
				s := 0.0
				for i := 0; i < N*C; i++ {
					s += float64(dout[i]) * (float64(x[i]) + b[i%C])
				}
				return s
			}
			fd := fdGrad(fwd, f64s(bias), 1e-3)
			for c := range wantDB {
				wantDB[c] += fd[c]
			}
			assertClose(t, "BiasBackward "+name, Host(db), wantDB, 1e-4, 1e-5)
			assertGuard(t, "BiasBackward", db)
			if first == nil {
				first = append([]float32(nil), Host(db)...)
			} else {
				assertSame(t, "BiasBackward deterministic "+name, Host(db), first)
			}
		}
	}
}
