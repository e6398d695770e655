// Score tables: the weighted total of the z-scored dimensions (any combiner of
// rewards.Combine), and the CSV, JSONL and aligned-table writers. Columns:
//
//	index, path, prompt, [num_frames, fps, [start | windows,]] <dim>, <dim>_z, ..., total, error
//
// Test: go test ./rewards/scoring -run 'Total|Write'
package scoring

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/alignkit/align/rewards"
)

// Table is a scored run ready to be written.
type Table struct {
	Dims    []string
	Clips   bool      // add num_frames and fps columns
	Windows bool      // add a start column (clips): rows are windows of clips (Scorer.Windows)
	Reduced bool      // add a windows column (clips): rows are clips' windows reduced (ReduceWindows)
	Rows    []Result  // in input order
	Total   []float64 // (len(Rows)) weighted total; NaN for error rows
	Weights []float64 // (D) as used
	Combine string
}

// Totals combines the z-scores of the scored rows with weights w (D) and the named combiner
// (rewards.Combine). lsc's reference and pareto's fronts are taken per prompt among the
// scored rows (scores are comparable within a prompt); lsc uses the q-quantile as reference.
// Error rows get NaN.
func Totals(rows []Result, w []float64, combine string, q float64) ([]float64, error) {
	total := make([]float64, len(rows))
	var idx []int
	var z [][]float64
	var prompts []string
	for i := range rows {
		total[i] = math.NaN()
		if rows[i].OK() {
			idx = append(idx, i)
			z = append(z, rows[i].Z)
			prompts = append(prompts, rows[i].Prompt)
		}
	}
	if len(idx) == 0 {
		if !contains(rewards.Combiners, combine) {
			return nil, fmt.Errorf("unknown combiner %q (known: %s)", combine, strings.Join(rewards.Combiners, ", "))
		}
		return total, nil
	}
	var u []float64
	var err error
	switch combine {
	case rewards.CombineLogSigmoid:
		var ref [][]float64
		if ref, err = rewards.PromptReference(z, prompts, q); err == nil {
			u, err = rewards.Combine(combine, z, w, ref)
		}
	case rewards.CombinePareto:
		u = make([]float64, len(z))
		groups := map[string][]int{}
		var order []string
		for k, p := range prompts {
			if _, ok := groups[p]; !ok {
				order = append(order, p)
			}
			groups[p] = append(groups[p], k)
		}
		for _, p := range order {
			g := groups[p]
			sub := make([][]float64, len(g))
			for j, k := range g {
				sub[j] = z[k]
			}
			var us []float64
			if us, err = rewards.Combine(combine, sub, w, nil); err != nil {
				break
			}
			for j, k := range g {
				u[k] = us[j]
			}
		}
	default:
		u, err = rewards.Combine(combine, z, w, nil)
	}
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		total[i] = u[k]
	}
	return total, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Header returns the column names.
func (t *Table) Header() []string {
	h := []string{"index", "path", "prompt"}
	if t.Clips {
		h = append(h, "num_frames", "fps")
		switch {
		case t.Windows:
			h = append(h, "start")
		case t.Reduced:
			h = append(h, "windows")
		}
	}
	for _, d := range t.Dims {
		h = append(h, d, d+"_z")
	}
	return append(h, "total", "error")
}

// fmtRaw prints a raw float32 score exactly (shortest round-trip form).
func fmtRaw(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }

// fmtZ prints a z-score or total with 7 significant digits ("" for NaN).
func fmtZ(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 7, 64)
}

// clipColumns are the clip columns of row r as strings ("" where the row has no value).
func (t *Table) clipColumns(r *Result) []string {
	if !t.Clips {
		return nil
	}
	nf, fps := "", ""
	if r.NumFrames > 0 {
		nf, fps = strconv.Itoa(r.NumFrames), strconv.FormatFloat(r.FPS, 'g', -1, 64)
	}
	if !t.Windows && !t.Reduced {
		return []string{nf, fps}
	}
	v := "" // start or windows
	switch {
	case !r.OK():
	case t.Windows:
		v = strconv.FormatFloat(r.Start, 'g', -1, 64)
	case t.Reduced:
		v = strconv.Itoa(r.Windows)
	}
	return []string{nf, fps, v}
}

// record is row i as strings, aligned with Header.
func (t *Table) record(i int) []string {
	r := &t.Rows[i]
	rec := append([]string{strconv.Itoa(r.Index), r.Path, r.Prompt}, t.clipColumns(r)...)
	for d := range t.Dims {
		if r.OK() {
			rec = append(rec, fmtRaw(r.Raw[d]), fmtZ(r.Z[d]))
		} else {
			rec = append(rec, "", "")
		}
	}
	return append(rec, fmtZ(t.Total[i]), r.Err)
}

