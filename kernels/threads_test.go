// The CPU device's results do not depend on its number of threads: work is split by index
// only, and every output element (every sum of a reduction) is computed by the same
// arithmetic in the same order whatever the split. Each operation runs on 1, 2, 3 and 5
// threads over sizes of a few grains that 2, 3 and 5 cut at different places, none of
// them on a multiple of the vector loops' steps.
//
// Test: go test ./kernels -run ThreadIndependence
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func TestThreadIndependence(t *testing.T) {
	const (
		n          = 3*elemGrain + 5 // flat elementwise work
		N, C       = 203, 260        // rows (rowGrain(260) = 63 a chunk) and columns
		B, T       = 7, 29           // samples and tokens, B*T = N
		Ba, Ta     = 3, 37           // attention
		NH, HS     = 4, 16
		gm, gn, gk = 203, 517, 300 // Gemm
	)
	in := func(seed uint64, k int) []float32 { return testNormals(seed, k) }
	type op struct {
		name string
		run  func(d *CPU) []*Tensor // the outputs
	}
	ops := []op{
		{"GeluForward", func(d *CPU) []*Tensor {
			out := d.New(n)
			d.GeluForward(out, d.FromHost(in(1, n), n))
			return []*Tensor{out}
		}},
		{"GeluBackward", func(d *CPU) []*Tensor {
			out := d.New(n)
			d.GeluBackward(out, d.FromHost(in(1, n), n), d.FromHost(in(2, n), n))
			return []*Tensor{out}
		}},
		{"SiluForward, SiluBackward", func(d *CPU) []*Tensor {
			y, dx := d.New(n), d.New(n)
			x := d.FromHost(in(1, n), n)
			d.SiluForward(y, x)
			d.SiluBackward(dx, x, d.FromHost(in(2, n), n))
			return []*Tensor{y, dx}
		}},
		{"Add, Mul, AddBias, BiasBackward", func(d *CPU) []*Tensor {
			a, b := d.FromHost(in(1, N*C), N, C), d.FromHost(in(2, N*C), N, C)
			sum, prod, biased, db := d.New(N, C), d.New(N, C), d.New(N, C), d.FromHost(in(3, C), C)
			d.Add(sum, a, b)
			d.Mul(prod, a, b)
			d.AddBias(biased, a, db, N, C)
			d.BiasBackward(db, b, N, C)
			return []*Tensor{sum, prod, biased, db}
		}},
		{"LayerNormForward, LayerNormBackward", func(d *CPU) []*Tensor {
			x, w, bias := d.FromHost(in(1, N*C), N, C), d.FromHost(in(2, C), C), d.FromHost(in(3, C), C)
			y, mean, rstd := d.New(N, C), d.New(N), d.New(N)
			dx, dw, db := d.New(N, C), d.FromHost(in(4, C), C), d.FromHost(in(5, C), C)
			d.LayerNormForward(y, mean, rstd, x, w, bias, N, C, 1e-5)
			d.LayerNormBackward(dx, dw, db, d.FromHost(in(6, N*C), N, C), x, w, mean, rstd, N, C)
			return []*Tensor{y, mean, rstd, dx, dw, db}
		}},
		{"LayerNormModulateForward, LayerNormModulateGateBackward", func(d *CPU) []*Tensor {
			x, shift, scale := d.FromHost(in(1, N*C), B, T, C), d.FromHost(in(2, B*C), B, C), d.FromHost(in(3, B*C), B, C)
			y, mean, rstd := d.New(B, T, C), d.New(N), d.New(N)
			d.LayerNormModulateForward(y, nil, mean, rstd, x, shift, scale, B, T, C, 1e-6)
			dx, dy, dshift, dscale, dgate := d.New(B, T, C), d.New(B, T, C), d.New(B, C), d.New(B, C), d.New(B, C)
			d.LayerNormModulateGateBackward(dx, dshift, dscale, d.FromHost(in(4, N*C), B, T, C), d.FromHost(in(5, N*C), B, T, C),
				x, mean, rstd, scale, dy, dgate, d.FromHost(in(6, B*C), B, C), d.FromHost(in(7, N*C), B, T, C), B, T, C, 1e-6)
			return []*Tensor{y, mean, rstd, dx, dy, dshift, dscale, dgate}
		}},
		{"ModulateForward, ModulateBackward, GateForward", func(d *CPU) []*Tensor {
			x, shift, scale := d.FromHost(in(1, N*C), B, T, C), d.FromHost(in(2, B*C), B, C), d.FromHost(in(3, B*C), B, C)
			y, dx, dshift, dscale, g := d.New(B, T, C), d.New(B, T, C), d.New(B, C), d.New(B, C), d.New(B, T, C)
			d.ModulateForward(y, x, shift, scale, B, T, C)
			d.ModulateBackward(dx, dshift, dscale, d.FromHost(in(4, N*C), B, T, C), x, scale, B, T, C)
			d.GateForward(g, x, shift, y, B, T, C)
			return []*Tensor{y, dx, dshift, dscale, g}
		}},
		{"SoftmaxForward, SoftmaxBackward", func(d *CPU) []*Tensor {
			y, dx := d.New(N, C), d.New(N, C)
			d.SoftmaxForward(y, d.FromHost(in(1, N*C), N, C), N, C)
			d.SoftmaxBackward(dx, d.FromHost(in(2, N*C), N, C), y, N, C)
			return []*Tensor{y, dx}
		}},
		{"AttentionForward, AttentionBackward", func(d *CPU) []*Tensor {
			bias := make([]float32, Ba*Ta)
			// Masked keys in the middle and at the very end of qkv (the gather copies runs).
			bias[Ta-1], bias[2*Ta-3], bias[Ba*Ta-1] = float32(math.Inf(-1)), 0.5, float32(math.Inf(-1))
			qkv, kb := d.FromHost(in(1, Ba*Ta*3*NH*HS), Ba, Ta, 3, NH, HS), d.FromHost(bias, Ba, Ta)
			out, lse, dqkv := d.New(Ba, Ta, NH, HS), d.New(Ba, NH, Ta), d.New(Ba, Ta, 3, NH, HS)
			d.AttentionForward(out, lse, qkv, kb, Ba, Ta, NH, HS)
			d.AttentionBackward(dqkv, d.FromHost(in(2, Ba*Ta*NH*HS), Ba, Ta, NH, HS), out, lse, qkv, kb, Ba, Ta, NH, HS)
			return []*Tensor{out, lse, dqkv}
		}},
		{"AttentionBackward, fewer heads than threads", func(d *CPU) []*Tensor {
			// One sample of 2 heads and 137 tokens (3 query blocks): on 3 and 5 threads each
			// head's blocks are split between threads and their dK, dV shares added after.
			const T1, NH1 = 137, 2
			qkv := d.FromHost(in(3, T1*3*NH1*HS), 1, T1, 3, NH1, HS)
			out, lse, dqkv := d.New(1, T1, NH1, HS), d.New(1, NH1, T1), d.New(1, T1, 3, NH1, HS)
			d.AttentionForward(out, lse, qkv, nil, 1, T1, NH1, HS)
			d.AttentionBackward(dqkv, d.FromHost(in(4, T1*NH1*HS), 1, T1, NH1, HS), out, lse, qkv, nil, 1, T1, NH1, HS)
			return []*Tensor{dqkv}
		}},
		{"AdamW", func(d *CPU) []*Tensor {
			p, m, v := d.FromHost(in(1, n), n), d.FromHost(in(2, n), n), d.FromHost(in(3, n), n)
			d.Mul(v, v, v)
			d.AdamW(p, d.FromHost(in(4, n), n), m, v, AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 3})
			return []*Tensor{p, m, v}
		}},
		{"Sum, SumSquares", func(d *CPU) []*Tensor {
			x := d.FromHost(in(1, 40*elemGrain+3), 40*elemGrain+3)
			s, s2 := d.Sum(x), d.SumSquares(x)
			return []*Tensor{d.FromHost([]float32{float32(s), float32(s - float64(float32(s))), float32(s2),
				float32(s2 - float64(float32(s2)))}, 4)}
		}},
	}
	if !useOpenBLAS() { // OpenBLAS splits its products as it likes
		ops = append(ops, op{"Gemm (the Go GEMM)", func(d *CPU) []*Tensor {
			a, b := d.FromHost(in(1, gm*gk), gm, gk), d.FromHost(in(2, gk*gn), gk, gn)
			c, ct := d.FromHost(in(3, gm*gn), gm, gn), d.New(gk, gk)
			d.Gemm(false, false, gm, gn, gk, 0.5, a, b, 1, c)
			d.Gemm(true, false, gk, gk, gm, 1, a, a, 0, ct)
			return []*Tensor{c, ct}
		}})
	}
	for _, o := range ops {
		want := o.run(NewCPU(1))
		for _, threads := range []int{2, 3, 5} {
			got := o.run(NewCPU(threads))
			for i := range want {
				sameBits(t, fmt.Sprintf("%s, output %d, %d threads against 1", o.name, i, threads), Host(got[i]), Host(want[i]))
			}
		}
	}
}
