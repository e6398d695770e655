// Checkpoint directories of training runs: checkpoint-<step>.safetensors files listed by
// step, the newest found for --resume-from-checkpoint latest, old ones pruned. Every
// training loop (pre-training, reward models, fine-tuning) names its checkpoints this way.
//
// Test: go test ./nn -run CheckpointDir

package nn

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

var checkpointName = regexp.MustCompile(`^checkpoint-(\d+)\.safetensors$`)

// CheckpointPath is the file of the checkpoint after step in dir.
func CheckpointPath(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("checkpoint-%d.safetensors", step))
}

// Checkpoints lists the checkpoint files of dir by step, oldest first.
func Checkpoints(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type ck struct {
		step int
		path string
	}
	var cs []ck
	for _, e := range ents {
		if m := checkpointName.FindStringSubmatch(e.Name()); m != nil && !e.IsDir() {
			s, _ := strconv.Atoi(m[1])
			cs = append(cs, ck{s, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].step < cs[j].step })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.path
	}
	return out, nil
}

// LatestCheckpoint returns the newest checkpoint of dir.
func LatestCheckpoint(dir string) (string, error) {
	cs, err := Checkpoints(dir)
	if err != nil {
		return "", fmt.Errorf("--resume-from-checkpoint latest: %w", err)
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("--resume-from-checkpoint latest: no checkpoint-<step>.safetensors in %s", dir)
	}
	return cs[len(cs)-1], nil
}

// PruneCheckpoints removes the oldest checkpoints of dir until keep remain (keep 0 keeps all).
func PruneCheckpoints(dir string, keep int) error {
	if keep == 0 {
		return nil
	}
	cs, err := Checkpoints(dir)
	if err != nil {
		return err
	}
	for len(cs) > keep {
		if err := os.Remove(cs[0]); err != nil {
			return err
		}
		cs = cs[1:]
	}
	return nil
}
