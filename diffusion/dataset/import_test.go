// Tests of Import and FitImage: the resize rules on hand-computed pixels, an import's items,
// split and pixels read back by Load and LoadVideo, errors naming the input, skipped inputs,
// the same files on any number of workers.
//
// Run: go test ./diffusion/dataset -run 'Import|FitImage'

package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// columns returns a w x h image whose column x has colour cols[x].
func columns(h int, cols ...color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, len(cols), h))
	for y := range h {
		for x, c := range cols {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestFitImage(t *testing.T) {
	c0 := color.NRGBA{200, 0, 0, 255}
	c1 := color.NRGBA{100, 40, 0, 255}
	c2 := color.NRGBA{0, 80, 20, 255}
	c3 := color.NRGBA{0, 0, 60, 255}
	clear := color.NRGBA{0, 0, 0, 0} // transparent black: white once composited
	white := color.NRGBA{255, 255, 255, 255}
	src := columns(2, c0, c1, c2, c3) // 4 wide, 2 high
	for _, tc := range []struct {
		resize string
		src    image.Image
		want   [][]color.NRGBA // rows of the 2x2 result
	}{
		// The shorter side is already 2: the centre columns 1 and 2 are kept as they are.
		{ResizeCrop, src, [][]color.NRGBA{{c1, c2}, {c1, c2}}},
		// Halved to 2x1 (each output the mean of two columns) and pasted at imaging's centre,
		// row 2/2 - 1/2 = 1 in integers: the row above is white.
		{ResizePad, src, [][]color.NRGBA{{white, white}, {{150, 20, 0, 255}, {0, 40, 40, 255}}}},
		// Both rows of the halved columns.
		{ResizeStretch, src, [][]color.NRGBA{{{150, 20, 0, 255}, {0, 40, 40, 255}}, {{150, 20, 0, 255}, {0, 40, 40, 255}}}},
		// Transparent pixels become white before anything is averaged.
		{ResizeCrop, columns(2, clear, c1, clear, clear), [][]color.NRGBA{{c1, white}, {c1, white}}},
	} {
		got, err := FitImage(tc.src, 2, tc.resize)
		if err != nil {
			t.Fatal(err)
		}
		if got.Bounds() != image.Rect(0, 0, 2, 2) {
			t.Fatalf("%s: bounds %v", tc.resize, got.Bounds())
		}
		for y, row := range tc.want {
			for x, w := range row {
				if g := got.NRGBAAt(x, y); g != w {
					t.Errorf("%s: pixel (%d,%d) = %v, want %v", tc.resize, x, y, g, w)
				}
			}
		}
	}
	if _, err := FitImage(src, 2, "squash"); err == nil || !strings.Contains(err.Error(), "crop, pad, stretch") {
		t.Errorf("unknown resize: %v", err)
	}
}

// heldOutCaption finds a caption whose concept IsHeldOut holds out (searched, so the test does
// not depend on a hash value written by hand).
func heldOutCaption(t *testing.T) string {
	for i := range 1000 {
		if c := fmt.Sprintf("held out thing %d", i); IsHeldOut(ConceptOf(c)) {
			return c
		}
	}
	t.Fatal("no held-out caption among 1000")
	return ""
}

// solid is an image of one colour of the given size.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// fakeDecoder decodes an input's path to the images registered for it, each through fit,
// with the clip starts registered for it, or fails with its error.
type fakeDecoder struct {
	imgs   map[string][]image.Image
	starts map[string][]float64
	errs   map[string]error
}

func (f fakeDecoder) decoder(inputs []ImportInput) func(i int, fit func(image.Image) (image.Image, error)) (*Decoded, error) {
	return func(i int, fit func(image.Image) (image.Image, error)) (*Decoded, error) {
		path := inputs[i].Path
		if err := f.errs[path]; err != nil {
			return nil, err
		}
		imgs, ok := f.imgs[path]
		if !ok {
			return nil, errors.New("no such input")
		}
		d := &Decoded{Starts: f.starts[path]}
		for _, img := range imgs {
			g, err := fit(img)
			if err != nil {
				return nil, err
			}
			d.Frames = append(d.Frames, g)
		}
		return d, nil
	}
}

func TestImportImages(t *testing.T) {
	held := heldOutCaption(t)
	dec := fakeDecoder{imgs: map[string][]image.Image{
		"a.png": {solid(64, 48, color.NRGBA{255, 0, 0, 255})},
		"b.png": {columns(1, color.NRGBA{0, 0, 255, 255}, color.NRGBA{0, 255, 0, 255})},
		"c.png": {solid(10, 10, color.NRGBA{0, 0, 0, 0})},
		"d.png": {solid(40, 40, color.NRGBA{9, 9, 9, 255})},
	}, errs: map[string]error{"bad.png": errors.New("bad.png: unexpected EOF")}}
	inputs := []ImportInput{
		{Path: "a.png", Caption: "A  Red\tSquare", Group: "shapes"},
		{Path: "bad.png", Caption: "broken"},
		{Path: "b.png", Caption: "blue and green", Concept: "Stripes"},
		{Path: "c.png", Caption: held},
		{Path: "d.png", Caption: "a red square"}, // the same concept as a.png
	}
	dir := t.TempDir()
	// A dataset with clips was there before: an image import leaves none of its video files.
	for _, name := range []string{VideosFile, VideoIndexFile, PreviewFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := ImportOptions{OutputDir: dir, Decode: dec.decoder(inputs), Resize: ResizePad, Info: ImportInfo{Inputs: []string{"in/"}}}
	if _, err := Import(context.Background(), inputs, o); err == nil || err.Error() != "bad.png: unexpected EOF" {
		t.Fatalf("unreadable input: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed import wrote a manifest: %v", err)
	}
	o.SkipErrors = true
	var calls int
	o.Progress = func(int) { calls++ }
	o.Workers = 1 // Progress counts without a lock
	s, err := Import(context.Background(), inputs, o)
	if err != nil {
		t.Fatal(err)
	}
	if calls != len(inputs) {
		t.Errorf("progress called %d times, want %d", calls, len(inputs))
	}
	if len(s.Skipped) != 1 || s.Skipped[0] != (ImportSkip{Path: "bad.png", Error: "bad.png: unexpected EOF"}) {
		t.Errorf("skipped %+v", s.Skipped)
	}
	want := Counts{Concepts: 3, ConceptsHeldOut: 1, Images: 4, ImagesTrain: 3, ImagesHeldOut: 1}
	if s.Counts != want || s.Captions != 4 || s.DatasetVersion != ImportDatasetVersion {
		t.Errorf("summary %+v", s)
	}
	for _, name := range []string{VideosFile, VideoIndexFile, PreviewFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left from the dataset before: %v", name, err)
		}
	}

	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Manifest.Counts != want || d.Manifest.Import == nil || d.Manifest.Import.Resize != ResizePad ||
		d.Manifest.Import.Skipped != 1 || d.Manifest.Import.Inputs[0] != "in/" {
		t.Errorf("manifest %+v, import %+v", d.Manifest.Counts, d.Manifest.Import)
	}
	wantItems := []Item{
		{Index: 0, ID: "a.png", Concept: "a red square", Unified: "a red square", Set: SetImport, Name: "A Red Square",
			Caption: "A Red Square", Category: "shapes", Subcategory: "shapes", Split: SplitTrain},
		{Index: 1, ID: "b.png", Concept: "stripes", Unified: "stripes", Set: SetImport, Name: "blue and green",
			Caption: "blue and green", Category: "stripes", Subcategory: "stripes", Split: SplitTrain},
		{Index: 2, ID: "c.png", Concept: held, Unified: held, Set: SetImport, Name: held,
			Caption: held, Category: held, Subcategory: held, Split: SplitHeldOut},
		{Index: 3, ID: "d.png", Concept: "a red square", Unified: "a red square", Set: SetImport, Name: "a red square",
			Caption: "a red square", Category: "a red square", Subcategory: "a red square", Split: SplitTrain},
	}
	for i, w := range wantItems {
		g := d.Items[i]
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("item %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	// Pixels: a.png red everywhere (64x48 padded: its 32x24 fills the middle, white bands above
	// and below), b.png blue | green halves over a white band, c.png white.
	px := func(i, x, y int) [3]uint8 {
		im := d.Image(i)
		o := y*ImageSize + x
		return [3]uint8{im[o], im[ImageSize*ImageSize+o], im[2*ImageSize*ImageSize+o]}
	}
	for _, tc := range []struct {
		i, x, y int
		want    [3]uint8
	}{
		{0, 0, 0, [3]uint8{255, 255, 255}}, {0, 5, 3, [3]uint8{255, 255, 255}}, {0, 5, 4, [3]uint8{255, 0, 0}},
		{0, 31, 27, [3]uint8{255, 0, 0}}, {0, 31, 28, [3]uint8{255, 255, 255}},
		{1, 0, 8, [3]uint8{0, 0, 255}}, {1, 31, 8, [3]uint8{0, 255, 0}}, {1, 0, 0, [3]uint8{255, 255, 255}},
		{2, 16, 16, [3]uint8{255, 255, 255}}, {3, 16, 16, [3]uint8{9, 9, 9}},
	} {
		if got := px(tc.i, tc.x, tc.y); got != tc.want {
			t.Errorf("image %d pixel (%d,%d) = %v, want %v", tc.i, tc.x, tc.y, got, tc.want)
		}
	}
	if _, err := LoadVideo(dir); err == nil || !strings.Contains(err.Error(), "no video clips") {
		t.Errorf("LoadVideo of an image import: %v", err)
	}

	// The same files on 3 workers.
	dir3 := t.TempDir()
	o.OutputDir, o.Workers, o.Progress = dir3, 3, nil
	if _, err := Import(context.Background(), inputs, o); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ManifestFile, ImagesFile, ImageIndexFile} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(dir3, name))
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s differs between 1 and 3 workers", name)
		}
	}
}

