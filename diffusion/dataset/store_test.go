// Tests of building, writing and loading a dataset from testdata/fixture: round trip, determinism,
// no concept on both sides of the split, clear errors on corrupted, truncated or newer files, the
// [-1, 1] conversion, previews, and a fuzz target for the index parser.
//
// Run: go test ./diffusion/dataset -run 'Build|Load|Corrupt|Index|Unit|Preview'
// Fuzz: go test ./diffusion/dataset -run '^$' -fuzz FuzzParseImageIndex -fuzztime 30s

package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/gif"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureClips = 39 // three of each motion

func buildFixture(t *testing.T, dir string, workers int) *Summary {
	t.Helper()
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	src.Packages = Packages
	s, err := Build(context.Background(), src, Options{OutputDir: dir, VideoClips: fixtureClips, Seed: 7, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := buildFixture(t, dir, 2)
	c := s.Counts
	// 9 concepts; 14 variants (waving hand +2 tones, call me hand +1, holding hands +2) x 2 sets.
	if c.Concepts != 9 || c.ConceptsHeldOut != 2 || c.Images != 28 || c.ImagesHeldOut != 6 || c.Clips != fixtureClips {
		t.Fatalf("counts %+v", c)
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 28 || len(d.Pixels) != 28*ImageBytes || d.Manifest.Counts != c {
		t.Fatalf("loaded %d items, %d bytes, counts %+v", d.Len(), len(d.Pixels), d.Manifest.Counts)
	}
	// Pixels are what prepareImage makes of each PNG; items are in the stable order.
	src, _ := SourcesFromDir(fixtureDir)
	want := make([]uint8, ImageBytes)
	for i, it := range d.Items {
		stem, set, _ := strings.Cut(it.ID, "/")
		if _, err := prepareImage(want, src.Images[set][stem+".png"], false); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Image(i), want) {
			t.Errorf("item %d (%s): pixels differ", i, it.ID)
		}
		if i%2 == 0 && (it.Set != SetTwitter || d.Items[i+1].Set != SetGoogle || d.Items[i+1].Caption != it.Caption) {
			t.Errorf("item %d: want Twemoji then Noto of the same variant", i)
		}
	}
	first := d.Items[0]
	if first.Caption != "waving hand sign" || first.ID != "1f44b/twitter" || d.Items[2].Caption != "waving hand sign: light skin tone" ||
		d.Items[2].Tone != "light skin tone" || d.Items[2].Concept != "1F44B" || d.Items[2].Unified != "1F44B-1F3FB" {
		t.Errorf("first items %+v %+v", first, d.Items[2])
	}
	// A corner pixel of the apple is white, and converts to 1.
	f := make([]float32, ImageBytes)
	d.ImageFloat32(f, 0)
	if f[0] != 1 || f[1024] != 1 || f[2048] != 1 {
		t.Errorf("corner pixel %v %v %v, want white = 1", f[0], f[1024], f[2048])
	}
	batch := make([]float32, 2*ImageBytes)
	d.BatchFloat32(batch, []int{3, 0})
	if !equalF32(batch[ImageBytes:], f) {
		t.Error("BatchFloat32 differs from ImageFloat32")
	}

	v, err := LoadVideo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != fixtureClips || len(v.Pixels) != fixtureClips*ClipBytes {
		t.Fatalf("%d clips, %d bytes", v.Len(), len(v.Pixels))
	}
	for _, cl := range v.Clips {
		it := d.Items[cl.Item]
		if it.Tone != "" || it.Concept != cl.Concept || it.Set != cl.Set || cl.Caption != VideoCaption(it.Name, cl.Motion) {
			t.Errorf("clip %d does not match item %d: %+v vs %+v", cl.Index, cl.Item, cl, it)
		}
	}
	cf := make([]float32, ClipBytes)
	v.ClipFloat32(cf, 1)
	for _, x := range cf {
		if x < -1 || x > 1 {
			t.Fatalf("clip value %v outside [-1, 1]", x)
		}
	}
	vb := make([]float32, 2*ClipBytes)
	v.BatchFloat32(vb, []int{0, 1})
	if !equalF32(vb[ClipBytes:], cf) {
		t.Error("video BatchFloat32 differs from ClipFloat32")
	}

	// The preview is an 8-frame GIF.
	pf, err := os.Open(filepath.Join(dir, PreviewFile))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	g, err := gif.DecodeAll(pf)
	if err != nil || len(g.Image) != Frames {
		t.Fatalf("preview: %v, %d frames", err, len(g.Image))
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBuildNoConceptLeak(t *testing.T) {
	dir := t.TempDir()
	buildFixture(t, dir, 1)
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVideo(dir)
	if err != nil {
		t.Fatal(err)
	}
	side := map[string]Split{}
	seen := map[Split]int{}
	check := func(concept string, s Split, what string) {
		if prev, ok := side[concept]; ok && prev != s {
			t.Errorf("%s: concept %s is on both sides", what, concept)
		}
		side[concept] = s
		seen[s]++
		if IsHeldOut(concept) != (s == SplitHeldOut) {
			t.Errorf("%s: concept %s in %s disagrees with IsHeldOut", what, concept, s)
		}
	}
	for _, it := range d.Items {
		check(it.Concept, it.Split, it.ID)
	}
	for _, c := range v.Clips {
		check(c.Concept, c.Split, c.Caption)
	}
	if seen[SplitTrain] == 0 || seen[SplitHeldOut] == 0 {
		t.Errorf("splits %v: want both sides used", seen)
	}
	if got, want := len(d.Indices(SplitTrain))+len(d.Indices(SplitHeldOut)), d.Len(); got != want {
		t.Errorf("Indices cover %d of %d", got, want)
	}
	if got := len(v.Indices(SplitTrain)) + len(v.Indices(SplitHeldOut)); got != v.Len() {
		t.Errorf("video Indices cover %d of %d", got, v.Len())
	}
}

func TestBuildDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	sa := buildFixture(t, a, 1)
	sb := buildFixture(t, b, 3)
	for _, pair := range [][2]*FileInfo{
		{sa.Files.Images, sb.Files.Images}, {sa.Files.ImageIndex, sb.Files.ImageIndex},
		{sa.Files.Videos, sb.Files.Videos}, {sa.Files.VideoIndex, sb.Files.VideoIndex}, {sa.Files.Preview, sb.Files.Preview},
	} {
		if pair[0].SHA256 != pair[1].SHA256 {
			t.Errorf("%s differs between 1 and 3 workers", pair[0].Name)
		}
	}
	ma, _ := os.ReadFile(filepath.Join(a, ManifestFile))
	mb, _ := os.ReadFile(filepath.Join(b, ManifestFile))
	if !bytes.Equal(ma, mb) {
		t.Error("manifests differ")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(a)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestBuildImagesOnly(t *testing.T) {
	dir := t.TempDir()
	buildFixture(t, dir, 2)
	src, _ := SourcesFromDir(fixtureDir)
	s, err := Build(context.Background(), src, Options{OutputDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s.Files.Videos != nil || s.Counts.Clips != 0 {
		t.Errorf("images-only build lists videos: %+v", s.Files)
	}
	if _, err := os.Stat(filepath.Join(dir, VideosFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale videos.u8 kept")
	}
	if _, err := LoadVideo(dir); err == nil || !strings.Contains(err.Error(), "no video") {
		t.Errorf("LoadVideo on an images-only set: %v", err)
	}
	if _, err := Load(dir); err != nil {
		t.Error(err)
	}
}

func TestBuildMissingImage(t *testing.T) {
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	delete(src.Images[SetGoogle], "1f951.png")
	_, err = Build(context.Background(), src, Options{OutputDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "img/google/64/1f951.png") {
		t.Errorf("want an error naming the missing PNG, got %v", err)
	}
}

func TestLoadCorruptFiles(t *testing.T) {
	base := t.TempDir()
	buildFixture(t, base, 2)
	copyDir := func(t *testing.T) string {
		dir := t.TempDir()
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(base, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	edit := func(t *testing.T, dir, name string, f func([]byte) []byte) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		file   string
		change func([]byte) []byte
		load   func(string) error
		want   []string
	}{
		{"truncated index", ImageIndexFile, func(b []byte) []byte { return b[:len(b)/2] }, loadImages, []string{ImageIndexFile, "bytes"}},
		{"corrupted index", ImageIndexFile, flipByte(100), loadImages, []string{ImageIndexFile, "corrupted"}},
		{"corrupted pixels", ImagesFile, flipByte(5000), loadImages, []string{ImagesFile, "corrupted"}},
		{"truncated pixels", ImagesFile, func(b []byte) []byte { return b[:len(b)-1] }, loadImages, []string{ImagesFile, "truncated"}},
		{"truncated video index", VideoIndexFile, func(b []byte) []byte { return b[:len(b)-10] }, loadVideos, []string{VideoIndexFile}},
		{"corrupted videos", VideosFile, flipByte(123), loadVideos, []string{VideosFile, "corrupted"}},
		{"newer format", ManifestFile, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1)
		}, loadImages, []string{ManifestFile, "version 2", "reads version 1"}},
		{"broken manifest", ManifestFile, func(b []byte) []byte { return b[:20] }, loadImages, []string{ManifestFile, "corrupted manifest"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t)
			edit(t, dir, c.file, c.change)
			err := c.load(dir)
			if err == nil {
				t.Fatal("loaded a damaged dataset")
			}
			for _, w := range append(c.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("no manifest", func(t *testing.T) {
		dir := copyDir(t)
		os.Remove(filepath.Join(dir, ManifestFile))
		if _, err := Load(dir); !errors.Is(err, ErrNoDataset) || !strings.Contains(err.Error(), "align data prepare") {
			t.Errorf("got %v", err)
		}
	})
}

func loadImages(dir string) error { _, err := Load(dir); return err }
func loadVideos(dir string) error { _, err := LoadVideo(dir); return err }

func flipByte(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		b[i] ^= 0x20
		return b
	}
}

func TestParseImageIndexErrors(t *testing.T) {
	good := `{"index":0,"id":"a/twitter","concept":"1F600","set":"twitter","caption":"grinning face","split":"train"}` + "\n"
	if items, err := ParseImageIndex("images.jsonl", []byte(good)); err != nil || len(items) != 1 {
		t.Fatalf("good line: %v", err)
	}
	for _, c := range []struct{ data, want string }{
		{good[:len(good)-1], "images.jsonl:1: truncated"},
		{good[:40] + "\n", "images.jsonl:1:"},
		{good + strings.Replace(good, `"index":0`, `"index":5`, 1), "images.jsonl:2: index 5, want 1"},
		{strings.Replace(good, "train", "test", 1), "images.jsonl:1: split \"test\""},
		{strings.Replace(good, "twitter\",\"caption", "apple\",\"caption", 1), "unknown set"},
		{strings.Replace(good, "grinning face", "", 1), "no caption"},
	} {
		_, err := ParseImageIndex("images.jsonl", []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseImageIndex(%q): %v, want %q", c.data, err, c.want)
		}
	}
	badMotion := `{"index":0,"motion":"spin","caption":"x","split":"train"}` + "\n"
	if _, err := ParseVideoIndex("videos.jsonl", []byte(badMotion)); err == nil || !strings.Contains(err.Error(), "videos.jsonl:1: clip 0: unknown motion") {
		t.Errorf("bad motion: %v", err)
	}
}

func FuzzParseImageIndex(f *testing.F) {
	items := []Item{
		{Index: 0, ID: "1f34e/twitter", Concept: "1F34E", Set: SetTwitter, Name: "red apple", Caption: "red apple", AltCaptions: []string{"fruit"}, Split: SplitTrain},
		{Index: 1, ID: "1f951/google", Concept: "1F951", Set: SetGoogle, Name: "avocado", Caption: "avocado", Split: SplitHeldOut},
	}
	var buf bytes.Buffer
	if err := writeJSONL(&buf, items); err != nil {
		f.Fatal(err)
	}
	fuzzIndex(f, "images.jsonl", ParseImageIndex, buf.Bytes())
}

func FuzzParseVideoIndex(f *testing.F) {
	clip := `{"index":0,"item":5516,"concept":"1F3E9","set":"twitter","name":"love hotel","motion":"move-left","caption":"a love hotel moving left","split":"train",` +
		`"params":{"size0":16.923,"size1":16.923,"x0":21.915,"y0":18.599,"x1":11.303,"y1":18.599,"angle0":0,"angle1":0}}` + "\n"
	bounce := strings.NewReplacer(`"index":0`, `"index":1`, "move-left", "bounce", `"angle1":0`, `"angle1":0,"bounce_height":6,"bounce_period":8`).Replace(clip)
	fuzzIndex(f, "videos.jsonl", ParseVideoIndex, []byte(clip+bounce))
}

// fuzzIndex fuzzes an index parser from a good file: an error names the file (and line), and
// what parses is written back and parses again to the same records.
func fuzzIndex[T any](f *testing.F, name string, parse func(string, []byte) ([]T, error), good []byte) {
	f.Add(good)
	f.Add([]byte("\n"))
	f.Add([]byte(`{"index":0}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parse(name, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := writeJSONL(&out, got); err != nil {
			t.Fatal(err)
		}
		again, err := parse(name, out.Bytes())
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-parse: %v (%d vs %d records)", err, len(again), len(got))
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the records:\n%s\n%s", a, b)
		}
	})
}

func TestUnitConversion(t *testing.T) {
	src := make([]uint8, 256)
	for i := range src {
		src[i] = uint8(i)
	}
	f := make([]float32, 256)
	ToUnit(f, src)
	if f[0] != -1 || f[255] != 1 {
		t.Errorf("ends %v %v, want -1 and 1", f[0], f[255])
	}
	for i := 1; i < 256; i++ {
		if f[i] <= f[i-1] {
			t.Fatalf("not increasing at %d", i)
		}
	}
	back := make([]uint8, 256)
	FromUnit(back, f)
	if !bytes.Equal(back, src) {
		t.Error("FromUnit(ToUnit(x)) != x")
	}
	FromUnit(back[:3], []float32{-3, 7, float32(nanValue())})
	if back[0] != 0 || back[1] != 255 || back[2] != 0 {
		t.Errorf("clamping gave %v", back[:3])
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestContactSheetAndPreview(t *testing.T) {
	img := make([]uint8, ImageBytes)
	for i := range img {
		img[i] = 255
	}
	img[0] = 0 // top-left pixel red channel off: cyan
	sheet := ContactSheet([][]uint8{img, img, img}, ImageSize, 2, 3)
	if b := sheet.Bounds(); b.Dx() != 2*(32*3+1)+1 || b.Dy() != 2*(32*3+1)+1 {
		t.Errorf("sheet %v", b)
	}
	if c := sheet.RGBAAt(1, 1); c.R != 0 || c.G != 255 {
		t.Errorf("scaled pixel %v", c)
	}
	clip := make([]uint8, ClipBytes)
	for i := range clip {
		clip[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := WritePreviewGIF(&buf, [][]uint8{clip, clip}, Frames, ImageSize, 2, 1, 10); err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(&buf)
	if err != nil || len(g.Image) != Frames || g.Delay[0] != 10 {
		t.Fatalf("gif: %v", err)
	}
	if err := WritePreviewGIF(&buf, nil, Frames, ImageSize, 2, 1, 10); err == nil {
		t.Error("empty preview: want an error")
	}
}
