// Layer-owned device buffers that grow on demand, so steady-state training allocates
// nothing (see "Buffer ownership" in doc.go).
//
// Test: go test ./nn -run Buffer

package nn

import "github.com/alignkit/align/kernels"

// buffer is a device tensor owned by a layer. get returns a view of the requested shape
// on the front of the storage, reallocating only when more elements are needed than ever
// before; the previous storage is freed then, so views handed out earlier are invalid.
type buffer struct {
	t *kernels.Tensor // (capacity)
	// shared, where not nil, is the buffer whose storage get hands out instead: a layer of a
	// forward pass that keeps nothing for a backward runs in another layer's buffers
	// (DiTBlock.ShareForwardBuffers).
	shared *buffer
}

func (b *buffer) get(dev kernels.Device, shape ...int) *kernels.Tensor {
	if b.shared != nil {
		return b.shared.get(dev, shape...)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if b.t == nil || b.t.Len() < n || b.t.Dev != dev {
		if b.t != nil {
			b.t.Dev.Free(b.t)
		}
		b.t = dev.New(n)
	}
	return b.t.View(0, shape...)
}

// shareBuffers points each of dst at the buffer of src in the same place, or with src nil
// back at its own storage.
func shareBuffers(dst, src []*buffer) {
	for i, b := range dst {
		b.shared = nil
		if src != nil {
			b.shared = src[i]
		}
	}
}

// release frees the buffer's own storage (optional on the CPU).
func (b *buffer) release() {
	if b.t != nil {
		b.t.Dev.Free(b.t)
		b.t = nil
	}
}
