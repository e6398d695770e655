// Tests of `align export safetensors`. Run: go test ./cmd/align -run ExportSafetensors
package main

import (
	"bytes"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestExportSafetensorsBF16(t *testing.T) {
	dir := t.TempDir()
	in := saveTinyModel(t, dir, diffusion.KindImage)
	out := filepath.Join(dir, "bf16.safetensors")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "safetensors", "--model", in, "--dtype", "bf16", "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	a, err := nn.LoadCheckpoint(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nn.LoadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Tensors) != len(b.Tensors) || string(a.Config) != string(b.Config) || a.Extra["tokenizer"] != b.Extra["tokenizer"] {
		t.Fatal("export changed the tensor list, config or tokenizer")
	}
	for i, ta := range a.Tensors {
		tb := b.Tensors[i]
		if tb.DType != nn.BF16 || ta.Name != tb.Name {
			t.Fatalf("tensor %s: dtype %s name %s", ta.Name, tb.DType, tb.Name)
		}
		for j, v := range ta.Data {
			// BF16 keeps 8 significant bits (7 stored): rounding error at most 2^-8 relative.
			if d := math.Abs(float64(tb.Data[j] - v)); d > math.Abs(float64(v))/256+1e-30 {
				t.Fatalf("tensor %s[%d]: %v -> %v", ta.Name, j, v, tb.Data[j])
			}
		}
	}
	// The converted file is a loadable model.
	if _, err := diffusion.LoadDiT(kernels.NewCPU(1), out); err != nil {
		t.Fatal(err)
	}
}

func TestExportSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	in := saveTinyModel(t, dir, diffusion.KindImage)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"export", "safetensors", "--model", in, "-o", filepath.Join(dir, "x"), "--dtype", "int4"}, exitUsage, `--dtype "int4": want bf16, f16, f32 or int8`},
		{[]string{"export", "safetensors", "-o", filepath.Join(dir, "x")}, exitUsage, "--model is required"},
		{[]string{"export", "safetensors", "--model", filepath.Join(dir, "missing.safetensors"), "-o", filepath.Join(dir, "x")}, exitError, "missing.safetensors"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d stderr %q, want exit %d mentioning %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
	}
}

// The reward-condition maxima (metadata) survive a BF16 export: the file and the loaded
// model still carry them.
func TestExportSafetensorsKeepsRewardConditionMax(t *testing.T) {
	dir := t.TempDir()
	in := saveCondModelWithMax(t, dir, []float64{1.25, math.NaN()})
	out := filepath.Join(dir, "bf16.safetensors")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "safetensors", "--model", in, "--dtype", "bf16", "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, err := diffusion.ReadRewardConditionMax(out, []string{"vq", "ta"})
	if err != nil || len(got) != 2 || got[0] != 1.25 || !math.IsNaN(got[1]) {
		t.Fatalf("exported maxima %v (%v), want [1.25 NaN]", got, err)
	}
	m, err := diffusion.LoadDiT(kernels.NewCPU(1), out)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.RewardConditionMax; len(r) != 2 || r[0] != 1.25 || !math.IsNaN(r[1]) {
		t.Errorf("loaded maxima %v", r)
	}
}

// An int8 export is smaller than the BF16 one, keeps the tensor set, config and metadata,
// loads as a generator (from a file and from bytes) and samples close to the float model.
func TestExportSafetensorsInt8(t *testing.T) {
	dir := t.TempDir()
	in := saveTinyModel(t, dir, diffusion.KindImage)
	outBF16, outInt8 := filepath.Join(dir, "bf16.safetensors"), filepath.Join(dir, "int8.safetensors")
	for _, c := range [][2]string{{"bf16", outBF16}, {"int8", outInt8}} {
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"export", "safetensors", "--model", in, "--dtype", c[0], "-o", c[1]}, &stdout, &stderr); code != exitOK {
			t.Fatalf("--dtype %s: exit %d: %s", c[0], code, stderr.String())
		}
		if c[0] == "int8" && !strings.Contains(stdout.String(), "as I8 (fewer than 2 dimensions as BF16)") {
			t.Errorf("stdout %q", stdout.String())
		}
	}
	sizes := make(map[string]int64)
	for _, p := range []string{in, outBF16, outInt8} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sizes[p] = fi.Size()
	}
	t.Logf("file sizes: f32 %d, bf16 %d, int8 %d bytes", sizes[in], sizes[outBF16], sizes[outInt8])
	if sizes[outInt8] >= sizes[outBF16] {
		t.Errorf("int8 file (%d bytes) is not smaller than the bf16 one (%d)", sizes[outInt8], sizes[outBF16])
	}

	a, err := nn.LoadCheckpoint(in)
	if err != nil {
		t.Fatal(err)
	}
	q, err := nn.LoadCheckpoint(outInt8)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Tensors) != len(a.Tensors) || string(q.Config) != string(a.Config) || !maps.Equal(q.Extra, a.Extra) {
		t.Fatalf("export changed the tensor list, config or metadata: %d tensors, extra %v", len(q.Tensors), q.Extra)
	}
	for _, ta := range a.Tensors {
		tq := q.Tensor(ta.Name)
		want := nn.I8
		if len(ta.Shape) < 2 {
			want = nn.BF16
		}
		if tq == nil || !slices.Equal(tq.Shape, ta.Shape) || tq.DType != want {
			t.Fatalf("tensor %s %v: int8 file has %+v, want dtype %s", ta.Name, ta.Shape, tq, want)
		}
	}

	dev := kernels.NewCPU(1)
	mf, err := diffusion.LoadDiT(dev, in)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := os.ReadFile(outInt8)
	if err != nil {
		t.Fatal(err)
	}
	mq, err := diffusion.LoadDiTFromBytes(dev, "int8.safetensors", buf)
	if err != nil {
		t.Fatal(err)
	}
	o := diffusion.SampleOptions{NumInferenceSteps: 8, GuidanceScale: 4, Seed: 5}
	prompts := []string{"red apple", "blue car"}
	xf, _, err := diffusion.Sample(mf, prompts, o)
	if err != nil {
		t.Fatal(err)
	}
	xq, _, err := diffusion.Sample(mq, prompts, o)
	if err != nil {
		t.Fatal(err)
	}
	hf, hq := make([]float32, xf.Len()), make([]float32, xq.Len())
	dev.CopyToHost(hf, xf)
	dev.CopyToHost(hq, xq)
	var diff, norm float64
	for i := range hf {
		d := float64(hq[i] - hf[i])
		diff += d * d
		norm += float64(hf[i]) * float64(hf[i])
	}
	rel := math.Sqrt(diff / norm)
	t.Logf("relative L2 distance of int8 and float32 samples: %.3g", rel)
	if rel >= 2e-2 {
		t.Errorf("int8 samples differ from float32 ones by %.3g (relative L2), want < 2e-2", rel)
	}
}

func TestExportSafetensorsHelpListsInt8(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "safetensors", "--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "weight dtype: bf16, f16, f32 or int8") {
		t.Errorf("help does not list int8:\n%s", stdout.String())
	}
}

// A reward model exported as int8 loads with its calibration.
func TestExportSafetensorsInt8RewardModel(t *testing.T) {
	dir := t.TempDir()
	in := writeRewardModel(t, dir, rewards.KindImage)
	out := filepath.Join(dir, "int8.safetensors")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "safetensors", "--model", in, "--dtype", "int8", "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	m, err := rewards.LoadNative(kernels.NewCPU(1), out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Calib == nil || m.Calib.Std[0] != 0.5 {
		t.Errorf("calibration %+v", m.Calib)
	}
}
