// Image and video output: samples in [-1, 1] to images, grids, PNG and animated GIF files,
// each written atomically (a temporary file in the same directory, synced, then renamed),
// so a failed write never leaves a partial file under the final name.
//
// Test: go test ./diffusion -run 'Image|GIF|Grid'

package diffusion

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"sort"

	"github.com/disintegration/imaging"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// unitToByte maps x in [-1, 1] to round((x+1)*127.5), clamped to [0, 255] (NaN -> 0).
func unitToByte(x float32) uint8 {
	v := (x + 1) * 127.5
	switch {
	case !(v > 0):
		return 0
	case v >= 255:
		return 255
	default:
		return uint8(v + 0.5)
	}
}

// ImageFromCHW converts one (C,H,W) image in [-1, 1] to an NRGBA image: C = 3 is RGB, C = 1
// grey; other channel counts use their first three (or first) channels.
func ImageFromCHW(data []float32, C, H, W int) *image.NRGBA {
	if len(data) != C*H*W {
		panic(fmt.Sprintf("diffusion: ImageFromCHW: %d values for (%d,%d,%d)", len(data), C, H, W))
	}
	img := image.NewNRGBA(image.Rect(0, 0, W, H))
	for y := range H {
		for x := range W {
			var rgb [3]uint8
			for c := range 3 {
				src := c
				if C < 3 {
					src = 0
				}
				rgb[c] = unitToByte(data[(src*H+y)*W+x])
			}
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = rgb[0], rgb[1], rgb[2], 255
		}
	}
	return img
}

// SampleFrames converts samples x (B, SampleShape...) of a model with config cfg to images:
// frames[b] holds one image for an image model and cfg.Frames for a video model.
func SampleFrames(x *kernels.Tensor, cfg *ModelConfig) [][]*image.NRGBA {
	host := make([]float32, x.Len())
	x.Dev.CopyToHost(host, x)
	B := x.Shape[0]
	T := 1
	if cfg.Kind == KindVideo {
		T = cfg.Frames
	}
	n := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	out := make([][]*image.NRGBA, B)
	for b := range B {
		for t := range T {
			off := (b*T + t) * n
			out[b] = append(out[b], ImageFromCHW(host[off:off+n], cfg.Channels, cfg.ImageSize, cfg.ImageSize))
		}
	}
	return out
}

// WriteSampleGrid writes samples x (B, SampleShape...) of a model with config cfg as one
// grid in rows of cols (0: about square), each sample scaled 2x: base+".png" for an image
// model, base+".gif" (0.12 s a frame) for a video model. It returns the file written.
func WriteSampleGrid(base string, x *kernels.Tensor, cfg *ModelConfig, cols int) (string, error) {
	frames := SampleFrames(x, cfg)
	if cfg.Kind == KindVideo {
		p := base + ".gif"
		return p, WriteGIF(p, GridFrames(frames, cols, 2, 2), 12)
	}
	imgs := make([]*image.NRGBA, len(frames))
	for i, f := range frames {
		imgs[i] = f[0]
	}
	p := base + ".png"
	return p, WritePNG(p, Grid(ToImages(imgs), cols, 2, 2))
}

// Grid lays images out in rows of cols (0 chooses about a square), each scaled by scale
// (nearest neighbour) with pad white pixels between and around them.
func Grid(imgs []image.Image, cols, scale, pad int) *image.NRGBA {
	if len(imgs) == 0 {
		return image.NewNRGBA(image.Rect(0, 0, 1, 1))
	}
	if cols <= 0 {
		cols = 1
		for cols*cols < len(imgs) {
			cols++
		}
	}
	cols = min(cols, len(imgs))
	scale = max(scale, 1)
	rows := (len(imgs) + cols - 1) / cols
	cw, ch := 0, 0
	for _, im := range imgs {
		cw, ch = max(cw, im.Bounds().Dx()*scale), max(ch, im.Bounds().Dy()*scale)
	}
	out := imaging.New(cols*cw+(cols+1)*pad, rows*ch+(rows+1)*pad, color.White)
	for i, im := range imgs {
		if scale > 1 {
			im = imaging.Resize(im, im.Bounds().Dx()*scale, im.Bounds().Dy()*scale, imaging.NearestNeighbor)
		}
		r, c := i/cols, i%cols
		out = imaging.Paste(out, im, image.Pt(pad+c*(cw+pad), pad+r*(ch+pad)))
	}
	return out
}

