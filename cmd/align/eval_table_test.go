package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards/scoring"
)

// writeReport writes an eval report of the given pairs with the models reward and judge on
// vq and ta, each dimension's comparison from paired(role, dim).
func writeReport(t *testing.T, path string, pairs int, paired func(role, dim string) scoring.Paired) {
	t.Helper()
	rep := evalReport{Pairs: pairs}
	for _, role := range []string{"reward", "judge"} {
		m := evalModel{Role: role}
		for _, d := range []string{"vq", "ta"} {
			p := paired(role, d)
			p.N = pairs
			m.Dims = append(m.Dims, evalDim{Dim: d, Paired: p})
		}
		rep.Models = append(rep.Models, m)
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeEvalReport: dims maps "role dim" to {win rate, mean change}; the interval is ±0.05.
func writeEvalReport(t *testing.T, path string, pairs int, dims map[string][2]float64) {
	writeReport(t, path, pairs, func(role, dim string) scoring.Paired {
		v := dims[role+" "+dim]
		return scoring.Paired{WinRate: v[0], WinRateCI: [2]float64{v[0] - 0.05, v[0] + 0.05}, MeanChange: v[1]}
	})
}

func TestEvalTable(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "c.json")
	writeEvalReport(t, a, 400, map[string][2]float64{"reward vq": {0.5, 0}, "reward ta": {0.7, 0.25}, "judge vq": {0.45, -0.1}, "judge ta": {0.625, 0.125}})
	writeEvalReport(t, b, 400, map[string][2]float64{"reward ta": {0.5125, 0.01}})
	writeEvalReport(t, c, 200, nil)
	code, stdout, stderr := runAlign(t, "eval", "table", "dpo-ta="+a, "sft="+b)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `| run (400 pairs) | reward vq | reward ta | judge vq | judge ta |
|---|---|---|---|---|
| dpo-ta | 50.0% [45.0, 55.0], Δz +0.00 | 70.0% [65.0, 75.0], Δz +0.25 | 45.0% [40.0, 50.0], Δz -0.10 | 62.5% [57.5, 67.5], Δz +0.12 |
| sft | 0.0% [-5.0, 5.0], Δz +0.00 | 51.2% [46.2, 56.2], Δz +0.01 | 0.0% [-5.0, 5.0], Δz +0.00 | 0.0% [-5.0, 5.0], Δz +0.00 |
`
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
	if code, _, stderr := runAlign(t, "eval", "table", "a="+a, "c="+c); code != exitError || !strings.Contains(stderr, "not be comparable") {
		t.Errorf("reports of 400 and 200 pairs: exit %d, %s", code, stderr)
	}
	if code, _, _ := runAlign(t, "eval", "table", a); code != exitUsage {
		t.Errorf("argument without a label: exit %d, want %d", code, exitUsage)
	}
}

// TestEvalTableCost: --cost adds the candidate's reward evaluations and seconds per image
// with the baseline's seconds, "?" for a report written before eval recorded them.
func TestEvalTableCost(t *testing.T) {
	dir := t.TempDir()
	sides := func(path string, base, cand evalSide) {
		var rep evalReport
		b, _ := os.ReadFile(path)
		json.Unmarshal(b, &rep)
		rep.Baseline, rep.Candidate = base, cand
		b, _ = json.Marshal(rep)
		os.WriteFile(path, b, 0o644)
	}
	nrg, fk, old := filepath.Join(dir, "nrg.json"), filepath.Join(dir, "fk.json"), filepath.Join(dir, "old.json")
	for _, f := range []string{nrg, fk, old} {
		writeEvalReport(t, f, 400, map[string][2]float64{"reward ta": {0.75, 0.5}})
	}
	// NRG: 27 guided steps of one fwd+bwd per image, 1000 s for 400 images against 200 s;
	// FK: 4 particles scored at 7 steps, 3000 s against the SDE baseline's 220 s.
	sides(nrg, evalSide{Images: 400, Seconds: 200}, evalSide{Images: 400, Seconds: 1000, RewardGradientsPerImage: 27})
	sides(fk, evalSide{Images: 400, Seconds: 220}, evalSide{Images: 400, Seconds: 3000, RewardCallsPerImage: 28})
	code, stdout, stderr := runAlign(t, "eval", "table", "--cost", "NRG ta-only="+nrg, "FK ta-only (vs SDE)="+fk, "old="+old)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `| run (400 pairs) | reward vq | reward ta | judge vq | judge ta | reward / image | s / image (baseline) |
|---|---|---|---|---|---|---|
| NRG ta-only | 0.0% [-5.0, 5.0], Δz +0.00 | 75.0% [70.0, 80.0], Δz +0.50 | 0.0% [-5.0, 5.0], Δz +0.00 | 0.0% [-5.0, 5.0], Δz +0.00 | 27 gradients | 2.5 (0.5) |
| FK ta-only (vs SDE) | 0.0% [-5.0, 5.0], Δz +0.00 | 75.0% [70.0, 80.0], Δz +0.50 | 0.0% [-5.0, 5.0], Δz +0.00 | 0.0% [-5.0, 5.0], Δz +0.00 | 28 calls | 7.5 (0.55) |
| old | 0.0% [-5.0, 5.0], Δz +0.00 | 75.0% [70.0, 80.0], Δz +0.50 | 0.0% [-5.0, 5.0], Δz +0.00 | 0.0% [-5.0, 5.0], Δz +0.00 | ? | ? (?) |
`
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestEvalSideOf: the cost of a set from its samples.json; NRG's batched gradient calls
// evaluate each of the k particles behind an image.
func TestEvalSideOf(t *testing.T) {
	r := &sampleReport{Model: "m", Sampler: "sde", NumInferenceSteps: 28, GuidanceScale: 4, Files: make([]sampleFile, 4), Seconds: 2,
		Steering: &steeringReport{Methods: []string{"nrg", "fk"}, CallsPerImage: 28, GradientCalls: 27, Particles: 4}}
	s := evalSideOf("out/x", r)
	want := evalSide{Dir: "out/x", Model: "m", Sampler: "sde", NumInferenceSteps: 28, GuidanceScale: 4, Steering: []string{"nrg", "fk"},
		Images: 4, Seconds: 2, RewardCallsPerImage: 28, RewardGradientsPerImage: 27 * 4}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("side %+v\nwant %+v", s, want)
	}
	if c, sec := s.rewardCost(), s.secondsPerImage(); c != "28 calls + 108 gradients" || sec != "0.5" {
		t.Errorf("cost %q, %q s per image", c, sec)
	}
	r.Steering = nil
	if c := evalSideOf("out/x", r); c.rewardCost() != "none" || c.RewardGradientsPerImage != 0 {
		t.Errorf("unsteered: %+v, %q", c, c.rewardCost())
	}
}

// TestEvalSteeringCost: align eval records each set's cost from its samples.json: a
// best-of-2 candidate scores both candidates of each of its 4 images, the unguided baseline
// none; the seconds are align sample's.
func TestEvalSteeringCost(t *testing.T) {
	dir, model, prompts, reward, _ := evalFixture(t, map[string][]string{})
	base, bon := filepath.Join(dir, "base"), filepath.Join(dir, "bon")
	code, _, stderr := runAlign(t, "sample", "--model", model, "--prompts", prompts, "--num-images-per-prompt", "2",
		"--num-inference-steps", "2", "--seed", "3", "--reward", reward, "--best-of-n", "2", "-o", bon)
	if code != exitOK {
		t.Fatalf("sample: exit %d, %s", code, stderr)
	}
	rep := runEval(t, "--baseline", base, "--candidate", bon, "--reward", reward)
	for _, s := range []struct {
		dir  string
		side evalSide
		cost string
	}{{base, rep.Baseline, "none"}, {bon, rep.Candidate, "2 calls"}} {
		idx, err := readSampleIndex(s.dir)
		if err != nil {
			t.Fatal(err)
		}
		if s.side.Images != 4 || s.side.Seconds != idx.Seconds || idx.Seconds <= 0 || s.side.rewardCost() != s.cost || s.side.RewardGradientsPerImage != 0 {
			t.Errorf("%s: %+v (samples.json: %v s), want 4 images, %s", s.dir, s.side, idx.Seconds, s.cost)
		}
	}
}
