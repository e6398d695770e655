// Tests of pre-training: exact resume (K steps straight vs K/2, interrupt, resume, K/2 give
// bit-identical losses and an identical model file), the files a run writes, checkpoint
// pruning, the learning-rate schedules, the data order, resume errors, the loss plot, and
// steps with a non-finite loss (skipped, logged, survived; too many in a row end the run).
//
// Test: go test ./diffusion -run 'Pretrain|LossCurve|EpochOrder'

package diffusion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alignkit/align/nn"
)

// memData is an in-memory TrainingData of random samples with captions.
type memData struct {
	caps    []string
	samples [][]float32
}

func newMemData(n, D int, seed uint64) *memData {
	r := rand.New(rand.NewPCG(seed, 9))
	caps := []string{"red apple", "green apple moving left", "blue car", "a red car"}
	d := &memData{}
	for i := range n {
		d.caps = append(d.caps, caps[i%len(caps)])
		d.samples = append(d.samples, hostValues(r, D, 0.5))
	}
	return d
}

func (d *memData) Len() int                    { return len(d.caps) }
func (d *memData) Caption(i int) string        { return d.caps[i] }
func (d *memData) Sample(dst []float32, i int) { copy(dst, d.samples[i]) }

func tinyPretrain(steps int) PretrainConfig {
	c := DefaultPretrainConfig()
	c.Seed, c.TrainBatchSize, c.MaxTrainSteps = 5, 4, steps
	c.LearningRate, c.LRScheduler, c.LRWarmupSteps = 3e-3, nn.LRCosine, 2
	c.EMADecay, c.CheckpointingSteps, c.CheckpointsTotalLimit = 0.9, 2, 2
	c.ValidationPrompts, c.ValidationSteps = []string{"red apple", "blue car"}, 2
	return c
}

func newTinyTrainer(t *testing.T, dir string, cfg PretrainConfig, data TrainingData) *Trainer {
	t.Helper()
	tr, err := NewTrainer(testDev, tinyConfig(KindImage), tinyTokenizer(t), cfg, data, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestPretrainExactResume(t *testing.T) {
	data := newMemData(10, tinyConfig(KindImage).SampleSize(), 1) // batches of 4 cross epoch ends
	_, resumed := checkExactResume(t, func(dir string, cfg PretrainConfig) *Trainer { return newTinyTrainer(t, dir, cfg, data) }, data)
	if resumed.Log[len(resumed.Log)-1].Epoch != 2 { // step 8 takes samples 28..31: it starts in epoch 2
		t.Errorf("epoch at step 8 is %d, want 2", resumed.Log[len(resumed.Log)-1].Epoch)
	}
}

// checkExactResume runs tinyPretrain(8) with trainers from newTrainer straight through, and
// again interrupted after step 4 and resumed from its checkpoint by a trainer built from
// the checkpoint alone; it checks that the losses are bit-identical, the model files equal
// and the log has every step once. It returns the interrupted run's directory and the
// resumed trainer.
func checkExactResume(t *testing.T, newTrainer func(dir string, cfg PretrainConfig) *Trainer, data TrainingData) (string, *Trainer) {
	t.Helper()
	const K = 8

	// Straight through.
	dirA := t.TempDir()
	a := newTrainer(dirA, tinyPretrain(K))
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}

	// Interrupted after K/2 (at a step that is not a checkpointing step), then resumed.
	dirB := t.TempDir()
	cfg := tinyPretrain(K)
	cfg.CheckpointingSteps = 3
	b := newTrainer(dirB, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	b.Progress = func(e LogEntry, _ time.Duration) {
		if e.Step == K/2 {
			cancel()
		}
	}
	if err := b.Run(ctx, 0); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	latest, err := nn.LatestCheckpoint(dirB)
	if err != nil || filepath.Base(latest) != "checkpoint-4.safetensors" {
		t.Fatalf("latest checkpoint %q, err %v", latest, err)
	}
	ck, mcfg, tok, err := ReadTrainingCheckpoint(latest)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewTrainer(testDev, mcfg, tok, cfg, data, dirB) // cfg names no init source: the checkpoint has it
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}

	checkSameLog(t, a.Log, c.Log, K)
	ma, _ := os.ReadFile(filepath.Join(dirA, "model.safetensors"))
	mc, _ := os.ReadFile(filepath.Join(dirB, "model.safetensors"))
	if len(ma) == 0 || !bytes.Equal(ma, mc) {
		t.Error("the resumed run's model file differs")
	}
	// The log file on disk has every step once.
	lb, _ := os.ReadFile(filepath.Join(dirB, "logs.jsonl"))
	if n := strings.Count(string(lb), "\n"); n != K {
		t.Errorf("logs.jsonl has %d lines:\n%s", n, lb)
	}
	return dirB, c
}

func TestPretrainOutputs(t *testing.T) {
	dir := t.TempDir()
	data := newMemData(6, tinyConfig(KindImage).SampleSize(), 2)
	tr := newTinyTrainer(t, dir, tinyPretrain(6), data)
	var msgs []string
	tr.Notify = func(m string) { msgs = append(msgs, m) }
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	cs, _ := nn.Checkpoints(dir)
	var names []string
	for _, c := range cs {
		names = append(names, filepath.Base(c))
	}
	if !slices.Equal(names, []string{"checkpoint-4.safetensors", "checkpoint-6.safetensors"}) {
		t.Errorf("checkpoints kept: %v (limit 2)", names)
	}
	for _, f := range []string{"model.safetensors", "loss.png", "logs.jsonl", "samples/step-000002.png", "samples/step-000006.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if len(msgs) != 3 || !strings.Contains(msgs[2], "step 6") {
		t.Errorf("notifications %q", msgs)
	}
	// The model file is a plain model: it loads and samples; a checkpoint is not one.
	m, err := LoadDiT(testDev, filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Config.Equal(&tr.EMA.Config) {
		t.Error("model config differs")
	}
	if _, err := LoadDiT(testDev, cs[1]); err == nil || !strings.Contains(err.Error(), "training-state") {
		t.Errorf("loading a checkpoint as a model: err = %v", err)
	}
	if _, _, _, err := ReadTrainingCheckpoint(filepath.Join(dir, "model.safetensors")); err == nil ||
		!strings.Contains(err.Error(), "not a training checkpoint") {
		t.Errorf("resuming from a model file: err = %v", err)
	}
	lines, _ := os.ReadFile(filepath.Join(dir, "logs.jsonl"))
	var e LogEntry
	if err := json.Unmarshal(bytes.SplitN(lines, []byte("\n"), 2)[0], &e); err != nil || e.Step != 1 || e.SamplesPerSec <= 0 || e.GradNorm <= 0 {
		t.Errorf("first log line %s: %+v %v", lines[:min(len(lines), 200)], e, err)
	}
}

func TestPretrainResumeErrors(t *testing.T) {
	dir := t.TempDir()
	data := newMemData(6, tinyConfig(KindImage).SampleSize(), 2)
	tr := newTinyTrainer(t, dir, tinyPretrain(2), data)
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	path := tr.CheckpointPath(2)
	ck, mcfg, tok, err := ReadTrainingCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewTrainer(testDev, mcfg, tok, tinyPretrain(4), newMemData(7, mcfg.SampleSize(), 2), dir)
	if err := other.Resume(ck); err == nil || !strings.Contains(err.Error(), "7") || !strings.Contains(err.Error(), path) {
		t.Errorf("other data: err = %v", err)
	}
	cfg := tinyPretrain(4)
	cfg.Seed = 99
	seeded, _ := NewTrainer(testDev, mcfg, tok, cfg, data, dir)
	if err := seeded.Resume(ck); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("other seed: err = %v", err)
	}
	if _, err := nn.LatestCheckpoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("empty dir: err = %v", err)
	}
}

