// Tests of SelfAttention: forward against a float64 reference with a key padding mask, and
// gradients against finite differences with and without the mask.
//
// Test: go test ./nn -run Attention
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

// attentionRef is SelfAttention in float64: x (B,T,C), keyBias (B,T) or nil.
func attentionRef(x []float64, wqkv, bqkv, wp, bp []float32, keyBias []float32, B, T, C, NH int) []float64 {
	HS := C / NH
	N := B * T
	qkv := linear64(x, wqkv, bqkv, N, C, 3*C)
	att := make([]float64, N*C)
	s := make([]float64, T)
	for b := 0; b < B; b++ {
		for h := 0; h < NH; h++ {
			for i := 0; i < T; i++ {
				q := qkv[(b*T+i)*3*C+h*HS:][:HS]
				mx := math.Inf(-1)
				for j := 0; j < T; j++ {
					k := qkv[(b*T+j)*3*C+C+h*HS:][:HS]
					d := 0.0
					for e := range q {
						d += q[e] * k[e]
					}
					s[j] = d / math.Sqrt(float64(HS))
					if keyBias != nil {
						s[j] += float64(keyBias[b*T+j])
					}
					mx = math.Max(mx, s[j])
				}
				if math.IsInf(mx, -1) {
					continue // every key masked: zero output
				}
				z := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				o := att[(b*T+i)*C+h*HS:][:HS]
				for j := 0; j < T; j++ {
					v := qkv[(b*T+j)*3*C+2*C+h*HS:][:HS]
					for e := range o {
						o[e] += s[j] / z * v[e]
					}
				}
			}
		}
	}
	return linear64(att, wp, bp, N, C, C)
}

// linear64 is y = x W^T + b with float64 activations.
func linear64(x []float64, w, b []float32, N, in, out int) []float64 {
	y := make([]float64, N*out)
	for n := 0; n < N; n++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = float64(b[o])
			}
			for i := 0; i < in; i++ {
				s += x[n*in+i] * float64(w[o*in+i])
			}
			y[n*out+o] = s
		}
	}
	return y
}

// paddingBias returns a (B,T) key bias masking the last pad[b] keys of batch b.
func paddingBias(B, T int, pad []int) *kernels.Tensor {
	kb := make([]float32, B*T)
	for b := 0; b < B; b++ {
		for j := T - pad[b]; j < T; j++ {
			kb[b*T+j] = float32(math.Inf(-1))
		}
	}
	return testDev.FromHost(kb, B, T)
}

func TestAttentionForward(t *testing.T) {
	r := newHostRand(40)
	a := NewSelfAttention(testDev, r, 12, 3)
	r.Normal(a.QKV.Bias)
	r.Normal(a.Proj.Bias)
	x := r.tensor(1, 2, 7, 12)
	for _, kb := range []*kernels.Tensor{nil, paddingBias(2, 7, []int{2, 0})} {
		var kbh []float32
		if kb != nil {
			kbh = toHost(kb)
		}
		want := attentionRef(to64(toHost(x)), toHost(a.QKV.Weight), toHost(a.QKV.Bias),
			toHost(a.Proj.Weight), toHost(a.Proj.Bias), kbh, 2, 7, 12, 3)
		assertClose(t, "y", toHost(a.Forward(x, kb)), want, 1e-5, 1e-4)
	}
}

func TestAttentionGrad(t *testing.T) {
	for _, masked := range []bool{false, true} {
		r := newHostRand(41)
		a := NewSelfAttention(testDev, r, 12, 3)
		r.Normal(a.QKV.Bias)
		x := r.tensor(1, 2, 7, 12)
		var kb *kernels.Tensor
		if masked {
			kb = paddingBias(2, 7, []int{3, 1})
		}
		var dx *kernels.Tensor
		vars := append(paramVars(a.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
		gradCheck(t, func() *kernels.Tensor { return a.Forward(x, kb) },
			func(d *kernels.Tensor) { dx = a.Backward(d) }, vars, gcOpts{h: 3e-3})
	}
}
