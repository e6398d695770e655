//go:build cuda

// GPU benchmarks against the hardware and the peers, each reference measured in the same run
// (build tag cuda):
//
//	BenchmarkKernelBandwidth  memory-bound kernels at 302 MB per tensor (beyond any L2), GB/s
//	                          as a fraction of the memory bandwidth from the device's memory
//	                          clock and bus width (frac_of_peak) and of a device-to-device
//	                          copy (frac_of_copy, what a kernel can reach)
//	BenchmarkGemmVsCublas     Device.Gemm in FP32, TF32 and BF16 against cublasGemmEx called
//	                          directly on the same operands (frac_of_cublas); BF16 includes the
//	                          device's conversion of the FP32 operands, cuBLAS gets them
//	                          converted beforehand
//	BenchmarkDiTBase          a training step (batch 32) and sampling (28 Euler steps, batch
//	                          16, guidance 4) of a DiT-B/2-sized model (ditBaseConfig, 132M
//	                          parameters) in FP32, TF32 and BF16: samples/s, images/s, GFLOP/s from
//	                          ModelConfig.ForwardFLOPs, the fraction of cuBLAS's rate on the
//	                          model's MLP GEMM, peak device memory; then the same model in
//	                          PyTorch (scripts/bench/dit_torch.py, when $ALIGN_PYTHON or
//	                          python3 has torch with CUDA) and the ratios align/PyTorch;
//	                          finetune-lora/bf16 and finetune-full/bf16: Flow-DPO steps
//	                          (align finetune's defaults), ms/step and pairs/s, and
//	                          pytorch-dpo the LoRA step in PyTorch (dit_torch.py
//	                          --dpo-pairs) as a ratio; pytorch-batch-1 PyTorch's sampling
//	                          one image at a time against align's;
//	                          profile/<precision> logs where a step's and a sampling run's
//	                          time goes, per kernel and GEMM shape, timed in the stream
//	                          (profile.go), profile/bf16-isolated each operation on its own
//
// Bench: make bench-cuda
package cuda

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorgonia.org/cu"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
)

