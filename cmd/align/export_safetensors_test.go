// Tests of `align export safetensors`. Run: go test ./cmd/align -run ExportSafetensors
package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
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
		{[]string{"export", "safetensors", "--model", in, "-o", filepath.Join(dir, "x"), "--dtype", "int8"}, exitUsage, "--dtype"},
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
