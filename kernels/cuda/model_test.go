// Whole-model checks of a CUDA device against the CPU device: one training step of a DiT
// (forward, backward, gradient clipping, AdamW) and a sampling run (Euler steps with
// classifier-free guidance), from the same weights, batch and random streams on both.
// Here they run on the emulated device at a tiny size; model_gpu_test.go runs the same
// helpers on a GPU at a larger size (make test-cuda). cmd/align's
// TestSampleEmulatedCUDAMatchesCPU and TestFinetuneEmulatedCUDAMatchesCPU cover the
// command-line paths on the emulated device.
//
// Tolerances. With FP32 GEMMs (no TF32) the devices compute the same operations and differ
// only in the order of float32 sums (GEMM blocking, warp reductions in layernorm, softmax and
// attention), so every value differs by a few units of float32 rounding (2^-24 = 6e-8)
// amplified through the layers. Element-wise comparison of gradients is fragile (an element
// that is the difference of two large terms keeps only the absolute error), so gradients are
// compared per parameter tensor in the L2 norm, ||g_dev - g_cpu|| <= rtol ||g_cpu||; losses,
// the gradient norm and samples relatively. AdamW's first step moves each weight by
// lr*g/(|g|+eps) (bias-corrected moments m = g, v = g^2), and for any a, b
// |a/(|a|+e) - b/(|b|+e)| <= |a-b|/(max(|a|,|b|)+e), so the updated weights must agree to
// lr*|dg|/(max(|g_cpu|,|g_dev|)+eps) element-wise, plus the rounding of the update itself:
// an element whose gradient is below the rounding noise may move the other way on the
// device, and only such elements get that freedom.
//
// Test: go test ./kernels/cuda -run Model
package cuda

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// modelTol are the tolerances of a whole-model comparison (relative unless noted).
type modelTol struct {
	Loss      float64 // loss and per-sample losses
	Norm      float64 // the gradient norm (0: Loss)
	Grad      float64 // per-tensor L2 norm of the gradient difference over that of the CPU's gradient
	Sample    float64 // L2 norm of the sample difference over that of the CPU's samples
	SampleMax float64 // largest absolute difference of one sample value (values are O(1))
	// NoUpdateBound skips the check of the updated weights against AdamW's bound: in BF16 a
	// gradient near zero may change sign, and AdamW then moves its weight by lr the other way.
	NoUpdateBound bool
}

var modelCaptions = []string{"red apple", "green apple moving left", "blue car", "a"}

// modelPair builds the same DiT on the CPU device and on dev: the weights drawn on the CPU
// from a fixed seed, then every parameter perturbed by N(0, 0.02^2), so that the layers that
// start at zero (adaLN, final layer, reward MLP) pass gradient and the model's velocity is
// not zero; dev's model gets the same values.
func modelPair(t testing.TB, cpu, dev kernels.Device, cfg diffusion.ModelConfig) (mc, md *diffusion.DiT) {
	t.Helper()
	tok, err := diffusion.BuildTokenizer(modelCaptions, 1, cfg.MaxTextLen)
	if err != nil {
		t.Fatal(err)
	}
	cfg.VocabSize = tok.VocabSize()
	if mc, err = diffusion.NewDiT(cpu, &kernels.RNG{Seed: 1}, cfg); err != nil {
		t.Fatal(err)
	}
	if md, err = diffusion.NewDiT(dev, nil, cfg); err != nil {
		t.Fatal(err)
	}
	mc.Tokenizer, md.Tokenizer = tok, tok
	pd := md.Params()
	for i, p := range mc.Params() {
		w := hostOf(cpu, p.W)
		for j, z := range normals(uint64(1000+i), len(w)) {
			w[j] += 0.02 * z
		}
		cpu.CopyFromHost(p.W, w)
		dev.CopyFromHost(pd[i].W, w)
	}
	return mc, md
}

func hostOf(dev kernels.Device, t *kernels.Tensor) []float32 {
	out := make([]float32, t.Len())
	dev.CopyToHost(out, t)
	return out
}

