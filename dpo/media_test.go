// Tests of reading samples: PNG compositing, cropping and resizing to the model's size,
// clips from GIFs and frame directories, grey models, and every missing or unreadable file
// reported with the data line that names it, before training.
//
// Test: go test ./dpo -run 'Media|Load'

package dpo

import (
	"errors"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/testvideo"
)

// writePNG writes a w x h image filled by f.
func writePNG(t testing.TB, path string, w, h int, f func(x, y int) color.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, f(x, y))
		}
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(fh, img); err != nil {
		t.Fatal(err)
	}
	fh.Close()
}

func solid(c color.NRGBA) func(x, y int) color.NRGBA { return func(int, int) color.NRGBA { return c } }

func imageConfig(size, C int) *diffusion.ModelConfig {
	return &diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: size, Channels: C, Frames: 1}
}

func TestLoadSampleImage(t *testing.T) {
	dir := t.TempDir()
	// 6x4: the centre 4x4 is kept; left column red, the rest transparent (white).
	p := filepath.Join(dir, "a.png")
	writePNG(t, p, 6, 4, func(x, y int) color.NRGBA {
		if x == 1 {
			return color.NRGBA{255, 0, 0, 255}
		}
		return color.NRGBA{0, 0, 255, 0}
	})
	got, err := LoadSample(p, imageConfig(4, 3))
	if err != nil {
		t.Fatal(err)
	}
	// (C,H,W): R plane all 255; G and B planes 0 in column 0 (x=1 of the source), 255 elsewhere.
	for c := range 3 {
		for y := range 4 {
			for x := range 4 {
				want := uint8(255)
				if c > 0 && x == 0 {
					want = 0
				}
				if v := got[(c*4+y)*4+x]; v != want {
					t.Fatalf("channel %d (%d,%d) = %d, want %d", c, x, y, v, want)
				}
			}
		}
	}
	// Resized to 2x2 (box filter) and grey.
	// The left half averages red and white, (255, 128, 128): grey about 170.
	g, err := LoadSample(p, imageConfig(2, 1))
	if err != nil || len(g) != 4 {
		t.Fatalf("grey 2x2: %v %v", g, err)
	}
	if g[0] < 165 || g[0] > 175 || g[1] != 255 || g[2] != g[0] || g[3] != 255 {
		t.Errorf("grey 2x2 %v, want about [170 255 170 255]", g)
	}
}

func TestLoadSampleClips(t *testing.T) {
	dir := t.TempDir()
	cfg := &diffusion.ModelConfig{Kind: diffusion.KindVideo, ImageSize: 2, Channels: 3, Frames: 2}
	// A GIF of 4 frames whose grey level is 0, 80, 160, 240: frames 0 and 2 are taken.
	g := &gif.GIF{Config: image.Config{Width: 2, Height: 2}}
	for k := range 4 {
		fr := image.NewPaletted(image.Rect(0, 0, 2, 2), palette.WebSafe)
		for i := range fr.Pix {
			fr.Pix[i] = uint8(fr.Palette.Index(color.Gray{uint8(80 * k)}))
		}
		g.Image = append(g.Image, fr)
		g.Delay = append(g.Delay, 5)
	}
	gp := filepath.Join(dir, "c.gif")
	fh, _ := os.Create(gp)
	if err := gif.EncodeAll(fh, g); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	gifSample, err := LoadSample(gp, cfg)
	got := gifSample
	if err != nil || len(got) != 2*3*4 {
		t.Fatalf("gif: %v, %d bytes", err, len(got))
	}
	if got[0] != 0 || got[12] < 140 || got[12] > 180 {
		t.Errorf("frames taken: first %d, second %d (want 0 and about 160)", got[0], got[12])
	}
	// A directory of PNG frames, in name order.
	fd := filepath.Join(dir, "frames")
	os.Mkdir(fd, 0o755)
	writePNG(t, filepath.Join(fd, "f1.png"), 2, 2, solid(color.NRGBA{10, 10, 10, 255}))
	writePNG(t, filepath.Join(fd, "f0.png"), 2, 2, solid(color.NRGBA{0, 0, 0, 255}))
	got, err = LoadSample(fd, cfg)
	if err != nil || got[0] != 0 || got[12] != 10 {
		t.Errorf("frame dir: %v %v", got, err)
	}
	// Too few frames, and an image for a video model.
	cfg.Frames = 3
	if _, err := LoadSample(fd, cfg); err == nil || !strings.Contains(err.Error(), "2 frames, the video model needs 3") {
		t.Errorf("short clip: %v", err)
	}
	writePNG(t, filepath.Join(dir, "i.png"), 2, 2, solid(color.NRGBA{0, 0, 0, 255}))
	if _, err := LoadSample(filepath.Join(dir, "i.png"), cfg); err == nil {
		t.Error("an image for a video model accepted")
	}
	// The same GIF as a video file (lossless; only the frames taken are decoded); last, as it
	// skips without ffmpeg.
	bin := testvideo.Require(t)
	mp4 := filepath.Join(dir, "c.mp4")
	testvideo.Encode(t, bin, gp, mp4)
	cfg.Frames = 2
	if v, err := LoadSample(mp4, cfg); err != nil || string(v) != string(gifSample) {
		t.Errorf("mp4: %v, %v; the GIF's %v", v, err, gifSample)
	}
	cfg.Frames = 5
	if _, err := LoadSample(mp4, cfg); err == nil || !strings.Contains(err.Error(), "c.mp4: 4 frames, the video model needs 5") {
		t.Errorf("mp4 too short: %v", err)
	}
}

func TestLoadStoreReportsEveryMissingFile(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "ok.png"), 4, 4, solid(color.NRGBA{1, 2, 3, 255}))
	os.WriteFile(filepath.Join(dir, "bad.png"), []byte("not a png"), 0o644)
	text := `{"prompt":"a","chosen":"ok.png","rejected":"missing1.png"}
{"prompt":"b","chosen":"ok.png","rejected":"bad.png"}
{"prompt":"c","chosen":"missing2.png","rejected":"ok.png"}
{"prompt":"d","chosen":"missing1.png","rejected":"ok.png"}
`
	path := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(path, []byte(text), 0o644)
	set, err := ReadPairs(path, PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = PairData(set, imageConfig(4, 3))
	var le LineErrors
	if !errors.As(err, &le) || len(le) != 3 {
		t.Fatalf("problems: %v", err)
	}
	for i, want := range []string{path + ":1: " + filepath.Join(dir, "missing1.png") + ": no such file", path + ":2: ", path + ":3: "} {
		if !strings.HasPrefix(le[i].Error(), want) {
			t.Errorf("problem %d: %q, want prefix %q", i, le[i].Error(), want)
		}
	}
	// The store holds each file once.
	set.Pairs = set.Pairs[:1]
	set.Pairs[0].Rejected = filepath.Join(dir, "ok.png")
	set.Pairs[0].Chosen = filepath.Join(dir, "ok.png")
	d, err := PairData(set, imageConfig(4, 3))
	if err != nil || len(d.Store.Paths) != 1 || d.Pairs[0].Chosen != 0 || d.Pairs[0].Rejected != 0 {
		t.Errorf("store: %v %+v", err, d)
	}
}