// WriteCSV writes a header and one row per input (RFC 4180 quoting).
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Header()); err != nil {
		return err
	}
	for i := range t.Rows {
		if err := cw.Write(t.record(i)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSONL writes one JSON object per input with the CSV's columns as keys (numbers as
// numbers; the scores of an error row and a missing total are null, error is null when
// the row was scored).
func (t *Table) WriteJSONL(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return json.RawMessage(strconv.FormatFloat(v, 'g', -1, 64))
	}
	for i := range t.Rows {
		r := &t.Rows[i]
		obj := orderedObject{}
		obj.add("index", r.Index)
		obj.add("path", r.Path)
		obj.add("prompt", r.Prompt)
		if t.Clips {
			obj.add("num_frames", r.NumFrames)
			obj.add("fps", r.FPS)
			switch {
			case t.Windows && r.OK():
				obj.add("start", r.Start)
			case t.Windows:
				obj.add("start", nil)
			case t.Reduced && r.OK():
				obj.add("windows", r.Windows)
			case t.Reduced:
				obj.add("windows", nil)
			}
		}
		for d, name := range t.Dims {
			if r.OK() {
				if v := r.Raw[d]; math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					obj.add(name, nil)
				} else {
					obj.add(name, json.RawMessage(fmtRaw(v)))
				}
				obj.add(name+"_z", num(r.Z[d]))
			} else {
				obj.add(name, nil)
				obj.add(name+"_z", nil)
			}
		}
		obj.add("total", num(t.Total[i]))
		if r.OK() {
			obj.add("error", nil)
		} else {
			obj.add("error", r.Err)
		}
		if err := enc.Encode(obj); err != nil {
			return err
		}
	}
	return nil
}

// orderedObject marshals its keys in insertion order.
type orderedObject struct {
	keys []string
	vals []any
}

func (o *orderedObject) add(k string, v any) { o.keys, o.vals = append(o.keys, k), append(o.vals, v) }

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// WriteTable writes an aligned table for a terminal: scores with 4 decimals, long prompts
// and paths shortened, errors in the last column.
func (t *Table) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Header(), "\t"))
	short := func(s string, n int) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		return "…" + string(r[len(r)-n+1:])
	}
	for i := range t.Rows {
		r := &t.Rows[i]
		rec := append([]string{strconv.Itoa(r.Index), short(r.Path, 40), short(strings.ReplaceAll(r.Prompt, "\t", " "), 40)}, t.clipColumns(r)...)
		for d := range t.Dims {
			if r.OK() {
				rec = append(rec, fmt.Sprintf("%.4f", r.Raw[d]), fmt.Sprintf("%+.3f", r.Z[d]))
			} else {
				rec = append(rec, "-", "-")
			}
		}
		tot := "-"
		if !math.IsNaN(t.Total[i]) {
			tot = fmt.Sprintf("%+.3f", t.Total[i])
		}
		rec = append(rec, tot, strings.ReplaceAll(r.Err, "\n", " "))
		fmt.Fprintln(tw, strings.Join(rec, "\t"))
	}
	return tw.Flush()
}

// Summary is the mean of each column over the table's scored rows (N of them): raw scores,
// z-scores and the total. With no scored row the means are NaN.
type Summary struct {
	N       int
	RawMean []float64 // (D)
	ZMean   []float64 // (D)
	Total   float64
}

// Summarize averages the scored rows' columns.
func (t *Table) Summarize() Summary {
	D := len(t.Dims)
	s := Summary{RawMean: make([]float64, D), ZMean: make([]float64, D)}
	for i := range t.Rows {
		r := &t.Rows[i]
		if !r.OK() {
			continue
		}
		s.N++
		for d := range D {
			s.RawMean[d] += float64(r.Raw[d])
			s.ZMean[d] += r.Z[d]
		}
		s.Total += t.Total[i]
	}
	n := float64(s.N) // 0 makes every mean NaN (0/0)
	for d := range D {
		s.RawMean[d] /= n
		s.ZMean[d] /= n
	}
	s.Total /= n
	return s
}

// Line is the summary in one line, the scored rows named by the plural noun: "mean of 3
// scored images: vq 1.5 (z +0.250), ta -2 (z -1.000); total +0.123".
func (s Summary) Line(dims []string, noun string) string {
	// A mean that rounds to zero prints as +0.000, not -0.000.
	z := func(v float64) float64 {
		if math.Abs(v) < 5e-4 {
			return 0
		}
		return v
	}
	var parts []string
	for d, dim := range dims {
		parts = append(parts, fmt.Sprintf("%s %.4g (z %+.3f)", dim, s.RawMean[d], z(s.ZMean[d])))
	}
	return fmt.Sprintf("mean of %d scored %s: %s; total %+.3f", s.N, noun, strings.Join(parts, ", "), z(s.Total))
}
