// Test: go test ./rewards -run SetCalibration
package rewards

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/nn"
)

// SetCalibration replaces a native model file's calibration and nothing else, and refuses
// a calibration of other dimensions, an invalid one and a noise-aware latent model's file.
func TestSetCalibration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "native.safetensors")
	if err := randomImageModel(t).Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	dims := []string{DimVQ, DimTA}
	for _, tc := range []struct {
		name string
		cal  Calibration
		want string
	}{
		{"other dims", Calibration{Dims: []string{DimTA, DimVQ}, Mean: []float64{0, 0}, Std: []float64{1, 1}}, "calibration dims [ta vq], model dims [vq ta]"},
		{"zero std", Calibration{Dims: dims, Mean: []float64{0, 0}, Std: []float64{1, 0}}, "ta has mean 0, std 0"},
	} {
		if err := SetCalibration(c, &tc.cal); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	want := &Calibration{Dims: dims, Mean: []float64{1.5, -2}, Std: []float64{0.25, 3}, N: 9, TieEps: []float64{0.1, 0}}
	if err := SetCalibration(c, want); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "calibrated.safetensors")
	if err := c.Save(out); err != nil {
		t.Fatal(err)
	}
	m, err := LoadNative(testDev, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Calibration(); got.N != 9 || got.Mean[0] != 1.5 || got.Std[1] != 3 || got.TieEps[0] != 0.1 {
		t.Errorf("calibration read back: %+v, want %+v", got, want)
	}

	tr := tinyLatentSetup(t, filepath.Join(dir, "latent"), 1)
	lpath := filepath.Join(dir, "latent.safetensors")
	if err := tr.Latent.Save(lpath); err != nil {
		t.Fatal(err)
	}
	lc, err := nn.LoadCheckpoint(lpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetCalibration(lc, want); err == nil || !strings.Contains(err.Error(), "noise-aware latent") {
		t.Errorf("latent model: %v, want a refusal", err)
	}
}
