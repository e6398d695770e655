// Tests of the manifest: defaults, every validation error, round trip of the exported
// manifest, and a fuzz target (no panic; whatever parses re-validates and round-trips).
//
// Test: go test ./rewards/onnx -run Manifest; fuzz: go test ./rewards/onnx -run '^$' -fuzz FuzzParseManifest -fuzztime 30s
package onnx

import (
	"strings"
	"testing"
)

const minimalManifest = `{"format": "align.onnx-reward", "version": 1, "model": "m.onnx",
 "image": {"input": "pixel_values", "layout": "NCHW", "size": 224},
 "outputs": [{"name": "score", "dims": ["aesthetic"]}]}`

func TestManifestDefaults(t *testing.T) {
	m, err := ParseManifest([]byte(minimalManifest))
	if err != nil {
		t.Fatal(err)
	}
	im := m.Image
	if im.Height != 224 || im.Width != 224 || im.Resize != ResizeShorter || im.Filter != FilterBicubic || im.Range != 1 ||
		im.Std[2] != 1 || im.ClipReduce != ClipMean || m.Text != nil {
		t.Errorf("defaults: %+v", im)
	}
	if d := m.Dims(); len(d) != 1 || d[0] != "aesthetic" {
		t.Errorf("dims %v", d)
	}
	m.SetDir("/models")
	if m.Path(m.Model) != "/models/m.onnx" || m.Path("/abs/v.json") != "/abs/v.json" {
		t.Errorf("paths %s", m.Path(m.Model))
	}
	clip := strings.Replace(minimalManifest, `NCHW", `, `NTCHW", "frames": 8, "fps": 4, `, 1)
	if m, err := ParseManifest([]byte(clip)); err != nil || m.Image.FPS != 4 {
		t.Errorf("a clip model of 4 fps: %v", err)
	}
}

func TestManifestErrors(t *testing.T) {
	edit := func(old, new string) string { return strings.Replace(minimalManifest, old, new, 1) }
	text := `"text": {"input": "input_ids", "tokenizer": "%s", "max_len": 77%s},`
	cases := map[string]string{
		"unknown field":      edit(`"model"`, `"modle": 1, "model"`),
		"format":             edit(`align.onnx-reward`, `onnx`),
		"version":            edit(`"version": 1`, `"version": 2`),
		"missing model":      edit(`"m.onnx"`, `""`),
		"layout":             edit(`NCHW`, `CHW`),
		"frames on images":   edit(`"size": 224`, `"size": 224, "frames": 8`),
		"fps on images":      edit(`"size": 224`, `"size": 224, "fps": 4`),
		"negative fps":       edit(`NCHW", `, `NTCHW", "frames": 8, "fps": -4, `),
		"clip without frame": edit(`NCHW`, `NTCHW`),
		"size conflict":      edit(`"size": 224`, `"size": 224, "height": 100`),
		"huge":               edit(`224`, `100000`),
		"resize":             edit(`"size": 224`, `"size": 224, "resize": "fit"`),
		"filter":             edit(`"size": 224`, `"size": 224, "filter": "lanczos"`),
		"range":              edit(`"size": 224`, `"size": 224, "range": 2`),
		"mean length":        edit(`"size": 224`, `"size": 224, "mean": [0.5]`),
		"std zero":           edit(`"size": 224`, `"size": 224, "std": [1, 0, 1]`),
		"pad value":          edit(`"size": 224`, `"size": 224, "pad_value": 2`),
		"no outputs":         edit(`[{"name": "score", "dims": ["aesthetic"]}]`, `[]`),
		"output twice":       edit(`[{"name": "score", "dims": ["aesthetic"]}]`, `[{"name": "score", "dims": ["a"]}, {"name": "score", "dims": ["b"]}]`),
		"dim twice":          edit(`["aesthetic"]`, `["a", "a"]`),
		"dim name":           edit(`["aesthetic"]`, `["a b"]`),
		"dim clash":          edit(`["aesthetic"]`, `["vq_z"]`),
		"only skipped":       edit(`["aesthetic"]`, `[""]`),
		"calibration dims":   edit(`"outputs"`, `"calibration": {"dims": ["x"], "mean": [0], "std": [1]}, "outputs"`),
		"calibration std":    edit(`"outputs"`, `"calibration": {"dims": ["aesthetic"], "mean": [0], "std": [0]}, "outputs"`),
		"word no vocab":      edit(`"outputs"`, strings.Replace(strings.Replace(text, "%s", "word", 1), "%s", "", 1)+`"outputs"`),
		"bpe no merges":      edit(`"outputs"`, strings.Replace(strings.Replace(text, "%s", "clip-bpe", 1), "%s", "", 1)+`"outputs"`),
		"tokenizer":          edit(`"outputs"`, strings.Replace(strings.Replace(text, "%s", "sentencepiece", 1), "%s", "", 1)+`"outputs"`),
		"text dtype":         edit(`"outputs"`, strings.Replace(strings.Replace(text, "%s", "word", 1), "%s", `, "vocab": ["a"], "dtype": "float"`, 1)+`"outputs"`),
		"same input name":    edit(`"outputs"`, `"text": {"input": "pixel_values", "tokenizer": "word", "vocab": ["x"], "max_len": 4}, "outputs"`),
		"trailing data":      minimalManifest + `{}`,
		"not json":           `{"format":`,
	}
	for name, js := range cases {
		if _, err := ParseManifest([]byte(js)); err == nil {
			t.Errorf("%s: accepted\n%s", name, js)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(minimalManifest))
	f.Add([]byte(`{"format": "align.onnx-reward", "version": 1, "model": "m.onnx", "max_batch": 1,
 "image": {"input": "x", "layout": "NTHWC", "height": 32, "width": 48, "frames": 8, "fps": 4, "resize": "longer", "pad_value": 0.5,
   "filter": "box", "range": 255, "mean": [1, 2, 3], "std": [4, 5, 6], "clip_reduce": "reject"},
 "text": {"input": "ids", "tokenizer": "clip-bpe", "merges_file": "merges.txt", "max_len": 77, "dtype": "int32", "attention_mask": "mask", "pad_id": 3},
 "outputs": [{"name": "s", "dims": ["vq", "", "ta"]}],
 "calibration": {"dims": ["vq", "ta"], "mean": [0, 1], "std": [1, 2], "n": 5}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("a parsed manifest fails validation again: %v", err)
		}
		js, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(js)
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, js)
		}
		if len(m2.Dims()) != len(m.Dims()) || m2.Image.Geometry() != m.Image.Geometry() || m2.Image.Layout != m.Image.Layout {
			t.Fatalf("round trip changed the manifest")
		}
	})
}
