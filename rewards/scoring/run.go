// The scoring pipeline: inputs decoded in parallel (a bounded window ahead of the model),
// scored in order in batches on the model's device, one result per input; an input that
// cannot be read becomes an error row (or stops the run with Strict).
//
// Test: go test ./rewards/scoring -run Run
package scoring

import (
	"context"
	"fmt"
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

	BatchSize int // samples per model call (default 16)
	Workers   int // decoding goroutines (default GOMAXPROCS)
	Strict    bool

	// Progress, when set, is called after every batch with the items finished so far.
	Progress func(done, total int)
}

// Result is the outcome for one item.
type Result struct {
	Item
	NumFrames int       // frames scored (clips)
	FPS       float64   // sampling rate used (clips; 0: spread over the clip)
	Raw       []float32 // (D) raw scores; nil on error
	Z         []float64 // (D) z-scores with the model's calibration; nil on error
	Err       string    // why the input has no scores
}

// OK reports whether the item was scored.
func (r *Result) OK() bool { return r.Err == "" }

// sample is a decoded input ready for batching.
type sample struct {
	pix       []float32 // (T,3,H,W) or (3,H,W)
	numFrames int
	fps       float64
	err       error
}

// Run scores items and returns one result per item, in order. It stops early when ctx is
// cancelled (returning ctx's error) or, with Strict, at the first unreadable input.
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Decoding: workers fill slots; at most `window` items are decoded ahead of the model,
	// so item i uses slot i % window (item i - window has been taken from it before item i
	// gets its token).
	window := 4 * s.BatchSize
	ready := make([]chan sample, window)
	for i := range ready {
		ready[i] = make(chan sample, 1)
	}
	tokens := make(chan struct{}, window)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ready[i%window] <- s.decode(&items[i])
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

	results := make([]Result, len(items))
	var batch []int // indices into items of decoded samples waiting for the model
	var pix []float32
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.scoreBatch(items, batch, pix, results)
		batch, pix = batch[:0], pix[:0]
		return err
	}
	for i := range items {
		var smp sample
		select {
		case smp = <-ready[i%window]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		<-tokens
		results[i] = Result{Item: items[i], NumFrames: smp.numFrames, FPS: smp.fps}
		if smp.err != nil {
			if s.Strict {
				return nil, smp.err
			}
			results[i].Err = smp.err.Error()
		} else {
			batch = append(batch, i)
			pix = append(pix, smp.pix...)
			if len(batch) == s.BatchSize {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		if s.Progress != nil && (len(batch) == 0 || i == len(items)-1) {
			s.Progress(i+1-len(batch), len(items))
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if s.Progress != nil {
		s.Progress(len(items), len(items))
	}
	return results, nil
}

// decode reads and fits one input, turning panics of image decoders into errors.
func (s *Scorer) decode(it *Item) (smp sample) {
	defer func() {
		if r := recover(); r != nil {
			smp = sample{err: fmt.Errorf("%s: decoder failed: %v", it.Path, r)}
		}
	}()
	g := s.Geometry
	if !s.Clips {
		img, err := LoadImage(it.Path)
		if err != nil {
			return sample{err: err}
		}
		pix, err := Fit(img, g)
		if err != nil {
			return sample{err: fmt.Errorf("%s: %w", it.Path, err)}
		}
		return sample{pix: pix}
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
	smp.numFrames, smp.fps = T, fps
	if T != s.Frames {
		smp.err = fmt.Errorf("%s: the list asks for %d frames, the reward model reads %d", it.Path, T, s.Frames)
		return smp
	}
	frames, err := LoadClipFrames(it.Path, src, T, fps)
	if err != nil {
		smp.err = err
		return smp
	}
	n := 3 * g.Height * g.Width
	smp.pix = make([]float32, 0, T*n)
	for k, fr := range frames {
		pix, err := Fit(fr, g)
		if err != nil {
			smp.err = fmt.Errorf("%s frame %d: %w", it.Path, k, err)
			return smp
		}
		smp.pix = append(smp.pix, pix...)
	}
	return smp
}

// scoreBatch runs the model on the decoded samples of batch and stores their scores; a
// model error marks every row of the batch (or is returned with Strict).
func (s *Scorer) scoreBatch(items []Item, batch []int, pix []float32, results []Result) error {
	B := len(batch)
	shape := []int{B, 3, s.Geometry.Height, s.Geometry.Width}
	if s.Clips {
		shape = []int{B, s.Frames, 3, s.Geometry.Height, s.Geometry.Width}
	}
	x := s.Dev.FromHost(slices.Clone(pix), shape...)
	defer s.Dev.Free(x)
	prompts := make([]string, B)
	for k, i := range batch {
		prompts[k] = items[i].Prompt
	}
	sc, err := scoreSafely(s.Model, rewards.Batch{Pixels: x, Prompts: prompts})
	if err != nil {
		if s.Strict {
			return fmt.Errorf("scoring %s and %d more: %w", items[batch[0]].Path, B-1, err)
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