func TestPretrainTimeLimit(t *testing.T) {
	dir := t.TempDir()
	data := newMemData(6, tinyConfig(KindImage).SampleSize(), 2)
	cfg := tinyPretrain(50)
	cfg.CheckpointingSteps = 100
	tr := newTinyTrainer(t, dir, cfg, data)
	err := tr.Run(context.Background(), time.Nanosecond)
	if !errors.Is(err, ErrTimeLimit) || tr.Step != 1 {
		t.Fatalf("err = %v at step %d", err, tr.Step)
	}
	if _, err := os.Stat(tr.CheckpointPath(1)); err != nil {
		t.Error("no checkpoint at the time limit")
	}
}

func TestEpochOrder(t *testing.T) {
	a, b := EpochOrder(1, 0, 50), EpochOrder(1, 1, 50)
	s := slices.Clone(a)
	slices.Sort(s)
	for i, v := range s {
		if v != i {
			t.Fatal("not a permutation")
		}
	}
	if slices.Equal(a, b) || !slices.Equal(a, EpochOrder(1, 0, 50)) {
		t.Error("epoch orders are not distinct and reproducible")
	}
}

func TestLossCurve(t *testing.T) {
	img := LossCurve(nil, 320, 200)
	if img.Bounds().Dx() != 320 {
		t.Fatal("size")
	}
	var log []LogEntry
	for i := range 50 {
		log = append(log, LogEntry{Step: i + 1, Loss: 1 / float64(i+1)})
	}
	log = append(log, LogEntry{Step: 51, Loss: math.NaN(), Skipped: true})
	img = LossCurve(log, 320, 200)
	blue := 0
	for y := range 200 {
		for x := range 320 {
			if img.RGBAAt(x, y) == plotBlue {
				blue++
			}
		}
	}
	if blue < 100 {
		t.Errorf("only %d pixels of the curve", blue)
	}
}

