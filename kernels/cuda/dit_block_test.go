// End to end: a DiT block of package nn (adaLN-Zero modulation, attention with a key mask,
// MLP, LayerNorms, GEMMs through views) forward and backward on the emulated CUDA device
// against the CPU device, with the same parameters.
//
// Test: go test ./kernels/cuda -run DiTBlock
package cuda

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

func TestDiTBlockOnEmulatedDevice(t *testing.T) {
	cpu, gpu := kernels.NewCPU(2), NewEmulated()
	cfg := nn.DiTBlockConfig{C: 48, NH: 3}
	B, T := 2, 13
	rc, rg := &kernels.RNG{Seed: 5}, &kernels.RNG{Seed: 5}
	bc, bg := nn.NewDiTBlock(cpu, rc, cfg), nn.NewDiTBlock(gpu, rg, cfg)
	pc, pg := bc.Params(), bg.Params()
	if len(pc) != len(pg) {
		t.Fatalf("%d parameters on the CPU, %d on the device", len(pc), len(pg))
	}
	for i, p := range pc { // same values everywhere, the zero-initialised adaLN weights included
		w := normals(uint64(100+i), p.W.Len())
		for j := range w {
			w[j] *= 0.05 // scores of moderate size: a saturated softmax would amplify rounding
		}
		cpu.CopyFromHost(p.W, w)
		gpu.CopyFromHost(pg[i].W, w)
	}
	x, c, dout := normals(1, B*T*cfg.C), normals(2, B*cfg.C), normals(3, B*T*cfg.C)
	bias := make([]float32, B*T)
	for j := T - 4; j < T; j++ {
		bias[T+j] = float32(math.Inf(-1)) // sample 1: four padded keys
	}
	host := func(d kernels.Device, v *kernels.Tensor) []float32 {
		out := make([]float32, v.Len())
		d.CopyToHost(out, v)
		return out
	}
	yc := bc.Forward(cpu.FromHost(x, B, T, cfg.C), cpu.FromHost(c, B, cfg.C), cpu.FromHost(bias, B, T))
	yg := bg.Forward(gpu.FromHost(x, B, T, cfg.C), gpu.FromHost(c, B, cfg.C), gpu.FromHost(bias, B, T))
	assertClose(t, "forward", host(gpu, yg), host(cpu, yc), tol32, eps32)
	dxc, dcc := bc.Backward(cpu.FromHost(dout, B, T, cfg.C))
	dxg, dcg := bg.Backward(gpu.FromHost(dout, B, T, cfg.C))
	assertClose(t, "dx", host(gpu, dxg), host(cpu, dxc), tol32, eps32)
	assertClose(t, "dc", host(gpu, dcg), host(cpu, dcc), tol32, eps32)
	for i, p := range pc {
		if p.G != nil {
			assertClose(t, "grad "+p.Name, host(gpu, pg[i].G), host(cpu, p.G), tol32, eps32)
		}
	}
}
