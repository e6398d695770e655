// align export safetensors: rewrite a model file with another weight dtype (BF16, F16 or
// int8 for distribution, F32 back), keeping its config, tokenizer and other metadata.
// Optimizer state and the training position are dropped: the output is a model, not a
// resumable checkpoint. With --adapter, the generator is written with fine-tunings (LoRA
// adapters, fine-tuned model files) merged into it by weight (a mix of fine-tunings of one
// base, generator.go), a plain model file that every command loads. int8 quantizes every tensor of two or more dimensions with per-row
// scales (nn/quantize.go) and writes the others (biases, norm gains) as BF16, where one F32
// scale per element would outweigh the saving; every model loader reads such a file.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/spf13/cobra"
)

// ExportSafetensorsOptions are the flags of `align export safetensors`.
type ExportSafetensorsOptions struct {
	Model    string
	Adapters []string // --adapter PATH[=WEIGHT], repeatable: fine-tunings merged into the generator
	Output   string
	DType    string
}

func newCmdExportSafetensors(runF func(*ExportSafetensorsOptions) error) *cobra.Command {
	opts := &ExportSafetensorsOptions{}
	cmd := &cobra.Command{
		Use:   "safetensors",
		Short: "Rewrite a model file with BF16, F16, F32 or int8 weights",
		Long: "Rewrite a model file (generator or reward model) with its weights in another dtype.\n" +
			"BF16 halves the size and keeps float32's range; the weights load back as float32.\n" +
			"int8 stores every tensor of 2 or more dimensions as int8 with one scale per row, at about\n" +
			"half of BF16's size (1-D tensors stay BF16); it loads back as float32 too.\n" +
			"Config, tokenizer and calibration are kept; optimizer state and the step are dropped.\n\n" +
			"--adapter merges fine-tunings of align finetune into a generator with weights, W + Σ w_i ΔW_i\n" +
			"(a LoRA adapter's ΔW = (alpha/r) B A, a fine-tuned model file's W_ft - W), and writes the mix\n" +
			"as a plain model file (its \"merged_adapters\" metadata lists them); without --model, into\n" +
			"the base they were trained from.",
		Example: `  $ align export safetensors --model base/model.safetensors --dtype bf16 -o assets/image-base.safetensors
  $ align export safetensors --model base/model.safetensors --dtype int8 -o image-base-int8.safetensors
  $ align export safetensors --adapter dpo-vq/adapter.safetensors=0.7 --adapter dpo-ta/adapter.safetensors=0.3 --dtype f32 -o mix.safetensors
  $ align export safetensors --adapter sft/model.safetensors=0.5 --dtype f32 -o halfway.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" && len(opts.Adapters) == 0 {
				return flagErrorf("--model is required (or --adapter)")
			}
			if opts.Output == "" {
				return flagErrorf("--output is required")
			}
			dt, err := parseDType(opts.DType)
			if err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return exportSafetensorsRun(cmd, opts, dt)
		},
	}
	cmd.Flags().StringVar(&opts.Model, "model", "", "model file to convert (.safetensors)")
	cmd.Flags().StringArrayVar(&opts.Adapters, "adapter", nil, adapterUsage)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output file")
	cmd.Flags().StringVar(&opts.DType, "dtype", "bf16", "weight dtype: bf16, f16, f32 or int8")
	return cmd
}

func parseDType(s string) (nn.DType, error) {
	switch strings.ToLower(s) {
	case "bf16":
		return nn.BF16, nil
	case "f16", "fp16":
		return nn.F16, nil
	case "f32", "fp32":
		return nn.F32, nil
	case "int8":
		return nn.I8, nil
	}
	return "", flagErrorf("--dtype %q: want bf16, f16, f32 or int8", s)
}

func exportSafetensorsRun(cmd *cobra.Command, opts *ExportSafetensorsOptions, dt nn.DType) error {
	c, from, err := exportSource(opts)
	if err != nil {
		return err
	}
	out := &nn.Checkpoint{Config: c.Config, Extra: c.Extra, Tensors: c.Tensors}
	for i := range out.Tensors {
		out.Tensors[i].DType = dt
		if dt == nn.I8 && len(out.Tensors[i].Shape) < 2 {
			out.Tensors[i].DType = nn.BF16
		}
	}
	if err := out.Save(opts.Output); err != nil {
		return err
	}
	o, err := os.Stat(opts.Output)
	if err != nil {
		return err
	}
	as := string(dt)
	if dt == nn.I8 {
		as = "I8 (fewer than 2 dimensions as BF16)"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d tensors as %s, %.1f MB (%s)\n",
		opts.Output, len(out.Tensors), as, float64(o.Size())/1e6, from)
	return nil
}

// exportSource is the checkpoint to rewrite and where it came from: --model's file, or with
// --adapter the generator with the adapters merged into it.
func exportSource(opts *ExportSafetensorsOptions) (*nn.Checkpoint, string, error) {
	if len(opts.Adapters) == 0 {
		c, err := nn.LoadCheckpoint(opts.Model)
		if err != nil {
			return nil, "", err
		}
		in, err := os.Stat(opts.Model)
		if err != nil {
			return nil, "", err
		}
		return c, fmt.Sprintf("from %.1f MB", float64(in.Size())/1e6), nil
	}
	adapters, err := parseAdapters(opts.Adapters)
	if err != nil {
		return nil, "", err
	}
	m, name, err := loadGeneratorMix(kernels.NewCPU(0), opts.Model, adapters)
	if err != nil {
		return nil, "", err
	}
	c, err := m.Checkpoint()
	if err != nil {
		return nil, "", err
	}
	js, err := json.Marshal(adapters)
	if err != nil {
		return nil, "", err
	}
	c.Extra[metaMergedAdapters] = string(js)
	return c, name, nil
}

// metaMergedAdapters is the metadata key listing the adapters merged into an exported
// generator: [{"path":...,"weight":...}, ...].
const metaMergedAdapters = "merged_adapters"
