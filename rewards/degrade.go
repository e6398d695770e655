// Graded corruptions that make the negatives of preference pairs: image degradations for
// visual quality (blur, noise, pixelation, colour shift, JPEG) and clip corruptions for
// motion quality (shuffled, jittered, flickering and frozen frames). Each has three
// severity levels and is deterministic given its seed.
//
// Test: go test ./rewards -run 'Degrade|Corrupt'
package rewards

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/alignkit/align/diffusion/dataset"
	"github.com/disintegration/imaging"
)

// MaxLevel is the strongest severity level; levels are 1 (mild) to MaxLevel.
const MaxLevel = 3

// Image degradation kinds (visual quality negatives).
const (
	DegradeBlur     = "blur"     // Gaussian blur, sigma 0.6, 1.0, 1.6 px
	DegradeNoise    = "noise"    // additive Gaussian noise, std 10, 22, 40 (of 255)
	DegradePixelate = "pixelate" // box-downsample to 16, 10, 6 px, nearest-neighbour back up
	DegradeColor    = "color"    // per-channel offsets of ±25, ±50, ±85 (signs from the seed)
	DegradeJPEG     = "jpeg"     // JPEG at quality 35, 15, 5
)

// DegradeKinds lists the image degradations.
var DegradeKinds = []string{DegradeBlur, DegradeNoise, DegradePixelate, DegradeColor, DegradeJPEG}

// Clip corruption kinds (motion quality negatives).
const (
	CorruptShuffle = "shuffle" // 1: one adjacent swap, 2: two random swaps, 3: a random permutation
	CorruptJitter  = "jitter"  // every frame shifted by up to 1, 2, 4 px (white fill)
	CorruptFlicker = "flicker" // every frame brightened or darkened by 10%, 20%, 40% of full scale
	CorruptFreeze  = "freeze"  // frames held from frame 6, 4, 1 on (level 3: a still clip)
)

// CorruptKinds lists the clip corruptions.
var CorruptKinds = []string{CorruptShuffle, CorruptJitter, CorruptFlicker, CorruptFreeze}

// Corruption names a degradation or clip corruption and its level; the zero value is none.
type Corruption struct {
	Kind  string `json:"kind,omitempty"`
	Level int    `json:"level,omitempty"` // 1..MaxLevel
}

// None reports whether c changes nothing.
func (c Corruption) None() bool { return c.Kind == "" }

func (c Corruption) String() string {
	if c.None() {
		return "none"
	}
	return fmt.Sprintf("%s-%d", c.Kind, c.Level)
}

func (c Corruption) check(kinds []string) {
	for _, k := range kinds {
		if k == c.Kind {
			if c.Level < 1 || c.Level > MaxLevel {
				panic(fmt.Sprintf("rewards: %s: level %d outside 1..%d", c.Kind, c.Level, MaxLevel))
			}
			return
		}
	}
	panic(fmt.Sprintf("rewards: unknown corruption %q (known: %v)", c.Kind, kinds))
}

// DegradeImage applies c to one (3,H,W) byte image in place; seed drives its randomness
// (noise values, colour-shift signs).
func DegradeImage(pix []uint8, w, h int, c Corruption, seed uint64) {
	if c.None() {
		return
	}
	c.check(DegradeKinds)
	r := rand.New(rand.NewPCG(seed, 0xde9ade))
	l := c.Level - 1
	switch c.Kind {
	case DegradeNoise:
		std := [MaxLevel]float64{10, 22, 40}[l]
		for i, v := range pix {
			pix[i] = clampByte(float64(v) + std*r.NormFloat64())
		}
		return
	case DegradeColor:
		amp := [MaxLevel]float64{25, 50, 85}[l]
		plane := w * h
		for ch := range 3 {
			off := amp
			if r.IntN(2) == 0 {
				off = -amp
			}
			for i := ch * plane; i < (ch+1)*plane; i++ {
				pix[i] = clampByte(float64(pix[i]) + off)
			}
		}
		return
	}
	img := dataset.ImageFromCHW(pix, w, h)
	var out image.Image
	switch c.Kind {
	case DegradeBlur:
		out = imaging.Blur(img, [MaxLevel]float64{0.6, 1.0, 1.6}[l])
	case DegradePixelate:
		s := [MaxLevel]int{16, 10, 6}[l] * w / 32
		out = imaging.Resize(imaging.Resize(img, max(s, 1), max(s*h/w, 1), imaging.Box), w, h, imaging.NearestNeighbor)
	case DegradeJPEG:
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: [MaxLevel]int{35, 15, 5}[l]}); err != nil {
			panic(err) // writing to memory does not fail
		}
		dec, err := jpeg.Decode(&buf)
		if err != nil {
			panic(err)
		}
		out = dec
	}
	dataset.PutCHW(pix, out)
}

