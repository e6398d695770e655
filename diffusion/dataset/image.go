// Image preparation: decode the 64 px emoji PNGs, composite them over white, downsample to
// 32x32 and lay the RGB channels out as (C,H,W) bytes.
//
// Test: go test ./diffusion/dataset -run 'Decode|Composite|Downsample|CHW'

package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"github.com/disintegration/imaging"
)

// ImageSize is the side of the dataset images and video frames.
const ImageSize = 32

// Channels is the number of colour channels stored (RGB).
const Channels = 3

// DecodePNG decodes one emoji PNG. The sets mix RGBA, palette (with tRNS transparency, 4 or 8 bit)
// and gray+alpha files; Go's decoder returns *image.NRGBA, *image.Paletted or *image.NRGBA for
// them, all handled the same way below.
func DecodePNG(b []byte) (image.Image, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if r := img.Bounds(); r.Dx() == 0 || r.Dy() == 0 {
		return nil, fmt.Errorf("empty image %v", r)
	}
	return img, nil
}

// CompositeOnWhite draws src over an opaque white background (Porter-Duff "over" on premultiplied
// colour): out = c·α + 255·(1−α) per channel. A fully transparent pixel becomes white whatever
// colour its palette entry holds.
func CompositeOnWhite(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	return dst
}

// Premultiplied returns src as premultiplied RGBA with its origin at (0,0) (video sprites keep
// their alpha so they can be moved, rotated and scaled before they meet the white background).
func Premultiplied(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// Downsample resizes img to size x size with imaging's box filter.
//
// The emoji are 64 px and the dataset is 32 px: an exact factor of 2, for which the box filter
// averages each 2x2 block with equal weights. That is the area-average of the source, so flat
// colours stay flat and edges are anti-aliased without ringing. Lanczos would look slightly
// sharper but overshoots at the dark outlines of the Twemoji and Noto drawings (halos clipped to
// 0 or 255) and mixes a 6x6 neighbourhood into every pixel, which helps nothing at this size.
func Downsample(img image.Image, size int) *image.NRGBA {
	return imaging.Resize(img, size, size, imaging.Box)
}

// PutCHW writes the RGB channels of an opaque image into dst as (3,H,W) bytes; dst must hold
// 3·W·H bytes. Alpha is ignored (composite first).
func PutCHW(dst []uint8, img image.Image) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if len(dst) != Channels*w*h {
		panic(fmt.Sprintf("PutCHW: dst has %d bytes, want %d", len(dst), Channels*w*h))
	}
	plane := w * h
	switch m := img.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				o := y*w + x
				dst[o], dst[plane+o], dst[2*plane+o] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := 0; x < w; x++ {
				o := y*w + x
				dst[o], dst[plane+o], dst[2*plane+o] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				o := y*w + x
				dst[o], dst[plane+o], dst[2*plane+o] = c.R, c.G, c.B
			}
		}
	}
}

// ImageFromCHW builds an RGBA image from (3,H,W) bytes (for previews and contact sheets).
func ImageFromCHW(src []uint8, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	plane := w * h
	for o := 0; o < plane; o++ {
		img.Pix[4*o], img.Pix[4*o+1], img.Pix[4*o+2], img.Pix[4*o+3] = src[o], src[plane+o], src[2*plane+o], 255
	}
	return img
}

// prepareImage turns one PNG into the dataset's (3,32,32) bytes, and also returns the
// premultiplied 64 px sprite when keepSprite is set.
func prepareImage(dst []uint8, pngBytes []byte, keepSprite bool) (*image.RGBA, error) {
	img, err := DecodePNG(pngBytes)
	if err != nil {
		return nil, err
	}
	PutCHW(dst, Downsample(CompositeOnWhite(img), ImageSize))
	if keepSprite {
		return Premultiplied(img), nil
	}
	return nil, nil
}
