// Preference data: pairs for Flow-DPO (align's JSONL, VideoAlign's CSV layout, or folders of
// preferred and other samples: pairs_dir.go) and scored sets for Flow-RWR (JSONL). Every
// malformed line is reported as file:line; all of a file's problems come back together
// (LineErrors), not only the first.
//
// Pairs JSONL, one object per line (blank lines skipped):
//
//	{"prompt": "red apple", "chosen": "img/0007.png", "rejected": "img/0003.png",
//	 "labels": {"vq": "A", "ta": "tie"},                        optional, chosen is A
//	 "chosen_scores": {"vq": 0.8, "ta": 1.2}, "rejected_scores": {...},   optional
//	 "seed": 7, "chosen_index": 7, "rejected_index": 3}          optional: where they came from
//
// VideoAlign CSV (KwaiVGI/VideoAlign, a header line, columns in any order, names matched
// case-insensitively): path_A, path_B, prompt and per-dimension labels VQ, MQ, TA in
// {A, B, same}; optional MOS_A_<dim> and MOS_B_<dim> scores; with PairOptions.Overall an
// Overall label column (VideoGen-RewardBench's) too; other columns (fps_A, num_frames_A, ...)
// are ignored.
//
// Labels are collapsed into one preference with the run's weights (CollapseLabels); a pair
// whose labels favour its second sample is turned round, a tie is kept or dropped
// (PairOptions.Ties), a pair whose labels say nothing under the weights is dropped. Pairs
// without labels keep the chosen/rejected order of the file.
//
// Scored set JSONL (Flow-RWR, SFT), one sample per line:
//
//	{"prompt": "red apple", "image": "img/0007.png", "scores": {"vq": 0.8, "ta": 1.2},
//	 "seed": 7, "index": 7}                                       seed, index optional
//
// ("video" or "path" may stand for "image"). The JSONL that `align score --format jsonl`
// writes is read too: its "<dim>_z" columns (z-scores) are the scores, and rows whose
// "error" is set or whose z-scores are null are left out (counted in ScoredSet.Failed).
// Every line must score the same dimensions.
//
// Relative paths are relative to the data file's directory, or to the working directory
// when the file exists only there (align score writes the paths it was given).
//
// Test: go test ./dpo -run 'Read|Collapse|Parse'; fuzz: go test ./dpo -run '^$' -fuzz FuzzReadPairsJSONL
// (likewise FuzzReadVideoAlignCSV, FuzzReadScoredJSONL)

package dpo

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/alignkit/align/rewards"
)

// Tie handling (--ties).
const (
	TiesKeep = "keep"
	TiesDrop = "drop"
)

// Source is where a record was read: file and 1-based line (0: the file is the record).
type Source struct {
	File string
	Line int
}

func (s Source) String() string {
	if s.Line == 0 { // a record that is a file of its own (ReadPairsDir)
		return s.File
	}
	return fmt.Sprintf("%s:%d", s.File, s.Line)
}

// LineError is one malformed line (or one problem with a record, such as a missing image).
type LineError struct {
	Source
	Msg string
}

func (e *LineError) Error() string { return e.Source.String() + ": " + e.Msg }

// LineErrors is every problem found in a data file, in line order.
type LineErrors []*LineError

// maxShownErrors is how many problems Error prints before summarising the rest.
const maxShownErrors = 30

