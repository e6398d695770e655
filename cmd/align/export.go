// align export onnx: write the native reward model as an ONNX graph plus the manifest that
// align score (and any ONNX Runtime user) needs to feed it, and check ONNX Runtime's scores
// against the Go model's on random inputs.
//
// Test: go test ./cmd/align -run Export
package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// ExportONNXOptions are the flags of `align export onnx`.
type ExportONNXOptions struct {
	Model      string
	Output     string
	Manifest   string
	Verify     bool
	ORTLibrary string
}

func newCmdExport(runF func(*ExportONNXOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export models to other formats",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newCmdExportONNX(runF), newCmdExportSafetensors(nil))
	return cmd
}

func newCmdExportONNX(runF func(*ExportONNXOptions) error) *cobra.Command {
	opts := &ExportONNXOptions{}
	cmd := &cobra.Command{
		Use:   "onnx",
		Short: "Export the native reward model as ONNX with its manifest",
		Long: `Write the native reward model as an ONNX graph (IR 9, opset 17; inputs pixels in [-1, 1]
and input_ids from align's word tokenizer, output scores (B,D)) and its manifest (-o with the
extension .json): layout, size, normalisation, the vocabulary, output dimensions and the
calibration. With --verify (the default) ONNX Runtime scores random inputs and the command
fails if any score differs from the Go model's by more than 1e-4.`,
		Example: `  $ align export onnx --model reward/model.safetensors -o reward.onnx
  $ align score samples/ --reward reward.onnx
  $ align export onnx --model reward/ -o reward.onnx --verify=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" {
				return flagErrorf("--model is required: a reward model file (align reward train's model.safetensors), its folder, or default")
			}
			if opts.Output == "" {
				return flagErrorf("-o/--output is required, e.g. -o reward.onnx")
			}
			if !strings.EqualFold(filepath.Ext(opts.Output), ".onnx") {
				return flagErrorf("-o %s: the file name must end in .onnx", opts.Output)
			}
			if opts.Manifest == "" {
				opts.Manifest = onnx.ManifestPathFor(opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			return exportONNXRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "native reward model: a .safetensors file, a folder holding model.safetensors, default or default-video")
	f.StringVarP(&opts.Output, "output", "o", "", "ONNX file to write (.onnx)")
	f.StringVar(&opts.Manifest, "manifest", "", "manifest to write (default: the output with .json)")
	f.BoolVar(&opts.Verify, "verify", true, "compare ONNX Runtime's scores with the Go model's on random inputs (skipped with a note when ONNX Runtime is missing)")
	f.StringVar(&opts.ORTLibrary, "onnxruntime", "", "ONNX Runtime library for --verify (default: $"+onnx.EnvLibrary+", third_party/onnxruntime, the system's)")
	return cmd
}

func exportONNXRun(cmd *cobra.Command, opts *ExportONNXOptions) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	var m *rewards.Native
	switch path := opts.Model; {
	case path == "default" || path == defaultVideoReward:
		m, err = loadDefaultReward(dev, path == defaultVideoReward)
	default:
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			path = filepath.Join(path, "model.safetensors")
		}
		m, err = rewards.LoadNative(dev, path)
	}
	if err != nil {
		return err
	}
	data, man, err := onnx.ExportNative(m, relTo(opts.Manifest, opts.Output))
	if err != nil {
		return err
	}
	js, err := man.Marshal()
	if err != nil {
		return err
	}
	if opts.Verify {
		man.SetDir(filepath.Dir(opts.Manifest))
		diff, err := verifyExport(m, data, man, opts.ORTLibrary)
		switch {
		case err != nil && strings.Contains(err.Error(), onnx.ErrNoRuntime.Error()):
			fmt.Fprintf(stderr, "note: not verified, ONNX Runtime is missing (%v)\n", firstLine(err.Error()))
		case err != nil:
			return fmt.Errorf("verify: %w", err)
		case diff > 1e-4:
			return fmt.Errorf("verify: ONNX Runtime's scores differ from the Go model's by %.3g > 1e-4; not written", diff)
		default:
			fmt.Fprintf(stderr, "verified: ONNX Runtime vs Go max |diff| %.2g on 8 random samples\n", diff)
		}
	}
	if err := writeOutputFile(opts.Output, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return err
	}
	if err := writeOutputFile(opts.Manifest, func(w io.Writer) error { _, err := w.Write(js); return err }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d KiB, %s model, dims %s) and %s\n", opts.Output, len(data)>>10, m.Config.Kind,
		strings.Join(m.Config.Dims, ","), opts.Manifest)
	return nil
}

// verifyExport scores 8 random samples (several prompt lengths, the empty prompt, unknown
// words) with the Go model and with ONNX Runtime and returns the largest |difference|.
func verifyExport(m *rewards.Native, data []byte, man *onnx.Manifest, lib string) (float64, error) {
	om, err := onnx.New(data, man, onnx.Options{Library: lib})
	if err != nil {
		return 0, err
	}
	defer om.Close()
	r := rand.New(rand.NewPCG(1, 2))
	const B = 8
	shape := append([]int{B}, m.Config.SampleShape()...)
	n := 1
	for _, d := range shape {
		n *= d
	}
	host := make([]float32, n)
	for i := range host {
		host[i] = float32(2*r.Float64() - 1)
	}
	words := append([]string{"zebra", "unknownword"}, m.Tokenizer.Vocab[3:]...)
	prompts := make([]string, B)
	for b := range prompts {
		var p []string
		for range b * 3 % (m.Config.MaxTextLen + 3) {
			p = append(p, words[r.IntN(len(words))])
		}
		prompts[b] = strings.Join(p, " ")
	}
	var dev kernels.Device = m.Patch.Proj.Weight.Dev
	x := dev.FromHost(host, shape...)
	defer dev.Free(x)
	want := m.Forward(x, prompts)
	got, err := om.Score(rewards.Batch{Pixels: x, Prompts: prompts})
	if err != nil {
		return 0, err
	}
	diff := 0.0
	for b := range want {
		for d := range want[b] {
			diff = math.Max(diff, math.Abs(float64(got[b][d]-want[b][d])))
		}
	}
	return diff, nil
}

// relTo returns target relative to the directory of from when possible (the manifest
// names its model relative to itself), else target as given.
func relTo(from, target string) string {
	absFrom, err1 := filepath.Abs(filepath.Dir(from))
	absT, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return target
	}
	rel, err := filepath.Rel(absFrom, absT)
	if err != nil {
		return absT
	}
	return rel
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
