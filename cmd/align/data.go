// align data: build the emoji training sets (prepare), look at a built one (inspect) and list
// prompt sets drawn from its concepts (prompts).
//
// `align data prepare` downloads the pinned Twemoji, Noto and emojilib npm packages (checked by
// sha256), builds the 32x32 captioned image set and the 8-frame motion clips, and writes them to
// the output directory; see diffusion/dataset for the format.
//
// Test: go test ./cmd/align -run Data
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/rewards/scoring"
	"github.com/spf13/cobra"
)

// DataPrepareOptions are the flags of `align data prepare`.
type DataPrepareOptions struct {
	CacheDir   string
	SourcesDir string // --sources-dir: build from unpacked packages instead of the tarballs
	OutputDir  string
	VideoClips int
	Seed       uint64
	// SpriteScale (--clip-sprite-scale) multiplies the clips' sprite sizes.
	SpriteScale float64
	JSON        bool
}

// DataSourcesOptions are the flags of `align data sources`.
type DataSourcesOptions struct {
	CacheDir  string
	OutputDir string
}

// DataInspectOptions are the arguments and flags of `align data inspect`.
type DataInspectOptions struct {
	Dir          string
	ContactSheet string // PNG to write; "" writes none
	SheetImages  int
	JSON         bool
}

// DataPromptsOptions are the arguments and flags of `align data prompts`.
type DataPromptsOptions struct {
	Dir    string
	Split  string // --split train|heldout
	Part   string // --part i/n
	Limit  int    // --limit (0: all)
	Output string // -o (default: stdout)
	Video  bool   // --video: clip captions, the motions in turn

	part, parts int
}

// dataRunFuncs replace the run functions in flag tests; nil fields run the real commands.
type dataRunFuncs struct {
	prepare func(*DataPrepareOptions) error
	sources func(*DataSourcesOptions) error
	inspect func(*DataInspectOptions) error
	prompts func(*DataPromptsOptions) error
	imprt   func(*DataImportOptions) error
}

func newCmdData(runF *dataRunFuncs) *cobra.Command {
	if runF == nil {
		runF = &dataRunFuncs{}
	}
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Build, import and inspect training data",
		Long: "Build the 32x32 captioned emoji image set and the 8-frame motion clips from the pinned\n" +
			"Twemoji (CC-BY 4.0), Noto Emoji (Apache-2.0) and emojilib (MIT) npm packages, or import\n" +
			"your own captioned images or clips in the same layout.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCmdDataPrepare(runF.prepare), newCmdDataSources(runF.sources), newCmdDataInspect(runF.inspect),
		newCmdDataPrompts(runF.prompts), newCmdDataImport(runF.imprt))
	return cmd
}

func newCmdDataPrepare(runF func(*DataPrepareOptions) error) *cobra.Command {
	opts := &DataPrepareOptions{}
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Download the emoji packages and build the image and video datasets",
		Long: "Download emoji-datasource-twitter/google 16.0.0 and emojilib 4.0.3 with `npm pack` into the\n" +
			"cache directory (checked against pinned sha256; a verified tarball is not downloaded again),\n" +
			"then write images.u8 (N,3,32,32), images.jsonl, videos.u8 (B,8,3,32,32), videos.jsonl,\n" +
			"preview.gif and manifest.json to the output directory. Progress goes to stderr, the summary\n" +
			"to stdout.\n\n" +
			"--sources-dir builds the same files on a machine without network from an unpacked copy of the\n" +
			"packages' members: DIR/emoji.json and DIR/img/{twitter,google}/64/*.png from the two\n" +
			"emoji-datasource packages, DIR/emoji-en-US.json from emojilib's dist/ (nothing is downloaded\n" +
			"or checked against the pinned sha256; the manifest then records no packages).",
		Example: `  $ align data prepare
  $ align data prepare --output-dir data/emoji --video-clips 20000 --seed 0
  $ align data prepare --video-clips 0 --json     # images only, summary as JSON
  $ align data prepare --sources-dir emoji-src -o data/emoji   # offline, from unpacked packages
  $ align data prepare --clip-sprite-scale 1.5 -o data/emoji-big   # clips with larger sprites`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.VideoClips < 0 {
				return flagErrorf("--video-clips must be >= 0, got %d", opts.VideoClips)
			}
			if opts.SpriteScale < dataset.MinSpriteScale || opts.SpriteScale > dataset.MaxSpriteScale {
				return flagErrorf("--clip-sprite-scale must be within [%g, %g], got %g", dataset.MinSpriteScale, dataset.MaxSpriteScale, opts.SpriteScale)
			}
			if opts.OutputDir == "" || opts.CacheDir == "" {
				return flagErrorf("--output-dir and --cache-dir must not be empty")
			}
			if runF != nil {
				return runF(opts)
			}
			return dataPrepareRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.CacheDir, "cache-dir", filepath.Join("data", "cache"), "where the downloaded package tarballs are kept")
	cmd.Flags().StringVar(&opts.SourcesDir, "sources-dir", "", "build from this unpacked copy of the packages' members instead of downloading (see above)")
	cmd.Flags().StringVarP(&opts.OutputDir, "output-dir", "o", filepath.Join("data", "emoji"), "dataset directory to write")
	cmd.Flags().IntVar(&opts.VideoClips, "video-clips", 20000, "number of 8-frame video clips (0: images only)")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 0, "seed of the video clips (images and split do not depend on it)")
	cmd.Flags().Float64Var(&opts.SpriteScale, "clip-sprite-scale", 1, "multiply the clips' sprite sizes (1: translations 12-18 px of the 32 px frame; larger sprites are easier to recognise and leave less room to move)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	return cmd
}

