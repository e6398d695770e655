// The generator a command works on: --model PATH, or the embedded default image model when
// no path is given (the embedded default video model with --video); "default" and
// "default-video" name them where a path is asked for. PATH may also be the adapter file
// of a LoRA run of align finetune (adapter.safetensors, written without --merge-lora): it is
// loaded onto the base model it names and merged, W += (alpha/r) B A, which gives the
// weights of the --merge-lora model file.
package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// defaultImageModel and defaultVideoModel are the embedded default generators' files; tests
// swap them.
var (
	defaultImageModel = assets.ImageBase
	defaultVideoModel = assets.VideoBase
)

// The embedded default generators' names in reports.
const (
	defaultImageModelName = "default (embedded image-base)"
	defaultVideoModelName = "default (embedded video-base)"
)

// loadGenerator loads the model at path, or the embedded default image model for "", on
// dev; an adapter file is merged into its base model. It returns the model and a name for
// reports.
func loadGenerator(dev kernels.Device, path string) (*diffusion.DiT, string, error) {
	return loadGeneratorVia(dev, path, nil)
}

// loadGeneratorVia is loadGenerator for a base model reached through the adapter files
// adapters (outermost first), which guards against a chain that loops.
func loadGeneratorVia(dev kernels.Device, path string, adapters []string) (*diffusion.DiT, string, error) {
	switch path {
	case "", "default":
		m, err := diffusion.LoadDiTFromBytes(dev, "embedded default image model", defaultImageModel)
		return m, defaultImageModelName, err
	case "default-video":
		m, err := diffusion.LoadDiTFromBytes(dev, "embedded default video model", defaultVideoModel)
		return m, defaultVideoModelName, err
	}
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, "", err
	}
	base, ok := dpo.AdapterBase(c)
	if !ok {
		m, err := diffusion.DiTFromCheckpoint(dev, c)
		return m, path, err
	}
	if slices.Contains(adapters, path) {
		return nil, "", fmt.Errorf("adapter files name each other as base model: %s -> %s", strings.Join(adapters, " -> "), path)
	}
	if !isDefaultModel(base) {
		if _, err := os.Stat(base); errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("adapter %s: its base model %s does not exist\n"+
				"---> HINT: an adapter file holds only the LoRA weights and is applied to the base it was trained on; restore that "+
				"file, or write plain weights from the run's checkpoint (it holds the base): align finetune --resume-from-checkpoint "+
				"latest -o RUN_DIR --merge-lora with the run's data flags", path, base)
		}
	}
	m, baseName, err := loadGeneratorVia(dev, base, append(adapters, path))
	if err != nil {
		return nil, "", fmt.Errorf("adapter %s: base model %s: %w", path, cmp.Or(base, defaultImageModelName), err)
	}
	_, ls, err := dpo.ApplyAdapter(m, c)
	if err != nil {
		return nil, "", fmt.Errorf("%w (base model %s)", err, baseName)
	}
	dpo.MergeLoRA(ls)
	m.SetTrainable(true) // as a plain model file loads
	return m, fmt.Sprintf("%s (LoRA on %s)", path, baseName), nil
}

// adapterUsage is the help of --adapter, on the commands that sample a generator.
const adapterUsage = "fine-tuning by align finetune merged into --model's weights: `PATH=WEIGHT`, or PATH for weight 1; " +
	"PATH is a LoRA adapter file (ΔW = (alpha/r) B A) or a fine-tuned model.safetensors (ΔW = W_ft - W, its task vector); " +
	"repeat it to mix fine-tunings of one base in weight space, W + Σ w_i ΔW_i (e.g. one Flow-DPO run per " +
	"reward dimension, weighted per run); without --model, the base the first was trained from"

// adapterWeight is one --adapter: a fine-tuning's file (adapter or model) and the weight of
// its update.
type adapterWeight struct {
	Path   string  `json:"path"`
	Weight float64 `json:"weight"`
}

// parseAdapters reads --adapter values, PATH or PATH=WEIGHT (a finite number; a path that
// itself holds "=" takes an explicit weight).
func parseAdapters(specs []string) ([]adapterWeight, error) {
	out := make([]adapterWeight, len(specs))
	for i, s := range specs {
		a := adapterWeight{Path: s, Weight: 1}
		if j := strings.LastIndexByte(s, '='); j >= 0 {
			w, err := strconv.ParseFloat(s[j+1:], 64)
			if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
				return nil, flagErrorf("--adapter %q: the weight after \"=\" must be a finite number, got %q (a path holding \"=\" takes one: PATH=1)", s, s[j+1:])
			}
			a = adapterWeight{Path: s[:j], Weight: w}
		}
		if a.Path == "" {
			return nil, flagErrorf("--adapter %q: no file", s)
		}
		out[i] = a
	}
	return out, nil
}

