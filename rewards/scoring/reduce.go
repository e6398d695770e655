// Windows of a clip joined into one row: the mean, minimum or maximum of each dimension
// over the windows Scorer.Windows scored (align score --window-reduce).
//
// Test: go test ./rewards/scoring -run ReduceWindows
package scoring

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Ways ReduceWindows joins a clip's windows.
const (
	ReduceMean = "mean"
	ReduceMin  = "min"
	ReduceMax  = "max"
)

// Reducers are the ways of ReduceWindows, in the order help text lists them.
var Reducers = []string{ReduceMean, ReduceMin, ReduceMax}

// ReduceWindows joins the rows of each input's windows (consecutive rows of one Index, as
// Scorer.Run returns them) into one row: each dimension's raw score and z-score the mean,
// minimum or maximum over the windows (the same either way: a calibration is increasing and
// affine), Windows their count, Start the first's. An input with an error row (one that
// could not be read, or failed partway through) becomes that error alone: a score of the
// windows read before it would pass for the clip's.
func ReduceWindows(rows []Result, how string) ([]Result, error) {
	var join func(acc, v float64) float64
	switch how {
	case ReduceMean:
		join = func(acc, v float64) float64 { return acc + v }
	case ReduceMin:
		join = math.Min
	case ReduceMax:
		join = math.Max
	default:
		return nil, fmt.Errorf("unknown window reduction %q (known: %s)", how, strings.Join(Reducers, ", "))
	}
	var out []Result
	for len(rows) > 0 {
		in := InputRows(rows)
		rows = rows[len(in):]
		r, n := in[0], len(in)
		if i := slices.IndexFunc(in, func(x Result) bool { return !x.OK() }); i >= 0 {
			out = append(out, in[i])
			continue
		}
		D := len(r.Raw)
		raw, z := make([]float64, D), make([]float64, D)
		for d := range D {
			raw[d], z[d] = float64(r.Raw[d]), r.Z[d]
			for _, w := range in[1:] {
				raw[d], z[d] = join(raw[d], float64(w.Raw[d])), join(z[d], w.Z[d])
			}
		}
		r.Raw, r.Z, r.Windows = make([]float32, D), z, n
		for d := range D {
			if how == ReduceMean {
				raw[d], z[d] = raw[d]/float64(n), z[d]/float64(n)
			}
			r.Raw[d] = float32(raw[d])
		}
		out = append(out, r)
	}
	return out, nil
}
