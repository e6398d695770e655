// The conformance cases of the kernels that use shared memory, barriers, shuffles and
// atomics, run with one OS thread per CUDA thread (the emulation's real-concurrency mode),
// so that races between the threads of a block would show.
//
// Test: go test ./kernels/cuda -run ConformanceThreads
package cuda

import "testing"

func TestConformanceThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("threads mode is slow; run without -short")
	}
	drv := NewEmuDriver()
	drv.Mode = EmuThreads
	dev := NewDevice(drv, "cuda-emu-threads")
	for _, c := range []struct {
		name string
		fn   func(e *env)
	}{
		{"BiasBackward", testBiasBackward},
		{"LayerNorm", testLayerNormSmall},
		{"Softmax", testSoftmax},
		{"Sum", testSum},
		{"Attention", testAttentionSmall},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(newEnv(t, dev)) })
	}
}
