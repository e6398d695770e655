// Tests of the SDE step and its Gaussian transition. Run: go test ./diffusion -run SDE
package diffusion

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestSDETransitionHandComputed(t *testing.T) {
	s, _ := NewFlowMatchEulerScheduler(1)
	_ = s.SetTimesteps(4) // sigmas 1, .75, .5, .25, 0
	// Step 1: sigma .75 -> .5, dt = -.25, a = .7: s^2 = .49*.75/.25 = 1.47.
	// cx = 1 + 1.47/1.5*(-.25) = .755; cv = (1 + 1.47*.25/1.5)*(-.25) = -.31125;
	// std = sqrt(1.47)*sqrt(.25) = .6062...
	cx, cv, std := s.SDETransition(1, 0.7)
	for _, c := range []struct{ got, want float64 }{{cx, 0.755}, {cv, -0.31125}, {std, math.Sqrt(1.47) * 0.5}} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Fatalf("SDETransition(1) = %v %v %v", cx, cv, std)
		}
	}
	// Step 0 (sigma = 1) borrows 1 - sigma_1 = .25: s^2 = .49*4 = 1.96, dt = -.25,
	// cx = 1 + 1.96/2*(-.25) = .755, cv = (1 + 0)*(-.25), std = 1.4*.5.
	cx, cv, std = s.SDETransition(0, 0.7)
	if math.Abs(cx-0.755) > 1e-12 || cv != -0.25 || math.Abs(std-0.7) > 1e-12 {
		t.Fatalf("SDETransition(0) = %v %v %v", cx, cv, std)
	}
	// Noise level 0 is the Euler step.
	cx, cv, std = s.SDETransition(2, 0)
	if cx != 1 || cv != -0.25 || std != 0 {
		t.Fatalf("a=0: %v %v %v, want Euler (1, -0.25, 0)", cx, cv, std)
	}
}

func TestSDEStepAndLogProb(t *testing.T) {
	dev := kernels.NewCPU(1)
	s, _ := NewFlowMatchEulerScheduler(1)
	_ = s.SetTimesteps(4)
	x := dev.FromHost([]float32{1, -1, 0.5, 2}, 2, 2)
	v := dev.FromHost([]float32{0.2, 0.4, -0.6, 1}, 2, 2)
	xi := dev.FromHost([]float32{1, 0, -1, 0.5}, 2, 2)
	prev := dev.New(2, 2)
	std := s.SDEStep(dev, prev, x, v, xi, 1, 0.7)
	got := make([]float32, 4)
	dev.CopyToHost(got, prev)
	hx, hv, hxi := []float64{1, -1, 0.5, 2}, []float64{0.2, 0.4, -0.6, 1}, []float64{1, 0, -1, 0.5}
	for i := range got {
		want := 0.755*hx[i] - 0.31125*hv[i] + std*hxi[i]
		if math.Abs(float64(got[i])-want) > 1e-6 {
			t.Fatalf("SDEStep[%d] = %v, want %v", i, got[i], want)
		}
	}
	// log N(prev; mean, std^2): the residual is std*xi, so each row is
	// -|xi|^2/2 - D*log(std) - D/2*log(2 pi).
	mean := dev.New(2, 2)
	dev.Axpby(mean, 0.755, x, -0.31125, v)
	lp := GaussianLogProb(dev, prev, mean, std, 2, 2)
	for b := range 2 {
		q := hxi[2*b]*hxi[2*b] + hxi[2*b+1]*hxi[2*b+1]
		want := -q/2 - 2*math.Log(std) - math.Log(2*math.Pi)
		if math.Abs(lp[b]-want) > 1e-5 {
			t.Fatalf("log prob row %d = %v, want %v", b, lp[b], want)
		}
	}
}
