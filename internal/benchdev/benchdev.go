// Package benchdev picks the device of the model benchmarks (training, sampling, Flow-DPO
// fine-tuning): the package's own CPU device, or with ALIGN_BENCH_PRECISION=bf16 a CPU device
// whose matrix products take BF16 inputs (kernels.CPU.SetGemmBF16), so that one benchmark
// measures either precision.
//
// Run: ALIGN_BENCH_PRECISION=bf16 go test ./diffusion -run '^$' -bench 'TrainStep|Sample$'
package benchdev

import (
	"os"
	"sync"
	"testing"

	"github.com/alignkit/align/kernels"
)

// bf16 is the BF16 CPU device, made once (nil with the reason where the CPU has no
// AVX512_BF16).
var bf16 = sync.OnceValues(func() (kernels.Device, error) {
	d := kernels.NewCPU(0)
	if err := d.SetGemmBF16(true); err != nil {
		return nil, err
	}
	return d, nil
})

// Device returns fp32 (the benchmark's usual device) or, with ALIGN_BENCH_PRECISION=bf16,
// the BF16 CPU device; it skips tb where the CPU cannot multiply in BF16.
func Device(tb testing.TB, fp32 kernels.Device) kernels.Device {
	if os.Getenv("ALIGN_BENCH_PRECISION") != "bf16" {
		return fp32
	}
	d, err := bf16()
	if err != nil {
		tb.Skip(err)
	}
	return d
}
