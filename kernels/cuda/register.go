// Registration of the emulated CUDA device as "cuda-emu" (kernels.Open): the whole model
// runs through the CPU emulation of the kernels, slowly, which is useful to debug the CUDA
// path on a machine without a GPU. The GPU itself registers as "cuda" (realdriver.go).
//
// Test: go test ./kernels/cuda -run Register
package cuda

import "github.com/alignkit/align/kernels"

func init() {
	kernels.Register("cuda-emu", func() (kernels.Device, error) { return NewEmulated(), nil })
}
