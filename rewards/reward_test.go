// Tests of the batch checks and the calibration (fit on hand-computed values, z-scores, raw
// weights).
//
// Run: go test ./rewards -run 'Batch|Calibration'
package rewards

import (
	"math"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

var testDev kernels.Device = kernels.NewCPU(0)

func TestBatchCheck(t *testing.T) {
	img := testDev.New(2, 3, 4, 4)
	vid := testDev.New(2, 8, 3, 4, 4)
	tests := []struct {
		name    string
		b       Batch
		wantErr string
	}{
		{"image", Batch{Pixels: img, Prompts: []string{"a", "b"}}, ""},
		{"video", Batch{Pixels: vid, Prompts: []string{"a", "b"}}, ""},
		{"timesteps", Batch{Pixels: img, Prompts: []string{"a", "b"}, Timesteps: []float32{0.1, 0.2}}, ""},
		{"no pixels", Batch{Prompts: []string{"a"}}, "without pixels"},
		{"prompts", Batch{Pixels: img, Prompts: []string{"a"}}, "2 samples with 1 prompts"},
		{"channels", Batch{Pixels: testDev.New(2, 4, 4, 4), Prompts: []string{"a", "b"}}, "want (B,3,H,W)"},
		{"bad timesteps", Batch{Pixels: img, Prompts: []string{"a", "b"}, Timesteps: []float32{0}}, "timesteps"},
	}
	for _, tt := range tests {
		err := tt.b.Check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if !(Batch{Pixels: vid}).IsVideo() || (Batch{Pixels: img}).IsVideo() {
		t.Error("IsVideo")
	}
}

func TestCalibrationFit(t *testing.T) {
	c := &Calibration{Dims: []string{"vq", "ta"}}
	// vq: 1, 3 -> mean 2, std 1; ta constant 5 -> std falls back to 1.
	if err := c.Fit([][]float32{{1, 5}, {3, 5}}); err != nil {
		t.Fatal(err)
	}
	if c.Mean[0] != 2 || c.Std[0] != 1 || c.Mean[1] != 5 || c.Std[1] != 1 || c.N != 2 {
		t.Fatalf("fit %+v", c)
	}
	c.Std[0] = 2
	z := c.ZScores([][]float32{{6, 4}})
	if z[0][0] != 2 || z[0][1] != -1 {
		t.Errorf("z-scores %v, want [2 -1]", z)
	}
	if w := c.RawWeights([]float64{1, 3}); w[0] != 0.5 || w[1] != 3 {
		t.Errorf("raw weights %v", w)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c.Std[1] = math.NaN()
	if err := c.Validate(); err == nil {
		t.Error("NaN std accepted")
	}
	if err := c.Fit([][]float32{{1}}); err == nil {
		t.Error("short row accepted")
	}
}