// gpuSeconds returns the mean seconds of fn over b.N calls, after one untimed call.
func gpuSeconds(b *testing.B, dev kernels.Device, fn func()) float64 {
	b.Helper()
	// Two calls first: the first allocates, the second still takes some blocks of sizes
	// the first freed in another order (each allocation synchronises the GPU).
	fn()
	fn()
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.StartTimer() // a previous call stopped it
	for range b.N {
		fn()
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	return b.Elapsed().Seconds() / float64(b.N)
}

// peakBandwidth is the memory bandwidth in GB/s from the memory clock (double data rate)
// and the bus width, or 0 when the driver does not report them.
func peakBandwidth(d *Device) float64 {
	r, ok := d.drv.(*RealDriver)
	if !ok {
		return 0
	}
	clk, err1 := r.dev.Attribute(cu.MemoryClockRate)      // kHz
	bus, err2 := r.dev.Attribute(cu.GlobalMemoryBusWidth) // bits
	if err1 != nil || err2 != nil || clk <= 0 || bus <= 0 {
		return 0
	}
	return 2 * float64(clk) * 1e3 * float64(bus) / 8 / 1e9
}

// copyBandwidth times device-to-device copies of 256 MiB and returns GB/s counting the
// bytes read and written.
func copyBandwidth(b *testing.B, d *Device) float64 {
	const n, reps = 64 << 20, 20
	src, dst := d.New(n), d.New(n)
	defer func() { d.Free(src); d.Free(dst) }()
	d.Copy(dst, src)
	if err := d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for range reps {
		d.Copy(dst, src)
	}
	if err := d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	return 2 * 4 * n * reps / time.Since(t0).Seconds() / 1e9
}

func BenchmarkKernelBandwidth(b *testing.B) {
	d := openGPU(b)
	peak, cp := peakBandwidth(d), copyBandwidth(b, d)
	b.Logf("%s: memory bandwidth %.0f GB/s (memory clock x bus width), device-to-device copy %.0f GB/s (read + write)",
		d.Info().Name, peak, cp)
	const B, T, C = 64, 1024, 1152 // 75.5M floats, 302 MB per tensor
	N, n := B*T, B*T*C
	x, y, out := d.FromHost(normals(1, n), n), d.FromHost(normals(2, n), n), d.New(n)
	m, v := d.New(n), d.New(n)
	w, bias := d.FromHost(normals(3, C), C), d.FromHost(normals(4, C), C)
	shift, scale := d.FromHost(normals(5, B*C), B, C), d.FromHost(normals(6, B*C), B, C)
	mean, rstd := d.New(N), d.New(N)
	f := float64(n)
	cases := []struct {
		name  string
		bytes float64
		fn    func()
	}{
		{"Copy", 8 * f, func() { d.Copy(out, x) }},
		{"Fill", 4 * f, func() { d.Fill(out, 1) }},
		{"Add", 12 * f, func() { d.Add(out, x, y) }},
		{"Axpby", 12 * f, func() { d.Axpby(out, 0.5, x, 2, y) }},
		{"GeluForward", 8 * f, func() { d.GeluForward(out, x) }},
		{"GeluBackward", 12 * f, func() { d.GeluBackward(out, x, y) }},
		{"LayerNormForward", 8*f + 8*float64(N), func() { d.LayerNormForward(out, mean, rstd, x, w, bias, N, C, 1e-6) }},
		{"ModulateForward", 8 * f, func() { d.ModulateForward(out, x, shift, scale, B, T, C) }},
		{"SoftmaxForward", 8 * f, func() { d.SoftmaxForward(out, x, N, C) }},
		{"AdamW", 28 * f, func() {
			d.AdamW(out, y, m, v, kernels.AdamWParams{LR: 1e-6, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1})
		}},
		{"SumSquares", 4 * f, func() { d.SumSquares(x) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			gbs := c.bytes / gpuSeconds(b, d, c.fn) / 1e9
			b.ReportMetric(gbs, "GB/s")
			if peak > 0 {
				b.ReportMetric(gbs/peak, "frac_of_peak")
			}
			b.ReportMetric(gbs/cp, "frac_of_copy")
		})
	}
}

// cublasGemm returns a direct cublasGemmEx call computing the row-major c (m,n) = a (m,k)
// b (k,n) in precision p (the operand mapping of gemm.go), with BF16 operands converted
// once beforehand; release frees the converted operands.
func cublasGemm(d *Device, p GemmPrecision, m, n, k int, a, bm, c *kernels.Tensor) (call, release func()) {
	g := GemmArgs{M: n, N: m, K: k, Alpha: 1, A: d.ptr(bm), LDA: n, B: d.ptr(a), LDB: k, C: d.ptr(c), LDC: n, Batch: 1}
	release = func() {}
	switch p {
	case GemmTF32:
		g.Compute = ComputeTF32
	case GemmBF16:
		pa, relA := d.toBF16(d.ptr(a), m*k)
		pb, relB := d.toBF16(d.ptr(bm), k*n)
		g.A, g.AType, g.B, g.BType = pb, BFloat16, pa, BFloat16
		release = func() { relA(); relB() }
	}
	return func() { must("cublasGemmEx", d.drv.Gemm(g)) }, release
}

// cublasRate is cuBLAS's GFLOP/s on an (m,n,k) product in precision p.
func cublasRate(b *testing.B, d *Device, p GemmPrecision, m, n, k int) float64 {
	x, w, y := d.FromHost(normals(4, m*k), m, k), d.FromHost(normals(5, k*n), k, n), d.New(m, n)
	defer func() { d.Free(x); d.Free(w); d.Free(y) }()
	call, release := cublasGemm(d, p, m, n, k, x, w, y)
	defer release()
	const reps = 20
	call()
	if err := d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for range reps {
		call()
	}
	if err := d.Synchronize(); err != nil {
		b.Fatal(err)
	}
	return 2 * float64(m) * float64(n) * float64(k) * reps / time.Since(t0).Seconds() / 1e9
}

func BenchmarkGemmVsCublas(b *testing.B) {
	d := openGPU(b)
	defer d.SetGemmPrecision(GemmFP32)
	// A DiT-XL-like product, DiT-B/2's MLP at batch 32 (8704 tokens, 768 -> 3072), a square one.
	for _, s := range [][3]int{{4096, 4608, 1152}, {8704, 3072, 768}, {8192, 8192, 8192}} {
		m, n, k := s[0], s[1], s[2]
		x, w, y := d.FromHost(normals(4, m*k), m, k), d.FromHost(normals(5, k*n), k, n), d.New(m, n)
		flops := 2 * float64(m) * float64(n) * float64(k)
		for _, p := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, p), func(b *testing.B) {
				d.SetGemmPrecision(p)
				call, release := cublasGemm(d, p, m, n, k, x, w, y)
				defer release()
				ref := flops / gpuSeconds(b, d, call) / 1e12
				ours := flops / gpuSeconds(b, d, func() { d.Gemm(false, false, m, n, k, 1, x, w, 0, y) }) / 1e12
				b.ReportMetric(ours, "TFLOP/s")
				b.ReportMetric(ref, "cublas_TFLOP/s")
				b.ReportMetric(ours/ref, "frac_of_cublas")
			})
		}
		d.Free(x)
		d.Free(w)
		d.Free(y)
	}
}