// WriteFileAtomic is nn.WriteFileAtomic: fill writes a temporary file beside path, which
// is synced and renamed into place; on error nothing is left behind.
func WriteFileAtomic(path string, fill func(w io.Writer) error) error {
	return nn.WriteFileAtomic(path, fill)
}

// WritePNG writes img to path atomically.
func WritePNG(path string, img image.Image) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// WriteGIF writes frames as a looping animated GIF to path atomically, delay in 1/100 s per
// frame, with one palette (up to 256 colours, by popularity of 15-bit colours) for all frames.
func WriteGIF(path string, frames []image.Image, delay int) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return EncodeGIF(w, frames, delay) })
}

// EncodeGIF writes frames as a looping animated GIF (see WriteGIF).
func EncodeGIF(w io.Writer, frames []image.Image, delay int) error {
	if len(frames) == 0 {
		return fmt.Errorf("gif: no frames")
	}
	pal, lookup := popularPalette(frames)
	g := &gif.GIF{LoopCount: 0}
	for _, f := range frames {
		g.Config.Width = max(g.Config.Width, f.Bounds().Dx())
		g.Config.Height = max(g.Config.Height, f.Bounds().Dy())
	}
	g.Config.ColorModel = pal
	for _, f := range frames {
		b := f.Bounds()
		p := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()), pal)
		for y := range b.Dy() {
			for x := range b.Dx() {
				r, gg, bb, _ := f.At(b.Min.X+x, b.Min.Y+y).RGBA()
				p.Pix[y*p.Stride+x] = lookup[bin15(uint8(r>>8), uint8(gg>>8), uint8(bb>>8))]
			}
		}
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, delay)
	}
	return gif.EncodeAll(w, g)
}

// bin15 is the 15-bit colour (5 bits per channel) of an RGB triple.
func bin15(r, g, b uint8) int { return int(r>>3)<<10 | int(g>>3)<<5 | int(b>>3) }

// popularPalette picks the 256 most frequent 15-bit colours of the frames (their mean
// colours) and maps every 15-bit colour that occurs to its nearest palette entry.
func popularPalette(frames []image.Image) (color.Palette, map[int]uint8) {
	type acc struct{ n, r, g, b int }
	bins := map[int]*acc{}
	for _, f := range frames {
		bd := f.Bounds()
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			for x := bd.Min.X; x < bd.Max.X; x++ {
				r, g, b, _ := f.At(x, y).RGBA()
				r8, g8, b8 := uint8(r>>8), uint8(g>>8), uint8(b>>8)
				k := bin15(r8, g8, b8)
				a := bins[k]
				if a == nil {
					a = &acc{}
					bins[k] = a
				}
				a.n++
				a.r += int(r8)
				a.g += int(g8)
				a.b += int(b8)
			}
		}
	}
	keys := make([]int, 0, len(bins))
	for k := range bins {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if bins[keys[i]].n != bins[keys[j]].n {
			return bins[keys[i]].n > bins[keys[j]].n
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 256 {
		keys = keys[:256]
	}
	pal := make(color.Palette, len(keys))
	for i, k := range keys {
		a := bins[k]
		pal[i] = color.RGBA{uint8(a.r / a.n), uint8(a.g / a.n), uint8(a.b / a.n), 255}
	}
	lookup := make(map[int]uint8, len(bins))
	for k, a := range bins {
		lookup[k] = uint8(pal.Index(color.RGBA{uint8(a.r / a.n), uint8(a.g / a.n), uint8(a.b / a.n), 255}))
	}
	return pal, lookup
}

// ToImages converts a slice of NRGBA images to image.Image values.
func ToImages(imgs []*image.NRGBA) []image.Image {
	out := make([]image.Image, len(imgs))
	for i, im := range imgs {
		out[i] = im
	}
	return out
}

// GridFrames makes, for clips of equal length, one grid per frame (an animated grid).
func GridFrames(clips [][]*image.NRGBA, cols, scale, pad int) []image.Image {
	if len(clips) == 0 {
		return nil
	}
	T := len(clips[0])
	out := make([]image.Image, T)
	for t := range T {
		fr := make([]image.Image, len(clips))
		for i, c := range clips {
			fr[i] = c[t]
		}
		out[t] = Grid(fr, cols, scale, pad)
	}
	return out
}
