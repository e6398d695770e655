// Tests of reward-model training on the synthetic dataset of pairs_test.go: a run resumed
// from a checkpoint matches an uninterrupted one bit for bit, the loss falls, and the end of
// a run writes a calibrated model and the held-out evaluation.
//
// Run: go test ./rewards -run 'Train|Calibrate|Evaluate'
package rewards

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/alignkit/align/nn"
)

func tinyTrainSetup(t *testing.T, dir string, steps int) *Trainer {
	t.Helper()
	d, _ := synthData(false)
	cfg := DefaultTrainConfig()
	cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.LRWarmupSteps, cfg.LearningRate = 8, steps, 2, 3e-3
	cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs, cfg.Seed = 2, 32, 32, 9
	gen, err := NewPairGen(d, nil, cfg.PairConfig([]string{DimVQ, DimTA}))
	if err != nil {
		t.Fatal(err)
	}
	return tinyNativeTrainer(t, cfg, gen, dir)
}

// tinyNativeTrainer is a trainer of a tiny native vq,ta model of the synthetic data's
// 32x32 images, with a tokenizer of gen's captions.
func tinyNativeTrainer(t *testing.T, cfg TrainConfig, gen *PairGen, dir string) *Trainer {
	t.Helper()
	tok, err := BuildTokenizer(gen, 8)
	if err != nil {
		t.Fatal(err)
	}
	mcfg := NativeConfig{Kind: KindImage, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 8, TubeletFrames: 1,
		Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2, Dims: []string{DimVQ, DimTA}}
	tr, err := NewTrainer(testDev, mcfg, tok, cfg, gen, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrainResumeExact(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := tinyTrainSetup(t, dirA, 4)
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	// Interrupted after step 2 (a cancelled context stops after the current step).
	b := tinyTrainSetup(t, dirB, 4)
	ctx, cancel := context.WithCancel(context.Background())
	b.Progress = func(e LogEntry) {
		if e.Step == 2 {
			cancel()
		}
	}
	if err := b.Run(ctx, 0); err != ErrInterrupted {
		t.Fatalf("interrupted run: %v", err)
	}
	ck, mcfg, tok, err := ReadTrainingCheckpoint(filepath.Join(dirB, "checkpoint-2.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	c := tinyTrainSetup(t, dirB, 4)
	c2, err := NewTrainer(testDev, mcfg, tok, c.Cfg, c.Gen, dirB)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := c2.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for i := range a.Log {
		if a.Log[i].Loss != c2.Log[i].Loss {
			t.Errorf("step %d: loss %v uninterrupted, %v resumed", i+1, a.Log[i].Loss, c2.Log[i].Loss)
		}
	}
	pa, pc := a.Model.Params(), c2.Model.Params()
	for i := range pa {
		if fmt.Sprint(toHost(pa[i].W)) != fmt.Sprint(toHost(pc[i].W)) {
			t.Fatalf("%s differs after resume", pa[i].Name)
		}
	}
	// The end of the run: a calibrated, loadable model and the held-out evaluation.
	m, err := LoadNative(testDev, filepath.Join(dirA, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Calib == nil || m.Calib.N != 64 || len(m.Calib.TieEps) != 2 {
		t.Errorf("calibration %+v", m.Calib)
	}
	js, err := os.ReadFile(filepath.Join(dirA, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep EvalReport
	if err := json.Unmarshal(js, &rep); err != nil || len(rep.Dims) != 2 || rep.Split != SplitHeldOut {
		t.Errorf("eval.json %s: %v", js, err)
	}
	if cs, _ := nn.Checkpoints(dirA); len(cs) != 2 {
		t.Errorf("checkpoints %v, want the last 2", cs)
	}
	if _, _, _, err := ReadTrainingCheckpoint(filepath.Join(dirA, "model.safetensors")); err == nil {
		t.Error("model file read as a training checkpoint")
	}
}

func TestTrainLossFalls(t *testing.T) {
	tr := tinyTrainSetup(t, t.TempDir(), 60)
	tr.Cfg.CheckpointingSteps = 1000
	first, last := 0.0, 0.0
	for s := range 60 {
		e, err := tr.TrainOneStep()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case s < 15:
			first += e.Loss / 15
		case s >= 45:
			last += e.Loss / 15
		}
	}
	if !(last < first-0.05) {
		t.Errorf("mean loss %.3f over the first 15 steps, %.3f over the last 15", first, last)
	}
}
