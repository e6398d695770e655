// align retrieval: the honest quality measure of a base generator on its own training data
// (diffusion/eval). Images: for held-in prompts, how often a nearest training image (L2 in
// pixel space) of the sample shows the prompted emoji, top-1 and top-k, against the exact
// chance rate, with a floor (shuffled prompts) and a reference (real images, leave-one-out).
// Video: how often the sample moves in the prompted direction, against 1/8, with the dataset's
// own clips as the ceiling.
//
// Test: go test ./cmd/align -run Retrieval
package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/diffusion/eval"
)

// RetrievalOptions are the flags of `align retrieval`.
type RetrievalOptions struct {
	Model             string
	Adapters          []string // --adapter PATH[=WEIGHT], repeatable: fine-tunings merged into it
	Data              string
	Video             bool // asserts a video model (the model file decides)
	NumPrompts        int
	TopK              int
	NumInferenceSteps int
	GuidanceScale     float64
	Sampler           string
	Shift             float64
	Seed              uint64
	BatchSize         int
	SaveGrid          string
	GridScale         int
	JSON              bool
}

// retrievalReport is what `align retrieval --json` prints.
type retrievalReport struct {
	Model             string            `json:"model"`
	Adapters          []adapterWeight   `json:"adapters,omitempty"`
	Data              string            `json:"data"`
	DatasetVersion    string            `json:"dataset_version"`
	Kind              string            `json:"kind"`
	Seed              uint64            `json:"seed"`
	NumPrompts        int               `json:"num_prompts"`
	Sampler           string            `json:"sampler"`
	NumInferenceSteps int               `json:"num_inference_steps"`
	GuidanceScale     float64           `json:"guidance_scale"`
	Shift             float64           `json:"shift"`
	UnknownWords      []string          `json:"unknown_words,omitempty"`
	Images            *eval.ImageReport `json:"images,omitempty"`
	Video             *eval.VideoReport `json:"video,omitempty"`
	Grid              string            `json:"grid,omitempty"`
	Seconds           float64           `json:"seconds"`
}

// maxGridRows is the number of prompts drawn by --save-grid.
const maxGridRows = 32

