// Tests of the shared training-loop hyper-parameters: the learning-rate schedules on
// hand-computed steps, every check naming its flag, and AdamW taking a zero beta as zero
// (two hand-computed steps).
//
// Test: go test ./nn -run 'TrainLoop|ScheduledLR|AdamBetas'
package nn

import (
	"math"
	"strings"
	"testing"
)

func TestScheduledLR(t *testing.T) {
	// peak 1, warmup 10, 110 steps: p = (s - 10)/100 after the warmup.
	for _, tt := range []struct {
		sched string
		step  int
		want  float64
	}{
		{LRConstant, 5, 0.5}, {LRConstant, 10, 1}, {LRConstant, 110, 1},
		{LRLinear, 60, 0.5}, {LRLinear, 110, 0}, {LRLinear, 200, 0},
		{LRCosine, 60, 0.5}, {LRCosine, 110, 0}, {LRCosine, 1, 0.1}, {LRCosine, 35, (1 + math.Sqrt2/2) / 2},
	} {
		c := TrainLoop{LearningRate: 1, LRScheduler: tt.sched, LRWarmupSteps: 10, MaxTrainSteps: 110}
		if got := c.LR(tt.step); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s step %d: lr %v, want %v", tt.sched, tt.step, got, tt.want)
		}
	}
	// No steps after the warmup: the peak rate.
	if got := ScheduledLR(2, LRCosine, 10, 10, 12); got != 2 {
		t.Errorf("warmup = total: lr %v, want 2", got)
	}
}

func TestTrainLoopValidate(t *testing.T) {
	ok := TrainLoop{TrainBatchSize: 4, MaxTrainSteps: 10, LearningRate: 1e-4, LRScheduler: LRCosine,
		LRWarmupSteps: 0, AdamWeightDecay: 0, MaxGradNorm: 1, CheckpointingSteps: 5, CheckpointsTotalLimit: 0}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid loop refused: %v", err)
	}
	for _, tt := range []struct {
		flag string
		bad  func(c *TrainLoop)
	}{
		{"--train-batch-size", func(c *TrainLoop) { c.TrainBatchSize = 0 }},
		{"--max-train-steps", func(c *TrainLoop) { c.MaxTrainSteps = 0 }},
		{"--learning-rate", func(c *TrainLoop) { c.LearningRate = 0 }},
		{"--learning-rate", func(c *TrainLoop) { c.LearningRate = math.Inf(1) }},
		{"--learning-rate", func(c *TrainLoop) { c.LearningRate = math.NaN() }},
		{"--lr-scheduler", func(c *TrainLoop) { c.LRScheduler = "step" }},
		{"--lr-warmup-steps", func(c *TrainLoop) { c.LRWarmupSteps = -1 }},
		{"--adam-weight-decay", func(c *TrainLoop) { c.AdamWeightDecay = -0.1 }},
		{"--adam-weight-decay", func(c *TrainLoop) { c.AdamWeightDecay = math.Inf(1) }},
		{"--max-grad-norm", func(c *TrainLoop) { c.MaxGradNorm = 0 }},
		{"--checkpointing-steps", func(c *TrainLoop) { c.CheckpointingSteps = 0 }},
		{"--checkpoints-total-limit", func(c *TrainLoop) { c.CheckpointsTotalLimit = -1 }},
	} {
		c := ok
		tt.bad(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%+v: error %v, want one naming %s", c, err, tt.flag)
		}
	}
}

func TestAdamBetasValidate(t *testing.T) {
	for _, b := range []AdamBetas{DefaultAdamBetas(), {AdamBeta1: 0, AdamBeta2: 0, AdamEpsilon: 1e-6}} {
		if err := b.Validate(); err != nil {
			t.Errorf("%+v refused: %v", b, err)
		}
	}
	for _, b := range []AdamBetas{
		{AdamBeta1: 1, AdamBeta2: 0.999, AdamEpsilon: 1e-8},
		{AdamBeta1: 0.9, AdamBeta2: -0.1, AdamEpsilon: 1e-8},
		{AdamBeta1: math.NaN(), AdamBeta2: 0.999, AdamEpsilon: 1e-8},
		{AdamBeta1: 0.9, AdamBeta2: 0.999, AdamEpsilon: 0},
		{AdamBeta1: 0.9, AdamBeta2: 0.999, AdamEpsilon: math.Inf(1)},
	} {
		if err := b.Validate(); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}

// TestAdamWZeroBeta1 runs two steps of one weight with beta1 = 0 (RMSprop's first moment: m
// is the last gradient), by hand: p = 1, lr 0.1, beta2 0.999, gradients 1 then -1.
//
//	step 1: m = 1, v = 0.001, v/(1-0.999) = 1          p = 1 - 0.1*1/(1+eps)   = 0.9
//	step 2: m = -1, v = 0.001999, v/(1-0.999^2) = 1    p = 0.9 + 0.1/(1+eps)   = 1.0
//
// With beta1 0.9 instead (what a zero once silently became) step 2 ends at 0.90526.
func TestAdamWZeroBeta1(t *testing.T) {
	w := Param{Name: "w", W: testDev.FromHost([]float32{1}, 1), G: testDev.FromHost([]float32{1}, 1)}
	loop := TrainLoop{LearningRate: 0.1}
	opt := NewAdamW(testDev, []Param{w}, loop.AdamW(AdamBetas{AdamBeta1: 0, AdamBeta2: 0.999, AdamEpsilon: 1e-8}))
	opt.Step()
	if got := toHost(w.W)[0]; math.Abs(float64(got)-0.9) > 1e-6 {
		t.Fatalf("step 1: p = %v, want 0.9", got)
	}
	testDev.CopyFromHost(w.G, []float32{-1})
	opt.Step()
	if got := toHost(w.W)[0]; math.Abs(float64(got)-1) > 1e-6 {
		t.Errorf("step 2: p = %v, want 1 (beta1 = 0: the update follows the last gradient alone)", got)
	}
}
