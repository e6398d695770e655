// Tests of the losses: Flow-DPO against hand-computed values (the 1/2 factor, beta
// schedules, ties, implicit_acc), its gradient by finite differences through the
// mean-over-elements MSE down to the velocity outputs, and the RWR softmax weights.
//
// Test: go test ./dpo -run 'Loss|Beta|RWR|Best'

package dpo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alignkit/align/kernels"
)

var testDev kernels.Device = kernels.NewCPU(0)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestDPOLossHandValues(t *testing.T) {
	// Pair 0: beta 10, w_diff = 0.5-0.6 = -0.1, l_diff = 0.7-0.6 = 0.1
	//   inside = -(10/2)(-0.1-0.1) = 1, L = log(1+e^-1) = 0.31326168751822286
	// Pair 1: beta 4, w_diff = 0.1, l_diff = 0: inside = -(4/2)(0.1) = -0.2,
	//   L = log(1+e^0.2) = 0.7981388693815918
	eModel := []float64{0.5, 0.4, 0.7, 0.2}
	eRef := []float64{0.6, 0.3, 0.6, 0.2}
	r := DPOLoss(eModel, eRef, []float64{10, 4}, nil)
	if !near(r.Inside[0], 1, 1e-12) || !near(r.Inside[1], -0.2, 1e-12) {
		t.Errorf("inside %v, want [1 -0.2]", r.Inside)
	}
	if !near(r.Loss, 0.5557002784499073, 1e-12) {
		t.Errorf("loss %v, want 0.5557002784499073", r.Loss)
	}
	// dL/de_w = (beta/2) sigmoid(-inside) / P: 5*0.26894/2 = 0.6723535534249878; 2*0.54983/2.
	want := []float64{0.6723535534249878, 0.549833997312478, -0.6723535534249878, -0.549833997312478}
	for i := range want {
		if !near(r.DModel[i], want[i], 1e-12) {
			t.Errorf("dL/de_model[%d] = %v, want %v", i, r.DModel[i], want[i])
		}
	}
	if r.ImplicitAcc != 0.5 || r.Decisive != 2 || !near(r.WDiff, 0, 1e-12) || !near(r.LDiff, 0.05, 1e-12) ||
		!near(r.ModelMSEW, 0.45, 1e-12) || !near(r.RefMSEL, 0.4, 1e-12) || r.Beta != 7 || !near(r.MeanInside, 0.4, 1e-12) {
		t.Errorf("metrics %+v", r)
	}
}

func TestDPOLossAtReference(t *testing.T) {
	// Policy = reference: inside = 0, L = ln 2 for decisive pairs and ties, implicit_acc 0
	// (inside > 0 is required), gradient (beta/2)(1/2)/P for decisive pairs, 0 for ties.
	e := []float64{0.3, 0.8, 0.5, 0.3, 0.8, 0.5}
	r := DPOLoss(e, e, []float64{500, 500, 500}, []bool{false, true, false})
	if r.Loss != math.Ln2 || r.ImplicitAcc != 0 || r.Decisive != 2 {
		t.Errorf("loss %v (want ln 2), implicit_acc %v, decisive %d", r.Loss, r.ImplicitAcc, r.Decisive)
	}
	for i, in := range r.Inside {
		if in != 0 {
			t.Errorf("inside[%d] = %v", i, in)
		}
	}
	if r.DModel[0] != 250*0.5/3 || r.DModel[1] != 0 || r.DModel[4] != 0 || r.DModel[3] != -250*0.5/3 {
		t.Errorf("gradient %v", r.DModel)
	}
}

func TestDPOLossTie(t *testing.T) {
	// A tie: L = (softplus(-x) + softplus(x))/2, symmetric and smallest at inside = 0.
	a := DPOLoss([]float64{0.2, 0.5}, []float64{0.3, 0.3}, []float64{2}, []bool{true})
	b := DPOLoss([]float64{0.5, 0.2}, []float64{0.3, 0.3}, []float64{2}, []bool{true})
	x := a.Inside[0] // -(1)(-0.1-0.2) = 0.3
	want := 0.5 * (math.Log1p(math.Exp(-x)) + math.Log1p(math.Exp(x)))
	if !near(x, 0.3, 1e-12) || !near(a.Loss, want, 1e-12) || !near(b.Loss, a.Loss, 1e-12) || a.Loss <= math.Ln2 {
		t.Errorf("tie loss %v (inside %v), swapped %v", a.Loss, x, b.Loss)
	}
	if a.Decisive != 0 || a.ImplicitAcc != 0 {
		t.Errorf("a tie counted in implicit_acc: %+v", a)
	}
}

