// The scoring pipeline: inputs decoded in parallel (a bounded window ahead of the model),
// scored in order in batches on the model's device, one result per input (per window of a
// clip with Windows); an input that cannot be read becomes an error row (or stops the run
// with Strict).
//
// Test: go test ./rewards/scoring -run Run
package scoring

import (
	"context"
	"fmt"
	"image"
	"runtime"
	"slices"
	"sync"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// Scorer scores items with a reward model.
type Scorer struct {
	Model rewards.Model
	Dev   kernels.Device // where Batch.Pixels live (the native model's device; any for ONNX)

	Geometry onnx.Geometry // the model's input size and resize
	Clips    bool          // the model reads clips (B,T,3,H,W)
	Frames   int           // T: frames per clip (default when an item names none)
	FPS      float64       // sampling rate of clips; 0 spreads Frames over the whole clip
	// SourceFPS is the frame rate of folders of frames (GIFs carry their own timing).
	SourceFPS float64
	// Windows is how many windows of Frames frames at FPS a clip gives, each scored as a
	// sample of its own (SelectWindows): 0 or 1 the first (with FPS 0, the Frames spread over
	// the clip), n > 1 up to n spread over the clip, AllWindows every one that fits.
	Windows int

	BatchSize int // samples per model call (default 16)
	Workers   int // decoding goroutines (default GOMAXPROCS)
	Strict    bool

	// Progress, when set, is called after every batch with the items finished so far and
	// the results so far (more than the items with Windows).
	Progress func(done, total, results int)
}

// AllWindows is Scorer.Windows for every window of a clip.
const AllWindows = -1

// Result is the outcome for one item (one window of it with Scorer.Windows).
type Result struct {
	Item
	NumFrames int       // frames scored (clips)
	FPS       float64   // sampling rate used (clips; 0: spread over the clip)
	Start     float64   // the window's start in seconds (clips)
	Windows   int       // windows joined into this row (ReduceWindows)
	Raw       []float32 // (D) raw scores; nil on error
	Z         []float64 // (D) z-scores with the model's calibration; nil on error
	Err       string    // why the input has no scores
}

// OK reports whether the item was scored.
func (r *Result) OK() bool { return r.Err == "" }

// InputRows is the leading rows of rows that are one input's: Run gives an input's windows
// (and its error row) together.
func InputRows(rows []Result) []Result {
	n := 0
	for n < len(rows) && rows[n].Index == rows[0].Index {
		n++
	}
	return rows[:n]
}

// sample is a decoded input ready for batching.
type sample struct {
	pix       []float32 // (T,3,H,W) or (3,H,W)
	numFrames int
	fps       float64
	start     float64
	err       error
}

// maxClips is Windows as SelectWindows' maxClips.
func (s *Scorer) maxClips() int {
	switch s.Windows {
	case 0:
		return 1
	case AllWindows:
		return 0
	}
	return s.Windows
}

// Run scores items and returns their results in order: one per item, or with Windows one
// per window of each (and an error row for an item that failed after some windows). It stops
// early when ctx is cancelled (returning ctx's error) or, with Strict, at the first
// unreadable input.
func (s *Scorer) Run(ctx context.Context, items []Item) ([]Result, error) {
	if s.BatchSize < 1 {
		s.BatchSize = 16
	}
	if s.Workers < 1 {
		s.Workers = runtime.GOMAXPROCS(0)
	}
	if s.Clips && s.Frames < 1 {
		return nil, fmt.Errorf("scoring clips needs a frame count, got %d", s.Frames)
	}
	if s.Windows < AllWindows {
		return nil, fmt.Errorf("scoring %d windows per clip", s.Windows)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Decoding: workers fill slots; at most `window` items are decoded ahead of the model,
	// so item i uses slot i % window (item i - window has been taken from it before item i
	// gets its token). An item's samples come through a channel of its own that holds
	// perItem of them; a clip of many windows waits for the model there. Both bound the
	// samples held to about 4 batches.
	window, perItem := 4*s.BatchSize, 1
	if s.maxClips() != 1 {
		window = s.Workers + 1
		perItem = max(1, 4*s.BatchSize/window)
	}
	ready := make([]chan chan sample, window)
	for i := range ready {
		ready[i] = make(chan chan sample, 1)
	}
	tokens := make(chan struct{}, window)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				out := make(chan sample, perItem)
				ready[i%window] <- out
				s.decode(ctx, &items[i], out)
				close(out)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range items {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stops the feeder, workers drain

	var (
		results []Result
		batch   []int // indices into results of decoded samples waiting for the model
		pix     []float32
		first   int // the item of batch[0]: those before it are finished
	)
	progress := func(done int) {
		if s.Progress != nil {
			s.Progress(done, len(items), len(results)-len(batch))
		}
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.scoreBatch(results, batch, pix)
		batch, pix = batch[:0], pix[:0]
		return err
	}
	for i := range items {
		var out chan sample
		select {
		case out = <-ready[i%window]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		<-tokens
		for smp := range out {
			r := Result{Item: items[i], NumFrames: smp.numFrames, FPS: smp.fps, Start: smp.start}
			if smp.err != nil {
				if s.Strict {
					return nil, smp.err
				}
				r.Err = smp.err.Error()
				results = append(results, r)
				continue
			}
			if len(batch) == 0 {
				first = i
			}
			results = append(results, r)
			batch = append(batch, len(results)-1)
			pix = append(pix, smp.pix...)
			if len(batch) == s.BatchSize {
				if err := flush(); err != nil {
					return nil, err
				}
				progress(i)
			}
		}
		if err := ctx.Err(); err != nil { // the worker stopped sending
			return nil, err
		}
		if len(batch) == 0 {
			progress(i + 1)
		} else if i == len(items)-1 {
			progress(first)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	progress(len(items))
	return results, nil
}

// decode reads and fits one input and sends its samples to out (a clip's windows in order,
// then an error if one stopped it), turning panics of image decoders into errors. It gives up
// when ctx is cancelled.
func (s *Scorer) decode(ctx context.Context, it *Item, out chan<- sample) {
	send := func(smp sample) error {
		select {
		case out <- smp:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		if r := recover(); r != nil {
			send(sample{err: fmt.Errorf("%s: decoder failed: %v", it.Path, r)})
		}
	}()
	g := s.Geometry
	if !s.Clips {
		img, err := LoadImage(it.Path)
		if err != nil {
			send(sample{err: err})
			return
		}
		pix, err := Fit(img, g)
		if err != nil {
			err = fmt.Errorf("%s: %w", it.Path, err)
		}
		send(sample{pix: pix, err: err})
		return
	}
	T, fps, src := s.Frames, s.FPS, s.SourceFPS
	if it.NumFrames > 0 {
		T = it.NumFrames
	}
	if it.FPS > 0 {
		fps = it.FPS
	}
	if it.SourceFPS > 0 {
		src = it.SourceFPS
	}
	if T != s.Frames {
		send(sample{numFrames: T, fps: fps, err: fmt.Errorf("%s: the list asks for %d frames, the reward model reads %d", it.Path, T, s.Frames)})
		return
	}
	fit := func(img image.Image) ([]float32, error) { return Fit(img, g) }
	err := EachClipWindow(it.Path, src, T, fps, s.maxClips(), fit, func(start float64, frames [][]float32) error {
		return send(sample{pix: slices.Concat(frames...), numFrames: T, fps: fps, start: start})
	})
	if err != nil && ctx.Err() == nil {
		send(sample{numFrames: T, fps: fps, err: err})
	}
}

// scoreBatch runs the model on the decoded samples of batch and stores their scores; a
// model error marks every row of the batch (or is returned with Strict).
func (s *Scorer) scoreBatch(results []Result, batch []int, pix []float32) error {
	B := len(batch)
	shape := []int{B, 3, s.Geometry.Height, s.Geometry.Width}
	if s.Clips {
		shape = []int{B, s.Frames, 3, s.Geometry.Height, s.Geometry.Width}
	}
	x := s.Dev.FromHost(slices.Clone(pix), shape...)
	defer s.Dev.Free(x)
	prompts, fps := make([]string, B), make([]float64, B)
	for k, i := range batch {
		prompts[k], fps[k] = results[i].Prompt, results[i].FPS
	}
	sc, err := scoreSafely(s.Model, rewards.Batch{Pixels: x, Prompts: prompts, FPS: fps})
	if err != nil {
		if s.Strict {
			return fmt.Errorf("scoring %s and %d more: %w", results[batch[0]].Path, B-1, err)
		}
		for _, i := range batch {
			results[i].Err = "reward model: " + err.Error()
		}
		return nil
	}
	for k, i := range batch {
		results[i].Raw, results[i].Z = sc.Raw[k], sc.Z[k]
	}
	return nil
}

func scoreSafely(m rewards.Model, b rewards.Batch) (sc *rewards.Scores, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return rewards.ScoreBatch(m, b)
}