func TestImportClips(t *testing.T) {
	frames := func(n int) []image.Image {
		out := make([]image.Image, n)
		for k := range out {
			out[k] = solid(48, 48, color.NRGBA{uint8(30 * k), 100, 200, 255})
		}
		return out
	}
	// long.mp4: two windows, of frames 8 to 15 and 16 to 23, the second from 2.5 s.
	dec := fakeDecoder{imgs: map[string][]image.Image{"a.mp4": frames(Frames), "short.gif": frames(3), "long.mp4": frames(3 * Frames)[Frames:]},
		starts: map[string][]float64{"a.mp4": {0}, "short.gif": {0}, "long.mp4": {0, 2.5}}}
	dir := t.TempDir()
	o := ImportOptions{OutputDir: dir, Video: true, Info: ImportInfo{Inputs: []string{"clips/"}, FPS: 8}}
	run := func(in ...ImportInput) (*ImportSummary, error) {
		o.Decode = dec.decoder(in)
		return Import(context.Background(), in, o)
	}
	if _, err := run(ImportInput{Path: "short.gif", Caption: "x"}); err == nil || err.Error() != "short.gif: 3 frames decoded for 1 clip(s), want 8 per clip" {
		t.Fatalf("a clip of 3 frames: %v", err)
	}
	if _, err := run(ImportInput{Path: "a.mp4", Caption: " "}); err == nil || err.Error() != "a.mp4: no caption" {
		t.Fatalf("no caption: %v", err)
	}
	s, err := run(ImportInput{Path: "a.mp4", Caption: "a wave rolling in"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Concepts: 1, Clips: 1, ClipsTrain: 1}); s.Counts != want {
		t.Errorf("counts %+v", s.Counts)
	}
	v, err := LoadVideo(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := v.Clips[0]
	if c.Item != -1 || c.Motion != "" || c.Set != SetImport || c.Caption != "a wave rolling in" || c.Concept != "a wave rolling in" ||
		c.Subcategory != "a wave rolling in" {
		t.Errorf("clip %+v", c)
	}
	if v.Manifest.Import.FPS != 8 || v.Manifest.Files.Preview == nil {
		t.Errorf("manifest import %+v, preview %v", v.Manifest.Import, v.Manifest.Files.Preview)
	}
	for k := range Frames {
		o := k*ImageBytes + 5*ImageSize + 7 // frame k, red plane, pixel (7,5)
		if got := v.Clip(0)[o]; got != uint8(30*k) {
			t.Errorf("frame %d red = %d, want %d", k, got, 30*k)
		}
	}
	d, err := Load(dir)
	if err != nil || d.Len() != 0 {
		t.Errorf("the images of a clip import: %v, %v", d, err)
	}

	// The windows of a long video are clips of one caption, each with its start.
	o.OutputDir = t.TempDir()
	s, err = run(ImportInput{Path: "a.mp4", Caption: "a wave"}, ImportInput{Path: "long.mp4", Caption: "surf", Group: "sea"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Concepts: 2, Clips: 3, ClipsTrain: 3}); s.Counts != want || s.Inputs != 2 {
		t.Errorf("windows: counts %+v, %d inputs", s.Counts, s.Inputs)
	}
	if v, err = LoadVideo(o.OutputDir); err != nil {
		t.Fatal(err)
	}
	for i, want := range []Clip{
		{Index: 0, Caption: "a wave", Subcategory: "a wave", Source: "a.mp4"},
		{Index: 1, Caption: "surf", Subcategory: "sea", Source: "long.mp4"},
		{Index: 2, Caption: "surf", Subcategory: "sea", Source: "long.mp4", Start: 2.5},
	} {
		c := v.Clips[i]
		if c.Index != want.Index || c.Caption != want.Caption || c.Subcategory != want.Subcategory || c.Source != want.Source || c.Start != want.Start {
			t.Errorf("clip %d: %+v", i, c)
		}
	}
	for clip, first := range []int{0, Frames, 2 * Frames} { // frame 0's red level of each clip
		if got, want := v.Clip(clip)[5*ImageSize+7], uint8(30*first); got != want {
			t.Errorf("clip %d starts with red %d, want %d", clip, got, want)
		}
	}
}

func TestParseVideoIndexMotion(t *testing.T) {
	// Clips without a motion are imported ones only.
	for _, tc := range []struct {
		set string
		ok  bool
	}{{SetImport, true}, {SetTwitter, false}} {
		line := fmt.Sprintf(`{"index":0,"item":-1,"concept":"c","set":%q,"name":"n","motion":"","caption":"a c","split":"train"}`+"\n", tc.set)
		_, err := ParseVideoIndex("videos.jsonl", []byte(line))
		if (err == nil) != tc.ok {
			t.Errorf("set %s, no motion: %v", tc.set, err)
		}
	}
}

// The held-out share of an import: half of 40 concepts by HeldOutAt's hash at 5000/10000,
// recorded in the manifest; none at a negative share.
func TestImportHeldOutShare(t *testing.T) {
	var inputs []ImportInput
	imgs := map[string][]image.Image{}
	for i := range 40 {
		path := fmt.Sprintf("%d.png", i)
		inputs = append(inputs, ImportInput{Path: path, Caption: fmt.Sprintf("thing %d", i)})
		imgs[path] = []image.Image{solid(8, 8, color.NRGBA{uint8(i), 0, 0, 255})}
	}
	for _, c := range []struct{ perMyriad, want int }{{5000, -1}, {-1, 0}} {
		dir := t.TempDir()
		s, err := Import(context.Background(), inputs, ImportOptions{OutputDir: dir, Decode: fakeDecoder{imgs: imgs}.decoder(inputs), HeldOutPerMyriad: c.perMyriad})
		if err != nil {
			t.Fatal(err)
		}
		want := c.want
		if want < 0 {
			want = 0
			for _, in := range inputs {
				if HeldOutAt(ConceptOf(in.Caption), c.perMyriad) {
					want++
				}
			}
			if want < 12 || want > 28 {
				t.Fatalf("%d of 40 concepts held out at %d/10000 by the hash", want, c.perMyriad)
			}
		}
		m, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantShare := max(c.perMyriad, 0)
		if s.Counts.ConceptsHeldOut != want || m.HeldOut.PerMyriad != wantShare || m.HeldOut.Rule != HeldOutRule(wantShare) {
			t.Errorf("share %d: %d held out (want %d), manifest %+v", c.perMyriad, s.Counts.ConceptsHeldOut, want, m.HeldOut)
		}
	}
}

// An image equal to an earlier one at the dataset's size (the same red at another size) is
// left out, named with the one it repeats, unless KeepDuplicates; so are the windows of a
// clip that repeat its first.
func TestImportDuplicates(t *testing.T) {
	red := color.NRGBA{255, 0, 0, 255}
	imgs := map[string][]image.Image{"a.png": {solid(64, 48, red)}, "b.png": {solid(20, 20, color.NRGBA{0, 0, 255, 255})}, "copy.png": {solid(10, 10, red)}}
	inputs := []ImportInput{{Path: "a.png", Caption: "red"}, {Path: "b.png", Caption: "blue"}, {Path: "copy.png", Caption: "scarlet"}}
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		s, err := Import(context.Background(), inputs, ImportOptions{OutputDir: dir, Decode: fakeDecoder{imgs: imgs}.decoder(inputs), KeepDuplicates: keep})
		if err != nil {
			t.Fatal(err)
		}
		d, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		want, dups := 2, "[{Path:copy.png Start:0 Of:a.png OfStart:0}]"
		if keep {
			want, dups = 3, "[]"
		}
		if d.Len() != want || fmt.Sprintf("%+v", s.Duplicates) != dups || s.Captions != want || s.Inputs != want || d.Manifest.Import.Duplicates != len(s.Duplicates) {
			t.Errorf("keep %v: %d images, duplicates %+v, %d captions, manifest %+v", keep, d.Len(), s.Duplicates, s.Captions, d.Manifest.Import)
		}
	}

	// A still clip of three windows: the second and third repeat the first.
	still := make([]image.Image, 3*Frames)
	for k := range still {
		still[k] = solid(16, 16, red)
	}
	clipIn := []ImportInput{{Path: "still.mp4", Caption: "nothing happens"}}
	dec := fakeDecoder{imgs: map[string][]image.Image{"still.mp4": still}, starts: map[string][]float64{"still.mp4": {0, 1, 2}}}
	s, err := Import(context.Background(), clipIn, ImportOptions{OutputDir: t.TempDir(), Video: true, Decode: dec.decoder(clipIn)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Counts.Clips != 1 || fmt.Sprintf("%+v", s.Duplicates) != "[{Path:still.mp4 Start:1 Of:still.mp4 OfStart:0} {Path:still.mp4 Start:2 Of:still.mp4 OfStart:0}]" {
		t.Errorf("still clip: %d clips, duplicates %+v", s.Counts.Clips, s.Duplicates)
	}
}

// An import at another size: Load reads its size from the manifest; sizes outside
// [MinImageSize, MaxImageSize] are refused, by Import and by Load.
func TestImportSize(t *testing.T) {
	dec := fakeDecoder{imgs: map[string][]image.Image{"a.png": {columns(4, color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 255})}}}
	in := []ImportInput{{Path: "a.png", Caption: "red and blue"}}
	dir := t.TempDir()
	o := ImportOptions{OutputDir: dir, Size: 8, Resize: ResizeStretch, Decode: dec.decoder(in)}
	if _, err := Import(context.Background(), in, o); err != nil {
		t.Fatal(err)
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Red in the left half, blue in the right, of an 8x8 image.
	if im := d.Image(0); d.Size() != 8 || d.ImageLen() != 192 || len(im) != 192 || im[0] != 255 || im[7] != 0 || im[2*64+7] != 255 {
		t.Fatalf("size %d, %d bytes", d.Size(), len(d.Pixels))
	}
	for _, size := range []int{MinImageSize - 1, MaxImageSize + 1} {
		o.Size = size
		if _, err := Import(context.Background(), in, o); err == nil || !strings.Contains(err.Error(), "outside [8, 256]") {
			t.Errorf("size %d: %v", size, err)
		}
	}
	// A manifest of 4 px images is refused naming the file and the bounds.
	b, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	b = bytes.Replace(b, []byte(`"image_size": 8`), []byte(`"image_size": 4`), 1)
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "manifest.json: images of 3x4x4") {
		t.Errorf("4 px manifest: %v", err)
	}
}