// relDiff returns ||got - want|| / ||want|| (the absolute norm when want is zero).
func relDiff(got, want []float32) float64 {
	var d, n float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		n += float64(want[i]) * float64(want[i])
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

// stepOutcome is what one training step leaves behind, on the host.
type stepOutcome struct {
	res   diffusion.StepResult
	norm  float64     // gradient norm before clipping
	grads [][]float32 // clipped gradients, in Params order
	ws    [][]float32 // updated weights
}

// trainStep runs one optimizer step of m on batch (copied to m's device): zero the
// gradients, forward and backward with the objective's random draws from seed, clip to
// maxNorm, AdamW.
func trainStep(m *diffusion.DiT, x0 []float32, prompts diffusion.Prompts, reward []float32, B int,
	seed uint64, maxNorm float64, lr float32) stepOutcome {
	dev := m.Device()
	obj := diffusion.DefaultObjective()
	obj.CaptionDropout, obj.RewardDropout = 0.3, 0.3 // dropped captions and rewards in a small batch
	batch := &diffusion.Batch{X0: dev.FromHost(x0, m.Config.BatchShape(B)...), Prompts: prompts, Reward: reward}
	ps := m.Params()
	cfg := nn.DefaultAdamWConfig()
	cfg.LR, cfg.WeightDecay = lr, 0.01
	opt := nn.NewAdamW(dev, ps, cfg)
	nn.ZeroGrad(ps)
	var out stepOutcome
	out.res = diffusion.NewTrainStep(dev, obj).ForwardBackward(m, &kernels.RNG{Seed: seed}, batch)
	var clip float32
	out.norm, clip = nn.ClipScale(ps, maxNorm)
	opt.StepScaled(clip)
	for _, p := range ps {
		out.grads = append(out.grads, hostOf(dev, p.G))
		out.ws = append(out.ws, hostOf(dev, p.W))
	}
	dev.Free(batch.X0)
	return out
}

// checkTrainStep compares one training step of the same model on the CPU and on dev.
func checkTrainStep(t *testing.T, dev kernels.Device, cfg diffusion.ModelConfig, B int, tol modelTol) {
	cpu := kernels.NewCPU(0)
	mc, md := modelPair(t, cpu, dev, cfg)
	x0 := uniforms(7, B*cfg.SampleSize(), -1, 1)
	caps := make([]string, B)
	for i := range caps {
		caps[i] = modelCaptions[i%len(modelCaptions)]
	}
	prompts := diffusion.EncodePrompts(mc.Tokenizer, caps)
	var reward []float32
	if D := len(cfg.RewardDims); D > 0 {
		reward = uniforms(8, B*D, 0, 1)
		reward[0] = float32(math.NaN())
	}
	const lr = 1e-3
	w0 := make([][]float32, 0)
	for _, p := range mc.Params() {
		w0 = append(w0, hostOf(cpu, p.W))
	}
	// The clipping threshold is half the CPU's gradient norm, so that clipping scales.
	probe := trainStep(mc, x0, prompts, reward, B, 11, math.Inf(1), lr)
	for i, p := range mc.Params() {
		cpu.CopyFromHost(p.W, w0[i])
	}
	maxNorm := probe.norm / 2
	c := trainStep(mc, x0, prompts, reward, B, 11, maxNorm, lr)
	d := trainStep(md, x0, prompts, reward, B, 11, maxNorm, lr)

	rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }
	t.Logf("%s: %d params, batch %d: loss %.6g (cpu) %.6g (%s), grad norm %.6g / %.6g",
		dev.Name(), cfg.ParamCount(), B, c.res.Loss, d.res.Loss, dev.Name(), c.norm, d.norm)
	if r := rel(d.res.Loss, c.res.Loss); !(r <= tol.Loss) {
		t.Errorf("loss %.9g on %s, %.9g on the CPU: relative difference %.3g > %g", d.res.Loss, dev.Name(), c.res.Loss, r, tol.Loss)
	}
	for i := range c.res.PerSample {
		if r := rel(float64(d.res.PerSample[i]), float64(c.res.PerSample[i])); !(r <= tol.Loss) {
			t.Errorf("sample %d: loss %.9g on %s, %.9g on the CPU", i, d.res.PerSample[i], dev.Name(), c.res.PerSample[i])
		}
	}
	normTol := tol.Norm
	if normTol == 0 {
		normTol = tol.Loss
	}
	if r := rel(d.norm, c.norm); !(r <= normTol) {
		t.Errorf("gradient norm %.9g on %s, %.9g on the CPU: relative difference %.3g > %g", d.norm, dev.Name(), c.norm, r, normTol)
	}

	const adamEps = 1e-8 // nn.AdamWConfig's default
	var worstGrad float64
	worstName := ""
	for i, p := range mc.Params() {
		gc, gd := c.grads[i], d.grads[i]
		r := relDiff(gd, gc)
		if r > worstGrad {
			worstGrad, worstName = r, p.Name
		}
		if !(r <= tol.Grad) {
			t.Errorf("gradient of %s %v: relative L2 difference %.3g > %g", p.Name, p.W.Shape, r, tol.Grad)
			continue
		}
		if tol.NoUpdateBound {
			continue
		}
		var bad int
		var first string
		for j, wc := range c.ws[i] {
			dg := math.Abs(float64(gd[j]) - float64(gc[j]))
			g := math.Max(math.Abs(float64(gc[j])), math.Abs(float64(gd[j])))
			allow := lr*dg/(g+adamEps) + 1e-5*lr + 1e-6*math.Abs(float64(wc))
			if diff := math.Abs(float64(d.ws[i][j]) - float64(wc)); !(diff <= allow) {
				if bad == 0 {
					first = fmt.Sprintf("[%d] %.9g vs %.9g (gradient %.6g vs %.6g, allowed %.3g)", j, d.ws[i][j], wc, gd[j], gc[j], allow)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("updated %s: %d of %d weights differ beyond the AdamW bound; first %s", p.Name, bad, len(c.ws[i]), first)
		}
	}
	t.Logf("largest relative gradient difference %.3g (%s)", worstGrad, worstName)
}

// checkSample compares a sampling run (steps Euler steps, guidance 4, a reward condition
// when the model has one) on the CPU and on dev.
func checkSample(t *testing.T, dev kernels.Device, cfg diffusion.ModelConfig, B, steps int, tol modelTol) {
	cpu := kernels.NewCPU(0)
	mc, md := modelPair(t, cpu, dev, cfg)
	caps := make([]string, B)
	for i := range caps {
		caps[i] = modelCaptions[(i+1)%len(modelCaptions)]
	}
	o := diffusion.SampleOptions{NumInferenceSteps: steps, GuidanceScale: 4, Seed: 5, Sampler: diffusion.SamplerEuler}
	if D := len(cfg.RewardDims); D > 0 {
		o.Reward = uniforms(9, B*D, 0, 1)
		o.Reward[D] = float32(math.NaN())
	}
	xc, _, err := diffusion.Sample(mc, caps, o)
	if err != nil {
		t.Fatal(err)
	}
	xd, _, err := diffusion.Sample(md, caps, o)
	if err != nil {
		t.Fatal(err)
	}
	hc, hd := hostOf(cpu, xc), hostOf(dev, xd)
	var maxDiff, x1Diff float64
	noise := hostOf(cpu, diffusion.InitialNoise(cpu, &mc.Config, B, o.Seed, 0))
	for i := range hc {
		maxDiff = math.Max(maxDiff, math.Abs(float64(hd[i])-float64(hc[i])))
		x1Diff = math.Max(x1Diff, math.Abs(float64(hc[i])-float64(noise[i])))
	}
	r := relDiff(hd, hc)
	t.Logf("%s: %d samples, %d steps: relative L2 difference %.3g, max |diff| %.3g (the samples moved up to %.3g from the noise)",
		dev.Name(), B, steps, r, maxDiff, x1Diff)
	if x1Diff < 1e-3 {
		t.Errorf("the samples hardly differ from the initial noise (%.3g): the model's velocity is about zero", x1Diff)
	}
	if !(r <= tol.Sample) || !(maxDiff <= tol.SampleMax) {
		t.Errorf("samples on %s differ from the CPU's: relative L2 %.3g (at most %g), max |diff| %.3g (at most %g)",
			dev.Name(), r, tol.Sample, maxDiff, tol.SampleMax)
	}
}

// tinyModelConfig is a small but complete image DiT: text encoder narrower than the DiT
// (text_proj), two reward dimensions, odd token counts, three blocks (the second and third
// run in the first one's buffers: nn.DiTBlock.ShareBackwardBuffers, and in sampling
// ShareForwardBuffers).
func tinyModelConfig() diffusion.ModelConfig {
	return diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: 6, Channels: 3, Frames: 1, PatchSize: 2,
		TubeletFrames: 1, Width: 32, Depth: 3, Heads: 2, MLPRatio: 4, TextLayers: 1, TextWidth: 24, TextHeads: 2,
		MaxTextLen: 5, VocabSize: 3, RewardFreq: 8, RewardDims: []string{"vq", "ta"}, Shift: 1}
}

// The emulation computes the GPU's kernels in the GPU's order; only its GEMM is a plain
// loop, so it agrees with the CPU more closely than a GPU does (model_gpu_test.go).
var emuModelTol = modelTol{Loss: 1e-5, Grad: 1e-4, Sample: 1e-5, SampleMax: 1e-4}

// emulated opens the emulated device (checkBisecting's open).
func emulated(*testing.T) *Device { return NewEmulated() }

func TestModelTrainStepEmulated(t *testing.T) {
	checkBisecting(t, true, emulated, func(t *testing.T, d *Device) {
		checkTrainStep(t, d, tinyModelConfig(), 3, emuModelTol)
	})
}

func TestModelSampleEmulated(t *testing.T) {
	checkBisecting(t, false, emulated, func(t *testing.T, d *Device) {
		checkSample(t, d, tinyModelConfig(), 2, 8, emuModelTol)
	})
}

// bf16ModelConfig is tinyModelConfig with 64 dims per head, so that BF16 mode runs attention
// on the tensor-core kernels.
func bf16ModelConfig() diffusion.ModelConfig {
	cfg := tinyModelConfig()
	cfg.Width, cfg.Heads = 128, 2
	return cfg
}

// bf16ModelTol: BF16 keeps 8 significant bits (a relative rounding of up to 2^-9, 2e-3). The
// emulated device in BF16 mode, with three blocks, had a loss within 9e-5 of the CPU's, the
// gradient norm within 2.6e-4, every gradient within 8.0e-3 (relative L2) and samples within
// 8.1e-4 (relative L2), 2.5e-3 (largest difference), with the activations the layers mark kept
// in BF16 only (kernels.StoreHalf) and the weights converted once (kernels.KeepHalf); with
// every product in BF16 (openBF16All: the products' BF16 outputs too, their biases rounded to
// BF16) a loss within 1.4e-4, the norm within 7.6e-4, gradients within 1.0e-2, samples within
// 1.3e-3 and 3.5e-3. (With two blocks: gradients within 5.2e-3 and 8.4e-3.)
var bf16ModelTol = modelTol{Loss: 1e-3, Norm: 2e-3, Grad: 2e-2, Sample: 2e-3, SampleMax: 1e-2, NoUpdateBound: true}

func openBF16(d *Device) *Device {
	d.SetGemmPrecision(GemmBF16)
	return d
}

func TestModelTrainStepBF16Emulated(t *testing.T) {
	check := func(t *testing.T, d *Device) { checkTrainStep(t, d, bf16ModelConfig(), 3, bf16ModelTol) }
	checkBisecting(t, true, func(*testing.T) *Device { return openBF16(NewEmulated()) }, check)
	t.Run("every product in BF16", func(t *testing.T) {
		checkBisecting(t, true, func(*testing.T) *Device { return openBF16All(NewEmulated()) }, check)
	})
}

func TestModelSampleBF16Emulated(t *testing.T) {
	check := func(t *testing.T, d *Device) { checkSample(t, d, bf16ModelConfig(), 2, 8, bf16ModelTol) }
	checkBisecting(t, false, func(*testing.T) *Device { return openBF16(NewEmulated()) }, check)
	t.Run("every product in BF16", func(t *testing.T) {
		checkBisecting(t, false, func(*testing.T) *Device { return openBF16All(NewEmulated()) }, check)
	})
}

// openBF16All is openBF16 with every product in BF16, however small (at this model's size
// most would run in TF32: bf16Pays), so that the BF16 outputs of qkv, the projection, the
// MLP and attention's output gradient are all in play, as at DiT-B's size.
func openBF16All(d *Device) *Device {
	d.bf16Intensity = 0
	return openBF16(d)
}

// deviceFeatures are the device's fusions and BF16 features that can be turned off, one at a
// time: BenchmarkDiTBase measures what each buys in the BF16 training step, and in sampling
// too unless it concerns the backward pass alone (trainOnly); after a failed model test,
// bisectFeatures runs the test again without each.
var deviceFeatures = []struct {
	name      string
	off       func(d *Device)
	trainOnly bool
}{
	{"copies", func(d *Device) { d.noHalves = true }, false},            // BF16 copies kept with the tensors (halfCopy)
	{"bf16-only", func(d *Device) { d.noStoreHalf = true }, false},      // activations kept in BF16 alone (StoreHalf)
	{"mma", func(d *Device) { d.noAttnMMA = true }, false},              // attention on tensor cores
	{"bgrad", func(d *Device) { d.noBiasGradEpilogue = true }, true},    // the bias gradient in the BGRADB epilogue
	{"ln-mod", func(d *Device) { d.noFusedNormModulate = true }, false}, // LayerNorm and modulation in one pass
	{"ln-cols", func(d *Device) { d.noNormColumns = true }, true},       // the modulation's and gates' column sums in the norm's backward pass
	{"keep-half", func(d *Device) { d.noKeepHalf = true }, false},       // weights converted once (KeepHalf), whatever one product's cost
	{"gelu-epi", func(d *Device) { d.noGeluEpilogue = true }, false},    // the MLP's GELU in its products' epilogues
	{"bf16-out", func(d *Device) { d.noHalfOutputs = true }, false},     // products writing BF16 outputs (qkv, GELU's)
	{"lazy-zero", func(d *Device) { d.noLazyZero = true }, true},        // ZeroGrad's zeros left pending (lazyZero)
	{"dq-split", func(d *Device) { d.dqShares = true }, true},           // dQ by attention_backward_dq_mma, not from dkv's shares
}

// checkBisecting runs check on a device from open and, where it fails, again as subtests on
// a fresh device with each of deviceFeatures off in turn (those that concern the backward pass
// alone only where train): a GPU run whose model test fails then names the features without
// which it passes ("--- PASS: TestModelTrainStepBF16GPU/without-mma") in the same run.
func checkBisecting(t *testing.T, train bool, open func(t *testing.T) *Device, check func(t *testing.T, d *Device)) {
	t.Helper()
	check(t, open(t))
	if !t.Failed() {
		return
	}
	var passes []string
	for _, f := range deviceFeatures {
		if f.trainOnly && !train {
			continue
		}
		if t.Run("without-"+f.name, func(t *testing.T) {
			d := open(t)
			f.off(d)
			check(t, d)
		}) {
			passes = append(passes, f.name)
		}
	}
	if len(passes) == 0 {
		t.Log("bisection: the check fails with each feature off in turn: no single feature is at fault")
	} else {
		t.Logf("bisection: the check passes with %s off", strings.Join(passes, ", or with "))
	}
}
