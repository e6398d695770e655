// Tests of the video measure: the direction estimator on sprites rendered moving in all eight
// directions (and rotating, zooming, blank), and EvalVideos on a synthetic clip set.
//
// Test: go test ./diffusion/eval -run 'Motion|Direction|Video'
package eval

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
)

// discSprite is a 64 px premultiplied sprite: a disc of colour c with a darker quarter.
func discSprite(c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			dx, dy := float64(x)-31.5, float64(y)-31.5
			if dx*dx+dy*dy > 28*28 {
				continue
			}
			p := c
			if dx > 0 && dy > 0 {
				p = color.RGBA{c.R / 2, c.G / 2, c.B / 2, 255}
			}
			img.SetRGBA(x, y, p)
		}
	}
	return img
}

// renderClip renders a clip of motion m with the dataset's renderer, as float32 in [-1, 1].
func renderClip(sprite *image.RGBA, m dataset.Motion, p *dataset.ClipParams) []float32 {
	b := make([]uint8, dataset.ClipBytes)
	dataset.RenderClip(b, sprite, m, p)
	f := make([]float32, len(b))
	dataset.ToUnit(f, b)
	return f
}

func TestMotionEstimatorAllDirections(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	sprites := []*image.RGBA{discSprite(color.RGBA{220, 30, 30, 255}), discSprite(color.RGBA{250, 210, 40, 255})}
	for _, m := range Directions {
		for trial := range 10 {
			p := dataset.NewClipParams(rng, m, 1)
			e := EstimateMotion(renderClip(sprites[trial%2], m, &p), dataset.Frames, 3, 32, 32)
			if !DirectionHit(e, m) || NearestDirection(e) != m {
				t.Errorf("%s trial %d: estimate %+v (nearest %s)", m, trial, e, NearestDirection(e))
			}
			// Exactly one of the eight sectors holds the estimate.
			n := 0
			for _, o := range Directions {
				if DirectionHit(e, o) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d directions hit", m, n)
			}
			if math.Abs(e.DX-(p.X1-p.X0)) > 0.5 || math.Abs(e.DY-(p.Y1-p.Y0)) > 0.5 || e.Frames != dataset.Frames {
				t.Errorf("%s: estimate (%.2f, %.2f), true (%.2f, %.2f)", m, e.DX, e.DY, p.X1-p.X0, p.Y1-p.Y0)
			}
		}
	}
	// A centred disc that rotates or zooms does not travel; a blank clip has no frames.
	for _, m := range []dataset.Motion{dataset.RotateCW, dataset.ZoomIn, dataset.ZoomOut} {
		p := dataset.NewClipParams(rng, m, 1)
		e := EstimateMotion(renderClip(discSprite(color.RGBA{20, 20, 200, 255}), m, &p), dataset.Frames, 3, 32, 32)
		if e.Moving() || NearestDirection(e) != "" || DirectionHit(e, dataset.MoveLeft) {
			t.Errorf("%s: %+v counts as moving", m, e)
		}
	}
	blank := make([]float32, dataset.ClipBytes)
	for i := range blank {
		blank[i] = 1
	}
	if e := EstimateMotion(blank, dataset.Frames, 3, 32, 32); e.Frames != 0 || e.Moving() {
		t.Errorf("blank clip: %+v", e)
	}
}

func TestDirectionHitSectors(t *testing.T) {
	at := func(deg, r float64) MotionEstimate {
		rad := deg * math.Pi / 180
		return MotionEstimate{DX: r * math.Cos(rad), DY: -r * math.Sin(rad), Travel: r, Frames: 8}
	}
	tests := []struct {
		e    MotionEstimate
		m    dataset.Motion
		want bool
	}{
		{at(0, 5), dataset.MoveRight, true},
		{at(22, 5), dataset.MoveRight, true},
		{at(23, 5), dataset.MoveRight, false},
		{at(-22, 5), dataset.MoveRight, true},
		{at(90, 5), dataset.MoveUp, true},
		{at(135, 5), dataset.MoveUpLeft, true},
		{at(-45, 5), dataset.MoveDownRight, true},
		{at(-45, 5), dataset.MoveDown, false},
		{at(180, 5), dataset.MoveLeft, true},
		{at(0, 1.9), dataset.MoveRight, false}, // under MinTravel
		{at(0, 5), dataset.Bounce, false},
	}
	for _, tt := range tests {
		if got := DirectionHit(tt.e, tt.m); got != tt.want {
			t.Errorf("DirectionHit(%+v, %s) = %v", tt.e, tt.m, got)
		}
	}
}