func TestPretrainConfigChanges(t *testing.T) {
	a, b := DefaultPretrainConfig(), DefaultPretrainConfig()
	if ch := ConfigChanges(&a, &b); len(ch) != 0 {
		t.Errorf("no change reported as %v", ch)
	}
	b.LearningRate, b.Objective.LogitStd = 1e-3, 2
	ch := ConfigChanges(&a, &b)
	if len(ch) != 2 || ch[0] != "learning_rate: 0.0003 -> 0.001" || ch[1] != "objective.logit_std: 1 -> 2" {
		t.Errorf("changes %q", ch)
	}
}

// trainSnapshot prints everything an optimizer step changes: the raw and EMA weights and the
// AdamW moments and step count.
func trainSnapshot(tr *Trainer) string {
	ps := append(tr.Model.Params(), tr.EMA.Params()...)
	return fmt.Sprint(nn.HostParams(ps, nn.F32), *nn.HostAdamW(tr.Opt.Params, tr.Opt.M, tr.Opt.V, tr.Opt.Steps))
}

// A step with a non-finite loss (a NaN in one of its samples) is skipped: the weights, the
// EMA and the AdamW state stay as they were, the log marks it with its NaNs as 0, the run
// goes on with the next step's learning rate, and a run resumed before it logs the same.
func TestPretrainSkipsNonFiniteStep(t *testing.T) {
	const B, K = 4, 8 // tinyPretrain's batch and checkExactResume's steps: one epoch of 32
	data := newMemData(B*K, tinyConfig(KindImage).SampleSize(), 3)
	order := EpochOrder(tinyPretrain(K).Seed, 0, data.Len())
	bad := []int{2, 6} // before and after the checkpoint of step 4 that checkExactResume resumes
	for _, s := range bad {
		data.samples[order[(s-1)*B+1]][5] = float32(math.NaN())
	}

	tr := newTinyTrainer(t, t.TempDir(), tinyPretrain(K), data)
	var notes []string
	tr.Notify = func(m string) { notes = append(notes, m) }
	tr.TrainOneStep()
	before := trainSnapshot(tr)
	if e := tr.TrainOneStep(); !e.Skipped || !math.IsNaN(e.Loss) || e.LR != tr.Cfg.LR(2) {
		t.Fatalf("step 2: %+v", e)
	}
	if trainSnapshot(tr) != before {
		t.Error("the skipped step changed the weights, the EMA or the AdamW state")
	}
	if e := tr.TrainOneStep(); e.Skipped || trainSnapshot(tr) == before || tr.Opt.Steps != 2 || e.LR != tr.Cfg.LR(3) {
		t.Errorf("step 3 after the skipped one: %+v, %d AdamW steps", e, tr.Opt.Steps)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "step 2: non-finite loss (NaN)") {
		t.Errorf("notes %q", notes)
	}

	dir, c := checkExactResume(t, func(dir string, cfg PretrainConfig) *Trainer { return newTinyTrainer(t, dir, cfg, data) }, data)
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
// nn.ErrDiverged, their log written and no checkpoint.
func TestPretrainDiverges(t *testing.T) {
	data := newMemData(4, tinyConfig(KindImage).SampleSize(), 4)
	for _, x := range data.samples {
		x[0] = float32(math.Inf(1))
	}
	cfg := tinyPretrain(nn.MaxSkippedSteps + 10)
	cfg.CheckpointingSteps, cfg.ValidationPrompts = 1000, nil
	dir := t.TempDir()
	tr := newTinyTrainer(t, dir, cfg, data)
	err := tr.Run(context.Background(), 0)
	if !errors.Is(err, nn.ErrDiverged) || tr.Step != nn.MaxSkippedSteps || !strings.HasPrefix(err.Error(), fmt.Sprintf("step %d: ", nn.MaxSkippedSteps)) {
		t.Fatalf("err = %v at step %d", err, tr.Step)
	}
	if n := len(nn.ReadLog(nn.LogPath(dir), cfg.MaxTrainSteps, logStep)); n != nn.MaxSkippedSteps {
		t.Errorf("%d log lines", n)
	}
	if cs, _ := nn.Checkpoints(dir); len(cs) != 0 {
		t.Errorf("checkpoints %v", cs)
	}
}

// checkSameLog fails unless both logs hold steps 1..K with bit-identical losses and gradient
// norms and the same learning rates and epochs (a resumed run against a straight one).
func checkSameLog(t *testing.T, straight, resumed []LogEntry, K int) {
	t.Helper()
	if len(straight) != K || len(resumed) != K {
		t.Fatalf("logs of %d and %d steps", len(straight), len(resumed))
	}
	for i := range K {
		ea, ec := straight[i], resumed[i]
		if ea.Step != i+1 || ec.Step != i+1 || math.Float64bits(ea.Loss) != math.Float64bits(ec.Loss) ||
			math.Float64bits(ea.GradNorm) != math.Float64bits(ec.GradNorm) || ea.LR != ec.LR || ea.Epoch != ec.Epoch {
			t.Errorf("step %d: straight %+v, resumed %+v", i+1, ea, ec)
		}
	}
}