func newCmdRetrieval(runF func(*RetrievalOptions) error) *cobra.Command {
	opts := &RetrievalOptions{}
	cmd := &cobra.Command{
		Use:   "retrieval",
		Short: "Measure how often samples show the prompted emoji or motion",
		Long: `Sample the model for held-in prompts (training concepts, one prompt per concept, picked
by --seed) and measure them against the training data.

Image models: a sample scores a hit at top-k when one of its k nearest training images (L2
on the 32x32 RGB pixels in [-1, 1]) shows the prompted emoji: its code points, the caption's
skin tone included, in either rendering (Twemoji or Noto). The gallery holds each distinct
training image once (an image shared by several emoji shows each of them). The table gives
top-1 and top-k rates with 95% Wilson intervals and the exact chance rate 1 - C(G-m,k)/C(G,k)
(G gallery images, m of them of the prompted emoji), in two feature spaces (pixel32, the
primary, and pool8, 4x4 box averages) and at two identity levels (emoji; concept: any skin
tone). Two controls: "shuffled" judges each sample against another prompt (the floor of a
model that ignores its prompt); "leave-one-out" queries with a real training image of the
prompted emoji, left out of the gallery (what a correct image in the other rendering
scores). A model that reproduces its training images exactly scores 100% top-1.

Video models: prompts "a <name> moving <direction>", the eight directions in turn. The
motion is the least-squares track of the centroid of the non-white pixels; a hit travels at
least 2 px within ±22.5° of the prompted direction (chance 1/8). "dataset" runs a training
clip of each prompted direction through the same estimator (the ceiling).

Everything (prompts, noise, controls) follows from --seed.`,
		Example: `  $ align retrieval --model base/model.safetensors
  $ align retrieval --model base/model.safetensors --num-prompts 100 --num-inference-steps 20 --save-grid nn.png
  $ align retrieval --model video/model.safetensors --video --json > video-retrieval.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return retrievalRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "model file (.safetensors) written by align pretrain, or default-video (default: the embedded image model)")
	f.StringArrayVar(&opts.Adapters, "adapter", nil, adapterUsage)
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory the model was trained on (align data prepare or import)")
	f.BoolVar(&opts.Video, "video", false, "expect a video model (the model file decides the kind)")
	f.IntVar(&opts.NumPrompts, "num-prompts", 200, "held-in prompts, one per training concept (report with >= 100)")
	f.IntVar(&opts.TopK, "top-k", 5, "neighbours that may show the prompted emoji (images)")
	f.IntVar(&opts.NumInferenceSteps, "num-inference-steps", 28, "denoising steps")
	f.Float64Var(&opts.GuidanceScale, "guidance-scale", 4.0, "classifier-free guidance scale (<= 1 disables guidance)")
	f.StringVar(&opts.Sampler, "sampler", diffusion.SamplerEuler, "euler, heun or sde")
	f.Float64Var(&opts.Shift, "shift", 0, "timestep shift (0: the model's default)")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the prompts, the noise and the controls")
	f.IntVar(&opts.BatchSize, "batch-size", 25, "samples generated together (sample i's noise depends only on --seed and i)")
	f.StringVar(&opts.SaveGrid, "save-grid", "", "write samples and their nearest training images to this PNG (GIF for video)")
	f.IntVar(&opts.GridScale, "grid-scale", 2, "magnification of --save-grid")
	f.BoolVar(&opts.JSON, "json", false, "print the full report (every prompt's neighbours) as JSON")
	return cmd
}

func (o *RetrievalOptions) validate() error {
	if o.Data == "" {
		return flagErrorf("--data must not be empty")
	}
	if o.NumPrompts < 1 {
		return flagErrorf("--num-prompts must be >= 1, got %d", o.NumPrompts)
	}
	if o.TopK < 1 || o.TopK > 100 {
		return flagErrorf("--top-k must be in 1..100, got %d", o.TopK)
	}
	if err := checkSampling(o.NumInferenceSteps, o.GuidanceScale, o.Shift, o.Sampler); err != nil {
		return err
	}
	if o.BatchSize < 1 {
		return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
	}
	if o.GridScale < 1 || o.GridScale > 16 {
		return flagErrorf("--grid-scale must be in 1..16, got %d", o.GridScale)
	}
	return nil
}

func retrievalRun(cmd *cobra.Command, opts *RetrievalOptions) error {
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	adapters, err := parseAdapters(opts.Adapters)
	if err != nil {
		return err
	}
	// The model's kind decides; --video only checks it, or without --model (or adapters
	// naming their base) picks the embedded video model.
	var m *diffusion.DiT
	var name string
	if opts.Model == "" && opts.Video && len(adapters) == 0 {
		m, name, err = loadGeneratorKind(dev, "", true, nil)
	} else {
		m, name, err = loadGeneratorMix(dev, opts.Model, adapters)
	}
	if err != nil {
		return err
	}
	cfg := &m.Config
	video := cfg.Kind == diffusion.KindVideo
	switch {
	case opts.Video && !video:
		return usageError{fmt.Errorf("--video given but %s is an %s model", name, cfg.Kind)}
	case cfg.ImageSize != dataset.ImageSize || cfg.Channels != dataset.Channels || (video && cfg.Frames != dataset.Frames):
		return fmt.Errorf("%s makes %dx%dx%d samples of %d frames; the retrieval measure takes %dx%dx%d (%d frames for video)",
			name, cfg.Channels, cfg.ImageSize, cfg.ImageSize, cfg.Frames, dataset.Channels, dataset.ImageSize,
			dataset.ImageSize, dataset.Frames)
	}
	if opts.NumPrompts < 100 {
		fmt.Fprintf(stderr, "align: warning: %d prompts; report the measure with at least 100 (the intervals are wide)\n", opts.NumPrompts)
	}
	rep := retrievalReport{Model: opts.Model, Adapters: adapters, Data: opts.Data, Kind: cfg.Kind, Seed: opts.Seed, NumPrompts: opts.NumPrompts,
		Sampler: opts.Sampler, NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale, Shift: opts.Shift}
	if rep.Shift == 0 {
		rep.Shift = cfg.Shift
	}

	var (
		captions   []string
		imgData    *dataset.Dataset
		vidData    *dataset.VideoDataset
		imgPrompts []eval.ImagePrompt
		vidPrompts []eval.VideoPrompt
	)
	if video {
		if vidData, err = dataset.LoadVideo(opts.Data); err != nil {
			return err
		}
		if err := vidData.CheckMotionLabels("the video measure (motion direction)"); err != nil {
			return err
		}
		rep.DatasetVersion = vidData.Manifest.DatasetVersion
		if vidPrompts, err = eval.VideoPrompts(vidData.Clips, opts.NumPrompts, opts.Seed); err != nil {
			return usageError{fmt.Errorf("--num-prompts: %w", err)}
		}
		for _, p := range vidPrompts {
			captions = append(captions, p.Caption)
		}
	} else {
		if imgData, err = dataset.Load(opts.Data); err != nil {
			return err
		}
		if S := imgData.Size(); S != dataset.ImageSize {
			return fmt.Errorf("%s holds %dx%d images; the retrieval measure's feature spaces are defined at %dx%d", opts.Data, S, S, dataset.ImageSize, dataset.ImageSize)
		}
		rep.DatasetVersion = imgData.Manifest.DatasetVersion
		if imgPrompts, err = eval.ImagePrompts(imgData.Items, opts.NumPrompts, opts.Seed); err != nil {
			return usageError{fmt.Errorf("--num-prompts: %w", err)}
		}
		for _, p := range imgPrompts {
			captions = append(captions, p.Caption)
		}
	}

	samples, unknown, err := sampleInBatches(m, captions, opts, stderr)
	if err != nil {
		return err
	}
	rep.UnknownWords = unknown
	if len(unknown) > 0 {
		fmt.Fprintf(stderr, "align: warning: %d prompt words are not in the model's vocabulary (%s); was it trained on %s?\n",
			len(unknown), strings.Join(unknown[:min(len(unknown), 8)], ", "), opts.Data)
	}

	if video {
		if rep.Video, err = eval.EvalVideos(vidData, vidPrompts, samples, cfg.Frames, opts.Seed); err != nil {
			return err
		}
	} else {
		g := eval.NewGallery(imgData)
		if rep.Images, err = eval.EvalImages(g, imgPrompts, samples, opts.TopK, opts.Seed); err != nil {
			return err
		}
		if opts.SaveGrid != "" {
			if err := diffusion.WritePNG(opts.SaveGrid, imageRetrievalGrid(rep.Images, g, samples, opts.GridScale)); err != nil {
				return err
			}
			rep.Grid = opts.SaveGrid
		}
	}
	if video && opts.SaveGrid != "" {
		if err := diffusion.WriteGIF(opts.SaveGrid, videoRetrievalGrid(rep.Video, samples, cfg.Frames, opts.GridScale), 12); err != nil {
			return err
		}
		rep.Grid = opts.SaveGrid
	}
	rep.Seconds = time.Since(start).Seconds()

	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printRetrieval(out, &rep)
	return nil
}

// sampleInBatches generates one sample per caption, batch by batch; sample i draws its noise
// from the seed's stream i, so the batch size does not change the samples. It returns the
// samples (B, SampleShape...) and the captions' out-of-vocabulary words.
func sampleInBatches(m *diffusion.DiT, captions []string, opts *RetrievalOptions, stderr io.Writer) ([]float32, []string, error) {
	D := m.Config.SampleSize()
	out := make([]float32, 0, len(captions)*D)
	nb := (len(captions) + opts.BatchSize - 1) / opts.BatchSize
	bar := newProgressBar(stderr, "sampling", nb*opts.NumInferenceSteps)
	var unknown []string
	for b := range nb {
		lo, hi := b*opts.BatchSize, min((b+1)*opts.BatchSize, len(captions))
		so := diffusion.SampleOptions{NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale,
			Shift: opts.Shift, Seed: opts.Seed, Sampler: opts.Sampler, FirstIndex: lo}
		so.Progress = func(done, total int) {
			bar.Update(b*opts.NumInferenceSteps+done, fmt.Sprintf("batch %d/%d", b+1, nb))
		}
		x, enc, err := diffusion.Sample(m, captions[lo:hi], so)
		if err != nil {
			return nil, nil, err
		}
		host := make([]float32, x.Len())
		x.Dev.CopyToHost(host, x)
		x.Dev.Free(x)
		out = append(out, host...)
		for _, w := range enc.Unknown {
			if !slices.Contains(unknown, w) {
				unknown = append(unknown, w)
			}
		}
	}
	bar.Finish(counted(len(captions), "sample"))
	return out, unknown, nil
}

// ---- output ----

func retrievalPct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

func retrievalCI(r eval.Rate) string { return fmt.Sprintf("[%.1f, %.1f]", 100*r.Low, 100*r.High) }

func chancePct(c float64) string {
	if c < 0.01 {
		return fmt.Sprintf("%.3f%%", 100*c)
	}
	return retrievalPct(c)
}

func printRetrieval(w io.Writer, rep *retrievalReport) {
	fmt.Fprintf(w, "model %s (%s), data %s (%s)\n", rep.Model, rep.Kind, rep.Data, rep.DatasetVersion)
	fmt.Fprintf(w, "%d held-in prompts, seed %d; %s, %d steps, guidance %g, shift %g\n", rep.NumPrompts, rep.Seed,
		rep.Sampler, rep.NumInferenceSteps, rep.GuidanceScale, rep.Shift)
	if r := rep.Images; r != nil {
		k := r.TopK
		fmt.Fprintf(w, "gallery: %d distinct training images (of %d); hit: one of the k nearest shows the prompted emoji (its code points)\n",
			r.Gallery, r.GalleryImages)
		fmt.Fprintf(w, "shuffled: each sample judged against another prompt (floor); leave-one-out: a real image of the prompted\n"+
			"emoji, itself out of the gallery (a correct image in the other rendering)\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "SPACE\tIDENTITY\tCONDITION\tTOP-1\t95%% CI\tCHANCE\tTOP-%d\t95%% CI\tCHANCE\n", k)
		for _, s := range eval.Spaces {
			for _, id := range eval.Identities {
				for _, cond := range eval.Conditions {
					r1, ok := r.Row(s, id, cond, 1)
					if !ok {
						continue
					}
					rk, _ := r.Row(s, id, cond, k)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s, id, cond, retrievalPct(r1.Rate.Rate), retrievalCI(r1.Rate),
						chancePct(r1.Chance), retrievalPct(rk.Rate.Rate), retrievalCI(rk.Rate), chancePct(rk.Chance))
				}
			}
		}
		tw.Flush()
		p := r.Primary
		fmt.Fprintf(w, "\nprimary (pixel32, emoji, top-%d): %s %s of %d prompts, chance %s\n", k, retrievalPct(p.Rate.Rate), retrievalCI(p.Rate),
			p.N, chancePct(p.Chance))
	}
	if r := rep.Video; r != nil {
		fmt.Fprintf(w, "hit: the centroid track travels >= %g px within ±%g° of the prompted direction\n\n", eval.MinTravel, eval.HalfSector)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "CONDITION\tHITS\tRATE\t95%% CI\tSTATIC\tCHANCE\n")
		for _, row := range r.Rows {
			fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\t%s\n", row.Condition, row.Hits, row.N, retrievalPct(row.Rate.Rate), retrievalCI(row.Rate),
				row.Static, retrievalPct(row.Chance))
		}
		tw.Flush()
		var per []string
		for _, m := range eval.Directions {
			if pr, ok := r.PerDirection[m]; ok {
				per = append(per, fmt.Sprintf("%s %d/%d", strings.TrimPrefix(string(m), "move-"), pr.Hits, pr.N))
			}
		}
		fmt.Fprintf(w, "\nsamples by direction: %s\n", strings.Join(per, ", "))
		p := r.Primary
		fmt.Fprintf(w, "primary (direction within ±%g°): %s %s of %d prompts, chance %s\n", eval.HalfSector, retrievalPct(p.Rate.Rate),
			retrievalCI(p.Rate), p.N, retrievalPct(p.Chance))
	}
	if rep.Grid != "" {
		fmt.Fprintf(w, "grid: %s\n", rep.Grid)
	}
}

// ---- grids ----

var (
	hitColour  = color.NRGBA{0, 170, 0, 255}
	missColour = color.NRGBA{200, 0, 0, 255}
)

// framed returns img with a one-pixel border of colour c.
func framed(img *image.NRGBA, c color.NRGBA) *image.NRGBA {
	out := image.NewNRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	b := out.Rect
	for x := b.Min.X; x < b.Max.X; x++ {
		out.SetNRGBA(x, b.Min.Y, c)
		out.SetNRGBA(x, b.Max.Y-1, c)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		out.SetNRGBA(b.Min.X, y, c)
		out.SetNRGBA(b.Max.X-1, y, c)
	}
	return out
}

// imageRetrievalGrid draws one row per prompt (the first maxGridRows): the sample (framed green
// when a top-k neighbour is a hit, red otherwise), its k nearest training images (hits framed
// green), then a real training image of the prompted emoji.
func imageRetrievalGrid(r *eval.ImageReport, g *eval.Gallery, samples []float32, scale int) *image.NRGBA {
	const S, C = dataset.ImageSize, dataset.Channels
	d := S * S * C
	var imgs []image.Image
	for i := range min(len(r.Prompts), maxGridRows) {
		p := &r.Prompts[i]
		s := diffusion.ImageFromCHW(samples[i*d:(i+1)*d], C, S, S)
		if p.Rank > 0 {
			imgs = append(imgs, framed(s, hitColour))
		} else {
			imgs = append(imgs, framed(s, missColour))
		}
		nn, real := r.NeighbourItems(g, i)
		for j, it := range nn {
			img := toNRGBA(dataset.ImageFromCHW(g.Data.Image(it), S, S))
			if p.Hits[j] {
				img = framed(img, hitColour)
			}
			imgs = append(imgs, img)
		}
		imgs = append(imgs, toNRGBA(dataset.ImageFromCHW(g.Data.Image(real), S, S)))
	}
	return diffusion.Grid(imgs, r.TopK+2, scale, 2)
}

func toNRGBA(img *image.RGBA) *image.NRGBA { // opaque, so the bytes are the same
	return &image.NRGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
}

// videoRetrievalGrid lays the first maxGridRows sample clips out in rows of 8 (the prompts
// cycle through the eight directions, so a column is one direction), framed green on a hit.
func videoRetrievalGrid(r *eval.VideoReport, samples []float32, T, scale int) []image.Image {
	const S, C = dataset.ImageSize, dataset.Channels
	d := S * S * C
	var clips [][]*image.NRGBA
	for i := range min(len(r.Clips), maxGridRows) {
		c := hitColour
		if !r.Clips[i].Hit {
			c = missColour
		}
		var frames []*image.NRGBA
		for t := range T {
			off := (i*T + t) * d
			frames = append(frames, framed(diffusion.ImageFromCHW(samples[off:off+d], C, S, S), c))
		}
		clips = append(clips, frames)
	}
	return diffusion.GridFrames(clips, len(eval.Directions), scale, 2)
}
