// align eval table: one Markdown table from several align eval reports, one row per run and
// one column per (reward model, dimension), for experiment write-ups (make align-experiment).
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
}

type labelledReport struct{ Label, File string }

func newCmdEvalTable(runF func(*EvalTableOptions) error) *cobra.Command {
	opts := &EvalTableOptions{}
	return &cobra.Command{
		Use:   "table LABEL=REPORT.json...",
		Short: "Print a Markdown table of several align eval reports",
		Long: `Print one Markdown table of several align eval reports (--output files): a row per run,
labelled by LABEL, and a column per reward model role and dimension (reward vq, judge ta,
...) with the win rate against the baseline, its 95% interval and the mean z-score change.
Every report must compare the same number of pairs under the same roles and dimensions,
so that the rows are comparable.`,
		Example: `  $ align eval table dpo-ta=exp/eval-dpo-ta.json rwr-ta=exp/eval-rwr-ta.json > exp/table.md`,
		Args:    cobra.MinimumNArgs(1),
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
}

// evalColumn names a column: a model role and one of its dimensions.
type evalColumn struct{ Role, Dim string }

func evalTableRun(w io.Writer, opts *EvalTableOptions) error {
	var cols []evalColumn
	var pairs int
	rows := make([][]string, len(opts.Runs))
	for i, run := range opts.Runs {
		b, err := os.ReadFile(run.File)
		if err != nil {
			return err
		}
		var rep evalReport
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: not an align eval report: %w", run.File, err)
		}
		var mine []evalColumn
		cells := map[evalColumn]string{}
		for _, m := range rep.Models {
			for _, d := range m.Dims {
				c := evalColumn{m.Role, d.Dim}
				mine = append(mine, c)
				cells[c] = fmt.Sprintf("%.1f%% [%.1f, %.1f], Δz %+.2f", 100*d.WinRate, 100*d.WinRateCI[0], 100*d.WinRateCI[1], d.MeanChange)
			}
		}
		if len(mine) == 0 {
			return fmt.Errorf("%s: the report compares no dimension", run.File)
		}
		if i == 0 {
			cols, pairs = mine, rep.Pairs
		} else if fmt.Sprint(mine) != fmt.Sprint(cols) || rep.Pairs != pairs {
			return fmt.Errorf("%s: %d pairs on %v, but %s has %d pairs on %v; the rows would not be comparable",
				run.File, rep.Pairs, mine, opts.Runs[0].File, pairs, cols)
		}
		rows[i] = append([]string{run.Label}, make([]string, len(cols))...)
		for j, c := range cols {
			rows[i][j+1] = cells[c]
		}
	}
	head := []string{fmt.Sprintf("run (%d pairs)", pairs)}
	for _, c := range cols {
		head = append(head, c.Role+" "+c.Dim)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	return nil
}
