// The video measure: does a clip move in the prompted direction?
//
// Estimator. A pixel's ink is w = max_c (1 - x_c)/2 for x in [-1, 1] (0 on white, 1 where any
// channel is fully dark, so saturated colours count as much as black); ink below InkThreshold
// is treated as background, which keeps near-white sampling noise out. Each frame's centroid is
// the ink-weighted mean pixel position; the clip's displacement is the least-squares slope of
// the centroid track over its frames times (T-1), in pixels (x right, y down). A clip is a hit
// when it travels at least MinTravel pixels and its direction is within ±22.5° of the prompted
// one, so a static clip never hits and a uniformly random direction hits 1/8 of the time.
//
// Why the centroid and not block-matching optical flow: the clips are one sprite over white
// that translates by 8.75 to 14 px, so the centroid follows it exactly, without search-window
// or block-size parameters; a sample whose sprite changes shape or colour from frame to frame
// (which breaks flow's brightness constancy) still has a well-defined centroid; and the fit over
// all frames averages out single-frame errors. The dataset's own clips through the same
// estimator (the ceiling row) show what it loses.
//
// Test: go test ./diffusion/eval -run 'Motion|Direction|Video'

package eval

import (
	"fmt"
	"math"

	"github.com/alignkit/align/diffusion/dataset"
)

// Parameters of the direction estimator, fixed in advance.
const (
	InkThreshold = 0.1 // ink below this (every channel >= 0.8 in [-1, 1]) is background
	MinTravel    = 2.0 // pixels; under a quarter of the shortest travel in the data (8.75)
	HalfSector   = 22.5
)

// Directions are the eight translation motions, the prompts' directions.
var Directions = []dataset.Motion{
	dataset.MoveLeft, dataset.MoveRight, dataset.MoveUp, dataset.MoveDown,
	dataset.MoveUpLeft, dataset.MoveUpRight, dataset.MoveDownLeft, dataset.MoveDownRight,
}

// MotionEstimate is the measured motion of one clip.
type MotionEstimate struct {
	DX     float64 `json:"dx"` // displacement over the clip in pixels, x right
	DY     float64 `json:"dy"` // y down
	Travel float64 `json:"travel"`
	Angle  float64 `json:"angle"`  // degrees, atan2(-dy, dx): 0 right, 90 up
	Frames int     `json:"frames"` // frames with ink
}

// Moving reports whether the clip travelled at least MinTravel pixels.
func (e MotionEstimate) Moving() bool { return e.Frames >= 2 && e.Travel >= MinTravel }

// EstimateMotion measures the displacement of a clip (T,C,H,W) in [-1, 1] (C >= 1; the ink
// uses every channel). Frames without ink are skipped.
func EstimateMotion(clip []float32, T, C, H, W int) MotionEstimate {
	if len(clip) != T*C*H*W {
		panic(fmt.Sprintf("eval: EstimateMotion: %d values for (%d,%d,%d,%d)", len(clip), T, C, H, W))
	}
	var ts, xs, ys []float64
	for t := range T {
		frame := clip[t*C*H*W : (t+1)*C*H*W]
		var sw, sx, sy float64
		for y := range H {
			for x := range W {
				dark := float32(-1)
				for c := range C {
					dark = max(dark, -clampUnit(frame[(c*H+y)*W+x]))
				}
				w := float64(dark+1) / 2
				if w < InkThreshold {
					continue
				}
				sw += w
				sx += w * (float64(x) + 0.5)
				sy += w * (float64(y) + 0.5)
			}
		}
		if sw > 0 {
			ts, xs, ys = append(ts, float64(t)), append(xs, sx/sw), append(ys, sy/sw)
		}
	}
	e := MotionEstimate{Frames: len(ts)}
	if len(ts) < 2 {
		return e
	}
	span := float64(T - 1)
	e.DX, e.DY = slope(ts, xs)*span, slope(ts, ys)*span
	e.Travel = math.Hypot(e.DX, e.DY)
	e.Angle = math.Atan2(-e.DY, e.DX) * 180 / math.Pi
	return e
}

// slope is the least-squares slope of v over t.
func slope(t, v []float64) float64 {
	var mt, mv float64
	for i := range t {
		mt += t[i]
		mv += v[i]
	}
	mt /= float64(len(t))
	mv /= float64(len(t))
	var num, den float64
	for i := range t {
		num += (t[i] - mt) * (v[i] - mv)
		den += (t[i] - mt) * (t[i] - mt)
	}
	return num / den
}

// DirectionHit reports whether e moves in direction m: at least MinTravel pixels, within
// ±HalfSector degrees.
func DirectionHit(e MotionEstimate, m dataset.Motion) bool {
	ux, uy := m.Direction()
	if !e.Moving() || (ux == 0 && uy == 0) {
		return false
	}
	cos := (e.DX*ux + e.DY*uy) / e.Travel
	return cos >= math.Cos(HalfSector*math.Pi/180)-1e-12
}

// NearestDirection is the translation whose direction is closest to e's ("" when e is static).
func NearestDirection(e MotionEstimate) dataset.Motion {
	if !e.Moving() {
		return ""
	}
	best, bestCos := dataset.Motion(""), -2.0
	for _, m := range Directions {
		ux, uy := m.Direction()
		if c := (e.DX*ux + e.DY*uy) / e.Travel; c > bestCos {
			best, bestCos = m, c
		}
	}
	return best
}

// ---- prompts and the report ----

// VideoPrompt is one held-in video prompt, "a <name> moving <direction>", with the training
// clip of the same direction that is its ceiling control.
type VideoPrompt struct {
	Caption string         `json:"caption"`
	Concept string         `json:"concept"`
	Name    string         `json:"name"`
	Motion  dataset.Motion `json:"motion"`
	Clip    int            `json:"clip"` // index of a training clip of this motion
}