// CorruptClip applies c to one (T,3,H,W) byte clip in place; seed drives its randomness.
func CorruptClip(clip []uint8, T, w, h int, c Corruption, seed uint64) {
	if c.None() {
		return
	}
	c.check(CorruptKinds)
	fs := 3 * w * h
	if len(clip) != T*fs {
		panic(fmt.Sprintf("rewards: CorruptClip: %d bytes for %d frames of %dx%d", len(clip), T, w, h))
	}
	r := rand.New(rand.NewPCG(seed, 0xc0ffee))
	frame := func(t int) []uint8 { return clip[t*fs : (t+1)*fs] }
	l := c.Level - 1
	switch c.Kind {
	case CorruptShuffle:
		order := make([]int, T)
		for i := range order {
			order[i] = i
		}
		switch c.Level {
		case 1:
			i := r.IntN(T - 1)
			order[i], order[i+1] = order[i+1], order[i]
		case 2:
			for identity(order) { // two swaps may undo each other
				for range 2 {
					i, j := r.IntN(T), r.IntN(T-1)
					if j >= i {
						j++
					}
					order[i], order[j] = order[j], order[i]
				}
			}
		default:
			for identity(order) {
				r.Shuffle(T, func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
		}
		src := append([]uint8(nil), clip...)
		for t, s := range order {
			copy(frame(t), src[s*fs:(s+1)*fs])
		}
	case CorruptJitter:
		a := [MaxLevel]int{1, 2, 4}[l]
		for t := range T {
			dx, dy := r.IntN(2*a+1)-a, r.IntN(2*a+1)-a
			shiftFrame(frame(t), w, h, dx, dy)
		}
	case CorruptFlicker:
		amp := [MaxLevel]float64{0.1, 0.2, 0.4}[l] * 255
		for t := range T {
			off := amp
			if r.IntN(2) == 0 {
				off = -amp
			}
			f := frame(t)
			for i, v := range f {
				f[i] = clampByte(float64(v) + off)
			}
		}
	case CorruptFreeze:
		from := [MaxLevel]int{6, 4, 1}[l] * T / 8
		for t := max(from, 1); t < T; t++ {
			copy(frame(t), frame(max(from, 1)-1))
		}
	}
}

// DegradeClip applies the image degradation c to every frame of a clip, each frame with its
// own seed derived from seed.
func DegradeClip(clip []uint8, T, w, h int, c Corruption, seed uint64) {
	fs := 3 * w * h
	for t := range T {
		DegradeImage(clip[t*fs:(t+1)*fs], w, h, c, seed*31+uint64(t)+1)
	}
}

func identity(p []int) bool {
	for i, v := range p {
		if i != v {
			return false
		}
	}
	return true
}

// shiftFrame moves a (3,H,W) frame by (dx, dy) pixels, filling with white.
func shiftFrame(f []uint8, w, h, dx, dy int) {
	src := append([]uint8(nil), f...)
	plane := w * h
	for ch := range 3 {
		for y := range h {
			for x := range w {
				sx, sy := x-dx, y-dy
				v := uint8(255)
				if sx >= 0 && sx < w && sy >= 0 && sy < h {
					v = src[ch*plane+sy*w+sx]
				}
				f[ch*plane+y*w+x] = v
			}
		}
	}
}

func clampByte(v float64) uint8 {
	switch {
	case !(v > 0):
		return 0
	case v >= 255:
		return 255
	}
	return uint8(math.Round(v))
}
