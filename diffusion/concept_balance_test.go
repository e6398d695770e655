// Tests of concept-balanced sampling: the weights against hand-computed values, the alias
// table against its weights, the empirical frequencies of many draws, determinism, the
// α = 0 identity with the order (and the losses) from before balancing existed, and a
// second stage with α = 1 resumed from a finished α = 0 run, interrupted and resumed again.
//
// Test: go test ./diffusion -run ConceptBalance

package diffusion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alignkit/align/nn"
)

// tinyConcepts names three concepts of 1, 2 and 5 samples, interleaved.
var tinyConcepts = []string{"c5", "c2", "c5", "c1", "c5", "c2", "c5", "c5"}

// conceptMemData is memData whose samples have concepts; it records the samples drawn.
type conceptMemData struct {
	*memData
	concepts []string
	drawn    []int
}

func newConceptMemData(concepts []string, seed uint64) *conceptMemData {
	return &conceptMemData{memData: newMemData(len(concepts), tinyConfig(KindImage).SampleSize(), seed), concepts: concepts}
}

func (d *conceptMemData) Concept(i int) string { return d.concepts[i] }
func (d *conceptMemData) Sample(dst []float32, i int) {
	d.drawn = append(d.drawn, i)
	d.memData.Sample(dst, i)
}

func TestConceptBalanceWeights(t *testing.T) {
	// Per sample of c1, c2, c5: α = 1: each concept 1/3; α = 0: each sample 1/8;
	// α = 0.5: n^-0.5 / (1 + √2 + √5).
	for _, tt := range []struct {
		alpha      float64
		c1, c2, c5 float64
	}{
		{1, 1.0 / 3, 1.0 / 6, 1.0 / 15},
		{0, 1.0 / 8, 1.0 / 8, 1.0 / 8},
		{0.5, 0.21504074353901054, 0.1520567679878316, 0.09616914409706524},
	} {
		want := map[string]float64{"c1": tt.c1, "c2": tt.c2, "c5": tt.c5}
		for i, p := range ConceptWeights(tinyConcepts, tt.alpha) {
			if w := want[tinyConcepts[i]]; math.Abs(p-w) > 1e-15 {
				t.Errorf("α %v: p[%d] (%s) = %v, want %v", tt.alpha, i, tinyConcepts[i], p, w)
			}
		}
	}
}

// The alias table holds its weights: p_j = (prob[j] + Σ_{alias[k]=j} (1 - prob[k])) / n.
func TestConceptBalanceAliasTable(t *testing.T) {
	for _, p := range [][]float64{
		ConceptWeights(tinyConcepts, 1),
		{0.5, 0.5},
		{1},
		{0.7, 0.1, 0.1, 0.05, 0.05},
	} {
		a := newAliasTable(p)
		n := float64(len(p))
		got := make([]float64, len(p))
		for k, keep := range a.keep {
			prob := float64(keep) / (1 << 32)
			got[k] += prob / n
			got[a.alias[k]] += (1 - prob) / n
		}
		for j := range p {
			if math.Abs(got[j]-p[j]) > 1e-9 {
				t.Errorf("p %v: table gives %v", p, got)
				break
			}
		}
	}
}

// 200,000 draws with α = 1 hit each concept a third of the time and each sample its p_i,
// within about 4 standard deviations (sd <= sqrt(p(1-p)/n) = 0.00105).
func TestConceptBalanceFrequencies(t *testing.T) {
	const steps, B = 5000, 40
	p := ConceptWeights(tinyConcepts, 1)
	a := newAliasTable(p)
	count := make([]float64, len(p))
	perConcept := map[string]float64{}
	for s := 1; s <= steps; s++ {
		for _, i := range a.batch(7, s, B) {
			count[i]++
			perConcept[tinyConcepts[i]]++
		}
	}
	const n = steps * B
	for i := range p {
		if f := count[i] / n; math.Abs(f-p[i]) > 0.004 {
			t.Errorf("sample %d (%s): frequency %.4f, want %.4f", i, tinyConcepts[i], f, p[i])
		}
	}
	for c, k := range perConcept {
		if f := k / n; math.Abs(f-1.0/3) > 0.004 {
			t.Errorf("concept %s: frequency %.4f, want 1/3", c, f)
		}
	}
}

// A step's draws depend on (seed, step) only: the same again, other steps and seeds differ,
// and a larger batch starts with the smaller one's draws.
func TestConceptBalanceDeterminism(t *testing.T) {
	a := newAliasTable(ConceptWeights(tinyConcepts, 1))
	x := a.batch(3, 17, 32)
	if !slices.Equal(x, a.batch(3, 17, 32)) || !slices.Equal(x[:8], a.batch(3, 17, 8)) {
		t.Error("the draws of (seed 3, step 17) are not reproducible")
	}
	if slices.Equal(x, a.batch(3, 18, 32)) || slices.Equal(x, a.batch(4, 17, 32)) {
		t.Error("other steps or seeds give the same draws")
	}
}

func TestConceptBalanceValidate(t *testing.T) {
	for _, alpha := range []float64{-0.1, 1.5, math.NaN()} {
		c := DefaultPretrainConfig()
		c.ConceptBalance = alpha
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--concept-balance must be in [0, 1]") {
			t.Errorf("α %v: err = %v", alpha, err)
		}
	}
	cfg := tinyPretrain(2)
	cfg.ConceptBalance = 1
	_, err := NewTrainer(testDev, tinyConfig(KindImage), tinyTokenizer(t), cfg, newMemData(4, tinyConfig(KindImage).SampleSize(), 1), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--concept-balance 1: the training data names no concepts") {
		t.Errorf("data without concepts: err = %v", err)
	}
	// A checkpoint of a run from before concept_balance existed reads as α = 0.
	var old PretrainConfig
	js, _ := json.Marshal(DefaultPretrainConfig())
	js = []byte(strings.Replace(string(js), `"concept_balance":0,`, "", 1))
	if err := json.Unmarshal(js, &old); err != nil || strings.Contains(string(js), "concept_balance") {
		t.Fatalf("%s: %v", js, err)
	}
	now := DefaultPretrainConfig()
	now.ConceptBalance = 1
	if ch := ConfigChanges(&old, &now); !slices.Equal(ch, []string{"concept_balance: 0 -> 1"}) {
		t.Errorf("changes %q", ch)
	}
}

