// Tests of the video clips: the sprite really moves in the captioned direction (centroid of the
// non-white pixels), bounces, rotates the captioned way, zooms; it stays in the frame; captions;
// clip plans are deterministic in the seed.
//
// Run: go test ./diffusion/dataset -run 'Motion|Clip|Render|VideoCaption'

package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"math"
	"reflect"
	"testing"
)

func fixtureSprite(t testing.TB, set, name string) *image.RGBA {
	t.Helper()
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := DecodePNG(src.Images[set][name])
	if err != nil {
		t.Fatal(err)
	}
	return Premultiplied(img)
}

// centroid is the darkness-weighted centre of the non-white pixels of a (3,32,32) frame, and
// the number of pixels darker than near-white.
func centroid(f []uint8) (x, y float64, n int) {
	plane := ImageSize * ImageSize
	var sw float64
	for o := 0; o < plane; o++ {
		w := float64(765 - int(f[o]) - int(f[plane+o]) - int(f[2*plane+o]))
		if w > 15 {
			n++
		}
		x += w * (float64(o%ImageSize) + 0.5)
		y += w * (float64(o/ImageSize) + 0.5)
		sw += w
	}
	return x / sw, y / sw, n
}

func renderTest(t *testing.T, sprite *image.RGBA, m Motion, seed uint64) ([]uint8, ClipParams) {
	t.Helper()
	p := NewClipParams(clipRNG(seed, 0), m, 1)
	buf := make([]uint8, ClipBytes)
	RenderClip(buf, sprite, m, &p)
	return buf, p
}

func frame(clip []uint8, t int) []uint8 { return clip[t*ImageBytes : (t+1)*ImageBytes] }

func TestMotionMovesInCaptionedDirection(t *testing.T) {
	for _, set := range Sets {
		apple := fixtureSprite(t, set, "1f34e.png")
		for _, m := range Motions[:8] {
			for seed := uint64(0); seed < 5; seed++ {
				clip, p := renderTest(t, apple, m, seed)
				ux, uy := m.Direction()
				x0, y0, _ := centroid(frame(clip, 0))
				px, py := x0, y0
				for f := 1; f < Frames; f++ {
					x, y, _ := centroid(frame(clip, f))
					if step := (x-px)*ux + (y-py)*uy; step < 0.8 {
						t.Errorf("%s %s seed %d frame %d: step %.2f px along the direction, want >= 0.8", set, m, seed, f, step)
					}
					px, py = x, y
				}
				dx, dy := px-x0, py-y0
				dist := math.Hypot(dx, dy)
				if cos := (dx*ux + dy*uy) / dist; cos < 0.98 || dist < 7 {
					t.Errorf("%s %s seed %d: moved (%.1f, %.1f), cos to the caption's direction %.3f", set, m, seed, dx, dy, cos)
				}
				// The centroid follows the recorded trajectory.
				if math.Abs(dx-(p.X1-p.X0)) > 1 || math.Abs(dy-(p.Y1-p.Y0)) > 1 {
					t.Errorf("%s %s: centroid moved (%.1f,%.1f), params say (%.1f,%.1f)", set, m, dx, dy, p.X1-p.X0, p.Y1-p.Y0)
				}
			}
		}
	}
}

func TestMotionBounce(t *testing.T) {
	apple := fixtureSprite(t, SetTwitter, "1f34e.png")
	for seed := uint64(0); seed < 5; seed++ {
		clip, _ := renderTest(t, apple, Bounce, seed)
		x0, _, _ := centroid(frame(clip, 0))
		minY, maxY := 99.0, -1.0
		for f := 0; f < Frames; f++ {
			x, y, _ := centroid(frame(clip, f))
			if math.Abs(x-x0) > 0.3 {
				t.Errorf("seed %d frame %d: bounce drifted sideways %.2f px", seed, f, x-x0)
			}
			minY, maxY = math.Min(minY, y), math.Max(maxY, y)
		}
		if maxY-minY < 4 {
			t.Errorf("seed %d: bounce height %.1f px, want >= 4", seed, maxY-minY)
		}
	}
}

