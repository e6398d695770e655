// Tests of TimestepEmbedder: forward against a float64 reference (sinusoids of 1000*t, then
// Linear, SiLU, Linear) and the parameter gradients against finite differences.
//
// Test: go test ./nn -run TimestepEmbedder
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestTimestepEmbedderForward(t *testing.T) {
	r := newHostRand(80)
	e := NewTimestepEmbedder(testDev, r, 12)
	r.Normal(e.FC1.Bias)
	ts := []float32{0, 0.37, 1}
	B := len(ts)
	emb := make([]float64, B*256)
	for b, tv := range ts {
		for i := 0; i < 128; i++ {
			a := 1000 * float64(tv) * math.Exp(-math.Log(10000)*float64(i)/128)
			emb[b*256+i], emb[b*256+128+i] = math.Cos(a), math.Sin(a)
		}
	}
	h := linear64(emb, toHost(e.FC1.Weight), toHost(e.FC1.Bias), B, 256, 12)
	for i, u := range h {
		h[i] = u / (1 + math.Exp(-u))
	}
	want := linear64(h, toHost(e.FC2.Weight), toHost(e.FC2.Bias), B, 12, 12)
	// sin/cos of arguments up to 1000 in float32 lose about 1e-4 absolute.
	assertClose(t, "y", toHost(e.Forward(testDev.FromHost(ts, B))), want, 1e-4, 1e-3)
}

func TestTimestepEmbedderGrad(t *testing.T) {
	r := newHostRand(81)
	e := NewTimestepEmbedder(testDev, r, 12)
	e.FC1.InitNormal(r, 0.3)
	e.FC2.InitNormal(r, 0.3)
	tt := testDev.FromHost([]float32{0.05, 0.5, 0.93}, 3)
	gradCheck(t, func() *kernels.Tensor { return e.Forward(tt) }, func(d *kernels.Tensor) { e.Backward(d) },
		paramVars(e.Params()), gcOpts{h: 3e-3})
	want := []string{"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}
	for i, p := range e.Params() {
		if p.Name != want[i] {
			t.Errorf("param %d: %q, want %q", i, p.Name, want[i])
		}
	}
}
