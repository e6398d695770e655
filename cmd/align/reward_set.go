// Several reward models scoring files as one (repeated --reward in align score and align
// pairs). Each model reads the inputs decoded for it (its own size, resize and frame count)
// and the rows are joined side by side in the order of the flags, as rewards.NewEnsemble
// joins the scores of models that read tensors in memory (align sample). The dimensions must
// differ across the models.
//
// Test: go test ./cmd/align -run Ensemble
package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// rewardSet is the models of the --reward flags.
type rewardSet struct {
	members  []*loadedReward
	model    rewards.Model // their ensemble: the dimensions and calibration, side by side
	describe string
	clips    bool
}

// loadRewardSet opens each of specs as align score opens --reward (base's ONNX Runtime
// options apply to each) and makes them one set (newRewardSet).
func loadRewardSet(cmd *cobra.Command, base *ScoreOptions, specs []string) (*rewardSet, error) {
	var lrs []*loadedReward
	closeAll := func() {
		for _, lr := range lrs {
			lr.close()
		}
	}
	for _, spec := range specs {
		o := *base
		o.Reward = spec
		lr, err := loadReward(cmd, &o)
		if err != nil {
			closeAll()
			return nil, err
		}
		lrs = append(lrs, lr)
	}
	set, err := newRewardSet(lrs)
	if err != nil {
		closeAll()
		return nil, err
	}
	return set, nil
}

// checkManifestFlag refuses --manifest with several --reward models: it names the manifest
// of one ONNX model.
func checkManifestFlag(manifest string, specs []string) error {
	if manifest != "" && len(specs) > 1 {
		return flagErrorf("--manifest names the manifest of one ONNX model; with several --reward, name each manifest (FILE.json) as the --reward")
	}
	return nil
}

// newRewardSet makes loaded models one set. Where some read clips and others images, the
// set scores clips: an image model scores each clip's frames (sampled as the first clip
// model samples them, at its own size) and averages them, as align sample's steering does
// (guidance.PerFrame); an ONNX image model whose manifest rejects clips is an error.
func newRewardSet(lrs []*loadedReward) (*rewardSet, error) {
	s := &rewardSet{members: lrs}
	first := slices.IndexFunc(lrs, func(lr *loadedReward) bool { return lr.clips })
	s.clips = first >= 0
	var models []rewards.Model
	var descs []string
	for i, lr := range lrs {
		if s.clips && !lr.clips {
			if m, ok := lr.model.(interface{ RejectsClips() bool }); ok && m.RejectsClips() {
				return nil, usageError{fmt.Errorf("%s reads images and its manifest rejects clips (clip_reduce reject), %s reads clips: score them in separate runs",
					lr.describe, lrs[first].describe)}
			}
			perFrame := *lr
			perFrame.model, perFrame.clips, perFrame.frames = guidance.PerFrame{Model: lr.model}, true, lrs[first].frames
			perFrame.describe += " (per frame)"
			lrs[i] = &perFrame
			lr = lrs[i]
		}
		models, descs = append(models, lr.model), append(descs, lr.describe)
	}
	var err error
	if s.model, err = rewards.NewEnsemble(models); err != nil {
		return nil, usageError{fmt.Errorf("--reward: %w", err)}
	}
	s.describe = strings.Join(descs, " + ")
	return s, nil
}

// apart reports whether no model of the set computes on the command's --device (remote and
// ONNX models compute apart from it), so that the set can score while that device samples.
func (s *rewardSet) apart() bool {
	return !slices.ContainsFunc(s.members, func(lr *loadedReward) bool { return lr.onCmdDevice })
}

func (s *rewardSet) close() {
	for _, lr := range s.members {
		lr.close()
	}
}

// run scores items with every model in turn, each through a copy of template (batch size,
// workers, clip sampling) set up for it, and joins the rows; progress gets the items done
// over all models and the current model's rows so far. With windows of clips
// (template.Windows), the clip models must read as many frames: they then cut the same
// windows.
func (s *rewardSet) run(ctx context.Context, items []scoring.Item, template scoring.Scorer, progress func(done, rows int)) ([]scoring.Result, error) {
	if template.Windows != 0 && template.Windows != 1 {
		for _, lr := range s.members[1:] {
			if lr.frames != s.members[0].frames {
				return nil, usageError{fmt.Errorf("--clips-per-video: %s reads clips of %d frames, %s of %d: their windows differ; score them in separate runs",
					s.members[0].describe, s.members[0].frames, lr.describe, lr.frames)}
			}
		}
	}
	var rows []scoring.Result
	for k, lr := range s.members {
		sc := template
		sc.Model, sc.Dev, sc.Geometry, sc.Clips, sc.Frames = lr.model, lr.dev, lr.geometry, lr.clips, lr.frames
		if progress != nil {
			sc.Progress = func(done, _, rows int) { progress(k*len(items)+done, rows) }
		}
		r, err := sc.Run(ctx, items)
		if err != nil {
			return nil, err
		}
		rows = joinRows(rows, r)
	}
	return rows, nil
}

// joinRows puts the next model's rows r beside rows (nil: r itself): the scores side by
// side, the first error of an input kept. Both hold the rows of the same inputs in order;
// an input's rows (one per window) are joined window by window where both models gave the
// same windows, and where they did not (one failed partway through a clip) the input keeps
// only its first error row.
func joinRows(rows, r []scoring.Result) []scoring.Result {
	if rows == nil {
		return r
	}
	var joined []scoring.Result
	for len(rows) > 0 && len(r) > 0 {
		a, b := scoring.InputRows(rows), scoring.InputRows(r)
		rows, r = rows[len(a):], r[len(b):]
		same := len(a) == len(b)
		for i := 0; same && i < len(a); i++ {
			same = a[i].Start == b[i].Start
		}
		if !same {
			failed := func(x scoring.Result) bool { return !x.OK() }
			if i := slices.IndexFunc(a, failed); i >= 0 {
				joined = append(joined, a[i])
			} else if i := slices.IndexFunc(b, failed); i >= 0 {
				joined = append(joined, b[i])
			} else {
				e := a[0]
				e.Raw, e.Z, e.Err = nil, nil, fmt.Sprintf("%s: the reward models read %d and %d windows", e.Path, len(a), len(b))
				joined = append(joined, e)
			}
			continue
		}
		for i := range a {
			x, y := a[i], &b[i]
			switch {
			case !x.OK():
			case !y.OK():
				x.Raw, x.Z, x.Err = nil, nil, y.Err
			default:
				x.Raw, x.Z = append(x.Raw, y.Raw...), append(x.Z, y.Z...)
			}
			joined = append(joined, x)
		}
	}
	return joined
}
