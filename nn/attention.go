// SelfAttention: multi-head self-attention (no causal mask) over a joined text+image token
// sequence, with an optional key padding bias.
//
// Test: go test ./nn -run Attention

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// SelfAttention computes, for x (B,T,C) with C = NH*HS,
//
//	qkv = x Wqkv^T + bqkv               (B,T,3C), columns [q | k | v], each split into NH heads of HS
//	a   = softmax(q k^T / sqrt(HS) + keyBias[b]) v    per batch b and head (B,T,C)
//	y   = a Wproj^T + bproj             (B,T,C)
//
// keyBias (B,T) is 0 for a key to keep and -Inf for a padding key; nil keeps every key. A
// query with every key masked gets a = 0. The attention itself is the device's
// AttentionForward (packed qkv (B,T,3,NH,HS), log-sum-exp cached for the backward).
type SelfAttention struct {
	C, NH, HS int // e.g. 384, 6, 64

	QKV  *Linear // C -> 3C, bias
	Proj *Linear // C -> C, bias

	dev     kernels.Device
	B, T    int             // shape of the last Forward
	qkv     *kernels.Tensor // (B,T,3C) of the last Forward (owned by QKV)
	keyBias *kernels.Tensor // (B,T) or nil, of the last Forward
	att     buffer          // (B,T,C) attention output before the projection
	lse     buffer          // (B,NH,T)
	dqkv    buffer          // (B,T,3C)
}

// forwardBuffers are the buffers Forward writes, its layers' with them
// (DiTBlock.ShareForwardBuffers).
func (s *SelfAttention) forwardBuffers() []*buffer {
	return append(append([]*buffer{&s.att, &s.lse}, s.QKV.forwardBuffers()...), s.Proj.forwardBuffers()...)
}

// backwardBuffers are the buffers Backward writes, its layers' with them
// (DiTBlock.ShareBackwardBuffers).
func (s *SelfAttention) backwardBuffers() []*buffer {
	return append(append([]*buffer{&s.dqkv}, s.QKV.backwardBuffers()...), s.Proj.backwardBuffers()...)
}

// NewSelfAttention allocates an attention layer with NH heads over C channels, Xavier-normal
// weights drawn from r and zero biases.
func NewSelfAttention(dev kernels.Device, r Rand, C, NH int) *SelfAttention {
	if NH <= 0 || C%NH != 0 {
		panic(fmt.Sprintf("nn: NewSelfAttention: %d channels do not split into %d heads", C, NH))
	}
	s := &SelfAttention{C: C, NH: NH, HS: C / NH, dev: dev,
		QKV:  NewLinear(dev, r, C, 3*C, true),
		Proj: NewLinear(dev, r, C, C, true)}
	s.QKV.halfOut = true // read by AttentionForward and AttentionBackward only (their BF16 products)
	s.Proj.halfDx = true // the output's gradient: read by AttentionBackward only (the same)
	return s
}

// Params lists "qkv.*" and "proj.*".
func (s *SelfAttention) Params() []Param {
	return append(prefixed("qkv", s.QKV.Params()), prefixed("proj", s.Proj.Params())...)
}

// Forward maps x (B,T,C) with the optional key padding bias keyBias (B,T) to y (B,T,C).
func (s *SelfAttention) Forward(x, keyBias *kernels.Tensor) *kernels.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != s.C {
		panic(fmt.Sprintf("nn: SelfAttention.Forward: input %v, want (B,T,%d)", x, s.C))
	}
	B, T := x.Shape[0], x.Shape[1]
	if keyBias != nil {
		mustShape("SelfAttention.Forward keyBias", keyBias, B, T)
	}
	s.B, s.T, s.keyBias = B, T, keyBias
	s.qkv = s.QKV.Forward(x)
	att := s.att.get(s.dev, B, T, s.C)
	kernels.StoreHalf(s.dev, att) // read by the projection's products and attention's backward (its BF16 copy)
	s.dev.AttentionForward(att, s.lse.get(s.dev, B, s.NH, T), s.qkv, keyBias, B, T, s.NH, s.HS)
	return s.Proj.Forward(att)
}

// Backward takes dy (B,T,C) and returns dx (B,T,C).
func (s *SelfAttention) Backward(dy *kernels.Tensor) *kernels.Tensor {
	mustShape("SelfAttention.Backward", dy, s.B, s.T, s.C)
	datt := s.Proj.Backward(dy)
	dqkv := s.dqkv.get(s.dev, s.B, s.T, 3*s.C)
	kernels.StoreHalf(s.dev, dqkv) // read by qkv's products only
	s.dev.AttentionBackward(dqkv, datt, s.att.get(s.dev, s.B, s.T, s.C), s.lse.get(s.dev, s.B, s.NH, s.T),
		s.qkv, s.keyBias, s.B, s.T, s.NH, s.HS)
	return s.QKV.Backward(dqkv)
}

// SetTrainable freezes (false) or unfreezes the base weights and biases of both projections.
func (s *SelfAttention) SetTrainable(on bool) {
	s.QKV.SetTrainable(on)
	s.Proj.SetTrainable(on)
}

// EnableLoRA attaches rank-r adapters to the qkv and output projections (LoRA on q, k, v
// and o; the packed qkv gets one adapter of output width 3C) and freezes their bases.
func (s *SelfAttention) EnableLoRA(r Rand, rank int, alpha float32) {
	s.QKV.EnableLoRA(r, rank, alpha)
	s.Proj.EnableLoRA(r, rank, alpha)
}

// SetLoRAEnabled switches both adapters on or off (off: the frozen base, the Flow-DPO
// reference).
func (s *SelfAttention) SetLoRAEnabled(on bool) {
	s.QKV.SetLoRAEnabled(on)
	s.Proj.SetLoRAEnabled(on)
}

// MergeLoRA folds both adapters into their bases and removes them.
func (s *SelfAttention) MergeLoRA() {
	s.QKV.MergeLoRA()
	s.Proj.MergeLoRA()
}
