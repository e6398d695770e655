// Tests of TransformerBlock: parameter names, the forward against a float64 host reference
// of the formula in transformer_block.go, and every gradient (parameters and x) against
// finite differences with a key padding mask.
//
// Test: go test ./nn -run TransformerBlock
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestTransformerBlockParamNames(t *testing.T) {
	b := NewTransformerBlock(testDev, nil, TransformerBlockConfig{C: 8, NH: 2})
	want := []string{"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
		"attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}
	checkParamNames(t, b.Params(), want)
	if b.Hidden != 32 {
		t.Errorf("default hidden %d, want 32", b.Hidden)
	}
	b.SetTrainable(false)
	for _, p := range b.Params() {
		if p.G != nil {
			t.Errorf("%s still trainable after SetTrainable(false)", p.Name)
		}
	}
}

// newTrainedTransformerBlock returns a block with random LayerNorm affines and biases.
func newTrainedTransformerBlock(r *hostRand, cfg TransformerBlockConfig) *TransformerBlock {
	b := NewTransformerBlock(testDev, r, cfg)
	for _, n := range []*LayerNorm{b.Norm1, b.Norm2} {
		testDev.CopyFromHost(n.Weight, r.values(cfg.C, 0.3))
		testDev.Axpy(n.Weight, 1, testDev.FromHost(onesF32(cfg.C), cfg.C))
		r.Normal(n.Bias)
		testDev.Scale(n.Bias, 0.2)
	}
	r.Normal(b.Attn.QKV.Bias)
	testDev.Scale(b.Attn.QKV.Bias, 0.2)
	return b
}

func onesF32(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

func TestTransformerBlockForward(t *testing.T) {
	r := newHostRand(60)
	b := newTrainedTransformerBlock(r, TransformerBlockConfig{C: 12, NH: 3, MLPRatio: 2})
	B, T, C := 2, 6, 12
	x := r.tensor(1, B, T, C)
	kb := paddingBias(B, T, []int{2, 0})
	x64 := to64(toHost(x))
	a := b.Attn
	att := attentionRef(layerNormRef(x64, toHost(b.Norm1.Weight), toHost(b.Norm1.Bias), B*T, C, 1e-5),
		toHost(a.QKV.Weight), toHost(a.QKV.Bias), toHost(a.Proj.Weight), toHost(a.Proj.Bias), toHost(kb), B, T, C, b.NH)
	x1 := make([]float64, len(x64))
	for i := range x1 {
		x1[i] = x64[i] + att[i]
	}
	m := b.MLP
	hid := linear64(layerNormRef(x1, toHost(b.Norm2.Weight), toHost(b.Norm2.Bias), B*T, C, 1e-5),
		toHost(m.FC1.Weight), toHost(m.FC1.Bias), B*T, C, b.Hidden)
	for i, u := range hid {
		hid[i] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
	}
	y := linear64(hid, toHost(m.FC2.Weight), toHost(m.FC2.Bias), B*T, b.Hidden, C)
	for i := range y {
		y[i] += x1[i]
	}
	assertClose(t, "out", toHost(b.Forward(x, kb)), y, 1e-5, 1e-4)
}

func TestTransformerBlockGrad(t *testing.T) {
	r := newHostRand(61)
	b := newTrainedTransformerBlock(r, TransformerBlockConfig{C: 12, NH: 3})
	x := r.tensor(1, 2, 7, 12)
	kb := paddingBias(2, 7, []int{3, 0})
	var dx *kernels.Tensor
	vars := append(paramVars(b.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
	gradCheck(t, func() *kernels.Tensor { return b.Forward(x, kb) },
		func(g *kernels.Tensor) { dx = b.Backward(g) }, vars, gcOpts{h: 3e-3, maxElems: 40})
}
