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
}

func (b *buffer) get(dev kernels.Device, shape ...int) *kernels.Tensor {
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

// release frees the storage (optional on the CPU).
func (b *buffer) release() {
	if b.t != nil {
		b.t.Dev.Free(b.t)
		b.t = nil
	}
}
