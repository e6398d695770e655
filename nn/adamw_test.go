// Tests of AdamW: two steps against a float64 host reference (with and without weight
// decay, learning rate changed between steps), the name rule for decay, frozen parameters
// left out, the exported state, ZeroGrad and ClipScale.
//
// Test: go test ./nn -run 'AdamW|ZeroGrad|ClipScale|DecayByName'
package nn

import (
	"math"
	"testing"
)

func TestDecayByName(t *testing.T) {
	cases := map[string]bool{
		"blocks.3.attn.qkv.weight":          true,
		"blocks.3.attn.qkv.bias":            false,
		"blocks.0.attn.qkv.lora_A.weight":   true,
		"final_layer.norm_final.weight":     false,
		"text.ln_f.weight":                  false,
		"text.ln.weight":                    false,
		"y_embedder.embedding_table.weight": true,
	}
	for name, want := range cases {
		if got := DecayByName(name); got != want {
			t.Errorf("DecayByName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAdamWSteps(t *testing.T) {
	r := newHostRand(100)
	l := NewLinear(testDev, r, 4, 3, true)
	frozen := NewLinear(testDev, r, 2, 2, false)
	frozen.SetTrainable(false)
	ps := append(prefixed("fc", l.Params()), prefixed("frozen", frozen.Params())...)
	cfg := DefaultAdamWConfig()
	cfg.LR, cfg.WeightDecay = 1e-2, 0.1
	opt := NewAdamW(testDev, ps, cfg)
	if len(opt.Params) != 2 {
		t.Fatalf("optimizer holds %d params, want the 2 trainable ones", len(opt.Params))
	}
	st := opt.State()
	if len(st) != 4 || st[0].Name != "fc.weight.exp_avg" || st[3].Name != "fc.bias.exp_avg_sq" {
		t.Fatalf("state names %v %v", st[0].Name, st[3].Name)
	}

	// Host reference.
	type ref struct{ p, m, v []float64 }
	refs := make([]ref, 2)
	for i, p := range opt.Params {
		n := p.W.Len()
		refs[i] = ref{to64(toHost(p.W)), make([]float64, n), make([]float64, n)}
	}
	frozenW := toHost(frozen.Weight)
	for step, lr := range []float32{1e-2, 3e-3} {
		grads := make([][]float32, 2)
		for i, p := range opt.Params {
			grads[i] = r.values(p.G.Len(), 1)
			testDev.CopyFromHost(p.G, grads[i])
		}
		opt.LR = lr
		opt.Step()
		tt := float64(step + 1)
		for i, p := range opt.Params {
			rf := refs[i]
			wd := 0.0
			if i == 0 { // weight decays, bias does not
				wd = 0.1
			}
			for j := range rf.p {
				g := float64(grads[i][j])
				rf.p[j] -= float64(lr) * wd * rf.p[j]
				rf.m[j] = 0.9*rf.m[j] + 0.1*g
				rf.v[j] = 0.999*rf.v[j] + 0.001*g*g
				mh, vh := rf.m[j]/(1-math.Pow(0.9, tt)), rf.v[j]/(1-math.Pow(0.999, tt))
				rf.p[j] -= float64(lr) * mh / (math.Sqrt(vh) + 1e-8)
			}
			assertClose(t, p.Name, toHost(p.W), rf.p, 1e-6, 1e-5)
			assertClose(t, p.Name+" m", toHost(opt.M[i]), rf.m, 1e-6, 1e-5)
			assertClose(t, p.Name+" v", toHost(opt.V[i]), rf.v, 1e-7, 1e-5)
		}
	}
	if opt.Steps != 2 {
		t.Errorf("Steps = %d", opt.Steps)
	}
	assertClose(t, "frozen weight", toHost(frozen.Weight), to64(frozenW), 0, 0)
}

func TestZeroGradAndClip(t *testing.T) {
	r := newHostRand(101)
	l := NewLinear(testDev, r, 3, 4, true)
	ps := l.Params()
	testDev.CopyFromHost(l.DWeight, []float32{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	testDev.CopyFromHost(l.DBias, []float32{0, 4, 0, 0})
	if n, s := ClipScale(ps, 1); math.Abs(n-5) > 1e-6 || math.Abs(float64(s)-0.2) > 1e-6 {
		t.Errorf("norm %g, factor %g, want 5 and 0.2", n, s)
	}
	if g := toHost(l.DBias); g[1] != 4 {
		t.Errorf("ClipScale changed the bias gradient: %g, want 4", g[1])
	}
	ZeroGrad(ps)
	for _, p := range ps {
		for _, v := range toHost(p.G) {
			if v != 0 {
				t.Fatalf("%s not zeroed", p.Name)
			}
		}
	}
}
