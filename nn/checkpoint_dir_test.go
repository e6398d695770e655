// Tests of checkpoint directories. Run: go test ./nn -run CheckpointDir
package nn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckpointDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LatestCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "no checkpoint-") {
		t.Fatalf("empty dir: err = %v", err)
	}
	// Steps sort numerically (900 before 1000), other files are ignored.
	for _, name := range []string{"checkpoint-1000.safetensors", "checkpoint-900.safetensors",
		"checkpoint-20.safetensors", "model.safetensors", "checkpoint-x.safetensors", ".checkpoint-5.safetensors.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "checkpoint-5000.safetensors"), 0o755); err != nil {
		t.Fatal(err)
	}
	cs, err := Checkpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CheckpointPath(dir, 20), CheckpointPath(dir, 900), CheckpointPath(dir, 1000)}
	if !slices.Equal(cs, want) {
		t.Fatalf("Checkpoints = %v, want %v", cs, want)
	}
	if l, _ := LatestCheckpoint(dir); l != want[2] {
		t.Fatalf("LatestCheckpoint = %s", l)
	}
	if err := PruneCheckpoints(dir, 0); err != nil {
		t.Fatal(err)
	}
	if cs, _ := Checkpoints(dir); len(cs) != 3 {
		t.Fatalf("keep 0 removed checkpoints: %v", cs)
	}
	if err := PruneCheckpoints(dir, 2); err != nil {
		t.Fatal(err)
	}
	if cs, _ := Checkpoints(dir); !slices.Equal(cs, want[1:]) {
		t.Fatalf("after pruning to 2: %v", cs)
	}
	if _, err := Checkpoints(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing dir gave no error")
	}
}