func TestDPOLossGradientFiniteDifferences(t *testing.T) {
	// d loss / d e_model for decisive and tie pairs, central differences.
	r := rand.New(rand.NewPCG(1, 2))
	const P = 4
	eM, eR, betas := make([]float64, 2*P), make([]float64, 2*P), make([]float64, P)
	for i := range eM {
		eM[i], eR[i] = 0.5+0.1*r.NormFloat64(), 0.5+0.1*r.NormFloat64()
	}
	for i := range betas {
		betas[i] = 5 + 10*r.Float64()
	}
	tie := []bool{false, true, false, true}
	g := DPOLoss(eM, eR, betas, tie).DModel
	const h = 1e-6
	for i := range eM {
		p, m := append([]float64{}, eM...), append([]float64{}, eM...)
		p[i] += h
		m[i] -= h
		fd := (DPOLoss(p, eR, betas, tie).Loss - DPOLoss(m, eR, betas, tie).Loss) / (2 * h)
		if !near(g[i], fd, 1e-6) {
			t.Errorf("dL/de[%d] = %v, finite differences %v", i, g[i], fd)
		}
	}
}

func TestBetaSchedules(t *testing.T) {
	if BetaAt(BetaConst, 500, 0.3) != 500 || !near(BetaAt(BetaOneMinusTSq, 500, 0.3), 245, 1e-12) ||
		BetaAt(BetaOneMinusTSq, 500, 1) != 0 || BetaAt(BetaOneMinusTSq, 500, 0) != 500 {
		t.Error("beta schedules")
	}
}

// hostDPOLoss is the Flow-DPO loss of velocities in float64 on the host: the mean over
// elements of the squared error per sample, then DPOLoss.
func hostDPOLoss(v, vRef, target []float64, B, D int, betas []float64, tie []bool) float64 {
	e := func(x []float64) []float64 {
		out := make([]float64, B)
		for b := range B {
			for d := range D {
				diff := x[b*D+d] - target[b*D+d]
				out[b] += diff * diff
			}
			out[b] /= float64(D)
		}
		return out
	}
	return DPOLoss(e(v), e(vRef), betas, tie).Loss
}

