// Tests of align reward calibrate: a native model's statistics against hand-computed ones from
// align score's raw scores, the written model scoring the same raw bits with z-scores of mean
// 0 and std 1 on the same inputs, its other metadata and tie thresholds kept; an ONNX
// manifest written elsewhere (the model named relative to it) and in place; the errors.
//
// Test: go test ./cmd/align -run RewardCalibrate
package main

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// scoreJSONL runs align score over args and returns its rows (JSONL objects).
func scoreJSONL(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	code, stdout, stderr := runAlign(t, append([]string{"score", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("score %v: exit %d: %s", args, code, stderr)
	}
	var rows []map[string]any
	for line := range strings.Lines(stdout) {
		row := map[string]any{}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("score output %q: %v", line, err)
		}
		rows = append(rows, row)
	}
	return rows
}

// columnStats returns the mean and population standard deviation of a column over the rows
// that have it (not null).
func columnStats(rows []map[string]any, key string) (mean, std float64, n int) {
	var v []float64
	for _, r := range rows {
		if x, ok := r[key].(float64); ok {
			v = append(v, x)
		}
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v))), len(v)
}

// calibrationInputs writes six images of several sizes and an unreadable file into dir/in.
func calibrationInputs(t *testing.T, dir string) string {
	t.Helper()
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	for i, sz := range []int{8, 12, 20, 8, 33, 9} {
		writeTestPNG(t, filepath.Join(in, strconv.Itoa(i)+"-red-apple.png"), sz, sz+i%3, uint64(10+i))
	}
	os.WriteFile(filepath.Join(in, "6-blue-car.png"), []byte("not a png"), 0o644)
	return in
}

func TestRewardCalibrateNative(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	// Tie thresholds (raw units) are kept through a recalibration.
	m, err := rewards.LoadNative(kernels.NewCPU(1), model)
	if err != nil {
		t.Fatal(err)
	}
	m.Calib.TieEps = []float64{0.125, 0.25}
	if err := m.Save(model); err != nil {
		t.Fatal(err)
	}
	in := calibrationInputs(t, dir)
	out := filepath.Join(dir, "cal.safetensors")
	code, stdout, stderr := runAlign(t, "reward", "calibrate", in, "--reward", model, "-o", out, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "1 of 7 inputs could not be read") || !strings.Contains(stderr, "6 samples") {
		t.Errorf("stderr does not report the unreadable input and the small set:\n%s", stderr)
	}
	var rep calibrationReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if rep.N != 6 || rep.Failed != 1 || len(rep.Dims) != 2 {
		t.Fatalf("report: n %d, failed %d, %d dims; want 6, 1, 2", rep.N, rep.Failed, len(rep.Dims))
	}

	before := scoreJSONL(t, in, "--reward", model)
	after := scoreJSONL(t, in, "--reward", out)
	for d, dim := range []string{rewards.DimVQ, rewards.DimTA} {
		mean, std, n := columnStats(before, dim)
		got := rep.Dims[d]
		if n != 6 || got.Dim != dim || math.Abs(got.Mean-mean) > 1e-6*(1+math.Abs(mean)) || math.Abs(got.Std-std) > 1e-6*std {
			t.Errorf("%s: mean %v std %v; from align score's raw scores (%d) %v, %v", dim, got.Mean, got.Std, n, mean, std)
		}
		if got.PreviousMean != 0.05 || got.PreviousStd != 0.5 || got.PreviousN != 4 {
			t.Errorf("%s: previous %v, %v, n %d; want writeRewardModel's 0.05, 0.5, 4", dim, got.PreviousMean, got.PreviousStd, got.PreviousN)
		}
		// The same weights: the raw scores to the last bit; the z-scores standardised.
		for i := range before {
			if before[i][dim] != after[i][dim] {
				t.Errorf("%s row %d: raw %v before, %v after", dim, i, before[i][dim], after[i][dim])
			}
		}
		if zm, zs, _ := columnStats(after, dim+"_z"); math.Abs(zm) > 1e-3 || math.Abs(zs-1) > 1e-3 {
			t.Errorf("%s_z over the calibration set: mean %v, std %v; want 0, 1 (to the table's 3 decimals)", dim, zm, zs)
		}
	}

	// align score's summary line: the calibrated model's mean z-scores on its own set are 0.
	if _, _, stderr := runAlign(t, "score", in, "--reward", out); !strings.Contains(stderr, "mean of 6 scored images: vq ") ||
		strings.Count(stderr, "(z +0.000)") != 2 {
		t.Errorf("score's summary of the calibration set:\n%s", stderr)
	}

	// The file: the source's tensors and metadata, but for the calibration.
	src, err := nn.LoadCheckpoint(model)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := nn.LoadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	cal := dst.Extra["calibration"]
	delete(src.Extra, "calibration")
	delete(dst.Extra, "calibration")
	if !maps.Equal(src.Extra, dst.Extra) || string(src.Config) != string(dst.Config) || len(src.Tensors) != len(dst.Tensors) {
		t.Errorf("the metadata or tensors changed beyond the calibration")
	}
	var c rewards.Calibration
	if err := json.Unmarshal([]byte(cal), &c); err != nil {
		t.Fatal(err)
	}
	if c.N != 6 || len(c.TieEps) != 2 || c.TieEps[0] != 0.125 || c.TieEps[1] != 0.25 {
		t.Errorf("calibration in the file: n %d, tie eps %v; want 6, [0.125 0.25]", c.N, c.TieEps)
	}

	// --strict stops at the unreadable file and writes nothing.
	strictOut := filepath.Join(dir, "strict.safetensors")
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", model, "-o", strictOut, "--strict"); code != exitError || !strings.Contains(stderr, "6-blue-car.png") {
		t.Errorf("--strict: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(strictOut); !os.IsNotExist(err) {
		t.Errorf("--strict failed but wrote %s", strictOut)
	}
}