// arrowSprite is a blue disc with a red dot at 12 o'clock, to follow rotation.
func arrowSprite() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			fx, fy := float64(x)+0.5-32, float64(y)+0.5-32
			switch {
			case math.Hypot(fx, fy+20) < 8:
				img.SetRGBA(x, y, color.RGBA{255, 0, 0, 255})
			case math.Hypot(fx, fy) < 28:
				img.SetRGBA(x, y, color.RGBA{0, 0, 255, 255})
			}
		}
	}
	return img
}

func TestMotionRotateDirection(t *testing.T) {
	sprite := arrowSprite()
	plane := ImageSize * ImageSize
	for _, m := range []Motion{RotateCW, RotateCCW} {
		for seed := uint64(0); seed < 5; seed++ {
			clip, p := renderTest(t, sprite, m, seed)
			prev := math.NaN()
			for f := 0; f < Frames; f++ {
				fr := frame(clip, f)
				var sx, sy, n float64
				for o := 0; o < plane; o++ {
					if fr[o] > 150 && fr[plane+o] < 120 && fr[2*plane+o] < 120 {
						sx += float64(o%ImageSize) + 0.5
						sy += float64(o/ImageSize) + 0.5
						n++
					}
				}
				if n == 0 {
					t.Fatalf("%s seed %d frame %d: red dot not visible", m, seed, f)
				}
				// atan2 in y-down coordinates grows clockwise on screen.
				a := math.Atan2(sy/n-p.Y0, sx/n-p.X0) * 180 / math.Pi
				if !math.IsNaN(prev) {
					d := math.Mod(a-prev+540, 360) - 180
					want := (p.Angle1 - p.Angle0) / (Frames - 1)
					if (m == RotateCW) != (d > 0) || math.Abs(d-want) > 6 {
						t.Errorf("%s seed %d frame %d: turned %.1f deg, want %.1f", m, seed, f, d, want)
					}
				}
				prev = a
			}
		}
	}
}

func TestMotionZoom(t *testing.T) {
	apple := fixtureSprite(t, SetGoogle, "1f34e.png")
	for _, m := range []Motion{ZoomIn, ZoomOut} {
		for seed := uint64(0); seed < 5; seed++ {
			clip, _ := renderTest(t, apple, m, seed)
			_, _, prev := centroid(frame(clip, 0))
			first := prev
			for f := 1; f < Frames; f++ {
				_, _, n := centroid(frame(clip, f))
				if (m == ZoomIn) != (n > prev) {
					t.Errorf("%s seed %d frame %d: %d -> %d non-white pixels", m, seed, f, prev, n)
				}
				prev = n
			}
			if r := float64(prev) / float64(first); (m == ZoomIn && r < 2.5) || (m == ZoomOut && r > 0.4) {
				t.Errorf("%s seed %d: area ratio %.2f", m, seed, r)
			}
		}
	}
}

func TestClipParamsStayInFrame(t *testing.T) {
	for _, scale := range []float64{MinSpriteScale, 1, MaxSpriteScale} {
		for _, m := range Motions {
			for seed := uint64(0); seed < 300; seed++ {
				p := NewClipParams(clipRNG(seed, 7), m, scale)
				for f := 0; f < Frames; f++ {
					cx, cy, size, _ := p.At(m, f, Frames)
					r := size / 2
					if m == RotateCW || m == RotateCCW {
						r = 0.6 * size // the drawing (not its corners) stays in the frame
					}
					if cx-r < -1e-3 || cy-r < -1e-3 || cx+r > ImageSize+1e-3 || cy+r > ImageSize+1e-3 { // params have 3 decimals
						t.Fatalf("scale %g, %s seed %d frame %d: centre (%.1f,%.1f) size %.1f leaves the frame", scale, m, seed, f, cx, cy, size)
					}
				}
			}
		}
	}
}

