// Tests of align reward train --teacher-scored: flag defaults and errors, a run with
// teacher pairs, a resume with another scored file refused, a scored set whose dimensions
// the model lacks and one naming a missing image.
//
// Test: go test ./cmd/align -run Teacher
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards"
)

func TestRewardTrainTeacherFlags(t *testing.T) {
	checkRewardTrainCases(t, []rewardTrainCase{
		{name: "defaults with a teacher", args: []string{"--teacher-scored", "s.jsonl"}, check: func(o *RewardTrainOptions) bool {
			return o.Train.TeacherScored == "s.jsonl" && o.Train.TeacherShare == rewards.DefaultTeacherShare && o.Train.TeacherMargin == rewards.DefaultTeacherMargin
		}},
		{name: "given", args: []string{"--teacher-scored", "s.jsonl", "--teacher-share", "0.25", "--teacher-margin", "0"}, check: func(o *RewardTrainOptions) bool {
			return o.Train.TeacherShare == 0.25 && o.Train.TeacherMargin == 0
		}},
		{name: "none", args: nil, check: func(o *RewardTrainOptions) bool {
			return o.Train.TeacherScored == "" && o.Train.TeacherShare == 0 && o.Train.TeacherMargin == 0
		}},
		{name: "share alone", args: []string{"--teacher-share", "0.5"}, wantErr: "--teacher-share and --teacher-margin need --teacher-scored"},
		{name: "share 0", args: []string{"--teacher-scored", "s.jsonl", "--teacher-share", "0"}, wantErr: "--teacher-scored and --teacher-share > 0 go together"},
		{name: "share > 1", args: []string{"--teacher-scored", "s.jsonl", "--teacher-share", "2"}, wantErr: "--teacher-share must be in [0, 1]"},
		{name: "negative margin", args: []string{"--teacher-scored", "s.jsonl", "--teacher-margin", "-1"}, wantErr: "--teacher-margin a finite number >= 0"},
		{name: "reg loss", args: []string{"--teacher-scored", "s.jsonl", "--loss", "reg"}, wantErr: "which loss reg does not read"},
	})
}

func TestRewardTrainTeacher(t *testing.T) {
	data := syntheticEmojiDataset(t, 32)
	dir := t.TempDir()
	// Two prompts of two generated samples each, scored for vq and ta.
	writeScored := func(name, dims string, missing bool) string {
		var lines []string
		for i := range 4 {
			img := filepath.Join(dir, fmt.Sprintf("s%d.png", i))
			writeTestPNG(t, img, 32, 32, uint64(i))
			if missing && i == 3 {
				img = filepath.Join(dir, "gone.png")
			}
			scores := fmt.Sprintf(`{"vq":%d,"ta":%d}`, i, -i)
			if dims != "" {
				scores = fmt.Sprintf(`{%q:%d}`, dims, i)
			}
			lines = append(lines, fmt.Sprintf(`{"prompt":"prompt %d","image":%q,"scores":%s}`, i/2, img, scores))
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	scored := writeScored("scored.jsonl", "", false)
	tiny := func(out string, extra ...string) []string {
		return tinyRewardTrainArgs(data, out, append([]string{"--checkpointing-steps", "1"}, extra...)...)
	}
	out := filepath.Join(dir, "rm")
	code, _, stderr := runAlign(t, tiny(out, "--max-train-steps", "1", "--teacher-scored", scored)...)
	if code != exitOK || !strings.Contains(stderr, "teacher pairs: share 0.5 of the training pairs of [ta vq], from 2 prompts of "+scored) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Another scored file (here: the same samples, other scores) is refused on resume.
	other := writeScored("other.jsonl", "vq", false)
	code, _, stderr = runAlign(t, tiny(out, "--max-train-steps", "2", "--teacher-scored", other, "--resume-from-checkpoint", "latest")...)
	if code == exitOK || !strings.Contains(stderr, "resume with the same --teacher-scored file") {
		t.Errorf("resume with another teacher: exit %d: %s", code, stderr)
	}
	code, _, stderr = runAlign(t, tiny(out, "--max-train-steps", "2", "--teacher-scored", scored, "--resume-from-checkpoint", "latest")...)
	if code != exitOK {
		t.Errorf("resume with the same teacher: exit %d: %s", code, stderr)
	}
	for _, c := range []struct{ scored, want string }{
		{writeScored("mq.jsonl", "mq", false), "scores [mq]; the model's dimensions are [vq ta]"},
		{writeScored("missing.jsonl", "", true), "missing.jsonl:4: " + filepath.Join(dir, "gone.png") + ": no such file"},
	} {
		code, _, stderr := runAlign(t, tiny(filepath.Join(dir, "bad"), "--max-train-steps", "1", "--teacher-scored", c.scored)...)
		if code == exitOK || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q, want %q", c.scored, code, stderr, c.want)
		}
	}
}