func TestRewardCalibrateErrors(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	latent := saveTinyLatent(t, dir, saveTinyModel(t, dir, diffusion.KindImage))
	in := calibrationInputs(t, dir)
	out := filepath.Join(dir, "out.safetensors")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no output", []string{in, "--reward", model}, exitUsage, "--output is required"},
		{"two models", []string{in, "--reward", model, "--reward", "default", "-o", out}, exitUsage, "calibrate one model at a time"},
		{"no inputs", []string{"--reward", model, "-o", out}, exitUsage, "no inputs"},
		{"manifest for a native model", []string{in, "--reward", model, "-o", filepath.Join(dir, "m.json")}, exitUsage, "native model is written as a .safetensors"},
		{"latent", []string{in, "--reward", latent, "-o", out}, exitUsage, "noise-aware latent model"},
		{"one input", []string{filepath.Join(in, "0-red-apple.png"), "--reward", model, "-o", out}, exitError, "at least 2 scored samples (a standard deviation); 1 image scored of 1 input"},
		{"missing model", []string{in, "--reward", filepath.Join(dir, "none.safetensors"), "-o", out}, exitError, "none.safetensors"},
	} {
		code, _, stderr := runAlign(t, append([]string{"reward", "calibrate"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d (want %d), stderr %q does not say %q", tc.name, code, tc.code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed calibration wrote %s", out)
	}
}

func TestRewardCalibrateONNX(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	exported := exportONNX(t, dir, model)
	in := calibrationInputs(t, dir)
	os.Remove(filepath.Join(in, "6-blue-car.png"))
	native := filepath.Join(dir, "native.safetensors")
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", model, "-o", native); code != exitOK {
		t.Fatal(stderr)
	}
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", exported, "-o", filepath.Join(dir, "x.safetensors")); code != exitUsage || !strings.Contains(stderr, "give a .json file") {
		t.Errorf("ONNX model to .safetensors: exit %d, %s", code, stderr)
	}

	// Written in another folder: the model named relative to it.
	man := filepath.Join(dir, "elsewhere", "reward-ref.json")
	os.Mkdir(filepath.Dir(man), 0o755)
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", exported, "-o", man); code != exitOK {
		t.Fatal(stderr)
	}
	m, err := onnx.LoadManifest(man)
	if err != nil {
		t.Fatal(err)
	}
	if m.Model != "../export/reward.onnx" || m.Calibration == nil || m.Calibration.N != 6 {
		t.Fatalf("manifest names the model %q, calibration %+v", m.Model, m.Calibration)
	}
	// ONNX Runtime's scores agree with the native model's to float32 rounding, so do the
	// statistics and the z-scores.
	after := scoreJSONL(t, in, "--reward", man)
	nat := scoreJSONL(t, in, "--reward", native)
	for _, dim := range []string{rewards.DimVQ, rewards.DimTA} {
		if zm, zs, _ := columnStats(after, dim+"_z"); math.Abs(zm) > 1e-3 || math.Abs(zs-1) > 1e-3 {
			t.Errorf("%s_z over the calibration set: mean %v, std %v; want 0, 1", dim, zm, zs)
		}
		for i := range after {
			a, b := after[i][dim+"_z"].(float64), nat[i][dim+"_z"].(float64)
			if math.Abs(a-b) > 2e-3 {
				t.Errorf("%s_z row %d: ONNX %v, native %v", dim, i, a, b)
			}
		}
	}

	// In place: the exported manifest replaced, still naming its model beside it.
	own := filepath.Join(dir, "export", "reward.json")
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", exported, "-o", own); code != exitOK {
		t.Fatal(stderr)
	}
	if m, err := onnx.LoadManifest(own); err != nil || m.Model != "reward.onnx" || m.Calibration.N != 6 {
		t.Fatalf("in place: %v, %+v", err, m)
	}
}