// α = 0 is the order from before balancing existed: the epoch permutations, and the losses
// that a 6-step run of tinyPretrain had then (recorded with kernels.NewCPU; float32 sums,
// compared to 1e-6 since another CPU's GEMM path may round differently).
func TestPretrainConceptBalanceZeroIdentity(t *testing.T) {
	data := newConceptMemData(slices.Repeat([]string{"a", "b", "b", "c", "c"}, 2), 1)
	cfg := tinyPretrain(6)
	cfg.ValidationPrompts = nil
	tr := newTinyTrainer(t, t.TempDir(), cfg, data)
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(EpochOrder(cfg.Seed, 0, 10), EpochOrder(cfg.Seed, 1, 10), EpochOrder(cfg.Seed, 2, 10))[:6*4]
	if !slices.Equal(data.drawn, want) {
		t.Errorf("samples drawn %v, want the epoch orders %v", data.drawn, want)
	}
	losses := []float64{1.1750189661979675, 1.0069651305675507, 1.116384282708168, 1.3288158476352692, 1.1920540630817413, 1.1040421277284622}
	for i, e := range tr.Log {
		if math.Abs(e.Loss-losses[i]) > 1e-6*losses[i] || e.Epoch != []int{0, 0, 0, 1, 1, 1}[i] {
			t.Errorf("step %d: loss %v epoch %d, before balancing %v", e.Step, e.Loss, e.Epoch, losses[i])
		}
	}
}

// resumeTrainer builds a trainer from the latest checkpoint in dir with cfg and resumes it.
func resumeTrainer(t *testing.T, dir string, cfg PretrainConfig, data TrainingData) *Trainer {
	t.Helper()
	latest, err := nn.LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	ck, mcfg, tok, err := ReadTrainingCheckpoint(latest)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(testDev, mcfg, tok, cfg, data, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Resume(ck); err != nil {
		t.Fatal(err)
	}
	return tr
}

// A finished α = 0 run of 4 steps continues as a second stage with α = 1 and
// --max-train-steps 8: steps 5..8 draw the balanced batches of their step numbers, and the
// stage interrupted after step 6 and resumed gives bit-identical losses and model.
func TestPretrainConceptBalanceSecondStage(t *testing.T) {
	const K1, K = 4, 8
	stage2 := tinyPretrain(K)
	stage2.ConceptBalance, stage2.ValidationPrompts = 1, nil
	runStage1 := func() (string, *conceptMemData) {
		data := newConceptMemData(tinyConcepts, 2)
		dir := t.TempDir()
		cfg := tinyPretrain(K1)
		cfg.ValidationPrompts = nil
		if err := newTinyTrainer(t, dir, cfg, data).Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		return dir, data
	}

	// Straight through the second stage.
	dirA, dataA := runStage1()
	a := resumeTrainer(t, dirA, stage2, dataA)
	if ch := ConfigChanges(a.Resumed, &a.Cfg); !slices.Equal(ch, []string{"concept_balance: 0 -> 1", "max_train_steps: 4 -> 8"}) {
		t.Errorf("changes %q", ch)
	}
	dataA.drawn = nil
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	table := newAliasTable(ConceptWeights(tinyConcepts, 1))
	var want []int
	for s := K1 + 1; s <= K; s++ {
		want = append(want, table.batch(stage2.Seed, s, stage2.TrainBatchSize)...)
	}
	if !slices.Equal(dataA.drawn, want) {
		t.Errorf("second stage drew %v, want %v", dataA.drawn, want)
	}
	if a.Epoch != 1 || a.Pos != 8 { // where stage 1 stopped
		t.Errorf("the epoch order moved in the balanced stage: epoch %d position %d", a.Epoch, a.Pos)
	}

	// Interrupted after step 6 (not a checkpointing step), then resumed.
	dirB, dataB := runStage1()
	cfg := stage2
	cfg.CheckpointingSteps = 3
	b := resumeTrainer(t, dirB, cfg, dataB)
	ctx, cancel := context.WithCancel(context.Background())
	b.Progress = func(e LogEntry, _ time.Duration) {
		if e.Step == 6 {
			cancel()
		}
	}
	if err := b.Run(ctx, 0); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted stage: err = %v", err)
	}
	c := resumeTrainer(t, dirB, cfg, dataB)
	if c.Step != 6 || c.Resumed.ConceptBalance != 1 {
		t.Fatalf("resumed at step %d with α %v", c.Step, c.Resumed.ConceptBalance)
	}
	if err := c.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	checkSameLog(t, a.Log, c.Log, K)
	// Epochs: steps 1..4 the epoch order's (8 samples, batches of 4), 5..8 floor((s-1)*4/8).
	if got := []int{a.Log[0].Epoch, a.Log[3].Epoch, a.Log[4].Epoch, a.Log[7].Epoch}; !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("epochs of steps 1, 4, 5, 8: %v", got)
	}
	ma, _ := os.ReadFile(filepath.Join(dirA, "model.safetensors"))
	mc, _ := os.ReadFile(filepath.Join(dirB, "model.safetensors"))
	if len(ma) == 0 || !bytes.Equal(ma, mc) {
		t.Error("the resumed stage's model file differs")
	}
}
