// Linear: the fully connected layer y = x W^T + b over the last dimension, with an optional
// LoRA adapter (lora.go).
//
// Test: go test ./nn -run Linear

package nn

import (
	"math"

	"github.com/alignkit/align/kernels"
)

// Linear maps the last dimension of x from In to Out features:
//
//	y = x W^T + b                              (no adapter, or adapter disabled)
//	y = x W^T + b + (alpha/r) (x A^T) B^T      (LoRA adapter enabled)
//
// Backward: dx = dy W (+ the adapter's term); dW += dy^T x; db += sum_n dy.
type Linear struct {
	In, Out int // e.g. 384, 1152

	Weight  *kernels.Tensor // (Out, In)
	Bias    *kernels.Tensor // (Out); nil without bias
	DWeight *kernels.Tensor // (Out, In); nil when frozen
	DBias   *kernels.Tensor // (Out); nil without bias or when frozen

	LoRA *LoRA // nil without an adapter

	// halfOut, halfDx: Forward's output, Backward's input gradient, is read by products and
	// kernels that read BF16 copies only (kernels.StoreHalf), as attention's qkv and its
	// output's gradient are (SelfAttention sets them), and a DiT block's attention and MLP
	// outputs (DiTBlock).
	halfOut, halfDx bool

	dev kernels.Device
	x   *kernels.Tensor // (N, In) input of the last Forward
	out buffer          // (N, Out)
	dx  buffer          // (N, In)
}

// forwardBuffers are the buffers Forward writes (DiTBlock.ShareForwardBuffers); an adapter's
// are left out.
func (l *Linear) forwardBuffers() []*buffer { return []*buffer{&l.out} }

// backwardBuffers are the buffers Backward writes (DiTBlock.ShareBackwardBuffers); an
// adapter's are left out.
func (l *Linear) backwardBuffers() []*buffer { return []*buffer{&l.dx} }

// NewLinear allocates a trainable Linear layer on dev. The weight is drawn from r with
// the Xavier (Glorot) normal rule, std = sqrt(2/(In+Out)); the bias starts at zero. A nil r
// leaves the weight zero (adaLN-Zero, or weights loaded afterwards).
func NewLinear(dev kernels.Device, r Rand, in, out int, bias bool) *Linear {
	l := &Linear{In: in, Out: out, dev: dev}
	l.Weight = dev.New(out, in)
	kernels.KeepHalf(dev, l.Weight) // read by every forward and input gradient until it changes
	if bias {
		l.Bias = dev.New(out)
	}
	l.SetTrainable(true)
	initNormal(r, l.Weight, float32(math.Sqrt(2/float64(in+out))))
	return l
}

// InitNormal redraws the weight from N(0, std^2) and zeroes the bias.
func (l *Linear) InitNormal(r Rand, std float32) {
	l.dev.Fill(l.Weight, 0)
	initNormal(r, l.Weight, std)
	if l.Bias != nil {
		l.dev.Fill(l.Bias, 0)
	}
}

// InitZero zeroes the weight and the bias.
func (l *Linear) InitZero() { l.InitNormal(nil, 0) }

// SetTrainable gives the base weight and bias zeroed gradients (true) or freezes them
// (false: G nil, Backward leaves them alone). The LoRA adapter is not affected.
func (l *Linear) SetTrainable(on bool) {
	if !on {
		if l.DWeight != nil {
			l.dev.Free(l.DWeight)
		}
		if l.DBias != nil {
			l.dev.Free(l.DBias)
		}
		l.DWeight, l.DBias = nil, nil
		return
	}
	if l.DWeight == nil {
		l.DWeight = l.dev.New(l.Out, l.In)
	}
	if l.Bias != nil && l.DBias == nil {
		l.DBias = l.dev.New(l.Out)
	}
}

// Trainable reports whether the base weight has a gradient.
func (l *Linear) Trainable() bool { return l.DWeight != nil }

// Params lists "weight", "bias" (when present) and the adapter's "lora_A.weight",
// "lora_B.weight".
func (l *Linear) Params() []Param {
	ps := []Param{{Name: "weight", W: l.Weight, G: l.DWeight}}
	if l.Bias != nil {
		ps = append(ps, Param{Name: "bias", W: l.Bias, G: l.DBias})
	}
	if l.LoRA != nil {
		ps = append(ps, l.LoRA.Params()...)
	}
	return ps
}