// profileRows is the number of operations BenchmarkDiTBase's profiles list before summing the
// rest: the small kernels of a step are many, and together as long as the largest products.
const profileRows = 45

// ablationKinds are the runs of ablation a: "train", and "sample" unless a.trainOnly.
func ablationKinds(trainOnly bool) []string {
	if trainOnly {
		return []string{"train"}
	}
	return []string{"train", "sample"}
}

var (
	ditMu      sync.Mutex
	ditResults = map[string]float64{} // "train/fp32" -> samples/s, "sample/fp32" -> images/s
	// The PyTorch peer's runs, each a process of its own: pretraining and sampling, the
	// Flow-DPO step (--dpo-pairs), sampling one image at a time (--sample-only).
	torchMain, torchDPO, torchBatch1 torchRun
)

// torchRun is one run of the PyTorch peer, shared by the calls of its sub-benchmark (the
// testing package calls one more than once).
type torchRun struct {
	once sync.Once
	res  *torchResult
	err  error
}

// result runs the script with args on the first call and returns its result; it skips b
// where no PyTorch with CUDA is at hand.
func (r *torchRun) result(b *testing.B, args []string) *torchResult {
	py, err := torchPython()
	if err != nil {
		b.Skip(err)
	}
	r.once.Do(func() { r.res, r.err = runTorch(py, args) })
	if r.err != nil {
		b.Fatal(r.err)
	}
	return r.res
}

