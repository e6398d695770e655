package main

import (
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// $ALIGN_DEVICE sets --device's default: an unknown name in it fails like the flag, naming the
// variable; the flag given on the command line wins over it.
func TestDeviceFromEnv(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	args := []string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "2"}

	t.Setenv(deviceEnv, "nosuch")
	code, _, stderr := runAlign(t, append(args, "-o", filepath.Join(dir, "env"))...)
	if code != exitUsage || !strings.Contains(stderr, "$ALIGN_DEVICE") || !strings.Contains(stderr, "nosuch") {
		t.Errorf("ALIGN_DEVICE=nosuch: exit %d, %q", code, stderr)
	}
	code, _, stderr = runAlign(t, append(args, "--device", "cpu", "-o", filepath.Join(dir, "flag"))...)
	if code != exitOK {
		t.Errorf("--device cpu with ALIGN_DEVICE=nosuch: exit %d, %q", code, stderr)
	}

	t.Setenv(deviceEnv, "cpu")
	if code, _, stderr = runAlign(t, append(args, "-o", filepath.Join(dir, "cpu"))...); code != exitOK {
		t.Errorf("ALIGN_DEVICE=cpu: exit %d, %q", code, stderr)
	}
	code, _, stderr = runAlign(t, append(args, "--device", "nosuch", "-o", filepath.Join(dir, "bad"))...)
	if code != exitUsage || strings.Contains(stderr, "$ALIGN_DEVICE") {
		t.Errorf("--device nosuch: exit %d, %q (the error names the flag's value, not the variable)", code, stderr)
	}
}

// --precision sets a CUDA device's products (align info shows it); the CPU device takes fp32
// and bf16 (TestCPUBF16Precision), not tf32, and an unknown name fails; $ALIGN_PRECISION sets the default and is named in errors.
func TestPrecisionFlag(t *testing.T) {
	code, stdout, stderr := runAlign(t, "info", "--device", "cuda-emu", "--precision", "bf16", "--probe-time", "0")
	if code != exitOK || !strings.Contains(stdout, "GEMM bf16") {
		t.Errorf("info --device cuda-emu --precision bf16: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr = runAlign(t, "info", "--precision", "tf32", "--probe-time", "0")
	if code != exitUsage || !strings.Contains(stderr, "--precision tf32 needs a CUDA device") {
		t.Errorf("--precision tf32 on the CPU: exit %d, %q", code, stderr)
	}
	code, _, stderr = runAlign(t, "info", "--device", "cuda-emu", "--precision", "fp16", "--probe-time", "0")
	if code != exitUsage || !strings.Contains(stderr, `unknown precision "fp16"`) {
		t.Errorf("--precision fp16: exit %d, %q", code, stderr)
	}
	t.Setenv(precisionEnv, "tf32")
	code, stdout, _ = runAlign(t, "info", "--device", "cuda-emu", "--probe-time", "0")
	if code != exitOK || !strings.Contains(stdout, "GEMM tf32") {
		t.Errorf("ALIGN_PRECISION=tf32: exit %d, %q", code, stdout)
	}
	code, _, stderr = runAlign(t, "info", "--probe-time", "0")
	if code != exitUsage || !strings.Contains(stderr, "$ALIGN_PRECISION") {
		t.Errorf("ALIGN_PRECISION=tf32 on the CPU: exit %d, %q (the error names the variable)", code, stderr)
	}
}

// --gemm-tuning has a GPU's driver time cuBLASLt's algorithms per product shape: align info
// says so, and a sample stays within maxPixelDiff of the CPU's. The emulation (one algorithm
// per product) and the CPU refuse it, naming $ALIGN_GEMM_TUNING where the value came from
// --precision bf16 on the CPU: where the CPU has AVX512_BF16, align info says so and the
// embedded model's samples change (the products really take BF16 inputs) but stay within a
// level on average of fp32's (0.26 levels over make sample's 16 images); elsewhere a usage
// error names the instruction set.
func TestCPUBF16Precision(t *testing.T) {
	code, stdout, stderr := runAlign(t, "info", "--precision", "bf16", "--probe-time", "0")
	if !kernels.CPUHasBF16() {
		if code != exitUsage || !strings.Contains(stderr, "--precision bf16 on the CPU: this CPU has no AVX512_BF16") {
			t.Errorf("--precision bf16 without AVX512_BF16: exit %d, %q", code, stderr)
		}
		return
	}
	if code != exitOK || !strings.Contains(stdout, "GEMM bf16") {
		t.Fatalf("info --precision bf16: exit %d, %q %q", code, stdout, stderr)
	}
	dir := t.TempDir()
	args := []string{"sample", "--prompt", "red apple", "--prompt", "rocket", "--num-inference-steps", "8", "--seed", "3", "--json"}
	run := func(prec string) []string {
		res, stderr, code := sampleJSON(t, append(args, "--precision", prec, "-o", filepath.Join(dir, prec)))
		if code != exitOK || len(res.Files) != 2 {
			t.Fatalf("sample --precision %s: exit %d: %s", prec, code, stderr)
		}
		var paths []string
		for _, f := range res.Files {
			paths = append(paths, f.Path)
		}
		return paths
	}
	f32, bf16 := run("fp32"), run("bf16")
	var sum, n, differ int
	for i := range f32 {
		a, b := readPNG(t, f32[i]), readPNG(t, bf16[i])
		r := a.Bounds()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				ca := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
				cb := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
				for c, va := range []uint8{ca.R, ca.G, ca.B} {
					vb := []uint8{cb.R, cb.G, cb.B}[c]
					d := int(max(va, vb) - min(va, vb))
					sum, n = sum+d, n+1
					if d > 0 {
						differ++
					}
				}
			}
		}
	}
	if mean := float64(sum) / float64(n); differ == 0 || mean > 1 {
		t.Errorf("bf16 against fp32: %d of %d values differ, mean difference %.2f levels (want some, at most 1)", differ, n, mean)
	}
}