// Forward computes y (..., Out) from x (..., In).
func (l *Linear) Forward(x *kernels.Tensor) *kernels.Tensor {
	N := rowsOf("Linear.Forward", x, l.In)
	y := l.out.get(l.dev, withLast(x.Shape, l.Out)...)
	if l.halfOut {
		kernels.StoreHalf(l.dev, y)
	}
	if l.adapted() { // the adapter's term and the bias, then the base product added (LoRA)
		l.LoRA.forward(y, x, l.Bias, N)
		l.dev.Gemm(false, true, N, l.Out, l.In, 1, x, l.Weight, 1, y)
	} else {
		l.dev.Linear(y, x, l.Weight, l.Bias, N, l.In, l.Out)
	}
	l.x = x
	return y
}

// Backward takes dy (..., Out), accumulates the parameter gradients and returns dx (..., In).
func (l *Linear) Backward(dy *kernels.Tensor) *kernels.Tensor { return l.backward(dy, l.DBias) }

// backward is Backward with the bias gradient accumulated into dbias (nil: left to the
// caller, as MLP's GeluLinearBackward sums it for fc1).
func (l *Linear) backward(dy, dbias *kernels.Tensor) *kernels.Tensor {
	N := l.rowsOfBackward(dy)
	dx := l.dx.get(l.dev, l.x.Shape...)
	if l.halfDx {
		kernels.StoreHalf(l.dev, dx)
	}
	if l.adapted() && l.DWeight == nil && dbias == nil { // a frozen base: its dx added to the adapter's, as in Forward
		l.LoRA.backward(dx, dy, l.x, N, 0)
		l.dev.Gemm(false, false, N, l.In, l.Out, 1, dy, l.Weight, 1, dx)
		return dx
	}
	l.dev.LinearBackward(dx, l.DWeight, dbias, dy, l.x, l.Weight, N, l.In, l.Out)
	if l.adapted() {
		l.LoRA.backward(dx, dy, l.x, N, 1)
	}
	return dx
}

// rowsOfBackward returns the rows of dy (..., Out) after checking them against the last
// Forward's input.
func (l *Linear) rowsOfBackward(dy *kernels.Tensor) int {
	N := rowsOf("Linear.Backward", dy, l.Out)
	if l.x == nil || l.x.Len() != N*l.In {
		panic("nn: Linear.Backward without a matching Forward")
	}
	return N
}

// adapted reports whether an enabled LoRA adapter adds its term to the layer's product.
func (l *Linear) adapted() bool { return l.LoRA != nil && l.LoRA.Enabled }

// forwardGelu is Forward followed by GELU (Device.LinearGelu, one product on a GPU): it
// writes g = gelu(y) and returns y = x W^T + b (..., Out), kept for backwardGelu; with keep
// false it keeps nothing (y is not stored: a forward without a backward) and returns nil.
// Layers without an enabled adapter only.
func (l *Linear) forwardGelu(x, g *kernels.Tensor, keep bool) *kernels.Tensor {
	N := rowsOf("Linear.Forward", x, l.In)
	var y *kernels.Tensor
	if keep {
		y = l.out.get(l.dev, withLast(x.Shape, l.Out)...)
		kernels.StoreHalf(l.dev, y) // read by the next layer's GeluLinearBackward only
	}
	l.dev.LinearGelu(g, y, x, l.Weight, l.Bias, N, l.In, l.Out)
	l.x = x
	return y
}

// backwardGelu is Backward for a layer whose input x came out of gelu(h) (forwardGelu of the
// layer before): it returns dh = gelu'(h) ⊙ dx (..., In) (Device.GeluLinearBackward, dx's
// product with gelu' on a GPU) and adds dh's sums over the rows to dbiasH (nil: not at all),
// the bias gradient of the layer before. Layers without an enabled adapter only.
func (l *Linear) backwardGelu(dy, h, dbiasH *kernels.Tensor) *kernels.Tensor {
	N := l.rowsOfBackward(dy)
	dh := l.dx.get(l.dev, l.x.Shape...)
	kernels.StoreHalf(l.dev, dh) // read by the layer before's products only
	l.dev.GeluLinearBackward(dh, dbiasH, l.DWeight, l.DBias, dy, l.x, l.Weight, h, N, l.In, l.Out)
	return dh
}