func dataPrepareRun(cmd *cobra.Command, opts *DataPrepareOptions) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	o := dataset.Options{
		CacheDir:    opts.CacheDir,
		OutputDir:   opts.OutputDir,
		VideoClips:  opts.VideoClips,
		Seed:        opts.Seed,
		SpriteScale: opts.SpriteScale,
		Log:         cmd.ErrOrStderr(),
	}
	var s *dataset.Summary
	var err error
	if opts.SourcesDir != "" {
		s, err = dataset.PrepareFromDir(ctx, opts.SourcesDir, o)
	} else {
		s, err = dataset.Prepare(ctx, o)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errCancelled
		}
		return err
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return printPrepareSummary(out, s)
}

func newCmdDataSources(runF func(*DataSourcesOptions) error) *cobra.Command {
	opts := &DataSourcesOptions{}
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "Write the packages' members for align data prepare --sources-dir on another machine",
		Long: "Download (or find in the cache directory, checked against the pinned sha256) the three\n" +
			"packages and write the members align data prepare reads into the output directory, in the\n" +
			"layout of --sources-dir: emoji.json, emoji-en-US.json, img/{twitter,google}/64/*.png. The\n" +
			"PNGs are re-encoded without deflate compression (the same pixels), so that an archive of\n" +
			"the folder compresses well: xz packs it into 15 MB, against 24 MB for the original PNGs\n" +
			"and 136 MB for the tarballs. The dataset built from it is the one make data builds.",
		Example: `  $ align data sources -o emoji-src
  $ tar -C emoji-src -cf - . | xz -9 > sources.tar.xz   # copy it, then there:
  $ mkdir emoji-src && tar -C emoji-src -xJf sources.tar.xz && align data prepare --sources-dir emoji-src`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.OutputDir == "" || opts.CacheDir == "" {
				return flagErrorf("--output-dir and --cache-dir must not be empty")
			}
			if runF != nil {
				return runF(opts)
			}
			return dataSourcesRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.CacheDir, "cache-dir", filepath.Join("data", "cache"), "where the downloaded package tarballs are kept")
	cmd.Flags().StringVarP(&opts.OutputDir, "output-dir", "o", "", "directory to write the members to (required)")
	return cmd
}

func dataSourcesRun(cmd *cobra.Command, opts *DataSourcesOptions) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	paths, err := dataset.EnsurePackages(ctx, opts.CacheDir, dataset.Packages, nil, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	src, err := dataset.SourcesFromTarballs(paths, dataset.Packages)
	if err != nil {
		return err
	}
	if err := dataset.WriteSourcesDir(src, opts.OutputDir); err != nil {
		return err
	}
	n := 0
	for _, set := range dataset.Sets {
		n += len(src.Images[set])
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: emoji.json, emoji-en-US.json and %d PNGs (align data prepare --sources-dir %s)\n",
		opts.OutputDir, n, opts.OutputDir)
	return nil
}

