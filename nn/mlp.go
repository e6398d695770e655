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
// as DiT's approx_gelu).
type MLP struct {
	C, Hidden int // e.g. 384, 1536

	FC1 *Linear // C -> Hidden
	FC2 *Linear // Hidden -> C

	dev kernels.Device
	h   *kernels.Tensor // (N, Hidden) fc1 output of the last Forward (owned by FC1)
	g   buffer          // (N, Hidden) gelu(h)
	dh  buffer          // (N, Hidden)
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
	m.h = m.FC1.Forward(x)
	g := m.g.get(m.dev, m.h.Shape...)
	kernels.StoreHalf(m.dev, g) // read by fc2's products only
	m.dev.GeluForward(g, m.h)
	return m.FC2.Forward(g)
}

// Backward takes dy (..., C) and returns dx (..., C).
func (m *MLP) Backward(dy *kernels.Tensor) *kernels.Tensor {
	dg := m.FC2.Backward(dy)
	dh := m.dh.get(m.dev, m.h.Shape...)
	kernels.StoreHalf(m.dev, dh) // read by fc1's products only
	m.dev.GeluBackward(dh, m.h, dg)
	return m.FC1.Backward(dh)
}

// SetTrainable freezes (false) or unfreezes both layers' weights and biases.
func (m *MLP) SetTrainable(on bool) {
	m.FC1.SetTrainable(on)
	m.FC2.SetTrainable(on)
}
