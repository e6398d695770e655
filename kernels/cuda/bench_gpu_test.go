//go:build cuda

// GPU benchmarks (build tag cuda): the main kernels at DiT-sized shapes, each with its
// achieved bandwidth or FLOP rate, and the CPU device on the same shapes in the same run.
//
// Bench: make bench-cuda   (go test -tags cuda -run '^$' -bench . ./kernels/cuda)
package cuda

import (
	"fmt"
	"testing"

	"github.com/alignkit/align/kernels"
)

// benchDevices returns the GPU and the CPU device.
func benchDevices(b *testing.B) []kernels.Device {
	return []kernels.Device{openGPU(b), kernels.NewCPU(0)}
}

// run times fn on dev, synchronising after every call.
func run(b *testing.B, dev kernels.Device, bytes, flops float64, fn func()) {
	fn()
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fn()
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	s := b.Elapsed().Seconds() / float64(b.N)
	if bytes > 0 {
		b.ReportMetric(bytes/s/1e9, "GB/s")
	}
	if flops > 0 {
		b.ReportMetric(flops/s/1e9, "GFLOP/s")
	}
}

func BenchmarkLayerNormForward(b *testing.B) {
	N, C := 8*1024, 1152
	for _, dev := range benchDevices(b) {
		b.Run(dev.Name(), func(b *testing.B) {
			x, out := dev.FromHost(normals(1, N*C), N, C), dev.New(N, C)
			w, bias, mean, rstd := dev.FromHost(normals(2, C), C), dev.New(C), dev.New(N), dev.New(N)
			run(b, dev, 8*float64(N*C), 0, func() { dev.LayerNormForward(out, mean, rstd, x, w, bias, N, C, 1e-6) })
		})
	}
}

// BenchmarkLayerNormBackward is the backward of DiT-B's LayerNorm with the adaLN modulation
// (batch 32, 272 tokens, width 768, LayerNormModulateBackward) with the residual branch's
// gradient added. On the GPU in one pass (layernorm_modulate_backward: 16 bytes per element,
// dout, x and resid read and dinp written) and, as the baseline of the same run, in two
// kernels (noNormColumns: 24 bytes, modulate_backward's column sums read dout and x first);
// time/op is the figure to compare.
func BenchmarkLayerNormBackward(b *testing.B) {
	const B, T, C = 32, 272, 768
	N := B * T
	for _, dev := range benchDevices(b) {
		type variant struct {
			name    string
			columns bool // noNormColumns
			bytes   float64
		}
		variants := []variant{{dev.Name(), false, 16}}
		if _, ok := dev.(*Device); ok {
			variants = []variant{{dev.Name() + "/one-pass", false, 16}, {dev.Name() + "/two-kernels", true, 24}}
		}
		for _, v := range variants {
			b.Run(v.name, func(b *testing.B) {
				if gpu, ok := dev.(*Device); ok {
					gpu.noNormColumns = v.columns
					defer func() { gpu.noNormColumns = false }()
				}
				x, dout, resid, dinp := dev.FromHost(normals(1, N*C), N, C), dev.FromHost(normals(2, N*C), N, C),
					dev.FromHost(normals(3, N*C), N, C), dev.New(N, C)
				shift, scale, dshift, dscale := dev.FromHost(normals(4, B*C), B, C), dev.FromHost(normals(5, B*C), B, C), dev.New(B, C), dev.New(B, C)
				out, mean, rstd := dev.New(N, C), dev.New(N), dev.New(N)
				dev.LayerNormModulateForward(out, nil, mean, rstd, x, shift, scale, B, T, C, 1e-6)
				run(b, dev, v.bytes*float64(N*C), 0, func() {
					dev.LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, B, T, C, 1e-6)
				})
			})
		}
	}
}

// attnBenchShapes are the shapes of the attention benchmarks: long sequences, and DiT-B's
// (batch 32, 272 tokens, 12 heads of 64; BenchmarkDiTBase).
var attnBenchShapes = []attentionCase{{4, 256, 16, 72, false}, {4, 1024, 16, 72, false}, {32, 272, 12, 64, false}}