func printPrepareSummary(out io.Writer, s *dataset.Summary) error {
	c := s.Counts
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "dataset\t%s (%s)\n", s.OutputDir, s.DatasetVersion)
	fmt.Fprintf(w, "concepts\t%d: train %d, heldout %d\n", c.Concepts, c.Concepts-c.ConceptsHeldOut, c.ConceptsHeldOut)
	fmt.Fprintf(w, "images\t%d: train %d, heldout %d (%s)\n", c.Images, c.ImagesTrain, c.ImagesHeldOut, formatCounts(s.ImagesPerSet))
	fmt.Fprintf(w, "captions\t%d distinct, %d alternatives, vocabulary %d words\n", s.Captions, s.AltCaptions, s.CaptionVocabulary)
	if c.Clips > 0 {
		fmt.Fprintf(w, "clips\t%d: train %d, heldout %d; %d distinct captions\n", c.Clips, c.ClipsTrain, c.ClipsHeldOut, s.VideoCaptions)
		var parts []string
		for _, m := range dataset.SortedMotions(s.Motions) {
			parts = append(parts, fmt.Sprintf("%s %d", m, s.Motions[m]))
		}
		fmt.Fprintf(w, "motions\t%s\n", strings.Join(parts, ", "))
	}
	for _, f := range []*dataset.FileInfo{s.Files.Images, s.Files.ImageIndex, s.Files.Videos, s.Files.VideoIndex, s.Files.Preview} {
		if f != nil {
			fmt.Fprintf(w, "file\t%s\t%s\t%s\n", f.Name, formatBytes(f.Bytes), f.SHA256)
		}
	}
	t := s.Seconds
	fmt.Fprintf(w, "time\tfetch %.1fs, read %.1fs, images %.1fs, write %.1fs, videos %.1fs, total %.1fs\n",
		t.Fetch, t.Read, t.Images, t.Write, t.Videos, t.Total)
	return w.Flush()
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newCmdDataInspect(runF func(*DataInspectOptions) error) *cobra.Command {
	opts := &DataInspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect DIR",
		Short: "Check a built dataset and print its statistics",
		Long: "Load a dataset directory (verifying sizes and sha256 against its manifest), print counts per\n" +
			"split, set, category and motion, and optionally write a contact-sheet PNG of its images.",
		Example: `  $ align data inspect data/emoji
  $ align data inspect data/emoji --contact-sheet out/emoji.png --sheet-images 256`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return flagErrorf("inspect takes one dataset directory, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if opts.SheetImages < 1 {
				return flagErrorf("--sheet-images must be >= 1, got %d", opts.SheetImages)
			}
			if runF != nil {
				return runF(opts)
			}
			return dataInspectRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.ContactSheet, "contact-sheet", "", "write a contact-sheet PNG of the images to this file")
	cmd.Flags().IntVar(&opts.SheetImages, "sheet-images", 128, "images in the contact sheet, evenly spaced over the set")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	return cmd
}

// inspectReport is what `align data inspect --json` prints.
type inspectReport struct {
	Dir            string                    `json:"dir"`
	DatasetVersion string                    `json:"dataset_version"`
	ImageSize      int                       `json:"image_size"`
	Sources        []dataset.Package         `json:"sources"`
	Import         *dataset.ImportInfo       `json:"import,omitempty"` // how an imported dataset was made
	HeldOut        dataset.HeldOutInfo       `json:"held_out"`
	Counts         dataset.Counts            `json:"counts"`
	ImagesPerSet   map[string]int            `json:"images_per_set"`
	PerCategory    map[string]map[string]int `json:"images_per_category_and_split"`
	Motions        map[string]map[string]int `json:"clips_per_motion_and_split,omitempty"`
	MeanPixel      [3]float64                `json:"mean_pixel"`
	ContactSheet   string                    `json:"contact_sheet,omitempty"`
}

