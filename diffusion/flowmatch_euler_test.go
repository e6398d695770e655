// Tests of the flow-matching scheduler. Run: go test ./diffusion -run FlowMatch
package diffusion

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestFlowMatchSetTimesteps(t *testing.T) {
	s, err := NewFlowMatchEulerScheduler(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimesteps(4); err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 0.75, 0.5, 0.25, 0}
	for i, w := range want {
		if math.Abs(s.Sigmas[i]-w) > 1e-15 {
			t.Fatalf("sigmas = %v, want %v", s.Sigmas, want)
		}
	}
	if s.Timesteps[1] != 750 || len(s.Timesteps) != 4 {
		t.Fatalf("timesteps = %v", s.Timesteps)
	}
	// Shift 3 (SD3): sigma 0.5 -> 3*0.5/(1+2*0.5) = 0.75; 0.25 -> 0.75/1.5 = 0.5; ends stay 1 and 0.
	s, _ = NewFlowMatchEulerScheduler(3)
	_ = s.SetTimesteps(4)
	want = []float64{1, 2.25 / 2.5, 0.75, 0.5, 0}
	for i, w := range want {
		if math.Abs(s.Sigmas[i]-w) > 1e-12 {
			t.Fatalf("shifted sigmas = %v, want %v", s.Sigmas, want)
		}
	}
	if err := s.SetTimesteps(0); err == nil {
		t.Fatal("zero steps accepted")
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewFlowMatchEulerScheduler(bad); err == nil {
			t.Errorf("shift %v accepted", bad)
		}
	}
}

// With the exact velocity of a straight path, Euler reaches x0 exactly from pure noise.
func TestFlowMatchEulerFollowsStraightPath(t *testing.T) {
	dev := kernels.NewCPU(2)
	x0 := []float32{0.5, -1, 0.25, 2, -0.75, 1.5}
	eps := []float32{1, 0.5, -2, 0.1, 0.3, -0.6}
	v := make([]float32, len(x0))
	for i := range v {
		v[i] = eps[i] - x0[i]
	}
	s, _ := NewFlowMatchEulerScheduler(2.5)
	_ = s.SetTimesteps(7)
	sample := dev.FromHost(eps, 2, 3)
	vt := dev.FromHost(v, 2, 3)
	for i := range s.Timesteps {
		s.Step(dev, sample, vt, i)
	}
	got := make([]float32, 6)
	dev.CopyToHost(got, sample)
	for i := range got {
		if math.Abs(float64(got[i]-x0[i])) > 1e-5 {
			t.Fatalf("Euler end = %v, want x0 = %v", got, x0)
		}
	}
}

func TestScaleNoiseAndPredictX0(t *testing.T) {
	dev := kernels.NewCPU(1)
	x0 := dev.FromHost([]float32{1, 2, 3, 4}, 2, 2)
	eps := dev.FromHost([]float32{-1, 0, 1, 2}, 2, 2)
	sig := dev.FromHost([]float32{0.25, 0.5}, 2)
	xt, v := dev.New(2, 2), dev.New(2, 2)
	ScaleNoise(dev, xt, v, x0, eps, sig, 2, 2)
	got := make([]float32, 4)
	dev.CopyToHost(got, xt)
	// Row 0: 0.75*[1,2] + 0.25*[-1,0] = [0.5, 1.5]; row 1: 0.5*[3,4] + 0.5*[1,2] = [2, 3].
	for i, w := range []float32{0.5, 1.5, 2, 3} {
		if math.Abs(float64(got[i]-w)) > 1e-6 {
			t.Fatalf("x_t = %v", got)
		}
	}
	dev.CopyToHost(got, v)
	for i, w := range []float32{-2, -2, -2, -2} {
		if got[i] != w {
			t.Fatalf("target v = %v, want eps - x0", got)
		}
	}
	// x0_hat from row 1 with sigma 0.5 recovers x0.
	r1 := dev.New(2)
	PredictX0(dev, r1, xt.Row(1), v.Row(1), 0.5)
	dev.CopyToHost(got, r1)
	if got[0] != 3 || got[1] != 4 {
		t.Fatalf("x0_hat = %v, want [3 4]", got[:2])
	}
}