// attnBenchVariants runs fn for the CPU device and, on the GPU, for the fused kernels and
// the GEMM path in FP32, TF32 and BF16 (the budget lifted so that every shape takes it), and
// for 64 dims per head the tensor-core kernels (BF16 mode).
func attnBenchVariants(b *testing.B, c attentionCase, fn func(b *testing.B, dev kernels.Device)) {
	shape := fmt.Sprintf("B%d_T%d_NH%d_HS%d", c.B, c.T, c.NH, c.HS)
	for _, dev := range benchDevices(b) {
		d, ok := dev.(*Device)
		if !ok {
			b.Run(shape+"/"+dev.Name(), func(b *testing.B) { fn(b, dev) })
			continue
		}
		for _, v := range []struct {
			name   string
			budget int
			prec   GemmPrecision
			mma    bool
		}{{"fused", 0, GemmFP32, false}, {"gemm-fp32", 1 << 40, GemmFP32, false}, {"gemm-tf32", 1 << 40, GemmTF32, false},
			{"gemm-bf16", 1 << 40, GemmBF16, false}, {"mma-bf16", 1 << 40, GemmBF16, true}} {
			if v.mma && c.HS != attMMAHS {
				continue
			}
			b.Run(shape+"/"+dev.Name()+"/"+v.name, func(b *testing.B) {
				d.attnBudget, d.prec, d.noAttnMMA = v.budget, v.prec, !v.mma
				defer func() { d.attnBudget, d.prec, d.noAttnMMA = attnGemmBudget, GemmFP32, false }()
				fn(b, dev)
			})
		}
	}
}

// BenchmarkAttentionForward reports GFLOP/s of the forward's two products (4*B*NH*T^2*HS).
func BenchmarkAttentionForward(b *testing.B) {
	for _, c := range attnBenchShapes {
		attnBenchVariants(b, c, func(b *testing.B, dev kernels.Device) {
			B, T, NH, HS := c.B, c.T, c.NH, c.HS
			qkv := dev.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
			out, lse := dev.New(B, T, NH, HS), dev.New(B, NH, T)
			defer freeAll(dev, qkv, out, lse)
			flops := 4 * float64(B*NH) * float64(T) * float64(T) * float64(HS)
			run(b, dev, 0, flops, func() { dev.AttentionForward(out, lse, qkv, nil, B, T, NH, HS) })
		})
	}
}

// BenchmarkAttentionBackward reports GFLOP/s of the backward's five products
// (10*B*NH*T^2*HS, the recomputed scores included).
func BenchmarkAttentionBackward(b *testing.B) {
	for _, c := range attnBenchShapes {
		attnBenchVariants(b, c, func(b *testing.B, dev kernels.Device) {
			B, T, NH, HS := c.B, c.T, c.NH, c.HS
			qkv := dev.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
			out, lse := dev.New(B, T, NH, HS), dev.New(B, NH, T)
			dout, dqkv := dev.FromHost(normals(4, B*T*NH*HS), B, T, NH, HS), dev.New(B, T, 3, NH, HS)
			defer freeAll(dev, qkv, out, lse, dout, dqkv)
			dev.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
			flops := 10 * float64(B*NH) * float64(T) * float64(T) * float64(HS)
			run(b, dev, 0, flops, func() { dev.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS) })
		})
	}
}

func freeAll(dev kernels.Device, ts ...*kernels.Tensor) {
	for _, t := range ts {
		dev.Free(t)
	}
}

func BenchmarkGemm(b *testing.B) {
	m, n, k := 4096, 4608, 1152
	for _, dev := range benchDevices(b) {
		precs := []GemmPrecision{GemmFP32}
		if d, ok := dev.(*Device); ok {
			precs = []GemmPrecision{GemmFP32, GemmTF32, GemmBF16}
			defer d.SetGemmPrecision(GemmFP32)
		}
		for _, p := range precs {
			b.Run(dev.Name()+"/"+p.String(), func(b *testing.B) {
				if d, ok := dev.(*Device); ok {
					d.SetGemmPrecision(p)
				}
				x, w, y := dev.FromHost(normals(4, m*k), m, k), dev.FromHost(normals(5, k*n), k, n), dev.New(m, n)
				run(b, dev, 0, 2*float64(m)*float64(n)*float64(k), func() { dev.Gemm(false, false, m, n, k, 1, x, w, 0, y) })
			})
		}
	}
}
