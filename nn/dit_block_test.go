// Tests of DiTBlock: a fresh block (adaLN-Zero) is the identity, the forward matches a
// float64 host reference of the formula in dit_block.go, and every gradient (parameters,
// x and the conditioning c) matches finite differences, with a key padding mask.
//
// Test: go test ./nn -run DiTBlock
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestDiTBlockFreshIsIdentity(t *testing.T) {
	r := newHostRand(50)
	d := NewDiTBlock(testDev, r, DiTBlockConfig{C: 12, NH: 3, Dc: 5})
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	out := d.Forward(x, c, paddingBias(2, 7, []int{2, 0}))
	assertClose(t, "out = x", toHost(out), to64(toHost(x)), 0, 0)

	dout := r.tensor(1, 2, 7, 12)
	dx, dc := d.Backward(dout)
	assertClose(t, "dx = dout", toHost(dx), to64(toHost(dout)), 0, 0)
	assertClose(t, "dc = 0", toHost(dc), make([]float64, 2*5), 0, 0)
	// The gates still learn: their weight gradient is not zero.
	ss := 0.0
	for _, v := range toHost(d.Ada.DWeight) {
		ss += float64(v) * float64(v)
	}
	if ss == 0 {
		t.Error("adaLN weight gradient is zero in a fresh block")
	}
}

func TestDiTBlockParamNames(t *testing.T) {
	d := NewDiTBlock(testDev, nil, DiTBlockConfig{C: 8, NH: 2})
	want := []string{"attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
		"mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
		"adaLN_modulation.1.weight", "adaLN_modulation.1.bias"}
	checkParamNames(t, d.Params(), want)
	if d.Hidden != 32 || d.Dc != 8 {
		t.Errorf("defaults: hidden %d, Dc %d", d.Hidden, d.Dc)
	}
}

// ditBlockRef is the block in float64, straight from the formula in dit_block.go.
func ditBlockRef(d *DiTBlock, x, c []float64, keyBias []float32, B, T int) []float64 {
	C := d.C
	sc := make([]float64, len(c))
	for i, v := range c {
		sc[i] = v / (1 + math.Exp(-v))
	}
	mod := linear64(sc, toHost(d.Ada.Weight), toHost(d.Ada.Bias), B, d.Dc, 6*C)
	chunk := func(b, k, i int) float64 { return mod[b*6*C+k*C+i] }
	modulate := func(h []float64, ks, kc int) []float64 {
		out := make([]float64, len(h))
		for b := 0; b < B; b++ {
			for t := 0; t < T; t++ {
				for i := 0; i < C; i++ {
					n := (b*T+t)*C + i
					out[n] = h[n]*(1+chunk(b, kc, i)) + chunk(b, ks, i)
				}
			}
		}
		return out
	}
	gate := func(x, y []float64, kg int) []float64 {
		out := make([]float64, len(x))
		for b := 0; b < B; b++ {
			for t := 0; t < T; t++ {
				for i := 0; i < C; i++ {
					n := (b*T+t)*C + i
					out[n] = x[n] + chunk(b, kg, i)*y[n]
				}
			}
		}
		return out
	}
	a := d.Attn
	att := attentionRef(modulate(layerNormRef(x, nil, nil, B*T, C, 1e-6), 0, 1),
		toHost(a.QKV.Weight), toHost(a.QKV.Bias), toHost(a.Proj.Weight), toHost(a.Proj.Bias), keyBias, B, T, C, d.NH)
	x1 := gate(x, att, 2)
	m := d.MLP
	hid := linear64(modulate(layerNormRef(x1, nil, nil, B*T, C, 1e-6), 3, 4), toHost(m.FC1.Weight), toHost(m.FC1.Bias), B*T, C, d.Hidden)
	for i, u := range hid {
		hid[i] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
	}
	return gate(x1, linear64(hid, toHost(m.FC2.Weight), toHost(m.FC2.Bias), B*T, d.Hidden, C), 5)
}

// newTrainedDiTBlock returns a block whose adaLN weights and biases are random (a trained
// block's), so that no gradient path is switched off by zero gates.
func newTrainedDiTBlock(r *hostRand, cfg DiTBlockConfig) *DiTBlock {
	d := NewDiTBlock(testDev, r, cfg)
	d.Ada.InitNormal(r, 0.3)
	r.Normal(d.Ada.Bias)
	testDev.Scale(d.Ada.Bias, 0.3)
	r.Normal(d.Attn.QKV.Bias)
	testDev.Scale(d.Attn.QKV.Bias, 0.2)
	return d
}

func TestDiTBlockForward(t *testing.T) {
	r := newHostRand(51)
	d := newTrainedDiTBlock(r, DiTBlockConfig{C: 12, NH: 3, Dc: 5, MLPRatio: 2.5})
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	kb := paddingBias(2, 7, []int{3, 0})
	want := ditBlockRef(d, to64(toHost(x)), to64(toHost(c)), toHost(kb), 2, 7)
	assertClose(t, "out", toHost(d.Forward(x, c, kb)), want, 1e-5, 1e-4)
}

func TestDiTBlockGrad(t *testing.T) {
	r := newHostRand(52)
	d := newTrainedDiTBlock(r, DiTBlockConfig{C: 12, NH: 3, Dc: 5})
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	kb := paddingBias(2, 7, []int{2, 0})
	var dx, dc *kernels.Tensor
	vars := append(paramVars(d.Params()),
		gcVar{"x", x, func() *kernels.Tensor { return dx }},
		gcVar{"c", c, func() *kernels.Tensor { return dc }})
	gradCheck(t, func() *kernels.Tensor { return d.Forward(x, c, kb) },
		func(g *kernels.Tensor) { dx, dc = d.Backward(g) }, vars, gcOpts{h: 3e-3, maxElems: 40})
}
