// Per-run reward weights: parsing and printing "vq=1,ta=2" lists (the --weights and
// --reward-weights flags).
//
// Test: go test ./rewards -run Weights; fuzz: go test ./rewards -run '^$' -fuzz FuzzParseWeights -fuzztime 30s
package rewards

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseWeights reads a weight list "name=value,name=value" against a model's dimensions and
// returns one weight per dimension, in the order of dims.
//
//   - An empty (or all-blank) spec means equal weights: 1 for every dimension.
//   - Dimensions not named get weight 0: "ta=1" scores text alignment only.
//   - Names are matched case-insensitively; blanks around names and values are ignored.
//   - Values are decimal or exponent floats ("0.5", "2e-1"). NaN and ±Inf are errors.
//   - Zero is allowed and drops the dimension (the Pareto combiner ignores it too).
//   - Negative values are allowed and push the dimension down (useful to study a trade-off
//     or to steer away from an attribute); the Pareto combiner then prefers lower values.
//   - At least one weight must be non-zero.
//   - An unknown name is an error that lists the known ones; a repeated name is an error;
//     so is an entry without "=" or an empty entry ("vq=1,,ta=2", a trailing comma).
func ParseWeights(spec string, dims []string) ([]float64, error) {
	w := make([]float64, len(dims))
	if strings.TrimSpace(spec) == "" {
		for i := range w {
			w[i] = 1
		}
		return w, nil
	}
	seen := make([]bool, len(dims))
	for _, entry := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(entry, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" {
			return nil, fmt.Errorf("weights %q: entry %q is not name=value", spec, strings.TrimSpace(entry))
		}
		d := -1
		for i, dn := range dims {
			if strings.EqualFold(dn, name) {
				d = i
				break
			}
		}
		if d < 0 {
			return nil, fmt.Errorf("weights %q: unknown reward dimension %q (known: %s)", spec, name, strings.Join(dims, ", "))
		}
		if seen[d] {
			return nil, fmt.Errorf("weights %q: dimension %q given twice", spec, dims[d])
		}
		seen[d] = true
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("weights %q: value %q of %s is not a number", spec, val, dims[d])
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("weights %q: value of %s must be finite, got %v", spec, dims[d], v)
		}
		w[d] = v
	}
	for _, v := range w {
		if v != 0 {
			return w, nil
		}
	}
	return nil, fmt.Errorf("weights %q: all weights are zero", spec)
}

// FormatWeights prints weights as ParseWeights reads them, skipping zero weights:
// "vq=1,ta=2". The shortest decimal that round-trips is used for each value.
func FormatWeights(dims []string, w []float64) string {
	var parts []string
	for d, v := range w {
		if v != 0 {
			parts = append(parts, dims[d]+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}