func (es LineErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i == maxShownErrors {
			fmt.Fprintf(&b, "\n... and %d more problems", len(es)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Pair is one preference pair: two samples of the same prompt, the preferred one first.
type Pair struct {
	Prompt   string
	Chosen   string // file of the preferred sample
	Rejected string // file of the other one
	// Tie marks a pair whose labels collapse to "equally good" (kept with --ties keep).
	Tie bool
	// Labels per dimension, Chosen as A (after any turning round); nil without labels.
	Labels map[string]rewards.Label
	// Scores per dimension, when the file gives them.
	ChosenScores, RejectedScores map[string]float64
	// Seed and the samples' indices in the seed's stream (align pairs records them).
	Seed                       *uint64
	ChosenIndex, RejectedIndex *int
	Source                     Source
}

// PairOptions control how labels become one preference.
type PairOptions struct {
	// Weights "vq=1,ta=2" over the label dimensions (rewards.ParseWeights); "" weighs all equally.
	Weights string
	// Ties is TiesKeep (default for "") or TiesDrop.
	Ties string
	// Overall reads a VideoAlign CSV's Overall column, where there is one, as the label
	// dimension "overall" (rewards.DimOverall; align reward eval --preferences).
	Overall bool
}

// PairSet is the result of reading pairs.
type PairSet struct {
	Pairs   []Pair
	Dims    []string  // label dimensions of the file, in order of appearance (sorted within a line)
	Weights []float64 // the weight of each of Dims
	// Left out or changed: ties dropped (--ties drop), pairs whose labels say nothing under
	// the weights, pairs turned round by their labels.
	TiesDropped, Uninformative, Swapped int
}

// Ties counts the tie pairs kept.
func (s *PairSet) Ties() int {
	n := 0
	for _, p := range s.Pairs {
		if p.Tie {
			n++
		}
	}
	return n
}

// CollapseLabels reduces per-dimension labels to one with weights w (one per label):
//
//	s = sum_d w_d l_d,   l_d = +1 (A better), -1 (B better), 0 (tie)
//
// over the dimensions with a label (not LabelNone) and w_d != 0. It returns LabelA for s > 0,
// LabelB for s < 0, LabelTie for s = 0 and LabelNone when no dimension counts.
func CollapseLabels(labels []rewards.Label, w []float64) rewards.Label {
	if len(labels) != len(w) {
		panic(fmt.Sprintf("dpo: CollapseLabels: %d labels, %d weights", len(labels), len(w)))
	}
	s, counted := 0.0, 0
	for d, l := range labels {
		if l == rewards.LabelNone || w[d] == 0 {
			continue
		}
		counted++
		switch l {
		case rewards.LabelA:
			s += w[d]
		case rewards.LabelB:
			s -= w[d]
		}
	}
	switch {
	case counted == 0:
		return rewards.LabelNone
	case s > 0:
		return rewards.LabelA
	case s < 0:
		return rewards.LabelB
	}
	return rewards.LabelTie
}

// ReadPairs reads a pairs file: VideoAlign's CSV layout when the name ends in .csv, JSONL
// otherwise; or a folder of w/ and l/ samples (ReadPairsDir).
func ReadPairs(path string, o PairOptions) (*PairSet, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if err := o.validate(); err != nil {
			return nil, err
		}
		return ReadPairsDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodePairs(f, path, o)
}

// DecodePairs reads the pairs file at path from r (its bytes read already, e.g. to hash
// them), in the layout ReadPairs would; relative paths are resolved against path's folder.
func DecodePairs(r io.Reader, path string, o PairOptions) (*PairSet, error) {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return ReadVideoAlignCSV(r, path, filepath.Dir(path), o)
	}
	return ReadPairsJSONL(r, path, filepath.Dir(path), o)
}

// resolve joins a relative path to dir, unless only p itself (relative to the working
// directory) exists.
func resolve(dir, p string) string {
	if dir == "" || filepath.IsAbs(p) {
		return p
	}
	j := filepath.Join(dir, p)
	if _, err := os.Stat(j); err != nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return j
}

// lines calls fn with every non-blank line of r and its 1-based number; a byte-order mark
// at the start is dropped.
func lines(r io.Reader, fn func(line int, text string)) error {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		s, err := br.ReadString('\n')
		if n == 1 {
			s = strings.TrimPrefix(s, "\ufeff")
		}
		if t := strings.TrimSpace(s); t != "" {
			fn(n, t)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// pairLine is one JSONL record as written.
type pairLine struct {
	Prompt         *string            `json:"prompt"`
	Chosen         *string            `json:"chosen"`
	Rejected       *string            `json:"rejected"`
	Labels         map[string]string  `json:"labels,omitempty"`
	ChosenScores   map[string]float64 `json:"chosen_scores,omitempty"`
	RejectedScores map[string]float64 `json:"rejected_scores,omitempty"`
	Seed           *uint64            `json:"seed,omitempty"`
	ChosenIndex    *int               `json:"chosen_index,omitempty"`
	RejectedIndex  *int               `json:"rejected_index,omitempty"`
}

// jsonMsg shortens encoding/json's messages ("json: cannot unmarshal string into Go struct
// field pairLine.seed of type uint64" -> "field seed: cannot unmarshal string into uint64").
func jsonMsg(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: a JSON %s where %s is expected", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, strings.TrimPrefix(err.Error(), "json: "))
	}
	return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// checkScores reports a non-finite score (JSON cannot hold NaN, but 1e999 overflows to Inf
// and is refused by encoding/json; this guards values built in other ways too).
func checkScores(m map[string]float64, field string) string {
	for _, k := range sortedKeys(m) {
		if v := m[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%s[%q] = %v is not a finite number", field, k, v)
		}
		if strings.TrimSpace(k) == "" {
			return fmt.Sprintf("%s has an empty dimension name", field)
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ReadPairsJSONL reads pairs JSONL from r; name labels errors, dir resolves relative paths.
func ReadPairsJSONL(r io.Reader, name, dir string, o PairOptions) (*PairSet, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	var errs LineErrors
	bad := func(line int, format string, a ...any) {
		errs = append(errs, &LineError{Source{name, line}, fmt.Sprintf(format, a...)})
	}
	type rec struct {
		p      Pair
		labels map[string]rewards.Label
	}
	var recs []rec
	var dims []string
	err := lines(r, func(n int, text string) {
		var l pairLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			bad(n, "%s", jsonMsg(err))
			return
		}
		var missing []string
		for _, f := range []struct {
			name string
			v    *string
		}{{"prompt", l.Prompt}, {"chosen", l.Chosen}, {"rejected", l.Rejected}} {
			if f.v == nil || strings.TrimSpace(*f.v) == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			bad(n, "missing or empty %s (want prompt, chosen, rejected)", strings.Join(missing, ", "))
			return
		}
		if *l.Chosen == *l.Rejected {
			bad(n, "chosen and rejected are the same file %q", *l.Chosen)
			return
		}
		p := Pair{Prompt: *l.Prompt, Chosen: resolve(dir, *l.Chosen), Rejected: resolve(dir, *l.Rejected),
			ChosenScores: l.ChosenScores, RejectedScores: l.RejectedScores, Seed: l.Seed,
			ChosenIndex: l.ChosenIndex, RejectedIndex: l.RejectedIndex, Source: Source{name, n}}
		for _, ix := range []struct {
			name string
			v    *int
		}{{"chosen_index", l.ChosenIndex}, {"rejected_index", l.RejectedIndex}} {
			if ix.v != nil && *ix.v < 0 {
				bad(n, "%s must be >= 0, got %d", ix.name, *ix.v)
				return
			}
		}
		for _, sc := range []struct {
			name string
			m    map[string]float64
		}{{"chosen_scores", l.ChosenScores}, {"rejected_scores", l.RejectedScores}} {
			if msg := checkScores(sc.m, sc.name); msg != "" {
				bad(n, "%s", msg)
				return
			}
		}
		var labels map[string]rewards.Label
		for _, k := range sortedKeys(l.Labels) {
			d := strings.ToLower(strings.TrimSpace(k))
			if d == "" {
				bad(n, "labels has an empty dimension name")
				return
			}
			lab, err := rewards.ParseLabel(strings.TrimSpace(l.Labels[k]))
			if err != nil {
				bad(n, "labels[%q]: %v", k, err)
				return
			}
			if labels == nil {
				labels = map[string]rewards.Label{}
			}
			if _, dup := labels[d]; dup {
				bad(n, "labels name dimension %q twice", d)
				return
			}
			labels[d] = lab
			if !slices.Contains(dims, d) {
				dims = append(dims, d)
			}
		}
		recs = append(recs, rec{p, labels})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	set := &PairSet{Dims: dims}
	if len(dims) == 0 {
		if strings.TrimSpace(o.Weights) != "" {
			return nil, fmt.Errorf("%s: --weights %q given, but no pair has per-dimension labels", name, o.Weights)
		}
	} else if set.Weights, err = rewards.ParseWeights(o.Weights, dims); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, r := range recs {
		if r.labels == nil {
			set.Pairs = append(set.Pairs, r.p)
			continue
		}
		ls := make([]rewards.Label, len(dims))
		for d, name := range dims {
			ls[d] = r.labels[name]
		}
		r.p.Labels = r.labels
		set.add(r.p, CollapseLabels(ls, set.Weights), o)
	}
	if len(set.Pairs) == 0 {
		return nil, set.emptyError(name)
	}
	return set, nil
}

// add appends p oriented by its collapsed label c (A: as it is, B: turned round).
func (s *PairSet) add(p Pair, c rewards.Label, o PairOptions) {
	switch c {
	case rewards.LabelNone:
		s.Uninformative++
		return
	case rewards.LabelTie:
		if o.Ties == TiesDrop {
			s.TiesDropped++
			return
		}
		p.Tie = true
	case rewards.LabelB:
		s.Swapped++
		p.Chosen, p.Rejected = p.Rejected, p.Chosen
		p.ChosenScores, p.RejectedScores = p.RejectedScores, p.ChosenScores
		p.ChosenIndex, p.RejectedIndex = p.RejectedIndex, p.ChosenIndex
		flipped := make(map[string]rewards.Label, len(p.Labels))
		for d, l := range p.Labels {
			switch l {
			case rewards.LabelA:
				l = rewards.LabelB
			case rewards.LabelB:
				l = rewards.LabelA
			}
			flipped[d] = l
		}
		p.Labels = flipped
	}
	s.Pairs = append(s.Pairs, p)
}

func (s *PairSet) emptyError(name string) error {
	return fmt.Errorf("%s: no usable pairs (%d ties dropped, %d pairs whose labels say nothing under the weights)",
		name, s.TiesDropped, s.Uninformative)
}

func (o *PairOptions) validate() error {
	switch o.Ties {
	case "":
		o.Ties = TiesKeep
	case TiesKeep, TiesDrop:
	default:
		return fmt.Errorf("--ties %q: want keep or drop", o.Ties)
	}
	return nil
}

// videoAlignDims are the label columns of VideoAlign's CSV, in their usual order.
var videoAlignDims = []string{"vq", "mq", "ta"}

// ReadVideoAlignCSV reads pairs in VideoAlign's CSV layout from r (see the file header);
// name labels errors, dir resolves relative paths.
func ReadVideoAlignCSV(r io.Reader, name, dir string, o PairOptions) (*PairSet, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file; want a header line with path_A, path_B, prompt and VQ, MQ or TA", name)
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; dup && h != "" {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		col[h] = i
	}
	var missing []string
	for _, c := range []string{"path_a", "path_b", "prompt"} {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	var dims []string
	for _, d := range videoAlignDims {
		if _, ok := col[d]; ok {
			dims = append(dims, d)
		}
	}
	if _, ok := col[rewards.DimOverall]; ok && o.Overall && len(dims) > 0 {
		dims = append(dims, rewards.DimOverall)
	}
	if len(dims) == 0 {
		missing = append(missing, "a label column (VQ, MQ or TA)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s:1: header lacks %s (VideoAlign layout: path_A, path_B, prompt, VQ, MQ, TA, ...)", name, strings.Join(missing, ", "))
	}
	set := &PairSet{Dims: dims}
	if set.Weights, err = rewards.ParseWeights(o.Weights, dims); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Optional MOS columns.
	mos := map[string][2]int{}
	for _, d := range dims {
		ia, okA := col["mos_a_"+d]
		ib, okB := col["mos_b_"+d]
		if okA && okB {
			mos[d] = [2]int{ia, ib}
		}
	}
	var errs LineErrors
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A quoting error leaves the reader's position uncertain: report it and stop.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &LineError{Source{name, pe.StartLine}, pe.Err.Error()})
				break
			}
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		src := Source{name, line}
		bad := func(format string, a ...any) { errs = append(errs, &LineError{src, fmt.Sprintf(format, a...)}) }
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			bad("%d fields, the header has %d", len(rec), len(header))
			continue
		}
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		pa, pb, prompt := get("path_a"), get("path_b"), get("prompt")
		if pa == "" || pb == "" || prompt == "" {
			bad("empty path_A, path_B or prompt")
			continue
		}
		if pa == pb {
			bad("path_A and path_B are the same file %q", pa)
			continue
		}
		ls := make([]rewards.Label, len(dims))
		labels := map[string]rewards.Label{}
		ok := true
		for d, dn := range dims {
			l, err := rewards.ParseLabel(get(dn))
			if err != nil {
				bad("%s: %v", strings.ToUpper(dn), err)
				ok = false
				break
			}
			ls[d] = l
			if l != rewards.LabelNone {
				labels[dn] = l
			}
		}
		if !ok {
			continue
		}
		p := Pair{Prompt: prompt, Chosen: resolve(dir, pa), Rejected: resolve(dir, pb), Labels: labels, Source: src}
		for _, dn := range sortedKeys(mos) {
			c := mos[dn]
			va, errA := strconv.ParseFloat(strings.TrimSpace(rec[c[0]]), 64)
			vb, errB := strconv.ParseFloat(strings.TrimSpace(rec[c[1]]), 64)
			if errA != nil || errB != nil || math.IsNaN(va+vb) || math.IsInf(va+vb, 0) {
				bad("MOS_A_%s / MOS_B_%s: %q, %q are not finite numbers", strings.ToUpper(dn), strings.ToUpper(dn), rec[c[0]], rec[c[1]])
				ok = false
				break
			}
			if p.ChosenScores == nil {
				p.ChosenScores, p.RejectedScores = map[string]float64{}, map[string]float64{}
			}
			p.ChosenScores[dn], p.RejectedScores[dn] = va, vb
		}
		if !ok {
			continue
		}
		set.add(p, CollapseLabels(ls, set.Weights), o)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(set.Pairs) == 0 {
		return nil, set.emptyError(name)
	}
	return set, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return LineErrors{{Source{name, pe.StartLine}, pe.Err.Error()}}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// ---- scored sets ----

// Scored is one scored sample of a Flow-RWR set.
type Scored struct {
	Prompt string
	Path   string
	Scores []float64 // one per ScoredSet.Dims
	Seed   *uint64
	Index  *int
	Source Source
}

// ScoredSet is a scored set: samples with per-dimension scores.
type ScoredSet struct {
	Items []Scored
	Dims  []string // sorted
	// Failed counts the rows of align score output left out (an error, or null z-scores).
	Failed int
}

// ReadScored reads a scored-set JSONL file.
func ReadScored(path string) (*ScoredSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadScoredJSONL(f, path, filepath.Dir(path))
}

type scoredLine struct {
	Prompt *string            `json:"prompt"`
	Image  *string            `json:"image,omitempty"`
	Video  *string            `json:"video,omitempty"`
	Path   *string            `json:"path,omitempty"`
	Scores map[string]float64 `json:"scores"`
	Seed   *uint64            `json:"seed,omitempty"`
	Index  *int               `json:"index,omitempty"`
}

// ReadScoredJSONL reads a scored set from r; name labels errors, dir resolves relative paths.
func ReadScoredJSONL(r io.Reader, name, dir string) (*ScoredSet, error) {
	var errs LineErrors
	set := &ScoredSet{}
	firstLine := 0
	err := lines(r, func(n int, text string) {
		bad := func(format string, a ...any) {
			errs = append(errs, &LineError{Source{name, n}, fmt.Sprintf(format, a...)})
		}
		var l scoredLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			bad("%s", jsonMsg(err))
			return
		}
		if l.Prompt == nil || strings.TrimSpace(*l.Prompt) == "" {
			bad("missing or empty prompt")
			return
		}
		var path string
		given := 0
		for _, p := range []*string{l.Image, l.Video, l.Path} {
			if p != nil {
				given++
				path = *p
			}
		}
		switch {
		case given == 0 || strings.TrimSpace(path) == "":
			bad("missing or empty image (or video, path)")
			return
		case given > 1:
			bad("give one of image, video and path")
			return
		}
		if l.Scores == nil {
			scores, failed, msg := scoreColumns(text)
			switch {
			case msg != "":
				bad("%s", msg)
				return
			case failed:
				set.Failed++
				return
			}
			l.Scores = scores
		}
		if len(l.Scores) == 0 {
			bad("missing or empty scores (a \"scores\" object, or align score's <dim>_z columns)")
			return
		}
		if msg := checkScores(l.Scores, "scores"); msg != "" {
			bad("%s", msg)
			return
		}
		if l.Index != nil && *l.Index < 0 {
			bad("index must be >= 0, got %d", *l.Index)
			return
		}
		scores := map[string]float64{}
		for k, v := range l.Scores {
			d := strings.ToLower(strings.TrimSpace(k))
			if _, dup := scores[d]; dup {
				bad("scores name dimension %q twice", d)
				return
			}
			scores[d] = v
		}
		dims := sortedKeys(scores)
		if set.Dims == nil {
			set.Dims, firstLine = dims, n
		} else if !slices.Equal(dims, set.Dims) {
			bad("scores %v, but line %d scores %v; every line must score the same dimensions", dims, firstLine, set.Dims)
			return
		}
		it := Scored{Prompt: *l.Prompt, Path: resolve(dir, path), Seed: l.Seed, Index: l.Index, Source: Source{name, n}}
		for _, d := range dims {
			it.Scores = append(it.Scores, scores[d])
		}
		set.Items = append(set.Items, it)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(set.Items) == 0 {
		return nil, fmt.Errorf("%s: no scored samples (%d rows not scored)", name, set.Failed)
	}
	return set, nil
}

// scoreColumns reads the z-score columns of an align score JSONL row: every key "<dim>_z"
// whose "<dim>" is present too. failed reports a row that was not scored (error set, or a
// null z-score); msg a malformed one.
func scoreColumns(text string) (scores map[string]float64, failed bool, msg string) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, false, jsonMsg(err)
	}
	if e, ok := raw["error"]; ok && strings.TrimSpace(string(e)) != "null" {
		return nil, true, ""
	}
	for _, k := range sortedKeys(raw) {
		base, ok := strings.CutSuffix(k, "_z")
		if !ok || base == "" {
			continue
		}
		if _, ok := raw[base]; !ok {
			continue
		}
		var v *float64
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return nil, false, fmt.Sprintf("column %q: %s", k, jsonMsg(err))
		}
		if v == nil {
			return nil, true, ""
		}
		if scores == nil {
			scores = map[string]float64{}
		}
		scores[base] = *v
	}
	return scores, false, ""
}
