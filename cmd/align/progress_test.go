package main

import (
	"math"
	"testing"
)

// runningAverage is the mean of the first steps, then an EMA of decay LossSmoothing (0.98);
// the closing note gives the loss only after a step.
func TestRunningAverage(t *testing.T) {
	var r runningAverage
	if note := r.lossNote(); note != "" {
		t.Errorf("no step: note %q", note)
	}
	for _, v := range []float64{3, 1, 2} {
		r.add(v)
	}
	if r.value != 2 || r.lossNote() != "loss 2.0000" { // (3+1+2)/3
		t.Errorf("three steps: %v, %q", r.value, r.lossNote())
	}
	// After 50 steps of 1 (the mean is 1), step 51 weighs 1/50: a = min(0.98, 1 - 1/51).
	r = runningAverage{}
	for range 50 {
		r.add(1)
	}
	r.add(51)
	if want := 0.98*1 + 0.02*51; math.Abs(r.value-want) > 1e-12 {
		t.Errorf("step 51: %v, want %v", r.value, want)
	}
}

func TestCounted(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 images"}, {1, "1 image"}, {2, "2 images"}} {
		if got := counted(c.n, "image"); got != c.want {
			t.Errorf("counted(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
