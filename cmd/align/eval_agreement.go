// align eval agreement: how two reward models agree on ranking the samples of one prompt
// (dpo.Agreement), from two scored sets of the same samples, e.g. the training reward's and
// the judge's scorings of the candidates pairs were selected from.
//
// Test: go test ./cmd/align -run EvalAgreement
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/dpo"
)

// EvalAgreementOptions are the arguments and flags of `align eval agreement`.
type EvalAgreementOptions struct {
	A, B string // the two scored sets
	JSON bool
}

func newCmdEvalAgreement(runF func(*EvalAgreementOptions) error) *cobra.Command {
	opts := &EvalAgreementOptions{}
	cmd := &cobra.Command{
		Use:   "agreement A.jsonl B.jsonl",
		Short: "How two reward models agree on ranking the samples of each prompt",
		Long: `Compare two scored sets of the same samples (align pairs --scored or --rescore, or align
score --format jsonl output; samples matched by file) on each dimension both carry, within prompts: pair
selection, best-of-N and particle steering only ever compare samples of one prompt, so a
judge can confirm what optimising a reward did only as far as the two rank those alike.

  corr          Pearson correlation of the scores centred on each prompt's mean
  concordance   share of the sample pairs of a prompt that both order alike (pairs either
                scores equal are left out)
  best-worst    share of prompts in which B scores A's best sample above A's worst (what a
                judge says of the pairs A selects; ties half)

Samples in only one set are left out; the same file under two prompts is an error.`,
		Example: `  $ align pairs --from-scored exp/scored.jsonl --rescore --reward exp/judge/model.safetensors --scored -o exp/scored-judge.jsonl
  $ align eval agreement exp/scored.jsonl exp/scored-judge.jsonl`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.A, opts.B = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return evalAgreementRun(cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

func evalAgreementRun(out io.Writer, opts *EvalAgreementOptions) error {
	a, err := dpo.ReadScored(opts.A)
	if err != nil {
		return err
	}
	b, err := dpo.ReadScored(opts.B)
	if err != nil {
		return err
	}
	res, err := dpo.Agreement(a, b)
	if err != nil {
		return fmt.Errorf("%s and %s: %w", opts.A, opts.B, err)
	}
	if res[0].Samples == 0 {
		return fmt.Errorf("%s and %s share no prompt with two or more samples", opts.A, opts.B)
	}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			A    string             `json:"a"`
			B    string             `json:"b"`
			Dims []dpo.DimAgreement `json:"dims"`
		}{opts.A, opts.B, res})
	}
	fmt.Fprintf(out, "A %s\nB %s\n", opts.A, opts.B)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "dim\tprompts\tsamples\tcorr\tconcordance\tpairs\tbest-worst")
	for _, r := range res {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.3f\t%.3f\t%d\t%.3f\n", r.Dim, r.Prompts, r.Samples, r.Corr, r.Concordance, r.Pairs, r.BestWorst)
	}
	return w.Flush()
}
