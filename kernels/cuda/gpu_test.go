//go:build cuda

// The conformance suite on the GPU (build tag cuda): the same cases as the emulated run,
// on the real driver, plus a check that launches and copies keep their order on the stream.
//
// Test: make test-cuda   (go test -tags cuda ./kernels/cuda on a machine with a GPU)
package cuda

import "testing"

func openGPU(t testing.TB) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestConformanceGPU(t *testing.T) {
	d := openGPU(t)
	info := d.Info()
	t.Logf("%s: compute capability %d.%d, %d SMs, %d MiB, driver %d", info.Name, info.Major, info.Minor,
		info.SMs, info.TotalMem>>20, info.DriverVersion)
	runConformance(t, d)
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
}

// The BF16 copies on the GPU: every copy read equals a fresh conversion (checkHalves), and
// the block's results match those without copies (cuBLAS may pick other algorithms for the
// copies' alignment, so within BF16 rounding rather than bit for bit).
func TestHalfCopyDiTBlockGPU(t *testing.T) {
	checkHalfCopyDiTBlock(t, func() *Device { return openGPU(t) }, 2e-2)
}

// The profile timed in the stream on the GPU: the real driver's events (checkStreamProfile).
func TestStreamProfilerGPU(t *testing.T) { checkStreamProfile(t, openGPU(t)) }