// loadGeneratorMix is loadGenerator with the adapters (adapter files, or fine-tuned model
// files as task vectors) merged into the model's weights, W + Σ w_i ΔW_i (dpo.MergeAdapters);
// each must have been trained from those weights. With no path the base is the one the first
// adapter names. The name for reports lists the mix.
func loadGeneratorMix(dev kernels.Device, path string, adapters []adapterWeight) (*diffusion.DiT, string, error) {
	if len(adapters) == 0 {
		return loadGenerator(dev, path)
	}
	path, cs, bases, err := readAdapters(path, adapters)
	if err != nil {
		return nil, "", err
	}
	ws := make([]float64, len(adapters))
	for i, a := range adapters {
		ws[i] = a.Weight
	}
	m, name, err := loadGenerator(dev, path)
	if err != nil {
		return nil, "", err
	}
	if err := dpo.MergeAdapters(m, cs, ws); err != nil {
		if !errors.Is(err, dpo.ErrOtherBase) {
			return nil, "", fmt.Errorf("--adapter: %w", err)
		}
		var trained []string
		for i, a := range adapters {
			trained = append(trained, fmt.Sprintf("%s on %s", a.Path, bases[i]))
		}
		return nil, "", fmt.Errorf("--adapter: %w\n---> HINT: an adapter applies to the weights it was trained on (%s); --model is %s",
			err, strings.Join(trained, ", "), name)
	}
	parts := make([]string, len(adapters))
	for i, a := range adapters {
		parts[i] = fmt.Sprintf("%g x %s", a.Weight, a.Path)
	}
	return m, fmt.Sprintf("%s + %s", name, strings.Join(parts, " + ")), nil
}

// loadAdapterBase loads the generator loadGeneratorMix merges the adapters into, unmerged.
func loadAdapterBase(dev kernels.Device, path string, video bool, adapters []adapterWeight) (*diffusion.DiT, error) {
	path, _, _, err := readAdapters(path, adapters)
	if err != nil {
		return nil, err
	}
	m, _, err := loadGeneratorKind(dev, path, video, nil)
	return m, err
}

// readAdapters reads the adapters' files and returns them with the base each names ("default"
// for the embedded image model) and the generator they are merged into: path, or without
// one the first adapter's base.
func readAdapters(path string, adapters []adapterWeight) (string, []*nn.Checkpoint, []string, error) {
	cs := make([]*nn.Checkpoint, len(adapters))
	bases := make([]string, len(adapters))
	for i, a := range adapters {
		c, err := nn.LoadCheckpoint(a.Path)
		if err != nil {
			return "", nil, nil, fmt.Errorf("--adapter: %w", err)
		}
		base, ok := dpo.FinetuneBase(c)
		if !ok {
			return "", nil, nil, flagErrorf("--adapter %s: neither a LoRA adapter file nor a model file of align finetune that records "+
				"its base model (any other model file goes to --model)", a.Path)
		}
		cs[i], bases[i] = c, cmp.Or(base, "default")
	}
	if path == "" && len(bases) > 0 {
		path = bases[0]
	}
	return path, cs, bases, nil
}

// isDefaultModel reports whether --model names an embedded generator ("" and "default": the
// image model, "default-video": the video model) rather than a file.
func isDefaultModel(path string) bool {
	return path == "" || path == "default" || path == "default-video"
}

// loadGeneratorKind is loadGeneratorMix for commands with --video: the model's kind must
// match, and no path (and no adapter naming its base) means the embedded default video model.
func loadGeneratorKind(dev kernels.Device, path string, video bool, adapters []adapterWeight) (*diffusion.DiT, string, error) {
	if path == "" && video && len(adapters) == 0 {
		path = "default-video"
	}
	m, name, err := loadGeneratorMix(dev, path, adapters)
	if err != nil {
		return nil, "", err
	}
	switch {
	case video && m.Config.Kind != diffusion.KindVideo:
		return nil, "", usageError{fmt.Errorf("--video given but %s is an %s model", name, m.Config.Kind)}
	case !video && m.Config.Kind == diffusion.KindVideo:
		return nil, "", usageError{fmt.Errorf("%s is a video model; add --video", name)}
	}
	return m, name, nil
}

// generatorSHA256 is the hex sha256 of a generator file's bytes, or of the embedded default
// image model's for "": what runs record so that a resume can tell the generator changed.
func generatorSHA256(path string) (string, error) {
	h := sha256.New()
	if path == "" {
		h.Write(defaultImageModel)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
