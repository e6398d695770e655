// Tests of reward-model training on the synthetic dataset of pairs_test.go: a run resumed
// from a checkpoint matches an uninterrupted one bit for bit, the loss falls, the end of a
// run writes a calibrated model and the held-out evaluation, and a step with a non-finite
// loss is skipped, logged and survived (too many in a row end the run).
//
// Run: go test ./rewards -run 'Train|Calibrate|Evaluate'
package rewards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
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
	_, _, dirA, _ := checkTrainResume(t, func(dir string) *Trainer { return tinyTrainSetup(t, dir, 4) })
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

// checkTrainResume runs the 4 steps of a trainer from setup straight through, and again
// interrupted after step 2 and resumed from its checkpoint, and checks that both give the
// same log and weights. It returns the straight and the resumed trainer and their
// directories.
func checkTrainResume(t *testing.T, setup func(dir string) *Trainer) (a, c *Trainer, dirA, dirB string) {
	t.Helper()
	dirA, dirB = t.TempDir(), t.TempDir()
	a = setup(dirA)
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	// Interrupted after step 2 (a cancelled context stops after the current step).
	b := setup(dirB)
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
	c, err = NewTrainer(testDev, mcfg, tok, b.Cfg, b.Gen, dirB)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(a.Log) != 4 || len(c.Log) != 4 {
		t.Fatalf("logs of %d and %d steps", len(a.Log), len(c.Log))
	}
	for i := range a.Log {
		ea, ec := a.Log[i], c.Log[i]
		if ea.Step != ec.Step || ea.Loss != ec.Loss || ea.GradNorm != ec.GradNorm || ea.Skipped != ec.Skipped {
			t.Errorf("step %d: uninterrupted %+v, resumed %+v", i+1, ea, ec)
		}
	}
	pa, pc := a.Model.Params(), c.Model.Params()
	for i := range pa {
		if fmt.Sprint(toHost(pa[i].W)) != fmt.Sprint(toHost(pc[i].W)) {
			t.Fatalf("%s differs after resume", pa[i].Name)
		}
	}
	return a, c, dirA, dirB
}

// trainSnapshot prints everything an optimizer step changes: the weights and the AdamW
// moments and step count.
func trainSnapshot(tr *Trainer) string {
	return fmt.Sprint(nn.HostParams(tr.net().Params(), nn.F32), *nn.HostAdamW(tr.Opt.Params, tr.Opt.M, tr.Opt.V, tr.Opt.Steps))
}