// there; a count below 0 or not a number is refused too.
func TestGemmTuningFlag(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	args := []string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "2", "--json"}
	for _, c := range cudaTargets(t) {
		code, stdout, stderr := runAlign(t, "info", "--device", c.name, "--gemm-tuning", "4", "--probe-time", "0")
		if c.exact { // the emulation
			if code != exitUsage || !strings.Contains(stderr, "--gemm-tuning 4 times cuBLASLt's algorithms on a GPU") {
				t.Errorf("info --device %s --gemm-tuning 4: exit %d, %q", c.name, code, stderr)
			}
			continue
		}
		if code != exitOK || !strings.Contains(stdout, "tuned over 4 algorithms") {
			t.Errorf("info --device %s --gemm-tuning 4: exit %d, %q %q", c.name, code, stdout, stderr)
		}
		tuned, stderr, code := sampleJSON(t, append([]string{"--device", c.name, "--gemm-tuning", "4"},
			append(args, "-o", filepath.Join(dir, "tuned"))...))
		if code != exitOK || len(tuned.Files) != 1 {
			t.Fatalf("sample --device %s --gemm-tuning 4: exit %d: %s", c.name, code, stderr)
		}
		cpu, stderr, code := sampleJSON(t, append([]string{"--device", "cpu"}, append(args, "-o", filepath.Join(dir, "cpu"))...))
		if code != exitOK || len(cpu.Files) != 1 {
			t.Fatalf("sample --device cpu: exit %d: %s", code, stderr)
		}
		if d := pixelDiff(readPNG(t, tuned.Files[0].Path), readPNG(t, cpu.Files[0].Path)); d < 0 || d > maxPixelDiff {
			t.Errorf("--gemm-tuning 4 on %s: pixels %d levels from the CPU's (at most %d)", c.name, d, maxPixelDiff)
		}
	}
	code, _, stderr := runAlign(t, "info", "--gemm-tuning", "4", "--probe-time", "0")
	if code != exitUsage || !strings.Contains(stderr, "cpu has none to choose from") {
		t.Errorf("--gemm-tuning 4 on the CPU: exit %d, %q", code, stderr)
	}
	for _, bad := range []string{"-1", "many"} {
		code, _, stderr = runAlign(t, "info", "--device", "cuda-emu", "--gemm-tuning", bad, "--probe-time", "0")
		if code != exitUsage || !strings.Contains(stderr, "want a number of algorithms") {
			t.Errorf("--gemm-tuning %s: exit %d, %q", bad, code, stderr)
		}
	}
	if code, _, stderr = runAlign(t, "info", "--gemm-tuning", "0", "--probe-time", "0"); code != exitOK {
		t.Errorf("--gemm-tuning 0 on the CPU: exit %d, %q", code, stderr)
	}
	t.Setenv(gemmTuningEnv, "8")
	code, _, stderr = runAlign(t, "info", "--probe-time", "0")
	if code != exitUsage || !strings.Contains(stderr, "$ALIGN_GEMM_TUNING") {
		t.Errorf("ALIGN_GEMM_TUNING=8 on the CPU: exit %d, %q (the error names the variable)", code, stderr)
	}
}

// --profile reports a CUDA device's GPU time per kernel and product to stderr when the
// command ends, leaving stdout (--json) alone; the CPU device has nothing to profile.
func TestProfileFlag(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	args := []string{"--profile", "sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "2", "--json"}
	rep, stderr, code := sampleJSON(t, append([]string{"--device", "cuda-emu"}, append(args, "-o", filepath.Join(dir, "emu"))...))
	if code != exitOK || len(rep.Files) != 1 {
		t.Fatalf("--device cuda-emu --profile: exit %d, %d files: %s", code, len(rep.Files), stderr)
	}
	for _, want := range []string{"profile of cuda-emu (--profile):", "times in the stream", "layernorm_forward", "total",
		"by kind: products (cuBLAS)", "by kind: norms, modulation, gates"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--profile's report lacks %q:\n%s", want, stderr)
		}
	}
	code, _, stderr = runAlign(t, append([]string{"--device", "cpu"}, append(args, "-o", filepath.Join(dir, "cpu"))...)...)
	if code != exitUsage || !strings.Contains(stderr, "--profile times a CUDA device") {
		t.Errorf("--device cpu --profile: exit %d, %q", code, stderr)
	}
}
