// Tests of `align pairs`: flags, and end to end with a tiny generator and a tiny native
// reward model: pairs that align finetune trains on, a scored set for Flow-RWR, and shards
// that concatenate to the whole run.
//
// Test: go test ./cmd/align -run Pairs
package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

func TestNewCmdPairsFlags(t *testing.T) {
	got, err := runWithStub(t, "pairs", newCmdPairs, []string{"--prompt", "red apple", "--model", "m", "-o", "out/p.jsonl",
		"--num-candidates", "4", "--combine", "pareto", "--shard", "1/3", "--scored"})
	if err != nil || got.NumCandidates != 4 || got.Combine != "pareto" || got.shardI != 1 || got.shardN != 3 || !got.Scored ||
		got.ImagesDir != "out/p-images" || got.NoiseLevel != 0.7 || !slices.Equal(got.Rewards, []string{"default"}) || got.VideoFormat != "gif" {
		t.Errorf("parsed %+v, %v", got, err)
	}
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--model", "m"}, "no prompts"},
		{[]string{"--prompt", "a", "--model", "m", "--num-candidates", "1"}, "--num-candidates must be >= 2"},
		{[]string{"--prompt", "a", "--model", "m", "--combine", "max"}, `--combine "max"`},
		{[]string{"--prompt", "a", "--model", "m", "--shard", "3/3"}, `shard "3/3"`},
		{[]string{"--prompt", "a", "--model", "m", "--noise-level", "0"}, "--noise-level must be > 0"},
		{[]string{"--prompt", "a", "--num-inference-steps", "0"}, "--num-inference-steps must be >= 1"},
		{[]string{"--prompt", "a", "--guidance-scale", "NaN"}, "--guidance-scale must be a finite number >= 0"},
		{[]string{"--prompt", "a", "--shift", "-1"}, "--shift must be a finite number > 0"},
		{[]string{"--prompt", "a", "--pairs-per-prompt", "0"}, "--pairs-per-prompt must be >= 1"},
		{[]string{"--prompt", "a", "--pairs-per-prompt", "2", "--combine", "pareto"}, "gives one pair per prompt"},
		{[]string{"--prompt", "a", "--pairs-per-prompt", "5"}, "needs at least 10 candidates, got --num-candidates 8"},
		{[]string{"--prompt", "a", "--min-margin", "-1"}, "--min-margin must be >= 0"},
		{[]string{"--prompt", "a", "--scored", "--pairs-per-prompt", "2"}, "select later with --from-scored"},
		{[]string{"--prompt", "a", "--video-format", "webm"}, `--video-format "webm": want gif or mp4`},
	} {
		if _, err := runWithStub(t, "pairs", newCmdPairs, tt.args); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("pairs %v: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestPairsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	reward := writeRewardModel(t, dir, rewards.KindImage)
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("red apple\nblue car\ngreen apple\n"), 0o644)
	common := []string{"pairs", "--prompts", prompts, "--model", model, "--reward", reward, "--num-candidates", "3",
		"--num-inference-steps", "2", "--seed", "4"}
	out := filepath.Join(dir, "data", "pairs.jsonl")
	code, stdout, stderr := runAlign(t, append(common, "-o", out)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	set, err := dpo.ReadPairs(out, dpo.PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Pairs) != 3 || !strings.Contains(stdout, "3 pairs") {
		t.Fatalf("pairs %+v; stdout %q", set.Pairs, stdout)
	}
	for i, p := range set.Pairs {
		if *p.Seed != 4 || *p.ChosenIndex/3 != i || *p.RejectedIndex/3 != i || p.ChosenScores == nil ||
			!strings.HasPrefix(p.Chosen, filepath.Join(dir, "data", "pairs-images")) {
			t.Errorf("pair %d: %+v", i, p)
		}
		var uc, ur float64
		for _, v := range p.ChosenScores {
			uc += v
		}
		for _, v := range p.RejectedScores {
			ur += v
		}
		if uc <= ur {
			t.Errorf("pair %d: chosen sum %v not above rejected %v", i, uc, ur)
		}
	}
	// The pairs train.
	run := filepath.Join(dir, "dpo")
	if code, _, stderr := runAlign(t, "finetune", "--pairs", out, "--model", model, "-o", run, "--lora-rank", "2",
		"--max-train-steps", "2", "--train-batch-size", "2", "--merge-lora"); code != exitOK {
		t.Fatalf("finetune on generated pairs: exit %d: %s", code, stderr)
	}

	// Shards concatenated give the whole run (same samples, same pairs); --scored gives a
	// scored set for rwr.
	var joined []dpo.Pair
	for i, shard := range []string{"0/2", "1/2"} {
		o := filepath.Join(dir, "shard", fmt.Sprintf("s%d.jsonl", i))
		if code, _, stderr := runAlign(t, append(common, "-o", o, "--shard", shard, "--images-dir", filepath.Join(dir, "shard-images"))...); code != exitOK {
			t.Fatalf("shard %s: exit %d: %s", shard, code, stderr)
		}
		s, err := dpo.ReadPairs(o, dpo.PairOptions{})
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, s.Pairs...)
	}
	if len(joined) != len(set.Pairs) {
		t.Fatalf("shards give %d pairs, the whole run %d", len(joined), len(set.Pairs))
	}
	for i, p := range set.Pairs {
		q := joined[i]
		a, _ := os.ReadFile(p.Chosen)
		b, _ := os.ReadFile(q.Chosen)
		if filepath.Base(p.Chosen) != filepath.Base(q.Chosen) || filepath.Base(p.Rejected) != filepath.Base(q.Rejected) ||
			*p.ChosenIndex != *q.ChosenIndex || p.ChosenScores["ta"] != q.ChosenScores["ta"] || len(a) == 0 || string(a) != string(b) {
			t.Errorf("pair %d: whole run %+v, shards %+v", i, p, q)
		}
	}
	scored := filepath.Join(dir, "scored.jsonl")
	if code, _, stderr := runAlign(t, append(common, "-o", scored, "--scored")...); code != exitOK {
		t.Fatalf("--scored: exit %d: %s", code, stderr)
	}
	ss, err := dpo.ReadScored(scored)
	if err != nil || len(ss.Items) != 9 || strings.Join(ss.Dims, ",") != "ta,vq" || *ss.Items[8].Index != 8 {
		t.Fatalf("scored set: %v %+v", err, ss)
	}
	// Pairs selected from the scored set are the pairs of the sampling run (same samples,
	// same weights), and other weights need no sampling.
	fromScored := filepath.Join(dir, "from-scored", "pairs.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "-o", fromScored); code != exitOK {
		t.Fatalf("--from-scored: exit %d: %s", code, stderr)
	}
	fs, err := dpo.ReadPairs(fromScored, dpo.PairOptions{})
	if err != nil || len(fs.Pairs) != len(set.Pairs) {
		t.Fatalf("from scored: %v, %d pairs, want %d", err, len(fs.Pairs), len(set.Pairs))
	}
	for i, p := range set.Pairs {
		q := fs.Pairs[i]
		if filepath.Base(p.Chosen) != filepath.Base(q.Chosen) || *p.ChosenIndex != *q.ChosenIndex || *p.RejectedIndex != *q.RejectedIndex ||
			p.ChosenScores["vq"] != q.ChosenScores["vq"] {
			t.Errorf("pair %d: sampled %+v, from scored %+v", i, p, q)
		}
	}
	taOnly := filepath.Join(dir, "pairs-ta.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "--weights", "vq=0,ta=1", "-o", taOnly); code != exitOK {
		t.Fatalf("--from-scored --weights: exit %d: %s", code, stderr)
	}
	ta, err := dpo.ReadPairs(taOnly, dpo.PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ta.Pairs {
		if p.ChosenScores["ta"] <= p.RejectedScores["ta"] {
			t.Errorf("ta-only pair %+v: chosen ta not above rejected", p)
		}
	}
	// A margin above every prompt's spread leaves no pair: an error naming the file.
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "--min-margin", "100", "-o", taOnly); code != exitError ||
		!strings.Contains(stderr, scored) {
		t.Errorf("--min-margin 100: exit %d, %s", code, stderr)
	}
	if code, _, _ := runAlign(t, "pairs", "--from-scored", scored, "--prompts", prompts, "-o", taOnly); code != exitUsage {
		t.Errorf("--from-scored with --prompts: exit %d, want %d", code, exitUsage)
	}

	// --rescore: the same reward gives the same scores; another (the embedded default) gives
	// its own, for the same files, prompts and indices, and the set it writes selects pairs.
	same := filepath.Join(dir, "rescored-same.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "--rescore", "--reward", reward, "--scored", "-o", same); code != exitOK {
		t.Fatalf("--rescore: exit %d: %s", code, stderr)
	}
	rs, err := dpo.ReadScored(same)
	if err != nil || len(rs.Items) != len(ss.Items) {
		t.Fatalf("rescored set: %v, %d items", err, len(rs.Items))
	}
	// The same bits where the products do not depend on the batch (the Go GEMM: a prompt's
	// candidates were scored together, the rescored samples 16 at a time); with OpenBLAS,
	// the same to float32 rounding.
	sameScores := func(a, b []float64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
	if !kernels.BatchInvariant() {
		sameScores = func(a, b []float64) bool {
			for i := range a {
				if len(a) != len(b) || math.Abs(a[i]-b[i]) > 1e-5*(1+math.Abs(b[i])) {
					return false
				}
			}
			return len(a) == len(b)
		}
	}
	for i := range ss.Items {
		if rs.Items[i].Path != ss.Items[i].Path || rs.Items[i].Prompt != ss.Items[i].Prompt || *rs.Items[i].Index != *ss.Items[i].Index ||
			!sameScores(rs.Items[i].Scores, ss.Items[i].Scores) {
			t.Errorf("item %d rescored by the same reward: %+v, was %+v", i, rs.Items[i], ss.Items[i])
		}
	}
	other := filepath.Join(dir, "rescored-default.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "--rescore", "--reward", "default", "--scored", "-o", other); code != exitOK {
		t.Fatalf("--rescore --reward default: exit %d: %s", code, stderr)
	}
	ro, err := dpo.ReadScored(other)
	if err != nil || len(ro.Items) != len(ss.Items) {
		t.Fatalf("rescored set: %v, %d items", err, len(ro.Items))
	}
	changed := 0
	for i := range ss.Items {
		if ro.Items[i].Path != ss.Items[i].Path || *ro.Items[i].Index != *ss.Items[i].Index {
			t.Errorf("item %d: %+v, was %+v", i, ro.Items[i], ss.Items[i])
		}
		if fmt.Sprint(ro.Items[i].Scores) != fmt.Sprint(ss.Items[i].Scores) {
			changed++
		}
	}
	if changed != len(ss.Items) {
		t.Errorf("another reward changed %d of %d scores", changed, len(ss.Items))
	}
	rePairs := filepath.Join(dir, "pairs-rescored.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", scored, "--rescore", "--reward", "default", "--weights", "vq=0,ta=1", "-o", rePairs); code != exitOK {
		t.Fatalf("--rescore pairs: exit %d: %s", code, stderr)
	}
	rp, err := dpo.ReadPairs(rePairs, dpo.PairOptions{})
	if err != nil || len(rp.Pairs) == 0 {
		t.Fatalf("pairs from the rescored set: %v, %d", err, len(rp.Pairs))
	}
	for _, p := range rp.Pairs {
		if p.ChosenScores["ta"] <= p.RejectedScores["ta"] {
			t.Errorf("rescored ta-only pair %+v: chosen ta not above rejected", p)
		}
	}
	for _, args := range [][]string{
		{"--from-scored", scored, "--scored", "-o", same},            // --scored without --rescore copies
		{"--prompt", "a", "--rescore", "--model", model, "-o", same}, // --rescore without --from-scored
	} {
		if code, _, stderr := runAlign(t, append([]string{"pairs"}, args...)...); code != exitUsage {
			t.Errorf("pairs %v: exit %d, want %d: %s", args, code, exitUsage, stderr)
		}
	}
	if code, _, stderr := runAlign(t, "finetune", "--method", "rwr", "--scored", scored, "--model", model, "-o", filepath.Join(dir, "rwr"),
		"--lora-rank", "2", "--max-train-steps", "1", "--train-batch-size", "3"); code != exitOK {
		t.Fatalf("rwr on the scored set: exit %d: %s", code, stderr)
	}
}

// A clip reward model with an image generator (the embedded one when --model is not given)
// is refused, naming both.
func TestPairsKindMismatch(t *testing.T) {
	dir := t.TempDir()
	reward := writeRewardModel(t, dir, rewards.KindVideo)
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("red apple\n"), 0o644)
	model := saveTinyModel(t, dir, diffusion.KindImage)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model}, reward + " scores clips but " + model + " generates images"},
		{nil, reward + " scores clips but " + defaultImageModelName + " generates images"},
	} {
		code, _, stderr := runAlign(t, append([]string{"pairs", "--prompts", prompts, "--reward", reward, "-o", filepath.Join(dir, "p.jsonl")}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q, want %q", c.args, code, stderr, c.want)
		}
	}
}
