// Package benchdev holds what the model benchmarks (training, sampling, Flow-DPO fine-tuning)
// share: the device they run on (the package's own CPU device, or with
// ALIGN_BENCH_PRECISION=bf16 a CPU device whose matrix products take BF16 inputs,
// kernels.CPU.SetGemmBF16, so that one benchmark measures either precision), and the
// PyTorch peer of the comparisons against PyTorch on the same CPU (Torch, TorchScript).
//
// Run: ALIGN_BENCH_PRECISION=bf16 go test ./diffusion -run '^$' -bench 'TrainStep|Sample$'
package benchdev

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

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

// Variants are the precisions a peer comparison runs, in order, and their devices: "fp32"
// on fp32, and "bf16" on the BF16 CPU device where the CPU has AVX512_BF16.
func Variants(fp32 kernels.Device) (names []string, devs map[string]kernels.Device) {
	names, devs = []string{"fp32"}, map[string]kernels.Device{"fp32": fp32}
	if d, err := bf16(); err == nil {
		names, devs["bf16"] = append(names, "bf16"), d
	}
	return names, devs
}

// Torch returns the interpreter with PyTorch for the peer benchmarks: $ALIGN_TORCH_PYTHON,
// else third_party/torch/bin/python under the checkout at root (make torch-cpu), else
// python3; it skips tb where none imports torch.
func Torch(tb testing.TB, root string) string {
	py := os.Getenv("ALIGN_TORCH_PYTHON")
	if py == "" {
		py = filepath.Join(root, "third_party", "torch", "bin", "python")
		if _, err := os.Stat(py); err != nil {
			py = "python3"
		}
	}
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		tb.Skip("torch not importable by " + py + " (make torch-cpu, or set ALIGN_TORCH_PYTHON)")
	}
	return py
}

// TorchModel is the architecture scripts/bench/dit_torch.py builds: a diffusion.ModelConfig's
// fields (this package cannot import diffusion, whose benchmarks import it).
type TorchModel struct {
	Width, Depth, Heads                   int
	MLPRatio                              float64
	Patch, ImageSize, Channels            int
	TextLen, TextWidth, TextHeads, Layers int
	Vocab                                 int
}

// Args are dit_torch.py's flags for m on the CPU.
func (m TorchModel) Args() []string {
	it := strconv.Itoa
	return []string{"--device", "cpu", "--width", it(m.Width), "--depth", it(m.Depth), "--heads", it(m.Heads),
		"--mlp-ratio", strconv.FormatFloat(m.MLPRatio, 'g', -1, 64), "--patch", it(m.Patch),
		"--image-size", it(m.ImageSize), "--channels", it(m.Channels), "--text-len", it(m.TextLen),
		"--text-width", it(m.TextWidth), "--text-heads", it(m.TextHeads), "--text-layers", it(m.Layers),
		"--vocab", it(m.Vocab)}
}

// TorchScript runs scripts/bench/dit_torch.py (under root) with py and args and decodes the
// JSON line it prints into out.
func TorchScript(tb testing.TB, py, root string, args []string, out any) {
	tb.Helper()
	args = append([]string{filepath.Join(root, "scripts", "bench", "dit_torch.py")}, args...)
	b, err := exec.Command(py, args...).Output()
	if err != nil {
		tb.Fatalf("%s %v: %v", py, args, err)
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), out); err != nil {
		tb.Fatalf("dit_torch.py printed %q: %v", b, err)
	}
}

// Median is the median seconds of n timed calls of f after warmup untimed ones.
func Median(f func(), warmup, n int) float64 {
	for range warmup {
		f()
	}
	ts := make([]float64, n)
	for i := range ts {
		t0 := time.Now()
		f()
		ts[i] = time.Since(t0).Seconds()
	}
	slices.Sort(ts)
	return ts[n/2]
}