// VideoPrompts picks n prompts: a seeded random subset of the concepts of the training clips,
// prompt i asking for Directions[i%8] (so the directions are balanced), and for each a seeded
// random training clip of that direction as the dataset control.
func VideoPrompts(clips []dataset.Clip, n int, seed uint64) ([]VideoPrompt, error) {
	type concept struct{ id, name string }
	var concepts []concept
	seen := map[string]bool{}
	byMotion := map[dataset.Motion][]int{}
	for i := range clips {
		c := &clips[i]
		if c.Split != dataset.SplitTrain {
			continue
		}
		if !seen[c.Concept] {
			seen[c.Concept] = true
			concepts = append(concepts, concept{c.Concept, c.Name})
		}
		byMotion[c.Motion] = append(byMotion[c.Motion], i)
	}
	if n < 1 || n > len(concepts) {
		return nil, fmt.Errorf("%d prompts asked for, the training clips have %d concepts", n, len(concepts))
	}
	for _, m := range Directions[:min(n, len(Directions))] {
		if len(byMotion[m]) == 0 {
			return nil, fmt.Errorf("no training clip moves %s", m)
		}
	}
	rng := seedStream(seed, 3)
	rng.Shuffle(len(concepts), func(i, j int) { concepts[i], concepts[j] = concepts[j], concepts[i] })
	out := make([]VideoPrompt, n)
	for i, c := range concepts[:n] {
		m := Directions[i%len(Directions)]
		cand := byMotion[m]
		out[i] = VideoPrompt{Caption: dataset.VideoCaption(c.name, m), Concept: c.id, Name: c.name, Motion: m,
			Clip: cand[rng.IntN(len(cand))]}
	}
	return out, nil
}

// Video conditions.
const (
	CondDataset = "dataset" // the training clip of each prompt's direction (ceiling)
)

// MotionRow is one hit rate of the video measure.
type MotionRow struct {
	Condition string `json:"condition"` // samples, shuffled, dataset
	Rate
	Static int     `json:"static"` // clips that travelled less than MinTravel
	Chance float64 `json:"chance"` // 1/8: a uniformly random direction
}

// ClipResult is the measured motion of one sample and of its dataset control.
type ClipResult struct {
	Caption  string         `json:"caption"`
	Motion   dataset.Motion `json:"motion"`
	Sample   MotionEstimate `json:"sample"`
	Measured dataset.Motion `json:"measured"` // nearest direction of the sample ("" static)
	Hit      bool           `json:"hit"`
	Clip     int            `json:"clip"`
	ClipHit  bool           `json:"clip_hit"`
}

// VideoReport is the result of the video measure.
type VideoReport struct {
	Primary      MotionRow               `json:"primary"` // samples
	Rows         []MotionRow             `json:"rows"`
	PerDirection map[dataset.Motion]Rate `json:"per_direction"` // samples, by prompted direction
	Clips        []ClipResult            `json:"clips"`
}

// EvalVideos scores samples (N,T,3,32,32) in [-1, 1], sample i generated for prompts[i]; the
// dataset control reads the prompts' clips from v. seed draws the shuffled pairing.
func EvalVideos(v *dataset.VideoDataset, prompts []VideoPrompt, samples []float32, T int, seed uint64) (*VideoReport, error) {
	n := len(prompts)
	per := T * imageDim
	switch {
	case n == 0:
		return nil, fmt.Errorf("no prompts")
	case len(samples) != n*per:
		return nil, fmt.Errorf("%d sample values for %d prompts of %d frames, want %d", len(samples), n, T, n*per)
	}
	const C, S = dataset.Channels, dataset.ImageSize
	rep := &VideoReport{PerDirection: map[dataset.Motion]Rate{}}
	clip := make([]float32, dataset.ClipBytes)
	est := make([]MotionEstimate, n)
	perHits, perN := map[dataset.Motion]int{}, map[dataset.Motion]int{}
	var hits, static, clipHits, clipStatic int
	for i, p := range prompts {
		est[i] = EstimateMotion(samples[i*per:(i+1)*per], T, C, S, S)
		v.ClipFloat32(clip, p.Clip)
		ce := EstimateMotion(clip, dataset.Frames, C, S, S)
		r := ClipResult{Caption: p.Caption, Motion: p.Motion, Sample: est[i], Measured: NearestDirection(est[i]),
			Hit: DirectionHit(est[i], p.Motion), Clip: p.Clip, ClipHit: DirectionHit(ce, v.Clips[p.Clip].Motion)}
		rep.Clips = append(rep.Clips, r)
		perN[p.Motion]++
		if r.Hit {
			hits++
			perHits[p.Motion]++
		}
		if !est[i].Moving() {
			static++
		}
		if r.ClipHit {
			clipHits++
		}
		if !ce.Moving() {
			clipStatic++
		}
	}
	const chance = 1.0 / 8
	rep.Primary = MotionRow{Condition: CondSamples, Rate: NewRate(hits, n), Static: static, Chance: chance}
	rep.Rows = append(rep.Rows, rep.Primary)
	if n >= 2 {
		perm := derangement(n, seedStream(seed, 4))
		sh := 0
		for i := range n {
			if DirectionHit(est[i], prompts[perm[i]].Motion) {
				sh++
			}
		}
		rep.Rows = append(rep.Rows, MotionRow{Condition: CondShuffled, Rate: NewRate(sh, n), Static: static, Chance: chance})
	}
	rep.Rows = append(rep.Rows, MotionRow{Condition: CondDataset, Rate: NewRate(clipHits, n), Static: clipStatic, Chance: chance})
	for m, c := range perN {
		rep.PerDirection[m] = NewRate(perHits[m], c)
	}
	return rep, nil
}
