// StoreHalf: the hint that a tensor is only ever read by matrix products (or by operations
// that can read BF16 values: attention, the gate), so that a device whose products take BF16
// inputs may keep it in BF16 alone. KeepHalf: the hint that a tensor is read by many products
// between two writes (a weight), so that such a device converts it once.
//
// Test: go test ./kernels/cuda -run HalfOnly
package kernels

// HalfStorer is implemented by devices that can keep a tensor's values in BF16 only: the
// CUDA device in its BF16 mode, whose producing kernels then write the BF16 values the
// products read and no FP32 ones (half the traffic and memory). Any other read of the
// tensor still works and sees the BF16 values widened back to FP32.
type HalfStorer interface {
	// StoreHalf marks t's storage as read by products only (Gemm, Linear and
	// LinearBackward operands; attention's qkv and output gradient, the gates' y, which the
	// CUDA device reads from BF16) until it is freed.
	StoreHalf(t *Tensor)
}

// StoreHalf passes the hint to dev where it takes it; other devices keep t in FP32.
func StoreHalf(dev Device, t *Tensor) {
	if h, ok := dev.(HalfStorer); ok {
		h.StoreHalf(t)
	}
}

// HalfKeeper is implemented by devices that can keep a BF16 copy of a tensor beside its FP32
// values: the CUDA device in its BF16 mode.
type HalfKeeper interface {
	// KeepHalf marks t's storage as read by many products between two writes (a layer's
	// weight: every sampling step, every training step until the optimizer's update), so
	// that a product converts it to BF16 once, into the copy later products read, whatever
	// that one product's own cost of converting it.
	KeepHalf(t *Tensor)
}

// KeepHalf passes the hint to dev where it takes it.
func KeepHalf(dev Device, t *Tensor) {
	if h, ok := dev.(HalfKeeper); ok {
		h.KeepHalf(t)
	}
}
