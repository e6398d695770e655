// Previews: an animated GIF of a grid of clips (image/gif) and a contact-sheet PNG of images.
//
// Test: go test ./diffusion/dataset -run 'Preview|ContactSheet'

package dataset

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"sort"
)

// ContactSheet tiles images given as (3,size,size) bytes into a grid of cols columns, each
// scaled up by scale (nearest neighbour) with a 1 px light-gray gutter.
func ContactSheet(images [][]uint8, size, cols, scale int) *image.RGBA {
	if cols < 1 {
		cols = 1
	}
	if scale < 1 {
		scale = 1
	}
	rows := (len(images) + cols - 1) / cols
	cell := size*scale + 1
	sheet := image.NewRGBA(image.Rect(0, 0, cols*cell+1, rows*cell+1))
	for i := range sheet.Pix {
		sheet.Pix[i] = 200
	}
	for n, src := range images {
		ox, oy := 1+(n%cols)*cell, 1+(n/cols)*cell
		plane := size * size
		for y := 0; y < size*scale; y++ {
			for x := 0; x < size*scale; x++ {
				o := (y/scale)*size + x/scale
				sheet.SetRGBA(ox+x, oy+y, color.RGBA{src[o], src[plane+o], src[2*plane+o], 255})
			}
		}
	}
	return sheet
}

// WritePNG encodes img as PNG.
func WritePNG(w io.Writer, img image.Image) error { return png.Encode(w, img) }

// WritePreviewGIF writes an animated GIF of clips ((T,3,size,size) bytes each) laid out in a
// grid of cols columns, scaled by scale, delay in 1/100 s per frame. The palette is built from the
// clips' own colours (the 256 most frequent colours at 5 bits per channel), which
// suits flat emoji art better than a fixed palette with dithering.
func WritePreviewGIF(w io.Writer, clips [][]uint8, T, size, cols, scale, delay int) error {
	if len(clips) == 0 {
		return fmt.Errorf("preview: no clips")
	}
	frames := make([]*image.RGBA, T)
	n := Channels * size * size
	for t := range frames {
		imgs := make([][]uint8, len(clips))
		for i, c := range clips {
			imgs[i] = c[t*n : (t+1)*n]
		}
		frames[t] = ContactSheet(imgs, size, cols, scale)
	}
	pal, lut := buildPalette(frames)
	anim := &gif.GIF{LoopCount: 0}
	for _, f := range frames {
		p := image.NewPaletted(f.Bounds(), pal)
		for i := 0; i < len(f.Pix)/4; i++ {
			p.Pix[i] = lut[quant5(f.Pix[4*i], f.Pix[4*i+1], f.Pix[4*i+2])]
		}
		anim.Image = append(anim.Image, p)
		anim.Delay = append(anim.Delay, delay)
	}
	return gif.EncodeAll(w, anim)
}

func quant5(r, g, b uint8) int { return int(r>>3)<<10 | int(g>>3)<<5 | int(b>>3) }

// buildPalette picks the most frequent 5-bit colours of frames and a lookup table from every
// 5-bit colour to its nearest palette entry.
func buildPalette(frames []*image.RGBA) (color.Palette, []uint8) {
	var hist [1 << 15]int
	for _, f := range frames {
		for i := 0; i < len(f.Pix); i += 4 {
			hist[quant5(f.Pix[i], f.Pix[i+1], f.Pix[i+2])]++
		}
	}
	var used []int
	for c, n := range hist {
		if n > 0 {
			used = append(used, c)
		}
	}
	sort.SliceStable(used, func(i, j int) bool { return hist[used[i]] > hist[used[j]] })
	if len(used) > 256 {
		used = used[:256]
	}
	expand := func(c int) (int, int, int) {
		return (c >> 10) * 255 / 31, (c >> 5 & 31) * 255 / 31, (c & 31) * 255 / 31
	}
	pal := make(color.Palette, len(used))
	for i, c := range used {
		r, g, b := expand(c)
		pal[i] = color.RGBA{uint8(r), uint8(g), uint8(b), 255}
	}
	lut := make([]uint8, 1<<15)
	for c := range lut {
		if hist[c] == 0 {
			continue
		}
		r, g, b := expand(c)
		best, bestD := 0, 1<<30
		for i, p := range used {
			pr, pg, pb := expand(p)
			if d := (r-pr)*(r-pr) + (g-pg)*(g-pg) + (b-pb)*(b-pb); d < bestD {
				best, bestD = i, d
			}
		}
		lut[c] = uint8(best)
	}
	return pal, lut
}
