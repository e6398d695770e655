// Tests of the weight-list parser: accepted forms, every error, round trip, and a fuzz target.
//
// Run: go test ./rewards -run Weights; fuzz: go test ./rewards -run '^$' -fuzz FuzzParseWeights -fuzztime 30s
package rewards

import (
	"math"
	"slices"
	"strings"
	"testing"
)

var threeDims = []string{"vq", "ta", "mq"}

func TestParseWeights(t *testing.T) {
	tests := []struct {
		spec    string
		want    []float64
		wantErr string
	}{
		{"", []float64{1, 1, 1}, ""},
		{"   ", []float64{1, 1, 1}, ""},
		{"vq=1,ta=2", []float64{1, 2, 0}, ""},
		{" TA = 0.5 , mq=2e-1", []float64{0, 0.5, 0.2}, ""},
		{"vq=-1,ta=1", []float64{-1, 1, 0}, ""},
		{"vq=0,ta=3", []float64{0, 3, 0}, ""},
		{"vq=0", nil, "all weights are zero"},
		{"vq=1,aesthetic=2", nil, `unknown reward dimension "aesthetic" (known: vq, ta, mq)`},
		{"vq=1,VQ=2", nil, `"vq" given twice`},
		{"vq=NaN", nil, "must be finite"},
		{"vq=inf", nil, "must be finite"},
		{"vq=-Inf", nil, "must be finite"},
		{"vq=x", nil, "not a number"},
		{"vq=", nil, "not a number"},
		{"vq", nil, "not name=value"},
		{"vq=1,,ta=1", nil, "not name=value"},
		{"vq=1,", nil, "not name=value"},
		{"=1", nil, "not name=value"},
	}
	for _, tt := range tests {
		got, err := ParseWeights(tt.spec, threeDims)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, %v; want %v", tt.spec, got, err, tt.want)
		}
	}
}

func TestFormatWeights(t *testing.T) {
	w := []float64{1, 0, 0.1}
	s := FormatWeights(threeDims, w)
	if s != "vq=1,mq=0.1" {
		t.Fatalf("FormatWeights = %q", s)
	}
	back, err := ParseWeights(s, threeDims)
	if err != nil || !slices.Equal(back, w) {
		t.Errorf("round trip %v, %v", back, err)
	}
}

func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{"", "vq=1,ta=2", "mq=-0.5", "VQ=1e300,ta=1e-300", "vq=1,,", "x=1", "vq=0x1p-2", "ta=1_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := ParseWeights(spec, threeDims)
		if err != nil {
			if w != nil {
				t.Fatalf("%q: weights %v with error %v", spec, w, err)
			}
			return
		}
		if len(w) != len(threeDims) {
			t.Fatalf("%q: %d weights", spec, len(w))
		}
		nonzero := false
		for _, v := range w {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%q: non-finite weight in %v", spec, w)
			}
			nonzero = nonzero || v != 0
		}
		if !nonzero {
			t.Fatalf("%q: all-zero weights accepted", spec)
		}
		back, err := ParseWeights(FormatWeights(threeDims, w), threeDims)
		if err != nil || !slices.Equal(back, w) {
			t.Fatalf("%q: round trip of %v gave %v, %v", spec, w, back, err)
		}
	})
}
