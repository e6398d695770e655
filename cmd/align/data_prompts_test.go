// Tests of `align data prompts` on the fixture dataset: flags, parts that are disjoint and
// cover the split, a limit that keeps a prefix, the held-out split, the file written with -o.
//
// Test: go test ./cmd/align -run DataPrompts
package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDataPromptsFlags(t *testing.T) {
	cases := []struct {
		args  []string
		want  DataPromptsOptions
		error string
	}{
		{args: []string{"d"}, want: DataPromptsOptions{Dir: "d", Split: "train", Part: "0/1", parts: 1}},
		{args: []string{"d", "--split", "heldout", "--part", "1/2", "--limit", "200", "-o", "p.txt"},
			want: DataPromptsOptions{Dir: "d", Split: "heldout", Part: "1/2", Limit: 200, Output: "p.txt", part: 1, parts: 2}},
		{args: []string{"d", "--video"}, want: DataPromptsOptions{Dir: "d", Split: "train", Part: "0/1", parts: 1, Video: true}},
		{args: []string{"d", "--split", "val"}, error: `--split "val"`},
		{args: []string{"d", "--part", "2/2"}, error: "--part: shard"},
		{args: []string{"d", "--limit", "-1"}, error: "--limit must be >= 0"},
		{args: []string{}, error: "one dataset directory"},
	}
	for _, c := range cases {
		var got *DataPromptsOptions
		root := newRootCmd(&strings.Builder{}, &strings.Builder{})
		for _, cmd := range root.Commands() {
			if cmd.Name() == "data" {
				root.RemoveCommand(cmd)
			}
		}
		root.AddCommand(newCmdData(&dataRunFuncs{prompts: func(o *DataPromptsOptions) error { got = o; return nil }}))
		root.SetArgs(append([]string{"data", "prompts"}, c.args...))
		err := root.Execute()
		if c.error != "" {
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Errorf("%v: err %v, want %q", c.args, err, c.error)
			}
			continue
		}
		if err != nil || got == nil || *got != c.want {
			t.Errorf("%v: %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
}

func TestDataPrompts(t *testing.T) {
	dir := buildFixtureDataset(t)
	run := func(args ...string) []string {
		t.Helper()
		code, stdout, stderr := runAlign(t, append([]string{"data", "prompts", dir}, args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d, %s", args, code, stderr)
		}
		return strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	}
	// The fixture's 7 training concepts, each by its base emoji's caption, sorted by
	// h = sha256("prompts/" + concept)[:8] (python3: 1F311 0x2f18.., 1F34E 0x472d..,
	// 1F9D1-200D-1F91D-200D-1F9D1 0x54b6.., 1F44B 0x7eed.., 0023-FE0F-20E3 0x90b0..,
	// 1F7E5 0xb1e2.., 1F37D-FE0F 0xf95a..); part i/2 by h mod 2 (0 for 1F311 and 1F7E5).
	all := run()
	want := []string{"new moon symbol", "red apple", "people holding hands", "waving hand sign", "hash key", "large red square", "fork and knife with plate"}
	if !slices.Equal(all, want) {
		t.Errorf("all training prompts %q, want %q", all, want)
	}
	// --video: the same order, the motions of dataset.Motions in turn.
	video := run("--video")
	wantVideo := []string{"a new moon symbol moving left", "a red apple moving right", "a people holding hands moving up",
		"a waving hand sign moving down", "a hash key moving up and left", "a large red square moving up and right",
		"a fork and knife with plate moving down and left"}
	if !slices.Equal(video, wantVideo) {
		t.Errorf("--video prompts %q, want %q", video, wantVideo)
	}
	p0, p1 := run("--part", "0/2"), run("--part", "1/2")
	if want := []string{"new moon symbol", "large red square"}; !slices.Equal(p0, want) {
		t.Errorf("part 0/2 %q, want %q", p0, want)
	}
	for _, p := range p0 {
		if slices.Contains(p1, p) {
			t.Errorf("%q is in both parts", p)
		}
	}
	union := append(slices.Clone(p0), p1...)
	slices.Sort(union)
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	if !slices.Equal(union, sorted) {
		t.Errorf("parts 0/2 %q and 1/2 %q do not make up the split %q", p0, p1, all)
	}
	if again := run("--part", "1/2"); !slices.Equal(again, p1) {
		t.Errorf("part 1/2 changed between runs: %q then %q", p1, again)
	}
	if head := run("--part", "1/2", "--limit", "2"); !slices.Equal(head, p1[:2]) {
		t.Errorf("--limit 2: %q, want the first two of %q", head, p1)
	}
	if held := run("--split", "heldout"); !slices.Equal(held, []string{"call me hand", "avocado"}) {
		t.Errorf("heldout prompts %q", held)
	}

	out := filepath.Join(t.TempDir(), "prompts", "eval.txt")
	code, stdout, stderr := runAlign(t, "data", "prompts", dir, "--part", "1/2", "-o", out)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "wrote "+out) {
		t.Fatalf("-o: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != strings.Join(p1, "\n")+"\n" {
		t.Errorf("%s: %q, %v", out, b, err)
	}
	if code, _, stderr := runAlign(t, "data", "prompts", filepath.Join(dir, "missing")); code != exitError || !strings.Contains(stderr, "missing") {
		t.Errorf("missing dataset: exit %d, %q", code, stderr)
	}
}