// poisonSteps makes the given steps of tr's first `steps` non-finite: for each it sets the
// embedding of a caption word that only that step's pairs use to NaN (a row no other step
// reads, and no step updates: its steps are skipped).
func poisonSteps(t *testing.T, tr *Trainer, steps int, bad ...int) {
	t.Helper()
	uses := map[int32][]int{} // token id -> the steps whose prompts have it
	for s := 1; s <= steps; s++ {
		pairs, err := tr.Gen.Pairs(SplitTrain, tr.Cfg.TrainBatchSize, tr.Cfg.Seed, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			for _, prompt := range []string{p.A.Prompt, p.B.Prompt} {
				ids, n, _, _ := tr.Model.Tokenizer.Encode(prompt)
				for _, id := range ids[:n] {
					if !slices.Contains(uses[id], s) {
						uses[id] = append(uses[id], s)
					}
				}
			}
		}
	}
	w := toHost(tr.Model.Text.Weight)
	C := tr.Model.Text.C
	for _, s := range bad {
		found := false
		for id := range int32(tr.Model.Text.V) {
			if slices.Equal(uses[id], []int{s}) {
				for j := range C {
					w[int(id)*C+j] = float32(math.NaN())
				}
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("no word of step %d's pairs only", s)
		}
	}
	testDev.CopyFromHost(tr.Model.Text.Weight, w)
}

// A step with a non-finite loss is skipped: the weights and the AdamW state stay as they
// were, the log marks it with its NaNs as 0, the run goes on with the next step's learning
// rate, and a run resumed before it logs the same.
func TestTrainSkipsNonFiniteStep(t *testing.T) {
	const K = 4
	bad := []int{2, 3} // before and after the checkpoint of step 2 that checkTrainResume resumes
	setup := func(dir string) *Trainer {
		tr := tinyTrainSetup(t, dir, K)
		poisonSteps(t, tr, K, bad...)
		return tr
	}

	tr := setup(t.TempDir())
	var notes []string
	tr.Notify = func(m string) { notes = append(notes, m) }
	step := func() LogEntry {
		e, err := tr.TrainOneStep()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	step()
	before := trainSnapshot(tr)
	for _, s := range bad {
		if e := step(); !e.Skipped || !math.IsNaN(e.Loss) || e.LR != tr.Cfg.LR(s) {
			t.Fatalf("step %d: %+v", s, e)
		}
		if trainSnapshot(tr) != before {
			t.Errorf("skipped step %d changed the weights or the AdamW state", s)
		}
	}
	if e := step(); e.Skipped || trainSnapshot(tr) == before || tr.Opt.Steps != 2 || e.LR != tr.Cfg.LR(4) {
		t.Errorf("step 4 after the skipped ones: %+v, %d AdamW steps", e, tr.Opt.Steps)
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "step 2: non-finite loss (NaN)") {
		t.Errorf("notes %q", notes)
	}

	_, c, _, dir := checkTrainResume(t, setup)
	for _, e := range c.Log {
		if e.Skipped != slices.Contains(bad, e.Step) || (e.Skipped && (e.Loss != 0 || e.GradNorm != 0)) {
			t.Errorf("log line %+v", e)
		}
	}
	if got := nn.ReadLog(nn.LogPath(dir), K, logStep); !reflect.DeepEqual(got, c.Log) {
		t.Errorf("logs.jsonl holds %+v, the trainer %+v", got, c.Log)
	}
}

// A run whose every step is non-finite ends after nn.MaxSkippedSteps of them with
// nn.ErrDiverged, the log of every step written (there was no checkpoint to write it).
func TestTrainDiverges(t *testing.T) {
	dir := t.TempDir()
	tr := tinyTrainSetup(t, dir, nn.MaxSkippedSteps+10)
	tr.Cfg.CheckpointingSteps = 1000
	q := tr.Model.Queries // every score reads them
	testDev.CopyFromHost(q, slices.Repeat([]float32{float32(math.NaN())}, q.Len()))
	err := tr.Run(context.Background(), 0)
	if !errors.Is(err, nn.ErrDiverged) || tr.Step != nn.MaxSkippedSteps || !strings.HasPrefix(err.Error(), fmt.Sprintf("step %d: ", nn.MaxSkippedSteps)) {
		t.Fatalf("err = %v at step %d", err, tr.Step)
	}
	if n := len(nn.ReadLog(nn.LogPath(dir), tr.Step, logStep)); n != nn.MaxSkippedSteps {
		t.Errorf("%d log lines", n)
	}
	if cs, _ := nn.Checkpoints(dir); len(cs) != 0 {
		t.Errorf("checkpoints %v", cs)
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

// A run on one artwork set resumes only on that set: the other set of the same size is
// refused by name.
func TestTrainResumeSameImageSet(t *testing.T) {
	d, _ := synthData(false)
	// synthData draws odd concepts in one set only: give them the other so both sets hold
	// the same number of items (the pool-size check would speak first otherwise).
	for _, it := range slices.Clone(d.Items) {
		if it.Set == "twitter" && !slices.ContainsFunc(d.Items, func(o dataset.Item) bool { return o.Unified == it.Unified && o.Set == "google" }) {
			it.Index, it.Set = len(d.Items), "google"
			d.Items = append(d.Items, it)
			d.Pixels = append(d.Pixels, testImage(it.Index)...)
		}
	}
	setup := func(dir, set string) *Trainer {
		cfg := DefaultTrainConfig()
		cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs, cfg.ImageSet = 4, 1, 1, 16, 0, set
		gen, err := NewPairGen(d, nil, cfg.PairConfig([]string{DimVQ, DimTA}))
		if err != nil {
			t.Fatal(err)
		}
		return tinyNativeTrainer(t, cfg, gen, dir)
	}
	dir := t.TempDir()
	a := setup(dir, "google")
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ck, _, _, err := ReadTrainingCheckpoint(filepath.Join(dir, "checkpoint-1.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t.TempDir(), "twitter")
	if b.Gen.PoolSize(SplitTrain) != a.Gen.PoolSize(SplitTrain) {
		t.Fatalf("pools of %d and %d items", a.Gen.PoolSize(SplitTrain), b.Gen.PoolSize(SplitTrain))
	}
	if err := b.Resume(ck); err == nil || !strings.Contains(err.Error(), `image set "google", --image-set is "twitter"`) {
		t.Errorf("resume on another set: %v", err)
	}
	if err := setup(t.TempDir(), "google").Resume(ck); err != nil {
		t.Errorf("resume on the same set: %v", err)
	}
}
