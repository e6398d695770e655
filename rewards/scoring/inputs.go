// Package scoring is batch scoring with any reward model (native or ONNX): the inputs
// (folders, globs, JSONL/CSV lists with prompts), decoding images, GIFs and folders of frames,
// frame sampling at an explicit fps and frame count, the parallel decode + batched score
// pipeline with error rows, sharding, combining dimensions, and the CSV/JSONL/table writers.
// `align score` is a thin command over it.
//
// Test: go test ./rewards/scoring; fuzz: go test ./rewards/scoring -run '^$' -fuzz FuzzParseList -fuzztime 30s
package scoring

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Item is one input to score.
type Item struct {
	Index     int    // position in the whole input list (before sharding)
	Path      string // image, GIF, or folder of frames
	Prompt    string // resolved prompt
	HasPrompt bool   // the list named a prompt for this input
	// SamplePrompt is the prompt align sample gave this file, from the samples.json of its
	// folder ("" where there is none): below the flags, above the file-stem rule.
	SamplePrompt string
	FPS          float64 // frames per second to sample a clip at (0: the run's default)
	NumFrames    int     // frames to sample (0: the run's default)
	SourceFPS    float64 // frame rate of a folder of frames (0: the run's default)
}

// Image file extensions read as inputs.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".bmp": true}

// IsImageFile reports whether path has an image extension read by the scorer.
func IsImageFile(path string) bool { return imageExts[strings.ToLower(filepath.Ext(path))] }

// ListOptions control how input specs become items.
type ListOptions struct {
	// Clips: the model reads clips, so a folder's sub-folders (folders of frames) and GIFs
	// are the items; otherwise a folder's image files are.
	Clips bool
	// Prompt is used for every input whose list gives none (before the file-stem rule).
	Prompt string
	// Prompts maps a file's path, base name or stem to its prompt (from --prompts).
	Prompts map[string]string
}

// List expands input specs, in order, into items: a folder (its image files, or for clips its
// GIFs and sub-folders, sorted by name; hidden entries skipped; in an output folder of align
// sample, the prompts of its samples.json and without its grid), a glob pattern (matches
// sorted), a .jsonl or .csv list of inputs with prompts (ParseList), or a single file. A spec
// that matches nothing is an error. Prompts are resolved by ResolvePrompt.
func List(specs []string, o ListOptions) ([]Item, error) {
	var items []Item
	for _, spec := range specs {
		got, err := listSpec(spec, o)
		if err != nil {
			return nil, err
		}
		items = append(items, got...)
	}
	for i := range items {
		items[i].Index = i
		items[i].Prompt = ResolvePrompt(&items[i], o)
	}
	return items, nil
}

func listSpec(spec string, o ListOptions) ([]Item, error) {
	if spec == "" {
		return nil, errors.New("empty input path")
	}
	st, err := os.Stat(spec)
	switch {
	case err == nil && st.IsDir():
		return listDir(spec, o)
	case err == nil && isListFile(spec):
		data, err := os.ReadFile(spec)
		if err != nil {
			return nil, err
		}
		items, err := ParseList(spec, data)
		if err != nil {
			return nil, err
		}
		dir := filepath.Dir(spec)
		for i := range items {
			if !filepath.IsAbs(items[i].Path) {
				items[i].Path = filepath.Join(dir, items[i].Path)
			}
		}
		return items, nil
	case err == nil:
		return []Item{{Path: spec}}, nil
	case strings.ContainsAny(spec, "*?["):
		matches, gerr := filepath.Glob(spec)
		if gerr != nil {
			return nil, fmt.Errorf("input pattern %q: %w", spec, gerr)
		}
		sort.Strings(matches)
		var items []Item
		for _, p := range matches {
			if strings.HasPrefix(filepath.Base(p), ".") && !strings.HasPrefix(filepath.Base(spec), ".") {
				continue // as a shell's *, skip hidden files unless the pattern names them
			}
			if st, err := os.Stat(p); err == nil && st.IsDir() && !o.Clips {
				continue // folders are clips; an image model skips them
			}
			items = append(items, Item{Path: p})
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("input pattern %q matches no file", spec)
		}
		return items, nil
	}
	return nil, fmt.Errorf("input %s: %w", spec, err)
}

func isListFile(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".jsonl" || ext == ".csv"
}

func listDir(dir string, o ListOptions) ([]Item, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("input folder: %w", err)
	}
	idx := readSampleIndex(dir)
	var items []Item
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == idx.Grid {
			continue
		}
		p := filepath.Join(dir, name)
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(p); err == nil {
				isDir = st.IsDir()
			}
		}
		switch {
		case isDir && o.Clips:
			items = append(items, Item{Path: p})
		case !isDir && o.Clips && IsVideoFile(name):
			items = append(items, Item{Path: p, SamplePrompt: idx.prompts[name]})
		case !isDir && IsImageFile(name):
			if o.Clips && strings.ToLower(filepath.Ext(name)) != ".gif" {
				continue // a clip model's folder: still images there are not clips
			}
			items = append(items, Item{Path: p, SamplePrompt: idx.prompts[name]})
		}
	}
	if len(items) == 0 {
		what := "image files (.png, .jpg, .gif, .webp, .bmp)"
		if o.Clips {
			what = "clips (GIF files, folders of frames, video files .mp4 .mov .webm .mkv .avi)"
		} else if slices.ContainsFunc(ents, func(e os.DirEntry) bool { return IsVideoFile(e.Name()) }) {
			what += "; its video files need a video reward model (e.g. --reward default-video)"
		}
		return nil, fmt.Errorf("input folder %s holds no %s", dir, what)
	}
	return items, nil
}