func BenchmarkDiTBase(b *testing.B) {
	cfg := ditBaseConfig()
	tok, err := diffusion.BuildTokenizer(ditBenchCaptions, 1, cfg.MaxTextLen)
	if err != nil {
		b.Fatal(err)
	}
	cfg.VocabSize = tok.VocabSize()
	C, H, T := cfg.Width, int(cfg.MLPRatio*float64(cfg.Width)), cfg.SeqLen()
	b.Logf("DiT: width %d, depth %d, heads %d, patch %d on %dx%d (%d tokens per sample), %.1fM parameters, %.1f GFLOP per sample forward",
		C, cfg.Depth, cfg.Heads, cfg.PatchSize, cfg.ImageSize, cfg.ImageSize, T, float64(cfg.ParamCount())/1e6, cfg.ForwardFLOPs()/1e9)
	precs := []GemmPrecision{GemmFP32, GemmTF32, GemmBF16}
	// setup opens the GPU in precision p and builds the workload; the device closes (and
	// frees everything) when the sub-benchmark ends.
	setup := func(b *testing.B, p GemmPrecision) (*Device, *ditWorkload) {
		d := openGPU(b)
		d.SetGemmPrecision(p)
		w, err := newDiTWorkload(d, cfg, ditTrainBatch, ditSampleBatch)
		if err != nil {
			b.Fatal(err)
		}
		return d, w
	}
	report := func(b *testing.B, d *Device, key string, perSec, flops, sec, gemm float64) {
		g := flops / sec / 1e9
		b.ReportMetric(g, "GFLOP/s")
		b.ReportMetric(g/gemm, "frac_of_cublas")
		b.ReportMetric(float64(d.MemStats().Peak)/(1<<30), "peak_GiB")
		ditMu.Lock()
		ditResults[key] = perSec
		ditMu.Unlock()
	}
	for _, p := range precs {
		b.Run("train/"+p.String(), func(b *testing.B) {
			d, w := setup(b, p)
			gemm := cublasRate(b, d, p, ditTrainBatch*T, H, C)
			sec := gpuSeconds(b, d, func() { w.trainStep() })
			b.ReportMetric(sec, "s/step")
			b.ReportMetric(ditTrainBatch/sec, "samples/s")
			flops := 3 * ditTrainBatch * cfg.ForwardFLOPs()
			report(b, d, "train/"+p.String(), ditTrainBatch/sec, flops, sec, gemm)
			if peak := denseBF16Peak(d.Info().Name); p == GemmBF16 && peak > 0 {
				b.Logf("BF16 training step: %.2f ms, %.1f TFLOP/s: %.1f%% of the %s's dense BF16 peak (%.0f TFLOP/s; the goal is 30%%, a %.1f ms step)",
					1e3*sec, flops/sec/1e12, 100*flops/sec/1e12/peak, d.Info().Name, peak, 1e3*flops/(0.3*peak*1e12))
			}
		})
	}
	for _, p := range precs {
		b.Run("sample/"+p.String(), func(b *testing.B) {
			d, w := setup(b, p)
			gemm := cublasRate(b, d, p, 2*ditSampleBatch*T, H, C)
			var seed uint64
			sec := gpuSeconds(b, d, func() {
				seed++
				if err := w.sample(ditSteps, seed); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(sec, "s/run")
			b.ReportMetric(ditSampleBatch/sec, "images/s")
			// Each step evaluates the conditional and unconditional halves: 2B forward passes,
			// the captions encoded once per run.
			report(b, d, "sample/"+p.String(), ditSampleBatch/sec, ditSampleBatch*cfg.SampleFLOPs(ditSteps, 2), sec, gemm)
		})
	}
	// The order puts first what a GPU run must not lose to a time limit: the figures above,
	// PyTorch on the same model, the BF16 profile and Flow-DPO; then the ablations, the other
	// profiles and the tuning.

	// Where the time goes: one training step and one sampling run per precision with every
	// launch and GEMM timed in the stream (profile.go: the shares of a plain run), and the
	// BF16 ones again with every operation timed on its own ("isolated": each kernel's own
	// time, of a slower run). The testing package calls a sub-benchmark more than once
	// (b.N = 1, then -benchtime's); the profile is taken on the first call only.
	profiled := map[string]bool{}
	profile := func(name string, p GemmPrecision, tune int, isolated bool) {
		b.Run("profile/"+name, func(b *testing.B) {
			if profiled[name] {
				return
			}
			profiled[name] = true
			drv, err := NewRealDriver(0)
			if err != nil {
				b.Skipf("no GPU: %v", err)
			}
			prof := NewProfiler(drv)
			if !isolated {
				if prof, err = NewStreamProfiler(drv); err != nil {
					b.Fatal(err)
				}
			}
			d := NewDevice(prof, "cuda:0")
			defer d.Close()
			d.SetGemmPrecision(p)
			d.SetGemmTuning(tune)
			w, err := newDiTWorkload(d, cfg, ditTrainBatch, ditSampleBatch)
			if err != nil {
				b.Fatal(err)
			}
			w.trainStep() // warm-up: allocations, module loads
			prof.Reset()
			w.trainStep()
			var sb strings.Builder
			if err := prof.Report(&sb, profileRows); err != nil {
				b.Fatal(err)
			}
			b.Logf("training step, batch %d, %s:\n%s", ditTrainBatch, name, sb.String())
			prof.Reset()
			sb.Reset()
			if err := w.sample(ditSteps, 1); err != nil {
				b.Fatal(err)
			}
			if err := prof.Report(&sb, profileRows); err != nil {
				b.Fatal(err)
			}
			b.Logf("sampling, %d steps, batch %d, %s:\n%s", ditSteps, ditSampleBatch, name, sb.String())
		})
	}
	b.Run("pytorch", func(b *testing.B) {
		r := torchMain.result(b, torchArgs(cfg, ditTrainBatch, ditSampleBatch, ditSteps, 5))
		if r.Params != cfg.ParamCount() {
			b.Logf("the PyTorch model has %d parameters, align's %d: the comparison is off", r.Params, cfg.ParamCount())
		}
		ditMu.Lock()
		defer ditMu.Unlock()
		for _, p := range precs {
			v, ok := r.Variants[p.String()]
			if !ok {
				b.Fatalf("%s: no %s result", torchScript, p)
			}
			b.ReportMetric(v.TrainSamplesPerS, "train_"+p.String()+"_samples/s")
			b.ReportMetric(v.ImagesPerS, "sample_"+p.String()+"_images/s")
			line := fmt.Sprintf("%s %s: PyTorch train %.1f samples/s, sample %.2f images/s", r.Framework, p, v.TrainSamplesPerS, v.ImagesPerS)
			if ours, ok := ditResults["train/"+p.String()]; ok {
				b.ReportMetric(ours/v.TrainSamplesPerS, "train_"+p.String()+"_align/torch")
				line += fmt.Sprintf("; align train %.1f samples/s (%.2fx)", ours, ours/v.TrainSamplesPerS)
			}
			if ours, ok := ditResults["sample/"+p.String()]; ok {
				b.ReportMetric(ours/v.ImagesPerS, "sample_"+p.String()+"_align/torch")
				line += fmt.Sprintf(", sample %.2f images/s (%.2fx)", ours, ours/v.ImagesPerS)
			}
			b.Log(line)
		}
		b.Logf("PyTorch on %s, %d parameters, peak %.1f GiB allocated", r.Device, r.Params, r.PeakGiB)
	})
	profile(GemmBF16.String(), GemmBF16, 0, false)
	// Flow-DPO fine-tuning in BF16 with align finetune's defaults (8 pairs a step: the
	// policy's forward and backward and the reference's forward on 16 samples), through a
	// LoRA adapter of rank 16 on qkv and proj, and of every weight.
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "lora", true: "full"}[full]
		b.Run("finetune-"+name+"/bf16", func(b *testing.B) {
			d := openGPU(b)
			d.SetGemmPrecision(GemmBF16)
			tr, err := newDPOTrainer(d, cfg, full, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			sec := gpuSeconds(b, d, func() { tr.TrainOneStep() })
			pairs := float64(dpo.DefaultConfig().TrainBatchSize)
			b.ReportMetric(1e3*sec, "ms/step")
			b.ReportMetric(pairs/sec, "pairs/s")
			b.Logf("Flow-DPO fine-tuning (%s), BF16: %.2f ms a step of %.0f pairs, %.1f pairs/s", name, 1e3*sec, pairs, pairs/sec)
			ditMu.Lock()
			ditResults["finetune-"+name+"/bf16"] = pairs / sec
			ditMu.Unlock()
		})
	}
	// The same LoRA step in PyTorch (PEFT's way of computing the adapters, autocast to
	// bfloat16), as a ratio.
	b.Run("pytorch-dpo", func(b *testing.B) {
		r := torchDPO.result(b, torchDPOArgs(cfg, 5))
		v, ok := r.Variants["bf16"]
		if !ok || !(v.DPOPairsPerS > 0) {
			b.Fatalf("%s --dpo-pairs: no bf16 result", torchScript)
		}
		b.ReportMetric(v.DPOPairsPerS, "dpo_lora_bf16_pairs/s")
		line := fmt.Sprintf("%s Flow-DPO fine-tuning (lora), bf16: PyTorch %.1f pairs/s", r.Framework, v.DPOPairsPerS)
		ditMu.Lock()
		if ours, ok := ditResults["finetune-lora/bf16"]; ok {
			b.ReportMetric(ours/v.DPOPairsPerS, "dpo_lora_bf16_align/torch")
			line += fmt.Sprintf("; align %.1f pairs/s (%.2fx)", ours, ours/v.DPOPairsPerS)
		}
		ditMu.Unlock()
		b.Log(line)
	})
	// What each feature buys: the BF16 step and sampling run with one of them off, in the
	// same run as the full BF16 figures above (ratios logged by "ablations").
	for _, a := range deviceFeatures {
		for _, kind := range ablationKinds(a.trainOnly) {
			key := kind + "/bf16-" + a.name
			b.Run(key, func(b *testing.B) {
				d, w := setup(b, GemmBF16)
				a.off(d)
				if kind == "train" {
					sec := gpuSeconds(b, d, func() { w.trainStep() })
					b.ReportMetric(ditTrainBatch/sec, "samples/s")
					ditMu.Lock()
					ditResults[key] = ditTrainBatch / sec
					ditMu.Unlock()
					return
				}
				var seed uint64
				sec := gpuSeconds(b, d, func() {
					seed++
					if err := w.sample(ditSteps, seed); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(ditSampleBatch/sec, "images/s")
				ditMu.Lock()
				ditResults[key] = ditSampleBatch / sec
				ditMu.Unlock()
			})
		}
	}
	b.Run("ablations", func(b *testing.B) {
		ditMu.Lock()
		defer ditMu.Unlock()
		for _, a := range deviceFeatures {
			for _, kind := range ablationKinds(a.trainOnly) {
				full, okFull := ditResults[kind+"/bf16"]
				off, okOff := ditResults[kind+"/bf16-"+a.name]
				if okFull && okOff {
					b.Logf("BF16 %s: %.4g/s, with %s off %.4g/s: %s buys %.2fx", kind, full, a.name, off, a.name, full/off)
				}
			}
		}
	})
	// Sampling one image at a time (with CFG, two passes of 272 tokens a step: the products
	// limited by their weights' reads), BF16 with and without the weights converted once
	// (KeepHalf), in the same run.
	small := map[bool]float64{}
	for _, keep := range []bool{true, false} {
		b.Run(fmt.Sprintf("sample-batch-1/bf16-keep-half-%v", keep), func(b *testing.B) {
			d := openGPU(b)
			d.SetGemmPrecision(GemmBF16)
			d.noKeepHalf = !keep
			w, err := newDiTWorkload(d, cfg, ditTrainBatch, 1)
			if err != nil {
				b.Fatal(err)
			}
			var seed uint64
			sec := gpuSeconds(b, d, func() {
				seed++
				if err := w.sample(ditSteps, seed); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(1/sec, "images/s")
			small[keep] = 1 / sec
			if keep {
				return
			}
			if on, ok := small[true]; ok {
				b.Logf("BF16 sampling at batch 1: %.4g images/s, with keep-half off %.4g/s: keep-half buys %.2fx", on, 1/sec, on*sec)
			}
		})
	}
	// Sampling one image at a time in PyTorch (its host-side dispatch at every operation), as a
	// ratio.
	b.Run("pytorch-batch-1", func(b *testing.B) {
		r := torchBatch1.result(b, torchBatch1Args(cfg, 5))
		v, ok := r.Variants["bf16"]
		if !ok || !(v.ImagesPerS > 0) {
			b.Fatalf("%s --sample-only: no bf16 result", torchScript)
		}
		b.ReportMetric(v.ImagesPerS, "sample_batch1_bf16_images/s")
		line := fmt.Sprintf("%s BF16 sampling at batch 1: PyTorch %.2f images/s", r.Framework, v.ImagesPerS)
		if on, ok := small[true]; ok {
			b.ReportMetric(on/v.ImagesPerS, "sample_batch1_bf16_align/torch")
			line += fmt.Sprintf("; align %.2f images/s (%.2fx)", on, on/v.ImagesPerS)
		}
		b.Log(line)
	})
	for _, p := range []GemmPrecision{GemmFP32, GemmTF32} {
		profile(p.String(), p, 0, false)
	}
	profile("bf16-isolated", GemmBF16, 0, true)
	// GEMM tuning: the BF16 step and sampling run with the fastest of cuBLASLt's first
	// gemmTuneAlgos algorithms for each product shape (timed in the warm-up calls), against
	// the untuned BF16 figures above, and the tuned step's profile. Last, so that a failure
	// of the tuning costs no other figure.
	for _, kind := range []string{"train", "sample"} {
		b.Run(kind+"/bf16-tuned", func(b *testing.B) {
			d, w := setup(b, GemmBF16)
			if !d.SetGemmTuning(gemmTuneAlgos) {
				b.Skip("the driver does not tune")
			}
			var perSec float64
			if kind == "train" {
				perSec = ditTrainBatch / gpuSeconds(b, d, func() { w.trainStep() })
				b.ReportMetric(perSec, "samples/s")
			} else {
				var seed uint64
				perSec = ditSampleBatch / gpuSeconds(b, d, func() {
					seed++
					if err := w.sample(ditSteps, seed); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(perSec, "images/s")
			}
			ditMu.Lock()
			defer ditMu.Unlock()
			if full, ok := ditResults[kind+"/bf16"]; ok {
				b.Logf("BF16 %s: %.4g/s tuned, %.4g/s untuned: tuning buys %.2fx", kind, perSec, full, perSec/full)
			}
		})
	}
	profile("bf16-tuned", GemmBF16, gemmTuneAlgos, false)
}

// gemmTuneAlgos is how many of cuBLASLt's algorithms per product shape the tuned runs time.
const gemmTuneAlgos = 8