func TestDPOGradientWrtVelocityFiniteDifferences(t *testing.T) {
	// The chain the step uses: per-sample MSE (kernels, mean over D elements) -> DPOLoss ->
	// dL/de -> MSEBackward -> dL/dv, against central differences of the loss in float64.
	r := rand.New(rand.NewPCG(3, 4))
	const P, D = 3, 5
	B := 2 * P
	v, vRef, tgt := make([]float64, B*D), make([]float64, B*D), make([]float64, B*D)
	for i := range v {
		tgt[i] = r.NormFloat64()
		vRef[i] = tgt[i] + 0.5*r.NormFloat64()
		v[i] = vRef[i] + 0.05*r.NormFloat64()
	}
	betas := []float64{20, 50, 8}
	tie := []bool{false, false, true}
	f32 := func(x []float64) *kernels.Tensor {
		h := make([]float32, len(x))
		for i := range x {
			h[i] = float32(x[i])
		}
		return testDev.FromHost(h, B, D)
	}
	vt, vr, tt := f32(v), f32(vRef), f32(tgt)
	lm, lr := testDev.New(B), testDev.New(B)
	testDev.MSEForward(lm, vt, tt, B, D)
	testDev.MSEForward(lr, vr, tt, B, D)
	hm, hr := make([]float32, B), make([]float32, B)
	testDev.CopyToHost(hm, lm)
	testDev.CopyToHost(hr, lr)
	eM, eR := make([]float64, B), make([]float64, B)
	for i := range eM {
		eM[i], eR[i] = float64(hm[i]), float64(hr[i])
	}
	res := DPOLoss(eM, eR, betas, tie)
	dl := make([]float32, B)
	for i, g := range res.DModel {
		dl[i] = float32(g)
	}
	dv := testDev.New(B, D)
	testDev.MSEBackward(dv, testDev.FromHost(dl, B), vt, tt, B, D)
	got := make([]float32, B*D)
	testDev.CopyToHost(got, dv)
	if !near(res.Loss, hostDPOLoss(v, vRef, tgt, B, D, betas, tie), 1e-5) {
		t.Errorf("loss through the kernels %v, on the host %v", res.Loss, hostDPOLoss(v, vRef, tgt, B, D, betas, tie))
	}
	const h = 1e-6
	for i := range v {
		p, m := append([]float64{}, v...), append([]float64{}, v...)
		p[i] += h
		m[i] -= h
		fd := (hostDPOLoss(p, vRef, tgt, B, D, betas, tie) - hostDPOLoss(m, vRef, tgt, B, D, betas, tie)) / (2 * h)
		if math.Abs(float64(got[i])-fd) > 1e-4*(1+math.Abs(fd)) {
			t.Errorf("dL/dv[%d] = %v, finite differences %v", i, got[i], fd)
		}
	}
	// Mean over elements, not the squared norm: doubling D at the same per-element errors
	// leaves e unchanged.
	one, two := testDev.New(1), testDev.New(1)
	testDev.MSEForward(one, testDev.FromHost([]float32{1, 2}, 1, 2), testDev.New(1, 2), 1, 2)
	testDev.MSEForward(two, testDev.FromHost([]float32{1, 2, 1, 2}, 1, 4), testDev.New(1, 4), 1, 4)
	a, b := make([]float32, 1), make([]float32, 1)
	testDev.CopyToHost(a, one)
	testDev.CopyToHost(b, two)
	if a[0] != 2.5 || b[0] != 2.5 {
		t.Errorf("per-sample error %v, %v; want the mean 2.5", a[0], b[0])
	}
}

func TestRWRWeightsHandValues(t *testing.T) {
	r := []float64{1, 2, 0, 3}
	groups := []string{"a", "a", "b", "b"}
	// Per group softmax, times N/G = 2: softmax(1,2) = (0.26894, 0.73106), softmax(0,3) = (0.04743, 0.95257).
	check := func(name string, got, want []float64) {
		t.Helper()
		for i := range want {
			if !near(got[i], want[i], 1e-12) {
				t.Errorf("%s: weights %v, want %v", name, got, want)
				return
			}
		}
	}
	w, err := RWRWeights(r, groups, 1)
	if err != nil {
		t.Fatal(err)
	}
	check("per prompt, T=1", w, []float64{0.5378828427399902, 1.4621171572600098, 0.09485174635513358, 1.9051482536448667})
	w, _ = RWRWeights(r, groups, 2)
	check("per prompt, T=2", w, []float64{0.7550813375962909, 1.2449186624037092, 0.36485104761271264, 1.6351489523872873})
	w, _ = RWRWeights(r, nil, 1)
	check("global", w, []float64{0.3485772749681303, 0.9475312723596405, 0.12823441312033995, 2.5756570395518894})
	// Huge rewards do not overflow; a single-member group gets weight N/G.
	w, _ = RWRWeights([]float64{1000, 1001, 5}, []string{"x", "x", "y"}, 0.5)
	if !near(w[0]+w[1], 1.5, 1e-12) || !near(w[2], 1.5, 1e-12) || math.IsNaN(w[0]) {
		t.Errorf("weights %v", w)
	}
	if _, err := RWRWeights(r, groups, 0); err == nil {
		t.Error("temperature 0 accepted")
	}
	if _, err := RWRWeights([]float64{math.NaN()}, nil, 1); err == nil {
		t.Error("NaN reward accepted")
	}
}

func TestBestOfGroups(t *testing.T) {
	got := BestOfGroups([]float64{1, 3, 2, 5, 5, 0}, []string{"a", "a", "b", "b", "b", "c"})
	if len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 5 {
		t.Errorf("best %v, want [1 3 5]", got)
	}
}