// SampleIndexFile is the report align sample writes into its output folder: the prompt of
// every file it wrote (exact, where a file name keeps only letters and digits) and its grid.
const SampleIndexFile = "samples.json"

// sampleIndex is what listing reads of a folder's SampleIndexFile: its files' prompts by
// name and the grid's name ("" and none where the folder has no index).
type sampleIndex struct {
	prompts map[string]string
	Grid    string
}

// readSampleIndex reads dir's SampleIndexFile where align sample wrote one (an object whose
// files have a path and a prompt); anything else by that name is some other file, and the
// folder is listed as any other.
func readSampleIndex(dir string) sampleIndex {
	var rep struct {
		Files []struct {
			Path   string `json:"path"`
			Prompt string `json:"prompt"`
		} `json:"files"`
		Grid string `json:"grid"`
	}
	b, err := os.ReadFile(filepath.Join(dir, SampleIndexFile))
	if err != nil || len(b) > MaxListBytes || json.Unmarshal(b, &rep) != nil || len(rep.Files) == 0 {
		return sampleIndex{}
	}
	idx := sampleIndex{prompts: map[string]string{}}
	for _, f := range rep.Files {
		// align sample writes paths relative to the folder, its own files in it
		name := filepath.FromSlash(f.Path)
		if f.Prompt == "" || filepath.IsAbs(name) || filepath.Base(name) != name {
			return sampleIndex{}
		}
		idx.prompts[name] = f.Prompt
	}
	if g := filepath.FromSlash(rep.Grid); filepath.Base(g) == g {
		idx.Grid = g
	}
	return idx
}

// ---- input lists ----

// Column (or JSON key) names of an input list, first match wins.
var (
	pathKeys      = []string{"path", "file", "image", "video", "filename", "file_name"} // file_name: Hugging Face's imagefolder
	promptKeys    = []string{"prompt", "caption", "text"}
	fpsKeys       = []string{"fps"}
	framesKeys    = []string{"num_frames", "frames", "nframes"}
	sourceFPSKeys = []string{"source_fps"}
)

// MaxListBytes bounds an input list (and a --prompts file).
const MaxListBytes = 256 << 20

// ParseList reads a list of inputs: JSONL (one object per line with "path" and optionally
// "prompt", "fps", "num_frames", "source_fps"; blank lines skipped) when name ends in .jsonl,
// else CSV with a header row naming the same columns (VideoAlign's "path, model, prompt, fps,
// num_frames" layout reads as is). Other keys and columns are ignored. Every row needs a path;
// errors name the line.
func ParseList(name string, data []byte) ([]Item, error) {
	if len(data) > MaxListBytes {
		return nil, fmt.Errorf("%s: list larger than %d MiB", name, MaxListBytes>>20)
	}
	if strings.EqualFold(filepath.Ext(name), ".jsonl") {
		return parseJSONL(name, data)
	}
	return parseCSV(name, data)
}

func parseJSONL(name string, data []byte) ([]Item, error) {
	var items []Item
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, fmt.Errorf("%s line %d: not a JSON object: %v", name, line, err)
		}
		get := func(keys []string) (any, bool) {
			for _, k := range keys {
				if v, ok := rec[k]; ok && v != nil {
					return v, true
				}
			}
			return nil, false
		}
		it, err := buildItem(func(keys []string) (string, bool, error) {
			v, ok := get(keys)
			if !ok {
				return "", false, nil
			}
			switch x := v.(type) {
			case string:
				return x, true, nil
			case float64:
				return strconv.FormatFloat(x, 'g', -1, 64), true, nil
			}
			return "", false, fmt.Errorf("%q is not a string or number", keys[0])
		})
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", name, line+1, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no inputs listed", name)
	}
	return items, nil
}

func parseCSV(name string, data []byte) ([]Item, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty list", name)
		}
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	if findCol(col, pathKeys) < 0 {
		return nil, fmt.Errorf("%s: the header %q names no path column (one of %s)", name, strings.Join(header, ","), strings.Join(pathKeys, ", "))
	}
	var items []Item
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		it, err := buildItem(func(keys []string) (string, bool, error) {
			i := findCol(col, keys)
			if i < 0 || i >= len(rec) || rec[i] == "" {
				return "", false, nil
			}
			return rec[i], true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no inputs listed", name)
	}
	return items, nil
}

func findCol(col map[string]int, keys []string) int {
	for _, k := range keys {
		if i, ok := col[k]; ok {
			return i
		}
	}
	return -1
}

