// align eval table: one Markdown table from several align eval reports, one row per run and
// one column per (reward model, dimension), for experiment write-ups (make align-experiment,
// make steering-experiment); --cost adds what each run's sampling cost per image.
//
// Test: go test ./cmd/align -run EvalTable
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// EvalTableOptions are the arguments of `align eval table`.
type EvalTableOptions struct {
	Runs []labelledReport // LABEL=FILE arguments, in order
	Cost bool             // --cost: the reward-evaluation and time columns
}

type labelledReport struct{ Label, File string }

func newCmdEvalTable(runF func(*EvalTableOptions) error) *cobra.Command {
	opts := &EvalTableOptions{}
	cmd := &cobra.Command{
		Use:   "table LABEL=REPORT.json...",
		Short: "Print a Markdown table of several align eval reports",
		Long: `Print one Markdown table of several align eval reports (--output files): a row per run,
labelled by LABEL, and a column per reward model role and dimension (reward vq, judge ta,
...) with the win rate against the baseline, its 95% interval and the mean z-score change.
Every report must compare the same number of pairs under the same roles and dimensions,
so that the rows are comparable.

--cost adds two columns from the candidate's samples.json (recorded by align eval): the
reward evaluations per image (calls: clean-sample scorings of FK and best-of-N, all
particles or candidates counted; gradients: Flow-NRG forward+backward evaluations of the
latent model) and the sampling wall time per image, the baseline's in brackets.`,
		Example: `  $ align eval table dpo-ta=exp/eval-dpo-ta.json rwr-ta=exp/eval-rwr-ta.json > exp/table.md
  $ align eval table --cost "NRG ta-only=exp/eval-nrg-ta.json" "FK ta-only=exp/eval-fk-ta.json"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				label, file, ok := strings.Cut(a, "=")
				if !ok || label == "" || file == "" {
					return flagErrorf("argument %q: want LABEL=REPORT.json", a)
				}
				opts.Runs = append(opts.Runs, labelledReport{label, file})
			}
			if runF != nil {
				return runF(opts)
			}
			return evalTableRun(cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Cost, "cost", false, "add the reward evaluations and seconds per image of each run's sampling")
	return cmd
}

// evalColumn names a column: a model role and one of its dimensions.
type evalColumn struct{ Role, Dim string }

// readEvalReport reads an align eval report (its --output file) that compares at least one
// dimension.
func readEvalReport(file string) (*evalReport, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var rep evalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: not an align eval report: %w", file, err)
	}
	if len(rep.columns()) == 0 {
		return nil, fmt.Errorf("%s: the report compares no dimension", file)
	}
	return &rep, nil
}

// columns lists the report's model roles and dimensions in order.
func (r *evalReport) columns() []evalColumn {
	var cols []evalColumn
	for _, m := range r.Models {
		for _, d := range m.Dims {
			cols = append(cols, evalColumn{m.Role, d.Dim})
		}
	}
	return cols
}

// checkComparable refuses a report (of file) whose pairs, roles or dimensions differ from
// the first one's (of firstFile).
func checkComparable(rep *evalReport, file string, first *evalReport, firstFile string) error {
	if mine, cols := rep.columns(), first.columns(); fmt.Sprint(mine) != fmt.Sprint(cols) || rep.Pairs != first.Pairs {
		return fmt.Errorf("%s: %d pairs on %v, but %s has %d pairs on %v; the runs would not be comparable",
			file, rep.Pairs, mine, firstFile, first.Pairs, cols)
	}
	return nil
}

func evalTableRun(w io.Writer, opts *EvalTableOptions) error {
	var first *evalReport
	rows := make([][]string, len(opts.Runs))
	for i, run := range opts.Runs {
		rep, err := readEvalReport(run.File)
		if err != nil {
			return err
		}
		if i == 0 {
			first = rep
		} else if err := checkComparable(rep, run.File, first, opts.Runs[0].File); err != nil {
			return err
		}
		rows[i] = []string{run.Label}
		for _, m := range rep.Models {
			for _, d := range m.Dims {
				rows[i] = append(rows[i], fmt.Sprintf("%.1f%% [%.1f, %.1f], Δz %+.2f", 100*d.WinRate, 100*d.WinRateCI[0], 100*d.WinRateCI[1], d.MeanChange))
			}
		}
		if opts.Cost {
			rows[i] = append(rows[i], rep.Candidate.rewardCost(),
				fmt.Sprintf("%s (%s)", rep.Candidate.secondsPerImage(), rep.Baseline.secondsPerImage()))
		}
	}
	head := []string{fmt.Sprintf("run (%d pairs)", first.Pairs)}
	for _, c := range first.columns() {
		head = append(head, c.Role+" "+c.Dim)
	}
	if opts.Cost {
		head = append(head, "reward / image", "s / image (baseline)")
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	return nil
}
