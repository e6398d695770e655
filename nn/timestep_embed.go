// TimestepEmbedder: the DiT timestep embedding, sinusoidal features of 1000*t followed by a
// two-layer MLP with SiLU.
//
// Test: go test ./nn -run TimestepEmbedder

package nn

import "github.com/alignkit/align/kernels"

// TimestepEmbedder maps flow-matching times t (B) in [0,1] to vectors (B,C):
//
//	s = 1000*t ;  half = Freq/2 ;  f_i = exp(-ln(MaxPeriod) i/half), i < half
//	e = [cos(s f), sin(s f)]                   (B,Freq)   (device TimestepEmbedding)
//	y = W2 SiLU(W1 e + b1) + b2                (B,C)      ("mlp.0", "mlp.2" as in DiT)
//
// t carries no gradient: Backward only accumulates the MLP's parameter gradients.
type TimestepEmbedder struct {
	C         int     // output width, e.g. 384
	Freq      int     // sinusoidal features, 256
	MaxPeriod float32 // 10000
	TScale    float32 // 1000: t in [0,1] is embedded as DiT embeds its integer timesteps

	FC1 *Linear // Freq -> C ("mlp.0")
	FC2 *Linear // C -> C ("mlp.2")

	dev kernels.Device
	ts  buffer          // (B) scaled times
	emb buffer          // (B,Freq)
	h   *kernels.Tensor // (B,C) FC1 output of the last Forward
	s   buffer          // (B,C) SiLU(h)
	ds  buffer          // (B,C)
}

// NewTimestepEmbedder allocates the embedder with 256 frequencies, period 10000, t scaled
// by 1000, and MLP weights drawn from N(0, 0.02^2) (DiT's init), biases zero.
func NewTimestepEmbedder(dev kernels.Device, r Rand, C int) *TimestepEmbedder {
	const freq = 256
	e := &TimestepEmbedder{C: C, Freq: freq, MaxPeriod: 10000, TScale: 1000, dev: dev,
		FC1: NewLinear(dev, nil, freq, C, true),
		FC2: NewLinear(dev, nil, C, C, true)}
	e.FC1.InitNormal(r, 0.02)
	e.FC2.InitNormal(r, 0.02)
	return e
}

// Params lists "mlp.0.*" and "mlp.2.*".
func (e *TimestepEmbedder) Params() []Param {
	return append(prefixed("mlp.0", e.FC1.Params()), prefixed("mlp.2", e.FC2.Params())...)
}

// Forward embeds t (B) and returns (B,C).
func (e *TimestepEmbedder) Forward(t *kernels.Tensor) *kernels.Tensor {
	B := t.Len()
	ts := e.ts.get(e.dev, B)
	e.dev.Copy(ts, t)
	e.dev.Scale(ts, e.TScale)
	emb := e.emb.get(e.dev, B, e.Freq)
	e.dev.TimestepEmbedding(emb, ts, B, e.Freq, e.MaxPeriod)
	e.h = e.FC1.Forward(emb)
	s := e.s.get(e.dev, B, e.C)
	e.dev.SiluForward(s, e.h)
	return e.FC2.Forward(s)
}

// Backward takes dy (B,C) and accumulates the MLP's parameter gradients.
func (e *TimestepEmbedder) Backward(dy *kernels.Tensor) {
	ds := e.FC2.Backward(dy)
	dh := e.ds.get(e.dev, e.h.Shape...)
	e.dev.SiluBackward(dh, e.h, ds)
	e.FC1.Backward(dh)
}
