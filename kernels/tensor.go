// Tensor: a shape plus a float32 buffer that lives on exactly one Device.
//
// Callers never index a tensor's buffer on the host: they hand tensors to Device
// operations and copy explicitly with Device.CopyToHost / Device.FromHost. That is what
// lets a CUDA device slot in under the layers without changing them.
//
// Test: go test ./kernels -run Tensor
package kernels

import (
	"fmt"
	"strings"
)

// Storage is the device memory behind one or more tensors. Each Device defines its own
// concrete type (a host slice for the CPU, a device pointer for CUDA).
type Storage interface {
	// Cap is the number of float32 elements the storage holds.
	Cap() int
}

// Tensor is a contiguous row-major float32 array of Shape on Device, starting Offset
// elements into Storage. Views (View, Reshape) share storage with their parent.
type Tensor struct {
	Shape  []int
	Dev    Device
	Mem    Storage
	Offset int
}

// Len is the number of elements, the product of Shape.
func (t *Tensor) Len() int { return numel(t.Shape) }

// Dim returns Shape[i]; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// View returns a tensor of the given shape that starts offset elements into t and shares
// its storage. It panics if the view does not fit inside t.
func (t *Tensor) View(offset int, shape ...int) *Tensor {
	n := numel(shape)
	if offset < 0 || offset+n > t.Len() {
		panic(fmt.Sprintf("kernels: view [%d, %d) of shape %v out of range of tensor %v", offset, offset+n, shape, t.Shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Dev: t.Dev, Mem: t.Mem, Offset: t.Offset + offset}
}

// Reshape returns a view with the same elements and a new shape; one dimension may be -1.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	infer, known := -1, 1
	for i, d := range s {
		if d == -1 {
			if infer >= 0 {
				panic("kernels: reshape with more than one -1")
			}
			infer = i
			continue
		}
		known *= d
	}
	if infer >= 0 {
		if known == 0 || t.Len()%known != 0 {
			panic(fmt.Sprintf("kernels: cannot reshape %v to %v", t.Shape, shape))
		}
		s[infer] = t.Len() / known
	}
	if numel(s) != t.Len() {
		panic(fmt.Sprintf("kernels: cannot reshape %v (%d elements) to %v", t.Shape, t.Len(), shape))
	}
	return &Tensor{Shape: s, Dev: t.Dev, Mem: t.Mem, Offset: t.Offset}
}

// Row returns the i-th slice along the first dimension as a view.
func (t *Tensor) Row(i int) *Tensor {
	inner := numel(t.Shape[1:])
	return t.View(i*inner, t.Shape[1:]...)
}

func (t *Tensor) String() string {
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		parts[i] = fmt.Sprint(d)
	}
	name := "<nil device>"
	if t.Dev != nil {
		name = t.Dev.Name()
	}
	return fmt.Sprintf("Tensor(%s)[%s]", name, strings.Join(parts, ","))
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b *Tensor) bool {
	if len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("kernels: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}
