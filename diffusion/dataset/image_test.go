// Tests of image preparation: every PNG kind in the fixture decodes (RGBA, 8-bit and 4-bit palette,
// gray+alpha), compositing over white, the 2x box downsample and the (C,H,W) layout.
//
// Run: go test ./diffusion/dataset -run 'Decode|Composite|Downsample|CHW'

package dataset

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// pngKind returns the bit depth and colour type from a PNG's IHDR chunk.
func pngKind(b []byte) (depth, colorType int) {
	return int(b[24]), int(b[25])
}

func TestDecodeFixtureKinds(t *testing.T) {
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[[2]int]int{}
	for _, set := range Sets {
		for name, b := range src.Images[set] {
			if binary.BigEndian.Uint32(b[16:20]) != 64 {
				t.Errorf("%s/%s: width %d", set, name, binary.BigEndian.Uint32(b[16:20]))
			}
			d, ct := pngKind(b)
			kinds[[2]int{d, ct}]++
			img, err := DecodePNG(b)
			if err != nil {
				t.Errorf("%s/%s (depth %d, colour type %d): %v", set, name, d, ct, err)
				continue
			}
			if img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
				t.Errorf("%s/%s: %v", set, name, img.Bounds())
			}
			// Every pixel that is fully transparent in the source is pure white once composited.
			comp := CompositeOnWhite(img)
			for y := 0; y < 64; y++ {
				for x := 0; x < 64; x++ {
					if _, _, _, a := img.At(x, y).RGBA(); a == 0 {
						if c := comp.RGBAAt(x, y); c != (color.RGBA{255, 255, 255, 255}) {
							t.Fatalf("%s/%s (%d,%d): transparent pixel became %v", set, name, x, y, c)
						}
					}
				}
			}
		}
	}
	for _, k := range [][2]int{{8, 6}, {8, 3}, {4, 3}, {8, 4}} {
		if kinds[k] == 0 {
			t.Errorf("the fixture has no PNG of bit depth %d and colour type %d (have %v)", k[0], k[1], kinds)
		}
	}
	if _, err := DecodePNG([]byte("\x89PNG\r\n\x1a\nbroken")); err == nil {
		t.Error("a broken PNG decoded")
	}
}

func TestCompositeOnWhite(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	src.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0})     // transparent red: white
	src.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 255})  // opaque: unchanged
	src.SetNRGBA(2, 0, color.NRGBA{0, 0, 0, 128})     // half black: mid gray
	src.SetNRGBA(3, 0, color.NRGBA{255, 255, 0, 255}) // opaque yellow
	got := CompositeOnWhite(src)
	want := []color.RGBA{{255, 255, 255, 255}, {10, 20, 30, 255}, {127, 127, 127, 255}, {255, 255, 0, 255}}
	for x, w := range want {
		c := got.RGBAAt(x, 0)
		if c.A != 255 || absDiff(c.R, w.R) > 1 || absDiff(c.G, w.G) > 1 || absDiff(c.B, w.B) > 1 {
			t.Errorf("pixel %d: %v, want %v", x, c, w)
		}
	}
	// A palette image whose transparent entry holds a colour.
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{0, 255, 0, 0}, color.NRGBA{0, 0, 255, 255}})
	pal.SetColorIndex(1, 0, 1)
	var buf bytes.Buffer
	if err := png.Encode(&buf, pal); err != nil {
		t.Fatal(err)
	}
	dec, err := DecodePNG(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	c := CompositeOnWhite(dec)
	if c.RGBAAt(0, 0) != (color.RGBA{255, 255, 255, 255}) || c.RGBAAt(1, 0) != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("palette composite %v %v", c.RGBAAt(0, 0), c.RGBAAt(1, 0))
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestDownsampleBox(t *testing.T) {
	// A one-pixel checkerboard averages to flat gray; 2x2 blocks keep their colour exactly.
	check := image.NewRGBA(image.Rect(0, 0, 64, 64))
	blocks := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			v := uint8(255 * ((x + y) % 2))
			check.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			b := color.RGBA{uint8(x / 2 * 8), uint8(y / 2 * 8), 77, 255}
			blocks.SetRGBA(x, y, b)
		}
	}
	d := Downsample(check, 32)
	if d.Bounds().Dx() != 32 || d.Bounds().Dy() != 32 {
		t.Fatalf("size %v", d.Bounds())
	}
	for i := 0; i < len(d.Pix); i += 4 {
		if v := d.Pix[i]; v < 127 || v > 128 {
			t.Fatalf("checkerboard pixel %d = %d, want 127 or 128", i/4, v)
		}
	}
	b := Downsample(blocks, 32)
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			if c := b.NRGBAAt(x, y); c != (color.NRGBA{uint8(x * 8), uint8(y * 8), 77, 255}) {
				t.Fatalf("block (%d,%d) = %v", x, y, c)
			}
		}
	}
}

func TestCHWRoundTrip(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	chw := make([]uint8, ImageBytes)
	PutCHW(chw, img)
	if chw[0] != img.Pix[0] || chw[1024] != img.Pix[1] || chw[2048] != img.Pix[2] || chw[33] != img.Pix[4*33] {
		t.Fatal("PutCHW layout is not (C,H,W)")
	}
	back := ImageFromCHW(chw, 32, 32)
	chw2 := make([]uint8, ImageBytes)
	PutCHW(chw2, back) // *image.RGBA path
	chw3 := make([]uint8, ImageBytes)
	PutCHW(chw3, back.SubImage(back.Bounds())) // still *image.RGBA
	gray := image.NewGray(image.Rect(0, 0, 32, 32))
	chw4 := make([]uint8, ImageBytes)
	PutCHW(chw4, gray) // generic path
	if !bytes.Equal(chw, chw2) || !bytes.Equal(chw, chw3) || chw4[5] != 0 {
		t.Error("CHW round trip differs")
	}
}

func BenchmarkPrepareImage(b *testing.B) {
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		b.Fatal(err)
	}
	p := src.Images[SetTwitter]["1f34e.png"]
	dst := make([]uint8, ImageBytes)
	for b.Loop() {
		if _, err := prepareImage(dst, p, true); err != nil {
			b.Fatal(err)
		}
	}
}
