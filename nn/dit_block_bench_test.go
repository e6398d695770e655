// Benchmark of one DiT block's forward+backward at a realistic size (batch 16, 16 text + 256
// image tokens, width 256, 4 heads), reported as ms, achieved GFLOP/s, the fraction of the
// device's GEMM rate measured in the same run (kernels.GemmProbe, 1024^3), and, where JAX is
// installed, the time of the same block in JAX on the CPU as a ratio (jax_ms / ours_ms > 1
// means ours is faster). The JAX run is scripts/bench/dit_block_jax.py; the interpreter is
// $ALIGN_PYTHON or python3.
//
// Run: go test ./nn -run '^$' -bench DiTBlock -benchtime 10x
package nn

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alignkit/align/kernels"
)

const (
	benchB, benchText, benchImg, benchC, benchNH = 16, 16, 256, 256, 4
	benchT                                       = benchText + benchImg
)

// ditBlockFlops counts the matmul flops of one forward+backward (backward = 2x forward):
// linears 2*N*C*(3C + C + 4C + 4C), attention 4*B*T*T*C, adaLN 2*B*Dc*6C.
func ditBlockFlops(B, T, C, Dc int) float64 {
	N := float64(B * T)
	fwd := 2*N*float64(C)*12*float64(C) + 4*float64(B)*float64(T)*float64(T)*float64(C) + 2*float64(B*Dc*6*C)
	return 3 * fwd
}

var (
	benchPeerOnce sync.Once
	benchGemmRate float64 // GFLOP/s of the device's Gemm at 1024^3
	benchJAXms    float64 // 0 when JAX is not available
	benchJAXerr   string
)

// benchPeers measures, once per run, the GEMM rate and the JAX time of the same block.
func benchPeers(dev kernels.Device) {
	benchPeerOnce.Do(func() {
		benchGemmRate = kernels.GemmProbe(dev, time.Second)
		py := os.Getenv("ALIGN_PYTHON")
		if py == "" {
			py = "python3"
		}
		if err := exec.Command(py, "-c", "import jax").Run(); err != nil {
			benchJAXerr = "JAX not importable by " + py + " (set ALIGN_PYTHON or run make pyenv)"
			return
		}
		script := filepath.Join("..", "scripts", "bench", "dit_block_jax.py")
		out, err := exec.Command(py, script, "--batch", strconv.Itoa(benchB), "--text", strconv.Itoa(benchText),
			"--tokens", strconv.Itoa(benchImg), "--width", strconv.Itoa(benchC), "--heads", strconv.Itoa(benchNH),
			"--cond", strconv.Itoa(benchC)).Output()
		if err != nil {
			benchJAXerr = "JAX benchmark failed: " + err.Error()
			return
		}
		var r struct {
			MS float64 `json:"ms"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
			benchJAXerr = "JAX benchmark printed " + string(out)
			return
		}
		benchJAXms = r.MS
	})
}

func BenchmarkDiTBlock(b *testing.B) {
	dev := kernels.NewCPU(0)
	rng := &kernels.RNG{Seed: 1}
	blk := NewDiTBlock(dev, rng, DiTBlockConfig{C: benchC, NH: benchNH})
	// adaLN-Zero starts at zero, which would make the gates zero; draw it like a trained block.
	blk.Ada.InitNormal(rng, 0.02)
	x, c, dout := dev.New(benchB, benchT, benchC), dev.New(benchB, benchC), dev.New(benchB, benchT, benchC)
	rng.Normal(x)
	rng.Normal(c)
	rng.Normal(dout)
	// Padded text keys as in real batches: the last 6 text tokens of every sample.
	kb := make([]float32, benchB*benchT)
	for i := range benchB {
		for j := 10; j < benchText; j++ {
			kb[i*benchT+j] = float32(math.Inf(-1))
		}
	}
	keyBias := dev.FromHost(kb, benchB, benchT)
	benchPeers(dev)

	blk.Forward(x, c, keyBias)
	blk.Backward(dout)
	b.ResetTimer()
	for range b.N {
		blk.Forward(x, c, keyBias)
		blk.Backward(dout)
	}
	_ = dev.Synchronize()
	sec := b.Elapsed().Seconds() / float64(b.N)
	gflops := ditBlockFlops(benchB, benchT, benchC, benchC) / sec / 1e9
	b.ReportMetric(sec*1e3, "ms/step")
	b.ReportMetric(gflops, "GFLOP/s")
	b.ReportMetric(benchGemmRate, "gemm_GFLOP/s")
	b.ReportMetric(gflops/benchGemmRate, "frac_of_gemm")
	if benchJAXms > 0 {
		b.ReportMetric(benchJAXms, "jax_ms")
		b.ReportMetric(benchJAXms/(sec*1e3), "jax_ms/ours_ms")
	} else {
		b.Log(benchJAXerr)
	}
}