func dataInspectRun(cmd *cobra.Command, opts *DataInspectOptions) error {
	d, err := dataset.Load(opts.Dir)
	if err != nil {
		return err
	}
	r := inspectReport{
		Dir: opts.Dir, DatasetVersion: d.Manifest.DatasetVersion, ImageSize: d.Size(), Sources: d.Manifest.Sources, Import: d.Manifest.Import,
		HeldOut: d.Manifest.HeldOut,
		Counts:  d.Manifest.Counts, ImagesPerSet: map[string]int{}, PerCategory: map[string]map[string]int{},
	}
	for _, it := range d.Items {
		r.ImagesPerSet[it.Set]++
		if r.PerCategory[it.Category] == nil {
			r.PerCategory[it.Category] = map[string]int{}
		}
		r.PerCategory[it.Category][string(it.Split)]++
	}
	size := d.Size()
	plane := size * size
	for i := 0; i < d.Len(); i++ {
		img := d.Image(i)
		for c := 0; c < 3; c++ {
			s := 0
			for _, v := range img[c*plane : (c+1)*plane] {
				s += int(v)
			}
			r.MeanPixel[c] += float64(s)
		}
	}
	for c := range r.MeanPixel {
		r.MeanPixel[c] /= float64(max(d.Len(), 1) * plane) // 0 for a dataset of clips alone
	}
	// The contact sheet shows the images, or the clips' first frames where there are none.
	sheet := make([][]uint8, d.Len())
	for i := range sheet {
		sheet[i] = d.Image(i)
	}
	if d.Manifest.Files.Videos != nil {
		v, err := dataset.LoadVideo(opts.Dir)
		if err != nil {
			return err
		}
		r.Motions = map[string]map[string]int{}
		for _, c := range v.Clips {
			if r.Motions[string(c.Motion)] == nil {
				r.Motions[string(c.Motion)] = map[string]int{}
			}
			r.Motions[string(c.Motion)][string(c.Split)]++
		}
		if d.Len() == 0 {
			for i := range v.Clips {
				sheet = append(sheet, v.Clip(i)[:dataset.Channels*plane])
			}
		}
	}
	if opts.ContactSheet != "" {
		n := min(opts.SheetImages, len(sheet))
		imgs := make([][]uint8, n)
		for k := range imgs {
			imgs[k] = sheet[k*len(sheet)/n]
		}
		if err := writeContactSheet(opts.ContactSheet, dataset.ContactSheet(imgs, size, 16, max(1, 64/size))); err != nil {
			return err
		}
		r.ContactSheet = opts.ContactSheet
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d images)\n", opts.ContactSheet, n)
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	c := r.Counts
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "dataset\t%s (%s, %dx%d)\n", r.Dir, r.DatasetVersion, r.ImageSize, r.ImageSize)
	for _, p := range r.Sources {
		fmt.Fprintf(w, "source\t%s@%s\t%s\n", p.Name, p.Version, p.License)
	}
	if im := r.Import; im != nil {
		fmt.Fprintf(w, "imported\t%s; resize %s", strings.Join(im.Inputs, " "), im.Resize)
		if r.Motions != nil {
			fmt.Fprintf(w, ", fps %g", im.FPS)
		}
		switch n := im.ClipsPerVideo; {
		case n == nil || *n == 1:
		case *n == 0:
			fmt.Fprintf(w, ", every window of each clip")
		default:
			fmt.Fprintf(w, ", up to %d windows of each clip", *n)
		}
		if im.Skipped > 0 {
			fmt.Fprintf(w, "; %d unreadable files left out", im.Skipped)
		}
		if im.Duplicates > 0 {
			fmt.Fprintf(w, "; duplicates left out: %d", im.Duplicates)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "concepts\t%d: train %d, heldout %d", c.Concepts, c.Concepts-c.ConceptsHeldOut, c.ConceptsHeldOut)
	if p := r.HeldOut.PerMyriad; p != dataset.HeldOutPerMyriad {
		fmt.Fprintf(w, " (%g%% of the concepts held out)", float64(p)/100)
	}
	fmt.Fprintln(w)
	if c.Images > 0 || r.Motions == nil {
		fmt.Fprintf(w, "images\t%d: train %d, heldout %d (%s)\n", c.Images, c.ImagesTrain, c.ImagesHeldOut, formatCounts(r.ImagesPerSet))
		fmt.Fprintf(w, "mean pixel\t%.1f %.1f %.1f\n", r.MeanPixel[0], r.MeanPixel[1], r.MeanPixel[2])
	}
	cats := make([]string, 0, len(r.PerCategory))
	for k := range r.PerCategory {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	for _, k := range cats {
		fmt.Fprintf(w, "category\t%s\ttrain %d, heldout %d\n", k, r.PerCategory[k]["train"], r.PerCategory[k]["heldout"])
	}
	if r.Motions != nil {
		fmt.Fprintf(w, "clips\t%d: train %d, heldout %d\n", c.Clips, c.ClipsTrain, c.ClipsHeldOut)
		for _, m := range dataset.Motions {
			if s := r.Motions[string(m)]; s != nil {
				fmt.Fprintf(w, "motion\t%s\ttrain %d, heldout %d\n", m, s["train"], s["heldout"])
			}
		}
	}
	return w.Flush()
}

// writeContactSheet writes img as PNG to name through a temporary file in the same directory.
func writeContactSheet(name string, img image.Image) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".contact-*.png")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = dataset.WritePNG(f, img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func newCmdDataPrompts(runF func(*DataPromptsOptions) error) *cobra.Command {
	opts := &DataPromptsOptions{}
	cmd := &cobra.Command{
		Use:   "prompts DIR",
		Short: "Write the primary caption of every concept, in disjoint parts",
		Long: `Write the primary caption of each concept of a split (the base emoji's caption, one per
concept), one per line, for align sample --prompts and align pairs --prompts.

--part i/n keeps the concepts with h mod n = i, where h is the first 8 bytes of
sha256("prompts/" + concept) read big-endian, so the n parts are disjoint and together hold
the whole split: fine-tune on one part, evaluate on another. The captions are sorted by h,
which does not depend on the dataset's order, so --limit N keeps a stable prefix (the first
200 stay the first 200 when more are asked for).

--video writes clip captions instead, for a video model: the k-th caption in that order gets
the k-th motion of the dataset's 13 in turn ("a red apple moving left", "a rocket bouncing"),
so every motion is asked for alike and a prefix keeps its captions.

A dataset of clips made by align data import gives its clips' captions as they are (one per
concept); --video is for the emoji set's clips.`,
		Example: `  $ align data prompts data/emoji --part 0/2 -o prompts/finetune.txt
  $ align data prompts data/emoji --part 1/2 --limit 200 -o prompts/eval.txt
  $ align data prompts data/emoji --split heldout --limit 50
  $ align data prompts data/emoji --part 1/2 --limit 200 --video -o prompts/eval-video.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return flagErrorf("prompts takes one dataset directory, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return dataPromptsRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Split, "split", string(dataset.SplitTrain), "concepts of this split: train or heldout")
	f.StringVar(&opts.Part, "part", "0/1", "keep part i/n of the concepts (hash of the concept mod n = i)")
	f.IntVar(&opts.Limit, "limit", 0, "at most this many captions, the first by hash (0: all)")
	f.StringVarP(&opts.Output, "output", "o", "", "file to write, atomically (default: stdout)")
	f.BoolVar(&opts.Video, "video", false, "clip captions: each concept with a motion, the 13 motions in turn")
	return cmd
}

func (o *DataPromptsOptions) validate() error {
	if o.Split != string(dataset.SplitTrain) && o.Split != string(dataset.SplitHeldOut) {
		return flagErrorf("--split %q: want %s or %s", o.Split, dataset.SplitTrain, dataset.SplitHeldOut)
	}
	if o.Limit < 0 {
		return flagErrorf("--limit must be >= 0 (0: all), got %d", o.Limit)
	}
	i, n, err := scoring.ParseShard(o.Part)
	if err != nil {
		return flagErrorf("--part: %v", err)
	}
	o.part, o.parts = i, n
	return nil
}

func dataPromptsRun(cmd *cobra.Command, opts *DataPromptsOptions) error {
	d, err := dataset.Load(opts.Dir)
	if err != nil {
		return err
	}
	items, compose := d.Items, opts.Video
	if d.Len() == 0 && d.Manifest.Files.Videos != nil {
		// A clip import: its clips' captions are the prompts, as they are.
		v, err := dataset.LoadVideo(opts.Dir)
		if err != nil {
			return err
		}
		for _, c := range v.Clips {
			items = append(items, dataset.Item{Concept: c.Concept, Unified: c.Concept, Caption: c.Caption, Split: c.Split})
		}
		compose = false
	} else if opts.Video && d.Manifest.Import != nil {
		return usageError{fmt.Errorf("--video words the emoji clips' captions (\"a red apple moving left\"); %s is an import of images: "+
			"import clips (align data import --video) for video prompts", opts.Dir)}
	}
	split := dataset.Split(opts.Split)
	ps, err := dataset.ConceptPrompts(items, split, opts.part, opts.parts, opts.Limit)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("%s: no %s concepts in part %s", opts.Dir, split, opts.Part)
	}
	write := func(w io.Writer) error {
		for k, p := range ps {
			caption := p.Caption
			if compose {
				caption = dataset.VideoCaption(caption, dataset.Motions[k%len(dataset.Motions)])
			}
			if _, err := fmt.Fprintln(w, caption); err != nil {
				return err
			}
		}
		return nil
	}
	if opts.Output == "" {
		return write(cmd.OutOrStdout())
	}
	if dir := filepath.Dir(opts.Output); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := writeOutputFile(opts.Output, write); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d %s captions (part %d/%d of %d concepts)\n", opts.Output, len(ps), split,
		opts.part, opts.parts, len(dataset.GroupConcepts(items, split)))
	return nil
}