// buildItem reads one row through get (value, present, error).
func buildItem(get func(keys []string) (string, bool, error)) (Item, error) {
	var it Item
	p, ok, err := get(pathKeys)
	if err != nil {
		return it, err
	}
	if !ok || strings.TrimSpace(p) == "" {
		return it, errors.New("no path (columns or keys: path, file, image, video, file_name)")
	}
	it.Path = p
	if it.Prompt, it.HasPrompt, err = get(promptKeys); err != nil {
		return it, err
	}
	num := func(keys []string, what string, dst *float64) error {
		s, ok, err := get(keys)
		if err != nil || !ok {
			return err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e4 {
			return fmt.Errorf("%s %q: want a number in [0, 10000]", what, s)
		}
		*dst = v
		return nil
	}
	if err := num(fpsKeys, "fps", &it.FPS); err != nil {
		return it, err
	}
	if err := num(sourceFPSKeys, "source_fps", &it.SourceFPS); err != nil {
		return it, err
	}
	var nf float64
	if err := num(framesKeys, "num_frames", &nf); err != nil {
		return it, err
	}
	if nf != math.Trunc(nf) || nf > 1024 {
		return it, fmt.Errorf("num_frames %v: want a whole number in [0, 1024]", nf)
	}
	it.NumFrames = int(nf)
	return it, nil
}

// ---- prompts ----

// ReadPrompts reads a --prompts file: a JSONL or CSV list (as ParseList) whose rows give a
// file (path, file, ...) and its prompt. The map is keyed by the path as written, its base
// name and its stem, so inputs found in a folder match rows that name them either way.
func ReadPrompts(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	items, err := ParseList(path, data)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, it := range items {
		if !it.HasPrompt {
			continue
		}
		base := filepath.Base(it.Path)
		for _, k := range []string{filepath.Clean(it.Path), base, strings.TrimSuffix(base, filepath.Ext(base))} {
			m[k] = it.Prompt
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no row has a prompt", path)
	}
	return m, nil
}

// ResolvePrompt picks an item's prompt: the one its list gave; else the --prompts entry for
// its path, base name or stem; else the run's --prompt; else the prompt align sample gave it
// (SamplePrompt); else PromptFromStem of the file name.
func ResolvePrompt(it *Item, o ListOptions) string {
	if it.HasPrompt {
		return it.Prompt
	}
	if p, ok := LookupPrompt(o.Prompts, it.Path); ok {
		return p
	}
	if o.Prompt != "" {
		return o.Prompt
	}
	if it.SamplePrompt != "" {
		return it.SamplePrompt
	}
	return PromptFromStem(it.Path)
}

// LookupPrompt finds path's prompt in a --prompts map (ReadPrompts) by its path, base name or
// stem, in that order.
func LookupPrompt(prompts map[string]string, path string) (string, bool) {
	base := filepath.Base(path)
	for _, k := range []string{filepath.Clean(path), base, strings.TrimSuffix(base, filepath.Ext(base))} {
		if p, ok := prompts[k]; ok {
			return p, true
		}
	}
	return "", false
}

var (
	leadingIndex  = regexp.MustCompile(`^\d+[-_]`)
	trailingIndex = regexp.MustCompile(`[-_]\d+$`)
)

// PromptFromStem turns a file name into a prompt: the extension dropped, then a leading
// "NNN-" (align sample's numbering: 003-red-apple.png) and a trailing "-N" or "_N" (VBench's
// per-prompt index: "a red apple-2.mp4"), then '-' and '_' read as spaces.
// "003-red-apple.png" and "a_red_apple-2.gif" both give "red apple" / "a red apple".
func PromptFromStem(path string) string {
	s := filepath.Base(path)
	if ext := filepath.Ext(s); ext != s {
		s = strings.TrimSuffix(s, ext)
	}
	s = leadingIndex.ReplaceAllString(s, "")
	s = trailingIndex.ReplaceAllString(s, "")
	s = strings.NewReplacer("-", " ", "_", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// ---- sharding ----

// ParseShard reads "i/n" (0 <= i < n): this run's part of n.
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if ok {
		i, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("shard %q: want i/n with 0 <= i < n, e.g. 0/4 (Kubernetes' JOB_COMPLETION_INDEX, Slurm's SLURM_ARRAY_TASK_ID from 0)", s)
	}
	return i, n, nil
}

// Shard returns part i of n of items: the contiguous block [i*N/n, (i+1)*N/n), so that the
// shards' outputs concatenated in shard order are the whole list in order. Items keep their
// Index in the whole list.
func Shard(items []Item, i, n int) []Item {
	return items[shardStart(i, n, len(items)):shardStart(i+1, n, len(items))]
}

// shardStart is floor(i*N/n) for 0 <= i <= n, N >= 0, with the product in 128 bits: i*N
// overflows an int for shard counts near 2^63 (--shard takes any int).
func shardStart(i, n, N int) int {
	hi, lo := bits.Mul64(uint64(i), uint64(N))
	q, _ := bits.Div64(hi, lo, uint64(n)) // i <= n, so the quotient is at most N and fits
	return int(q)
}