// At scale 1 NewClipParams draws what it drew before the sprite scale existed: the sha256 of
// these params' JSON was taken from the code of that time.
func TestClipParamsScaleOneUnchanged(t *testing.T) {
	h := sha256.New()
	for seed := uint64(0); seed < 20; seed++ {
		for _, m := range Motions {
			b, err := json.Marshal(NewClipParams(clipRNG(seed, 3), m, 1))
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), "4a3b5a5ef2033768d0d1c45436f58c226139b413f721e57eaad412279365612a"; got != want {
		t.Errorf("params at scale 1: sha256 %s, want %s (the clips of existing datasets)", got, want)
	}
}

// Larger sprites: every size is the scale-1 size times the scale, or the motion's cap; motion
// keeps room (a translation travels at least 6 px, a bounce rises 4 px, a zoom's box changes
// by at least 1.6x in side).
func TestClipParamsSpriteScale(t *testing.T) {
	const scale = MaxSpriteScale
	caps := map[Motion]float64{Bounce: maxBounceSize, RotateCW: maxRotateSize, RotateCCW: maxRotateSize, ZoomIn: maxZoomSize, ZoomOut: maxZoomSize}
	for _, m := range Motions {
		limit, ok := caps[m]
		if !ok {
			limit = maxTranslateSize
		}
		for seed := uint64(0); seed < 200; seed++ {
			one, big := NewClipParams(clipRNG(seed, 5), m, 1), NewClipParams(clipRNG(seed, 5), m, scale)
			for _, s := range [][2]float64{{one.Size0, big.Size0}, {one.Size1, big.Size1}} {
				if want := math.Min(scale*s[0], limit); math.Abs(s[1]-want) > 2e-3 { // 3 decimals each
					t.Fatalf("%s seed %d: size %.3f at scale %g, want %.3f (%.3f at scale 1)", m, seed, s[1], scale, want, s[0])
				}
			}
			dx, dy := m.Direction()
			switch {
			case dx != 0 || dy != 0:
				if d := math.Hypot(big.X1-big.X0, big.Y1-big.Y0); d < 6-1e-3 {
					t.Errorf("%s seed %d: travels %.2f px", m, seed, d)
				}
			case m == Bounce:
				if big.BounceHeight < 4-1e-3 {
					t.Errorf("bounce seed %d: height %.2f px", seed, big.BounceHeight)
				}
			case m == ZoomIn || m == ZoomOut:
				if r := math.Max(big.Size0, big.Size1) / math.Min(big.Size0, big.Size1); r < 1.6 {
					t.Errorf("%s seed %d: sizes %.1f -> %.1f", m, seed, big.Size0, big.Size1)
				}
			}
		}
	}
}

func TestVideoCaption(t *testing.T) {
	for _, c := range [][3]string{
		{"red apple", string(MoveLeft), "a red apple moving left"},
		{"avocado", string(Bounce), "an avocado bouncing"},
		{"unicorn face", string(MoveUpRight), "a unicorn face moving up and right"},
		{"ogre", string(RotateCCW), "an ogre rotating counterclockwise"},
		{"hot beverage", string(ZoomIn), "a hot beverage zooming in"},
	} {
		if got := VideoCaption(c[0], Motion(c[1])); got != c[2] {
			t.Errorf("VideoCaption(%q, %s) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	for _, m := range Motions {
		if !m.Valid() || m.Phrase() == "" {
			t.Errorf("%s has no phrase", m)
		}
	}
	if Motion("spin").Valid() {
		t.Error("unknown motion is valid")
	}
}

func TestPlanClipsDeterministic(t *testing.T) {
	items := []Item{{Index: 0, Set: SetTwitter, Split: SplitTrain}, {Index: 1, Set: SetGoogle, Split: SplitHeldOut}}
	pool := []spriteRef{{item: &items[0], concept: "A", name: "apple"}, {item: &items[1], concept: "B", name: "avocado"}}
	a, sa := planClips(40, 3, pool, 1)
	b, sb := planClips(40, 3, pool, 1)
	c, _ := planClips(40, 4, pool, 1)
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(sa, sb) {
		t.Error("same seed, different clips")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds, same clips")
	}
	for i, cl := range a {
		if cl.Motion != Motions[i%len(Motions)] || cl.Split != items[sa[i]].Split || cl.Item != sa[i] {
			t.Errorf("clip %d: %+v", i, cl)
		}
	}
}

func BenchmarkRenderClip(b *testing.B) {
	sprite := fixtureSprite(b, SetTwitter, "1f34e.png")
	buf := make([]uint8, ClipBytes)
	i := 0
	for b.Loop() {
		m := Motions[i%len(Motions)]
		p := NewClipParams(clipRNG(1, i), m, 1)
		RenderClip(buf, sprite, m, &p)
		i++
	}
}
