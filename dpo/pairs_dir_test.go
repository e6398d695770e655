// Tests of pairs from w/ and l/ folders: pairing by name across extensions and frame
// folders, captions from either side, nested pair folders, the files left alone, and every
// problem reported with its file.
//
// Test: go test ./dpo -run PairsDir

package dpo

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path relative to dir: content; "" for a PNG, a trailing "/" for a
// folder of two PNG frames).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				writePNG(t, filepath.Join(path, fmt.Sprintf("%02d.png", i)), 4, 4, solid(color.NRGBA{0, 0, 200, 255}))
			}
		case strings.HasSuffix(name, ".png"), strings.HasSuffix(name, ".jpg"):
			writePNG(t, path, 4, 4, solid(color.NRGBA{200, 0, 0, 255}))
		default:
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestReadPairsDir(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"w/01.png": "", "w/01.txt": "red apple\n", "l/01.jpg": "", "l/01.npz": "a latent cache, left alone",
		"w/02.png": "", "l/02.png": "", "l/02.caption": "\ufeffblue\n  car ",
		"w/03/": "", "l/03/": "", "w/03.txt": "a clip", "l/03.caption": "a clip",
		"w/.DS_Store": "hidden", ".cache/w/09.png": "", ".cache/l/09.png": "",
		"2_more/w/a.png": "", "2_more/l/a.png": "", "2_more/w/a.caption": "green apple",
		"notes.md": "not a sample",
	})
	set, err := ReadPairs(dir, PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{Prompt: "red apple", Chosen: "w/01.png", Rejected: "l/01.jpg"},
		{Prompt: "blue car", Chosen: "w/02.png", Rejected: "l/02.png"},
		{Prompt: "a clip", Chosen: "w/03", Rejected: "l/03"},
		{Prompt: "green apple", Chosen: "2_more/w/a.png", Rejected: "2_more/l/a.png"},
	}
	if len(set.Pairs) != len(want) {
		t.Fatalf("%d pairs, want %d: %+v", len(set.Pairs), len(want), set.Pairs)
	}
	for i, w := range want {
		p := set.Pairs[i]
		w.Chosen, w.Rejected = filepath.Join(dir, w.Chosen), filepath.Join(dir, w.Rejected)
		if p.Prompt != w.Prompt || p.Chosen != w.Chosen || p.Rejected != w.Rejected || p.Tie || p.Labels != nil || p.Source.File != w.Chosen {
			t.Errorf("pair %d: %+v, want %q %s > %s", i, p, w.Prompt, w.Chosen, w.Rejected)
		}
	}
	// The samples load: an image pair and a frame folder pair.
	m := tinyModel(t, 1)
	if _, err := PairData(set, &m.Config); err != nil {
		t.Fatal(err)
	}
	// Options are checked as for a file.
	if _, err := ReadPairs(dir, PairOptions{Ties: "sometimes"}); err == nil {
		t.Error("a bad --ties accepted for a folder")
	}
}

func TestReadPairsDirRefuses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"w/a.png": "", "w/a.txt": "apple", // no l/a
		"l/b.png": "", "l/b.txt": "car", // no w/b
		"w/c.png": "", "w/c.jpg": "", "l/c.png": "", "w/c.txt": "two of one name",
		"w/d.png": "", "l/d.png": "", // no caption
		"w/e.png": "", "l/e.png": "", "w/e.txt": "apple", "l/e.txt": "pear",
		"w/f.png": "", "l/f.png": "", "w/f.caption": " \n",
		"w/g.png": "", "l/g.png": "", "w/g.txt": "fine",
	})
	_, err := ReadPairs(dir, PairOptions{})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, w := range []string{
		filepath.Join(dir, "w/a.png") + `: no sample named "a" in ` + filepath.Join(dir, "l"),
		filepath.Join(dir, "l/b.png") + `: no sample named "b" in ` + filepath.Join(dir, "w"),
		filepath.Join(dir, "w/c.png") + `: a second sample named "c" (beside c.jpg)`,
		filepath.Join(dir, "w/d.png") + ": no caption: d.txt",
		`says "apple", ` + filepath.Join(dir, "l/e.txt") + ` says "pear"`,
		filepath.Join(dir, "w/f.caption") + ": an empty caption",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("the error does not say %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "g.png") {
		t.Errorf("a good pair reported:\n%s", msg)
	}
	empty := t.TempDir()
	writeTree(t, empty, map[string]string{"w/a.png": "", "a.txt": "no l/"})
	if _, err := ReadPairs(empty, PairOptions{}); err == nil || !strings.Contains(err.Error(), "no pairs") {
		t.Errorf("a folder without w/ and l/: %v", err)
	}
}

// A pair's captions give one prompt, on one line with single spaces, exactly when both hold
// words and the same words; any bytes are read without a panic.
//
// Fuzz: go test ./dpo -run '^$' -fuzz FuzzPairCaption -fuzztime 30s
func FuzzPairCaption(f *testing.F) {
	for _, c := range [][2]string{{"red apple", "red apple\n"}, {"\ufeffblue\tcar", "blue car"}, {"a", "b"}, {" \n", "x"}, {"\xff\xfe", "\xff\xfe"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		dir := t.TempDir()
		files := []string{filepath.Join(dir, "w.txt"), filepath.Join(dir, "l.txt")}
		for i, c := range []string{a, b} {
			if err := os.WriteFile(files[i], []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		words := func(s string) string { return strings.Join(strings.Fields(strings.TrimPrefix(s, "\ufeff")), " ") }
		prompt, msg := pairCaption("x", files)
		switch wa, wb := words(a), words(b); {
		case wa == "" || wb == "" || wa != wb:
			if msg == "" {
				t.Fatalf("%q and %q gave the prompt %q", a, b, prompt)
			}
		case msg != "" || prompt != wa:
			t.Fatalf("%q and %q: prompt %q, message %q; want %q", a, b, prompt, msg, wa)
		}
	})
}
