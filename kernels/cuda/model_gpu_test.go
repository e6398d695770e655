//go:build cuda

// Whole-model checks on the GPU (build tag cuda): one training step (forward, backward,
// clipping, AdamW) and an 8-step Euler sampling run with classifier-free guidance of a
// DiT against the CPU device, with the helpers and the tolerance argument of model_test.go.
//
// The GPU's GEMMs are FP32 (GemmFP32: CUBLAS_COMPUTE_32F, no TF32), so the CPU and the GPU
// differ only in the order of float32 sums. The emulated run of model_test.go, whose only
// difference from the GPU is its GEMM, agrees with the CPU to 1e-6 in the gradients and
// 1e-7 in the samples; cuBLAS sums in another order again (and may split K), over larger
// K here (up to 4*288), which typically costs one to two more decimal digits. The
// tolerances below leave a further factor of 10 to 100; a wrong kernel or a TF32 product
// (relative error 2^-11 per product, about 5e-4) fails them.
//
// Test: make test-cuda   (go test -tags cuda -run ModelGPU ./kernels/cuda)
package cuda

import (
	"os"
	"testing"

	"github.com/alignkit/align/diffusion"
)

var gpuModelTol = modelTol{Loss: 1e-4, Grad: 1e-3, Sample: 1e-4, SampleMax: 1e-3}

// gpuModelConfig: 32x32 RGB in 2x2 patches (256 patch + 16 text = 272 tokens, more than
// one tile of the attention kernels), width 288 with 4 heads of 72 (not a power of two), a
// narrower text encoder (text_proj) and two reward dimensions; 7.5M parameters.
func gpuModelConfig() diffusion.ModelConfig {
	return diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 2,
		TubeletFrames: 1, Width: 288, Depth: 4, Heads: 4, MLPRatio: 4, TextLayers: 2, TextWidth: 192, TextHeads: 3,
		MaxTextLen: 16, VocabSize: 3, RewardFreq: 64, RewardDims: []string{"vq", "ta"}, Shift: 1}
}

// openFP32GPU opens the GPU with FP32 GEMMs, refusing a TF32 override of cuBLAS.
func openFP32GPU(t *testing.T) *Device {
	d := openGPU(t)
	if v := os.Getenv("NVIDIA_TF32_OVERRIDE"); v != "" && v != "0" {
		t.Skipf("NVIDIA_TF32_OVERRIDE=%s may turn FP32 GEMMs into TF32 ones", v)
	}
	d.SetGemmPrecision(GemmFP32)
	return d
}

func TestModelTrainStepGPU(t *testing.T) {
	checkBisecting(t, true, openFP32GPU, func(t *testing.T, d *Device) {
		checkTrainStep(t, d, gpuModelConfig(), 8, gpuModelTol)
	})
}

func TestModelSampleGPU(t *testing.T) {
	checkBisecting(t, false, openFP32GPU, func(t *testing.T, d *Device) {
		checkSample(t, d, gpuModelConfig(), 4, 8, gpuModelTol)
	})
}

// The BF16 mode end to end on the GPU (every product in BF16 where it pays, attention on the
// tensor-core kernels: 4 heads of 64), within the BF16 tolerance of the emulated run.
func gpuBF16ModelConfig() diffusion.ModelConfig {
	cfg := gpuModelConfig()
	cfg.Width, cfg.Heads = 256, 4
	return cfg
}

func TestModelTrainStepBF16GPU(t *testing.T) {
	checkBisecting(t, true, func(t *testing.T) *Device { return openBF16(openGPU(t)) }, func(t *testing.T, d *Device) {
		checkTrainStep(t, d, gpuBF16ModelConfig(), 8, bf16ModelTol)
	})
}

func TestModelSampleBF16GPU(t *testing.T) {
	checkBisecting(t, false, func(t *testing.T) *Device { return openBF16(openGPU(t)) }, func(t *testing.T, d *Device) {
		checkSample(t, d, gpuBF16ModelConfig(), 4, 8, bf16ModelTol)
	})
}
