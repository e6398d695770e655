// MLP: the transformer feed-forward block Linear -> GELU(tanh) -> Linear.
//
// Test: go test ./nn -run MLP

package nn

import "github.com/alignkit/align/kernels"

// MLP computes, over the last dimension of x (..., C),
//
//	y = fc2(gelu(fc1(x))),  fc1: C -> Hidden, fc2: Hidden -> C, both with bias,
//
// with gelu(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))) (the tanh approximation,
// as DiT's approx_gelu). Without LoRA adapters on its layers, GELU goes with the products
// beside it: fc1's forward writes gelu(h) (Device.LinearGelu) and fc2's backward writes dh =
// gelu'(h) ⊙ dg and sums fc1's bias gradient (Device.GeluLinearBackward), which on a GPU
// are epilogues of the products.
type MLP struct {
	C, Hidden int // e.g. 384, 1536

	FC1 *Linear // C -> Hidden
	FC2 *Linear // Hidden -> C

	// ForwardOnly: Forward keeps no pre-activation h for Backward (which then panics): g
	// alone is written, where a GPU's GELU epilogue would also write h. A model sets it for
	// forward passes that no backward follows (sampling; a Flow-DPO reference).
	ForwardOnly bool

	dev kernels.Device
	h   *kernels.Tensor // (N, Hidden) fc1 output of the last Forward (owned by FC1); nil after a ForwardOnly one
	g   buffer          // (N, Hidden) gelu(h)
}

// forwardBuffers are the buffers Forward writes, its layers' with them
// (DiTBlock.ShareForwardBuffers).
func (m *MLP) forwardBuffers() []*buffer {
	return append(append([]*buffer{&m.g}, m.FC1.forwardBuffers()...), m.FC2.forwardBuffers()...)
}

// backwardBuffers are the buffers Backward writes: its layers' (DiTBlock.ShareBackwardBuffers).
func (m *MLP) backwardBuffers() []*buffer {
	return append(m.FC1.backwardBuffers(), m.FC2.backwardBuffers()...)
}

// NewMLP allocates an MLP with Xavier-normal weights drawn from r and zero biases.
func NewMLP(dev kernels.Device, r Rand, C, hidden int) *MLP {
	return &MLP{C: C, Hidden: hidden, dev: dev,
		FC1: NewLinear(dev, r, C, hidden, true),
		FC2: NewLinear(dev, r, hidden, C, true)}
}

// Params lists "fc1.*" and "fc2.*".
func (m *MLP) Params() []Param {
	return append(prefixed("fc1", m.FC1.Params()), prefixed("fc2", m.FC2.Params())...)
}

// Forward maps x (..., C) to y (..., C).
func (m *MLP) Forward(x *kernels.Tensor) *kernels.Tensor {
	g := m.g.get(m.dev, withLast(x.Shape, m.Hidden)...)
	kernels.StoreHalf(m.dev, g) // read by fc2's products only
	if m.FC1.adapted() {
		m.h = m.FC1.Forward(x)
		m.dev.GeluForward(g, m.h)
	} else {
		m.h = m.FC1.forwardGelu(x, g, !m.ForwardOnly)
	}
	return m.FC2.Forward(g)
}

// Backward takes dy (..., C) and returns dx (..., C).
func (m *MLP) Backward(dy *kernels.Tensor) *kernels.Tensor {
	if m.h == nil {
		panic("nn: MLP.Backward after a ForwardOnly Forward (no pre-activation kept)")
	}
	if m.FC2.adapted() {
		dh := m.FC2.Backward(dy) // dg, turned into dh in place
		m.dev.GeluBackward(dh, m.h, dh)
		return m.FC1.Backward(dh)
	}
	dh := m.FC2.backwardGelu(dy, m.h, m.FC1.DBias)
	return m.FC1.backward(dh, nil)
}

// SetTrainable freezes (false) or unfreezes both layers' weights and biases.
func (m *MLP) SetTrainable(on bool) {
	m.FC1.SetTrainable(on)
	m.FC2.SetTrainable(on)
}