// synthVideo renders nConcepts concepts' clips: every concept moving in each of the eight
// directions, all on the training side.
func synthVideo(nConcepts int) *dataset.VideoDataset {
	rng := rand.New(rand.NewPCG(5, 6))
	v := &dataset.VideoDataset{}
	for c := range nConcepts {
		sprite := discSprite(color.RGBA{uint8(40 * c), 120, 200, 255})
		for _, m := range Directions {
			p := dataset.NewClipParams(rng, m, 1)
			name := "thing " + string(rune('a'+c))
			v.Clips = append(v.Clips, dataset.Clip{Index: len(v.Clips), Concept: name, Name: name, Motion: m,
				Caption: dataset.VideoCaption(name, m), Split: dataset.SplitTrain, Params: p})
			b := make([]uint8, dataset.ClipBytes)
			dataset.RenderClip(b, sprite, m, &p)
			v.Pixels = append(v.Pixels, b...)
		}
	}
	return v
}

func TestEvalVideos(t *testing.T) {
	v := synthVideo(5)
	prompts, err := VideoPrompts(v.Clips, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := VideoPrompts(v.Clips, 5, 2)
	if !slices.Equal(prompts, again) {
		t.Error("the same seed gave different prompts")
	}
	for i, p := range prompts {
		if p.Motion != Directions[i] || v.Clips[p.Clip].Motion != p.Motion || p.Caption != dataset.VideoCaption(p.Name, p.Motion) {
			t.Errorf("prompt %d: %+v", i, p)
		}
	}
	// A generator that returns a clip moving the prompted way, and one moving the opposite way.
	opposite := map[dataset.Motion]dataset.Motion{dataset.MoveLeft: dataset.MoveRight, dataset.MoveRight: dataset.MoveLeft,
		dataset.MoveUp: dataset.MoveDown, dataset.MoveDown: dataset.MoveUp, dataset.MoveUpLeft: dataset.MoveDownRight,
		dataset.MoveDownRight: dataset.MoveUpLeft, dataset.MoveUpRight: dataset.MoveDownLeft, dataset.MoveDownLeft: dataset.MoveUpRight}
	var good, bad []float32
	clip := make([]float32, dataset.ClipBytes)
	for _, p := range prompts {
		v.ClipFloat32(clip, p.Clip)
		good = append(good, clip...)
		for i, c := range v.Clips {
			if c.Motion == opposite[p.Motion] {
				v.ClipFloat32(clip, i)
				break
			}
		}
		bad = append(bad, clip...)
	}
	rep, err := EvalVideos(v, prompts, good, dataset.Frames, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Primary.Hits != 5 || rep.Primary.Chance != 0.125 || len(rep.Rows) != 3 || rep.Rows[2].Hits != 5 {
		t.Errorf("right-way clips: %+v", rep.Rows)
	}
	if rep.Rows[1].Condition != CondShuffled || rep.Rows[1].Hits != 0 { // five distinct directions
		t.Errorf("shuffled: %+v", rep.Rows[1])
	}
	if r := rep.PerDirection[dataset.MoveUp]; r.Hits != 1 || r.N != 1 {
		t.Errorf("per direction: %+v", rep.PerDirection)
	}
	rep, _ = EvalVideos(v, prompts, bad, dataset.Frames, 0)
	if rep.Primary.Hits != 0 || rep.Rows[2].Hits != 5 {
		t.Errorf("wrong-way clips: %+v", rep.Rows)
	}
	if _, err := EvalVideos(v, prompts, good[:10], dataset.Frames, 0); err == nil {
		t.Error("wrong sample count accepted")
	}
	if _, err := VideoPrompts(v.Clips, 6, 0); err == nil {
		t.Error("more prompts than concepts accepted")
	}
}
