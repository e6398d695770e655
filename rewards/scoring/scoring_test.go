// Tests of batch scoring: input lists (JSONL, CSV, VideoAlign's CSV layout, errors, fuzz),
// folders and globs, prompts from lists, --prompts files, align sample's samples.json and
// file stems, shards, frame
// selection, GIF compositing, the pipeline with a fake model (order kept across workers,
// error rows, Strict, a panicking model), totals and the writers.
//
// Test: go test ./rewards/scoring; fuzz: go test ./rewards/scoring -run '^$' -fuzz FuzzParseList -fuzztime 30s
package scoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

func TestParseList(t *testing.T) {
	items, err := ParseList("l.jsonl", []byte(`{"path": "a.png", "prompt": "red apple", "fps": 4, "num_frames": 8}

{"file": "b.gif", "caption": "", "source_fps": 24}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Prompt != "red apple" || !items[0].HasPrompt || items[0].FPS != 4 || items[0].NumFrames != 8 ||
		items[1].Path != "b.gif" || !items[1].HasPrompt || items[1].Prompt != "" || items[1].SourceFPS != 24 {
		t.Errorf("jsonl: %+v", items)
	}
	// VideoAlign's evaluation CSV: path, model, prompt, fps, num_frames.
	items, err = ParseList("l.csv", []byte("\xef\xbb\xbfpath,model,prompt,fps,num_frames\nv/1.mp4,m1,\"a dog, running\",2,8\nv/2.mp4,m2,,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Prompt != "a dog, running" || items[0].FPS != 2 || items[1].HasPrompt || items[1].NumFrames != 0 {
		t.Errorf("csv: %+v", items)
	}
	// Hugging Face's imagefolder metadata: file_name, text.
	items, err = ParseList("metadata.jsonl", []byte(`{"file_name": "train/0.png", "text": "a blue square"}`+"\n"))
	if err != nil || len(items) != 1 || items[0].Path != "train/0.png" || items[0].Prompt != "a blue square" {
		t.Errorf("imagefolder metadata: %+v, %v", items, err)
	}
	for name, data := range map[string]string{
		"l.jsonl": "{\"prompt\": \"x\"}\n",
		"m.jsonl": "{\"path\": \"a\", \"fps\": -1}\n",
		"n.jsonl": "{\"path\": \"a\", \"num_frames\": 2.5}\n",
		"o.jsonl": "{\"path\": [1]}\n",
		"p.jsonl": "not json\n",
		"q.jsonl": "\n\n",
		"l.csv":   "prompt\nx\n",
		"m.csv":   "path,fps\na,fast\n",
		"n.csv":   "",
		"o.csv":   "path\n",
		"p.csv":   "path\n\"a\n",
	} {
		if _, err := ParseList(name, []byte(data)); err == nil {
			t.Errorf("%s %q: accepted", name, data)
		}
	}
}

func FuzzParseList(f *testing.F) {
	f.Add("l.jsonl", []byte(`{"path": "a.png", "prompt": "red apple", "fps": 4}`))
	f.Add("l.csv", []byte("path,prompt,fps,num_frames,source_fps\na.gif,x,2,8,24\n"))
	f.Add("l.csv", []byte("file;prompt\n\"a,b\",c\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		items, err := ParseList(name, data)
		if err != nil {
			return
		}
		for _, it := range items {
			if strings.TrimSpace(it.Path) == "" || it.FPS < 0 || it.NumFrames < 0 || it.NumFrames > 1024 || math.IsNaN(it.FPS) {
				t.Fatalf("bad item %+v", it)
			}
		}
	})
}

// pngHeader is the start of a PNG announcing w x h pixels: enough for image.DecodeConfig.
func pngHeader(w, h uint32) []byte {
	ihdr := []byte{'I', 'H', 'D', 'R', byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w), byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h), 8, 2, 0, 0, 0}
	crc := crc32.ChecksumIEEE(ihdr)
	b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	return append(b, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

func TestLoadImageTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, pngHeader(16000, 14464), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadImage(big); err == nil || err.Error() != big+": image of 16000x14464 pixels, more than the 40 Mpixel limit" {
		t.Errorf("a 231 Mpixel image: %v", err)
	}
	// Within the limit the header passes and the missing pixel data is what fails.
	ok := filepath.Join(dir, "ok.png")
	if err := os.WriteFile(ok, pngHeader(6000, 6000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadImage(ok); err == nil || strings.Contains(err.Error(), "limit") {
		t.Errorf("a 36 Mpixel image without data: %v", err)
	}
}

// TestLoadImageUpright: a JPEG whose EXIF orientation is 6 (rotate 90 degrees clockwise to
// show) is read as stored by LoadImage and upright by LoadImageUpright: its left half, red,
// becomes the top half.
func TestLoadImageUpright(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 32, 16))
	for y := range 16 {
		for x := range 32 {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 16 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	// APP1 "Exif": a little-endian TIFF header, IFD0 of one entry, tag 0x0112 SHORT = 6.
	tiff := []byte{'I', 'I', 0x2a, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0}
	app1 := append([]byte{0xff, 0xe1, 0, byte(2 + 6 + len(tiff))}, append([]byte("Exif\x00\x00"), tiff...)...)
	data := append(append(append([]byte{}, b.Bytes()[:2]...), app1...), b.Bytes()[2:]...)
	path := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	red := func(m image.Image, x, y int) bool {
		r, _, bl, _ := m.At(x, y).RGBA()
		return r>>8 > 200 && bl>>8 < 60
	}
	stored, err := LoadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Bounds().Dx() != 32 || !red(stored, 4, 8) || red(stored, 28, 8) {
		t.Errorf("as stored: %v, red at left %v, right %v", stored.Bounds(), red(stored, 4, 8), red(stored, 28, 8))
	}
	up, err := LoadImageUpright(path)
	if err != nil {
		t.Fatal(err)
	}
	if up.Bounds().Dx() != 16 || up.Bounds().Dy() != 32 || !red(up, 8, 4) || red(up, 8, 28) {
		t.Errorf("upright: %v, red at top %v, bottom %v", up.Bounds(), red(up, 8, 4), red(up, 8, 28))
	}
}

func TestPromptFromStem(t *testing.T) {
	for in, want := range map[string]string{
		"out/003-red-apple.png":   "red apple",
		"a_red_apple-2.gif":       "a red apple",
		"clips/a dog running-0":   "a dog running",
		"1f34e.png":               "1f34e",
		"12.png":                  "12",
		".png":                    ".png",
		"--x__y--.jpg":            "x y",
		"007-r2-d2-robot-3.png":   "r2 d2 robot",
		"frames/blue-car":         "blue car",
		"über-straße_1.webp":      "über straße",
		"/abs/path/042_cat_3.png": "cat",
	} {
		if got := PromptFromStem(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func writePNG(t *testing.T, path string, w, h int, c color.Color) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestListFoldersGlobsPrompts(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b-cat.png", "a-dog.jpg", "c.gif", ".hidden.png", "notes.txt"} {
		writePNG(t, filepath.Join(dir, n), 2, 2, color.White) // content does not matter here
	}
	os.Mkdir(filepath.Join(dir, "clip1"), 0o755)
	prompts := filepath.Join(dir, "prompts.csv")
	os.WriteFile(prompts, []byte("file,prompt\nb-cat,a black cat\n"), 0o644)
	pm, err := ReadPrompts(prompts)
	if err != nil {
		t.Fatal(err)
	}
	items, err := List([]string{dir}, ListOptions{Prompts: pm})
	if err != nil {
		t.Fatal(err)
	}
	var names, ps []string
	for i, it := range items {
		names, ps = append(names, filepath.Base(it.Path)), append(ps, it.Prompt)
		if it.Index != i {
			t.Errorf("index %d at %d", it.Index, i)
		}
	}
	if strings.Join(names, ",") != "a-dog.jpg,b-cat.png,c.gif" || strings.Join(ps, ",") != "a dog,a black cat,c" {
		t.Errorf("folder: %v %v", names, ps)
	}
	items, _ = List([]string{dir}, ListOptions{Clips: true, Prompt: "x"})
	if len(items) != 2 || filepath.Base(items[0].Path) != "c.gif" || filepath.Base(items[1].Path) != "clip1" || items[0].Prompt != "x" {
		t.Errorf("clips: %+v", items)
	}
	items, err = List([]string{filepath.Join(dir, "*.png"), filepath.Join(dir, "a-dog.jpg")}, ListOptions{})
	if err != nil || len(items) != 2 || items[1].Index != 1 {
		t.Errorf("glob: %+v %v", items, err)
	}
	for _, spec := range []string{filepath.Join(dir, "*.webp"), filepath.Join(dir, "missing.png"), filepath.Join(dir, "clip1"), ""} {
		if _, err := List([]string{spec}, ListOptions{}); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
	list := filepath.Join(dir, "sub", "list.jsonl")
	os.Mkdir(filepath.Dir(list), 0o755)
	os.WriteFile(list, []byte(`{"path": "../a-dog.jpg", "prompt": "a wolf"}`+"\n"), 0o644)
	items, err = List([]string{list}, ListOptions{Prompt: "ignored"})
	if err != nil || items[0].Path != filepath.Join(dir, "a-dog.jpg") || items[0].Prompt != "a wolf" {
		t.Errorf("list paths relative to the list: %+v %v", items, err)
	}
}

// TestListSampleFolder lists an output folder of align sample: the prompts its samples.json
// gives (exact, where the file names lost the punctuation), without its grid, below the
// flags; a file the index does not name reads its stem; an index of another shape, or one
// naming files outside the folder, is ignored.
func TestListSampleFolder(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"000-a-dog-s-face-smiling.png", "001-red-apple.png", "grid.png", "extra-cat.png"} {
		writePNG(t, filepath.Join(dir, n), 2, 2, color.White)
	}
	index := func(js string) {
		if err := os.WriteFile(filepath.Join(dir, SampleIndexFile), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := func(o ListOptions) string {
		items, err := List([]string{dir}, o)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, it := range items {
			rows = append(rows, filepath.Base(it.Path)+"="+it.Prompt)
		}
		return strings.Join(rows, "; ")
	}
	index(`{"kind": "image", "files": [{"path": "000-a-dog-s-face-smiling.png", "prompt": "a dog's face, smiling"},
		{"path": "001-red-apple.png", "prompt": "red apple"}], "grid": "grid.png"}`)
	for _, tt := range []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{}, "000-a-dog-s-face-smiling.png=a dog's face, smiling; 001-red-apple.png=red apple; extra-cat.png=extra cat"},
		{ListOptions{Prompt: "x"}, "000-a-dog-s-face-smiling.png=x; 001-red-apple.png=x; extra-cat.png=x"},
		{ListOptions{Prompts: map[string]string{"001-red-apple": "green apple"}},
			"000-a-dog-s-face-smiling.png=a dog's face, smiling; 001-red-apple.png=green apple; extra-cat.png=extra cat"},
	} {
		if got := list(tt.o); got != tt.want {
			t.Errorf("%+v:\n got %s\nwant %s", tt.o, got, tt.want)
		}
	}
	stems := "000-a-dog-s-face-smiling.png=a dog s face smiling; 001-red-apple.png=red apple; extra-cat.png=extra cat; grid.png=grid"
	for _, js := range []string{
		`[1, 2]`, `not json`, `{"files": []}`,
		`{"files": [{"path": "../001-red-apple.png", "prompt": "red apple"}], "grid": "grid.png"}`,
		`{"files": [{"path": "001-red-apple.png", "prompt": ""}], "grid": "grid.png"}`,
	} {
		index(js)
		if got := list(ListOptions{}); got != stems {
			t.Errorf("index %s:\n got %s\nwant %s", js, got, stems)
		}
	}
	// A video sample folder: the GIFs without the grid's.
	vdir := t.TempDir()
	for _, n := range []string{"000-a-rocket-moving-up.gif", "grid.gif"} {
		writePNG(t, filepath.Join(vdir, n), 2, 2, color.White) // listing does not decode
	}
	os.WriteFile(filepath.Join(vdir, SampleIndexFile), []byte(`{"kind": "video", "files": [{"path": "000-a-rocket-moving-up.gif",
		"prompt": "a rocket moving up"}], "grid": "grid.gif"}`), 0o644)
	items, err := List([]string{vdir}, ListOptions{Clips: true})
	if err != nil || len(items) != 1 || items[0].Prompt != "a rocket moving up" {
		t.Errorf("video sample folder: %+v %v", items, err)
	}
}

func TestShard(t *testing.T) {
	items := make([]Item, 10)
	for i := range items {
		items[i].Index = i
	}
	var all []int
	for i := range 4 {
		for _, it := range Shard(items, i, 4) {
			all = append(all, it.Index)
		}
	}
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("shards joined: %v", all)
	}
	if len(Shard(items[:2], 0, 4)) != 0 || len(Shard(items[:2], 3, 4)) != 1 {
		t.Error("more shards than items")
	}
	// Part i of n is [floor(i*N/n), floor((i+1)*N/n)): with n = 2^63-1 and N = 10, the last
	// part holds the last item; i*N in an int would overflow.
	const big = math.MaxInt64
	if got := Shard(items, big-1, big); len(got) != 1 || got[0].Index != 9 {
		t.Errorf("last of 2^63-1 parts: %+v", got)
	}
	for _, s := range []string{"1/2", " 0 / 1 "} {
		if _, _, err := ParseShard(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"2/2", "-1/2", "0/0", "1", "a/b", "1/2/3"} {
		if _, _, err := ParseShard(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// FuzzParseShard: an accepted i/n has 0 <= i < n, and Shard's parts i of n of a list are
// in range at any n (i*N would overflow an int for n near 2^63).
// Fuzz: go test ./rewards/scoring -run '^$' -fuzz FuzzParseShard -fuzztime 30s
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/4", " 3 / 4 ", "4/4", "-1/2", "1/0", "a/b", "", "1/2/3", "9223372036854775806/9223372036854775807"} {
		f.Add(s)
	}
	items := make([]Item, 7)
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := ParseShard(s)
		if err != nil {
			return
		}
		if n < 1 || i < 0 || i >= n {
			t.Fatalf("%q: accepted as %d/%d", s, i, n)
		}
		if got := len(Shard(items, i, n)); got > len(items)/n+1 {
			t.Fatalf("%q: %d items in a part of %d/%d", s, got, len(items), n)
		}
	})
}

// Windows of 10 frames 0.1 s apart (1 s): 2 frames at 4 fps take 0.5 s each and need 0.25 s
// to end within the clip, so windows start at 0 and 0.5 (1.0 + 0.25 is past the end); single
// frames at 10 fps give 10 windows, of which 4 spread are 0, 3, 6 and 9.
func TestSelectWindows(t *testing.T) {
	starts := []float64{0, .1, .2, .3, .4, .5, .6, .7, .8, .9}
	for _, c := range []struct {
		T          int
		fps        float64
		maxClips   int
		want       string
		wantStarts string
	}{
		{2, 4, 0, "[[0 2] [5 7]]", "[0.00 0.50]"},
		{2, 4, 1, "[[0 2]]", "[0.00]"},
		{2, 4, 3, "[[0 2] [5 7]]", "[0.00 0.50]"},
		{1, 10, 0, "[[0] [1] [2] [3] [4] [5] [6] [7] [8] [9]]", "[0.00 0.10 0.20 0.30 0.40 0.50 0.60 0.70 0.80 0.90]"},
		{1, 10, 4, "[[0] [3] [6] [9]]", "[0.00 0.30 0.60 0.90]"},
		{1, 10, 2, "[[0] [9]]", "[0.00 0.90]"},
		// At twice the clip's rate frames repeat; window 6 would end at 6·0.15 + 0.1 = 1 s.
		{3, 20, 0, "[[0 0 1] [1 2 2] [3 3 4] [4 5 5] [6 6 7] [7 8 8]]", "[0.00 0.15 0.30 0.45 0.60 0.75]"},
	} {
		w, s, err := SelectWindows(10, starts, 1, c.T, c.fps, c.maxClips)
		if err != nil || fmt.Sprint(w) != c.want || fmt.Sprintf("%.2f", s) != c.wantStarts {
			t.Errorf("T %d at %g fps, at most %d: windows %v starting %.2f (%v), want %s starting %s", c.T, c.fps, c.maxClips, w, s, err, c.want, c.wantStarts)
		}
	}
	if _, _, err := SelectWindows(10, starts, 1, 5, 4, 0); err == nil || !strings.Contains(err.Error(), "need more than 1s") {
		t.Errorf("no window fits: %v", err)
	}
	// 10 s at 1000 fps: 10000 windows of one frame, more than are read from one clip, unless
	// fewer are asked for.
	if _, _, err := SelectWindows(10, starts, 10, 1, 1000, 0); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d", MaxClipFrames)) {
		t.Errorf("10000 windows: %v", err)
	}
	if w, _, err := SelectWindows(10, starts, 10, 1, 1000, 3); err != nil || fmt.Sprint(w) != "[[0] [9] [9]]" {
		t.Errorf("3 of 10000 windows: %v %v", w, err)
	}
}

// SelectWindows on random clips: each window's frames are those shown at its times, the
// windows start T/fps apart on the grid, the last one ends within the clip, and with no
// limit one more would not.
func TestSelectWindowsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(60)
		starts := make([]float64, n)
		for k := 1; k < n; k++ {
			starts[k] = starts[k-1] + 0.01 + 0.2*rng.Float64()
		}
		duration := starts[n-1] + 0.01 + 0.2*rng.Float64()
		T, fps, maxClips := 1+rng.IntN(8), 0.5+30*rng.Float64(), rng.IntN(4)
		windows, times, err := SelectWindows(n, starts, duration, T, fps, maxClips)
		need := float64(T-1) / fps
		if err != nil {
			if need < duration {
				t.Fatalf("n %d, T %d at %g fps over %gs: %v", n, T, fps, duration, err)
			}
			continue
		}
		span := float64(T) / fps
		if maxClips > 0 && len(windows) > maxClips || len(windows) != len(times) || len(windows) == 0 {
			t.Fatalf("%d windows, %d starts, at most %d", len(windows), len(times), maxClips)
		}
		for i, idx := range windows {
			j := math.Round(times[i] / span)
			if math.Abs(times[i]-j*span) > 1e-9 || i > 0 && times[i] <= times[i-1] || times[i]+need >= duration {
				t.Fatalf("window %d starts at %g (span %g, needs %g of %g)", i, times[i], span, need, duration)
			}
			for k, f := range idx {
				at := times[i] + float64(k)/fps
				if starts[f] > at+1e-6 || f+1 < n && starts[f+1] <= at-1e-6 {
					t.Fatalf("window %d frame %d: frame %d (from %g) is not the one shown at %g", i, k, f, starts[f], at)
				}
			}
		}
		if maxClips == 0 {
			if last := times[len(times)-1] + span; last+need < duration-1e-6 {
				t.Fatalf("a window at %g would fit (needs %g of %g)", last, need, duration)
			}
		}
	}
}

func TestSelectFrames(t *testing.T) {
	idx, _ := SelectFrames(10, nil, 0, 4, 0)
	if !slices.Equal(idx, []int{0, 3, 6, 9}) {
		t.Errorf("uniform: %v", idx)
	}
	idx, _ = SelectFrames(2, nil, 0, 4, 0)
	if !slices.Equal(idx, []int{0, 0, 1, 1}) {
		t.Errorf("uniform, repeats: %v", idx)
	}
	// 10 frames at 0.1 s each, sampled at 4 fps: t = 0, 0.25, 0.5, 0.75.
	starts := []float64{0, .1, .2, .3, .4, .5, .6, .7, .8, .9}
	idx, err := SelectFrames(10, starts, 1, 4, 4)
	if err != nil || !slices.Equal(idx, []int{0, 2, 5, 7}) {
		t.Errorf("4 fps: %v %v", idx, err)
	}
	if _, err := SelectFrames(10, starts, 1, 5, 4); err == nil {
		t.Error("5 frames at 4 fps from a 1 s clip accepted (needs more than 1 s)")
	}
	if _, err := SelectFrames(10, nil, 0, 4, 4); err == nil || !strings.Contains(err.Error(), "--source-fps") {
		t.Errorf("no timing: %v", err)
	}
	if _, _, err := SelectWindows(10, nil, 0, 4, 0, 2); err == nil || !strings.Contains(err.Error(), "--fps") {
		t.Errorf("windows at fps 0: %v", err)
	}
	if !naturalLess("f2.png", "f10.png") || naturalLess("f10.png", "f2.png") || !naturalLess("a", "b") || !naturalLess("x1", "x1a") {
		t.Error("natural order")
	}
}

// A GIF whose second frame covers only a corner and whose first frame is disposed to the
// background: frames are composited like a browser shows them.
func TestGIFCompositing(t *testing.T) {
	pal := color.Palette{color.Transparent, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	f0 := image.NewPaletted(image.Rect(0, 0, 4, 4), pal)
	for i := range f0.Pix {
		f0.Pix[i] = 1 // red
	}
	f1 := image.NewPaletted(image.Rect(0, 0, 2, 2), pal)
	for i := range f1.Pix {
		f1.Pix[i] = 2 // blue corner
	}
	f2 := image.NewPaletted(image.Rect(2, 2, 4, 4), pal)
	for i := range f2.Pix {
		f2.Pix[i] = 2
	}
	g := &gif.GIF{Image: []*image.Paletted{f0, f1, f2}, Delay: []int{0, 20, 5},
		Disposal: []byte{gif.DisposalNone, gif.DisposalBackground, gif.DisposalNone}, Config: image.Config{Width: 4, Height: 4, ColorModel: pal}}
	path := filepath.Join(t.TempDir(), "c.gif")
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, b.Bytes(), 0o644)
	c, err := LoadClip(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Starts) != 3 || c.Starts[0] != 0 || math.Abs(c.Starts[1]-0.1) > 1e-9 || math.Abs(c.Starts[2]-0.3) > 1e-9 || math.Abs(c.Duration-0.35) > 1e-9 {
		t.Errorf("timing %v %v", c.Starts, c.Duration)
	}
	at := func(k, x, y int) [3]float32 {
		chw, H, W := ToCHW(c.Frames[k])
		return [3]float32{chw[y*W+x], chw[H*W+y*W+x], chw[2*H*W+y*W+x]}
	}
	red, blue, white := [3]float32{1, -1, -1}, [3]float32{-1, -1, 1}, [3]float32{1, 1, 1}
	if at(1, 0, 0) != blue || at(1, 3, 3) != red || at(2, 0, 0) != white || at(2, 3, 3) != blue || at(2, 3, 0) != red {
		t.Errorf("compositing: %v %v %v %v %v", at(1, 0, 0), at(1, 3, 3), at(2, 0, 0), at(2, 3, 3), at(2, 3, 0))
	}
}

// fakeModel scores vq = mean pixel, ta = len(prompt); it panics on the prompt "boom".
type fakeModel struct {
	calls int
	fps   []float64 // the batches' frame rates, in order
}

func (m *fakeModel) Dims() []string { return []string{"vq", "ta"} }
func (m *fakeModel) Score(b rewards.Batch) ([][]float32, error) {
	m.calls++
	m.fps = append(m.fps, b.FPS...)
	host := make([]float32, b.Pixels.Len())
	b.Pixels.Dev.CopyToHost(host, b.Pixels)
	n := len(host) / b.Len()
	out := make([][]float32, b.Len())
	for i := range out {
		if b.Prompts[i] == "boom" {
			panic("boom")
		}
		s := float32(0)
		for _, v := range host[i*n : (i+1)*n] {
			s += v
		}
		out[i] = []float32{s / float32(n), float32(len(b.Prompts[i]))}
	}
	return out, nil
}

func TestRunOrderErrorsAndStrict(t *testing.T) {
	dir := t.TempDir()
	var items []Item
	for i := range 23 {
		p := filepath.Join(dir, "img"+string(rune('a'+i))+".png")
		if i%7 == 3 {
			os.WriteFile(p, []byte("broken"), 0o644)
		} else {
			g := uint8(i * 10)
			writePNG(t, p, 3+i, 5, color.RGBA{g, g, g, 255})
		}
		items = append(items, Item{Index: i, Path: p, Prompt: strings.Repeat("x", i)})
	}
	geo := onnx.Geometry{Height: 4, Width: 4, Resize: onnx.ResizeStretch, Filter: onnx.FilterBox}
	m := &fakeModel{}
	var last int
	s := &Scorer{Model: m, Dev: kernels.NewCPU(1), Geometry: geo, BatchSize: 4, Workers: 3,
		Progress: func(done, total, _ int) { last = done }}
	res, err := s.Run(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if last != 23 {
		t.Errorf("progress ended at %d", last)
	}
	for i, r := range res {
		if r.Index != i {
			t.Fatalf("result %d holds item %d", i, r.Index)
		}
		if bad := i%7 == 3; bad != !r.OK() {
			t.Errorf("item %d: error %q", i, r.Err)
		} else if !bad {
			g := float64(uint8(i*10))/127.5 - 1
			if math.Abs(float64(r.Raw[0])-g) > 1e-5 || r.Raw[1] != float32(i) || r.Z[1] != float64(i) {
				t.Errorf("item %d: %v", i, r.Raw)
			}
		} else if !strings.Contains(r.Err, filepath.Base(items[i].Path)) {
			t.Errorf("error %q does not name the file", r.Err)
		}
	}
	if m.calls != 5 { // 20 good items in batches of 4
		t.Errorf("%d model calls, want 5", m.calls)
	}
	s.Strict = true
	if _, err := s.Run(context.Background(), items); err == nil || !strings.Contains(err.Error(), "imgd.png") {
		t.Errorf("strict: %v", err)
	}
	// A panicking model marks its batch, the rest is scored.
	s.Strict = false
	items[0].Prompt = "boom"
	res, err = s.Run(context.Background(), items)
	if err != nil || res[0].OK() || res[1].OK() || !res[5].OK() || !strings.Contains(res[0].Err, "panic") {
		t.Errorf("panic: %v %q %q", err, res[0].Err, res[5].Err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, items); err == nil {
		t.Error("a cancelled run returned no error")
	}
}

func TestTotalsAndWriters(t *testing.T) {
	rows := []Result{
		{Item: Item{Index: 0, Path: "a.png", Prompt: "p"}, Raw: []float32{1, 2}, Z: []float64{1, 2}},
		{Item: Item{Index: 1, Path: "b.png", Prompt: "p"}, Raw: []float32{2, 1}, Z: []float64{2, 1}},
		{Item: Item{Index: 2, Path: "c,\"d\".png", Prompt: "q"}, Err: "c.png: broken"},
		{Item: Item{Index: 3, Path: "e.png", Prompt: "p"}, Raw: []float32{0, 0}, Z: []float64{0, 0}},
	}
	w := []float64{1, 2}
	tot, err := Totals(rows, w, rewards.CombineLinear, 0)
	if err != nil || tot[0] != 5 || tot[1] != 4 || !math.IsNaN(tot[2]) || tot[3] != 0 {
		t.Errorf("linear: %v %v", tot, err)
	}
	tot, _ = Totals(rows, w, rewards.CombinePareto, 0)
	if tot[0] != 0 || tot[1] != 0 || tot[3] != -1 {
		t.Errorf("pareto: %v", tot)
	}
	tot, _ = Totals(rows, w, rewards.CombineLogSigmoid, 1)
	if !(tot[0] < 0 && tot[3] < tot[0]) {
		t.Errorf("lsc: %v", tot)
	}
	if _, err := Totals(rows, w, "max", 0); err == nil {
		t.Error("unknown combiner accepted")
	}
	tot, _ = Totals(rows, w, rewards.CombineLinear, 0)
	tb := &Table{Dims: []string{"vq", "ta"}, Rows: rows, Total: tot}
	var b bytes.Buffer
	if err := tb.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "index,path,prompt,vq,vq_z,ta,ta_z,total,error\n0,a.png,p,1,1,2,2,5,\n1,b.png,p,2,2,1,1,4,\n" +
		"2,\"c,\"\"d\"\".png\",q,,,,,,c.png: broken\n3,e.png,p,0,0,0,0,0,\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	tb.WriteJSONL(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[0] != `{"index":0,"path":"a.png","prompt":"p","vq":1,"vq_z":1,"ta":2,"ta_z":2,"total":5,"error":null}` {
		t.Errorf("jsonl: %s", lines[0])
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &r); err != nil || r["vq"] != nil || r["error"] != "c.png: broken" {
		t.Errorf("jsonl error row: %s", lines[2])
	}
	b.Reset()
	tb.WriteTable(&b)
	if !strings.Contains(b.String(), "+5.000") || !strings.Contains(b.String(), "c.png: broken") {
		t.Errorf("table:\n%s", b.String())
	}
}

// Summarize averages the scored rows only: here rows 0 and 2 (row 1 failed).
func TestSummarize(t *testing.T) {
	tb := &Table{Dims: []string{"vq", "ta"}, Rows: []Result{
		{Raw: []float32{1, -2}, Z: []float64{0.5, -1}},
		{Err: "unreadable"},
		{Raw: []float32{3, 0}, Z: []float64{-0.5, 2}},
	}, Total: []float64{-0.5, math.NaN(), 1.5}}
	s := tb.Summarize()
	if s.N != 2 || !slices.Equal(s.RawMean, []float64{2, -1}) || !slices.Equal(s.ZMean, []float64{0, 0.5}) || s.Total != 0.5 {
		t.Errorf("summary %+v, want n 2, raw [2 -1], z [0 0.5], total 0.5", s)
	}
	if got, want := s.Line(tb.Dims, "images"), "mean of 2 scored images: vq 2 (z +0.000), ta -1 (z +0.500); total +0.500"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	// A mean of -1e-17 (rounding of a calibrated set's z-scores) prints as +0.000.
	s.ZMean[0] = -1e-17
	if got := s.Line(tb.Dims, "images"); strings.Contains(got, "-0.000") {
		t.Errorf("line %q prints a negative zero", got)
	}
	if e := (&Table{Dims: []string{"vq"}, Rows: []Result{{Err: "x"}}, Total: []float64{math.NaN()}}).Summarize(); e.N != 0 || !math.IsNaN(e.ZMean[0]) {
		t.Errorf("no scored row: %+v, want n 0 and NaN means", e)
	}
}

// ReduceWindows by hand: clip 0's windows (raw vq, ta) (1, 4) and (3, 2) give the mean (2, 3),
// min (1, 2), max (3, 4) and z alike; an unreadable clip and one that failed after a window
// are their errors; a clip of one window is itself.
func TestReduceWindows(t *testing.T) {
	row := func(index int, start float64, vq, ta float32, err string) Result {
		r := Result{Item: Item{Index: index}, Start: start, Err: err}
		if err == "" {
			r.Raw, r.Z = []float32{vq, ta}, []float64{float64(vq) - 1, 2 * float64(ta)}
		}
		return r
	}
	rows := []Result{row(0, 0, 1, 4, ""), row(0, 2, 3, 2, ""), row(1, 0, 0, 0, "unreadable"),
		row(2, 0, 5, 5, ""), row(2, 0, 0, 0, "broke at 2 s"), row(3, 0, 7, 8, "")}
	for how, want := range map[string]string{
		ReduceMean: "0:[2 3][1 6]x2 1:unreadable 2:broke at 2 s 3:[7 8][6 16]x1",
		ReduceMin:  "0:[1 2][0 4]x2 1:unreadable 2:broke at 2 s 3:[7 8][6 16]x1",
		ReduceMax:  "0:[3 4][2 8]x2 1:unreadable 2:broke at 2 s 3:[7 8][6 16]x1",
	} {
		out, err := ReduceWindows(slices.Clone(rows), how)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out {
			if r.OK() {
				got = append(got, fmt.Sprintf("%d:%v%vx%d", r.Index, r.Raw, r.Z, r.Windows))
			} else {
				got = append(got, fmt.Sprintf("%d:%s", r.Index, r.Err))
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: %s, want %s", how, strings.Join(got, " "), want)
		}
	}
	if _, err := ReduceWindows(rows, "median"); err == nil || !strings.Contains(err.Error(), `"median" (known: mean, min, max)`) {
		t.Errorf("median: %v", err)
	}
}

// ToCHW reads an opaque RGBA or NRGBA image (a sub-image: an offset and a longer stride) as
// it is, giving what compositing it over white gives; a translucent pixel is composited:
// (0, 0, 0) at alpha 51 over white is 255 - 51 = 204 per channel.
func TestToCHWOpaque(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nrgba := image.NewNRGBA(image.Rect(-2, 1, 7, 8))
	rgba := image.NewRGBA(image.Rect(-2, 1, 7, 8))
	for i := range nrgba.Pix {
		nrgba.Pix[i], rgba.Pix[i] = uint8(r.IntN(256)), uint8(r.IntN(256))
		if i%4 == 3 {
			nrgba.Pix[i], rgba.Pix[i] = 255, 255
		}
	}
	type generic struct{ image.Image } // not an RGBA or NRGBA: composited
	for _, m := range []interface {
		image.Image
		SubImage(image.Rectangle) image.Image
	}{nrgba, rgba} {
		sub := m.SubImage(image.Rect(0, 2, 5, 5))
		got, H, W := ToCHW(sub)
		want, _, _ := ToCHW(generic{sub})
		if H != 3 || W != 5 || !slices.Equal(got, want) {
			t.Errorf("%T: %dx%d, differs from the composited image", m, W, H)
		}
	}
	nrgba.Pix[nrgba.PixOffset(0, 2)+3] = 51
	nrgba.Pix[nrgba.PixOffset(0, 2)], nrgba.Pix[nrgba.PixOffset(0, 2)+1], nrgba.Pix[nrgba.PixOffset(0, 2)+2] = 0, 0, 0
	got, _, _ := ToCHW(nrgba.SubImage(image.Rect(0, 2, 5, 5)))
	if want := float32(204)/127.5 - 1; got[0] != want || got[15] != want || got[30] != want {
		t.Errorf("a translucent black pixel: %v %v %v, want %v", got[0], got[15], got[30], want)
	}
}
