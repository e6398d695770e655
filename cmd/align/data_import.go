// align data import: the user's own captioned images (or clips) as a dataset directory that
// pretrain, reward train, retrieval, data prompts and reward-cond fine-tuning read as they
// read the emoji set (dataset.Import does the decoding, resizing and writing).
//
// Inputs and their captions: a folder is walked (sub-folders too; hidden entries skipped),
// unless it holds metadata.jsonl or metadata.csv (Hugging Face's imagefolder layout), which
// then lists its files; a .jsonl or .csv list, a glob or a single file are read as align score
// reads them. A file's caption is, first found: its list row's prompt/caption/text, its
// --prompts entry, the text of a .txt file beside it with the same stem (the layout of
// LoRA trainers), its file name (scoring.PromptFromStem).
//
// Test: go test ./cmd/align -run DataImport
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/rewards/scoring"
	"github.com/spf13/cobra"
)

// DataImportOptions are the arguments and flags of `align data import`.
type DataImportOptions struct {
	Inputs         []string
	OutputDir      string
	Video          bool
	Resolution     int
	NumFrames      int
	PromptsFile    string // --prompts
	Resize         string
	FPS            float64
	SourceFPS      float64
	ClipsPerVideo  int
	HeldOut        float64 // --held-out-percent
	SkipErrors     bool
	KeepDuplicates bool
	Overwrite      bool
	JSON           bool
}

// Caption sources, in the order they are tried.
const (
	captionFromList     = "list"
	captionFromPrompts  = "prompts"
	captionFromTextFile = "txt"
	captionFromFileName = "file name"
)

// metadataFiles are the lists a folder's own metadata may be in (imagefolder's names).
var metadataFiles = []string{"metadata.jsonl", "metadata.csv"}

func newCmdDataImport(runF func(*DataImportOptions) error) *cobra.Command {
	opts := &DataImportOptions{}
	cmd := &cobra.Command{
		Use:   "import INPUT... -o DIR",
		Short: "Make a dataset of your own captioned images or clips",
		Long: "Decode your own images (PNG, JPEG, GIF, WebP, BMP) or, with --video, clips (video files\n" +
			"through ffmpeg, animated GIFs, folders of frames named in a list), bring them to RGB over\n" +
			"white at --resolution (32x32 by default; clips of --num-frames frames, 8 by default) and\n" +
			"write a dataset directory that align pretrain, reward train, data prompts, finetune\n" +
			"--method reward-cond and (at 32x32) retrieval read as they read the emoji set. Images\n" +
			"whose caption (lower-cased) is the same form one concept: the held-out split (5% of\n" +
			"concepts, by a hash; --held-out-percent) keeps each concept on one side. A dataset of\n" +
			"few concepts may want more held out (reward eval's and reward train's test) and reward\n" +
			"train --val-percent for its validation split.\n\n" +
			"An INPUT is a folder (walked with its sub-folders, unless it holds metadata.jsonl or\n" +
			"metadata.csv, Hugging Face's imagefolder layout, which then lists its files), a .jsonl or\n" +
			".csv list of files with captions (columns path/file_name and prompt/caption/text), a glob\n" +
			"or a file. A file's caption is the first of: its list's caption, its --prompts entry, the\n" +
			"text of NAME.txt beside it, its file name (\"red-apple_2.png\": \"red apple\"). The\n" +
			"summary counts the captions of each source. A file's sub-folder within a walked INPUT is\n" +
			"its group: the reward model's hard text-alignment negatives are captions of one group.\n\n" +
			"--resize crop scales the shorter side to the resolution and keeps the centre, pad scales\n" +
			"the longer side and pads with white, stretch ignores the aspect ratio. An unreadable file\n" +
			"fails the import, naming it, unless --skip-errors (then the summary lists it). A dataset\n" +
			"already in the output directory is replaced only with --overwrite. Files are written to\n" +
			"temporary names and renamed, the manifest last. An image (or clip) equal to an earlier\n" +
			"one at the dataset's size (a copy or link of a file under another name) is left out and\n" +
			"named in the summary, unless --keep-duplicates.\n\n" +
			"Each video file or GIF gives one clip of --num-frames frames: spread over the whole of it\n" +
			"(--fps 0), or at --fps from its start. --clips-per-video N cuts it into windows of\n" +
			"--num-frames frames at --fps, back to back from the start, and keeps N of them spread\n" +
			"over it (0: every window), all with its caption; the index records each clip's file and\n" +
			"start.",
		Example: `  $ align data import photos/ -o data/photos                 # captions from photos/*.txt or file names
  $ align data import hf-dataset/ -o data/hf                 # hf-dataset/metadata.jsonl: file_name, text
  $ align data import list.csv --resize pad -o data/icons    # path,caption rows
  $ align data import --video clips/ --fps 8 -o data/clips   # 8 frames at 8 fps from each MP4 or GIF
  $ align data import photos/ --resolution 64 -o data/photos64   # a 64x64 dataset: pretrain makes a 64x64 model
  $ align data import --video clips/ --num-frames 16 --fps 8 -o data/clips16   # 2 s of each clip
  $ align data import --video talks/ --fps 4 --clips-per-video 0 -o data/talks   # every 2 s window of long videos
  $ align pretrain --data data/photos -o photos-model/
  $ align data inspect data/photos --contact-sheet sheet.png`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return flagErrorf("import takes at least one INPUT (a folder, a list, a glob or a file)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			switch {
			case opts.OutputDir == "":
				return flagErrorf("--output-dir (-o) is required: the dataset directory to write")
			case opts.Resolution < dataset.MinImageSize || opts.Resolution > dataset.MaxImageSize:
				return flagErrorf("--resolution %d: want %d to %d", opts.Resolution, dataset.MinImageSize, dataset.MaxImageSize)
			case !slices.Contains(dataset.ResizeModes, opts.Resize):
				return flagErrorf("--resize %q: want one of %s", opts.Resize, strings.Join(dataset.ResizeModes, ", "))
			case !(opts.FPS >= 0 && opts.FPS <= 1e4) || !(opts.SourceFPS >= 0 && opts.SourceFPS <= 1e4):
				return flagErrorf("--fps and --source-fps must be within [0, 10000]")
			case !opts.Video && (cmd.Flags().Changed("fps") || cmd.Flags().Changed("source-fps") || cmd.Flags().Changed("num-frames") || cmd.Flags().Changed("clips-per-video")):
				return flagErrorf("--fps, --source-fps, --num-frames and --clips-per-video sample clips: add --video")
			case !(opts.HeldOut >= 0 && opts.HeldOut <= dataset.MaxHeldOutPerMyriad/100):
				return flagErrorf("--held-out-percent %v: want 0 to %d", opts.HeldOut, dataset.MaxHeldOutPerMyriad/100)
			case opts.ClipsPerVideo < 0:
				return flagErrorf("--clips-per-video %d: want 1 or more, or 0 for every window", opts.ClipsPerVideo)
			case opts.ClipsPerVideo != 1 && opts.FPS == 0:
				return flagErrorf("--clips-per-video %d cuts windows at --fps: give the rate (--fps 0 spreads one clip over the whole video)", opts.ClipsPerVideo)
			case opts.NumFrames < 1 || opts.NumFrames > dataset.MaxFrames:
				return flagErrorf("--num-frames %d: want 1 to %d", opts.NumFrames, dataset.MaxFrames)
			}
			if runF != nil {
				return runF(opts)
			}
			return dataImportRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "", "dataset directory to write (required)")
	f.BoolVar(&opts.Video, "video", false, "import clips (video files, GIFs) of 8 frames instead of images")
	f.IntVar(&opts.NumFrames, "num-frames", dataset.Frames, fmt.Sprintf("clips: frames of each, 1 to %d (the embedded video model: %d)", dataset.MaxFrames, dataset.Frames))
	f.IntVar(&opts.Resolution, "resolution", dataset.ImageSize, fmt.Sprintf("side of the images and frames, %d to %d (the embedded models: %d)", dataset.MinImageSize, dataset.MaxImageSize, dataset.ImageSize))
	f.StringVar(&opts.PromptsFile, "prompts", "", "JSONL or CSV file mapping inputs (path, name or stem) to captions")
	f.StringVar(&opts.Resize, "resize", dataset.ResizeCrop, "how an image becomes 32x32: crop, pad or stretch")
	f.Float64Var(&opts.FPS, "fps", 0, "clips: take the 8 frames at this rate from the start (0: spread over the whole clip)")
	f.Float64Var(&opts.SourceFPS, "source-fps", 0, "clips: frame rate of folders of frames (needed with --fps > 0)")
	f.IntVar(&opts.ClipsPerVideo, "clips-per-video", 1, "clips: windows of --num-frames frames at --fps taken from each clip, spread over it (0: every window)")
	f.Float64Var(&opts.HeldOut, "held-out-percent", dataset.HeldOutPerMyriad/100, fmt.Sprintf("percent of the concepts held out (never trained on; reward and retrieval tests), 0 to %d", dataset.MaxHeldOutPerMyriad/100))
	f.BoolVar(&opts.SkipErrors, "skip-errors", false, "leave out files that cannot be read (listed in the summary) instead of failing")
	f.BoolVar(&opts.KeepDuplicates, "keep-duplicates", false, "keep images (clips) equal to an earlier one at the dataset's size (by default left out and listed)")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace the dataset the output directory already holds")
	f.BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	return cmd
}

// importItem is one listed input: the scoring item (path, caption if its list gave one, clip
// sampling) and its group.
type importItem struct {
	scoring.Item
	Group string
}

// listImportInputs expands the INPUTs into items, in order. out is the output directory,
// never read as an input.
func listImportInputs(specs []string, video bool, numFrames int, out string) ([]importItem, error) {
	outAbs, _ := filepath.Abs(out)
	var items []importItem
	for _, spec := range specs {
		st, err := os.Stat(spec)
		if err != nil || !st.IsDir() {
			got, err := scoring.List([]string{spec}, scoring.ListOptions{Clips: video})
			if err != nil {
				return nil, err
			}
			for _, it := range got {
				items = append(items, importItem{Item: it})
			}
			continue
		}
		got, err := listImportFolder(spec, video, outAbs)
		if err != nil {
			return nil, err
		}
		items = append(items, got...)
	}
	for i := range items {
		if n := items[i].NumFrames; n != 0 && n != numFrames {
			return nil, fmt.Errorf("%s: num_frames %d: the dataset's clips have %d frames (--num-frames)", items[i].Path, n, numFrames)
		}
	}
	return items, nil
}

// listImportFolder lists a folder: its metadata list where it has one, else its image files
// (or for video its video files and GIFs) with those of its sub-folders, in lexical order.
func listImportFolder(dir string, video bool, outAbs string) ([]importItem, error) {
	for _, name := range metadataFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		got, err := scoring.List([]string{p}, scoring.ListOptions{Clips: video})
		if err != nil {
			return nil, err
		}
		items := make([]importItem, len(got))
		for i, it := range got {
			items[i] = importItem{Item: it, Group: groupOf(dir, it.Path)}
		}
		return items, nil
	}
	var items []importItem
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if abs, _ := filepath.Abs(p); abs == outAbs {
				return filepath.SkipDir // a dataset written inside its own input
			}
			return nil
		}
		name := d.Name()
		ok := scoring.IsImageFile(name)
		if video {
			ok = scoring.IsVideoFile(name) || strings.EqualFold(filepath.Ext(name), ".gif")
		}
		if ok {
			items = append(items, importItem{Item: scoring.Item{Path: p}, Group: groupOf(dir, p)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		what := "image files (.png, .jpg, .gif, .webp, .bmp)"
		if video {
			what = "clips (video files .mp4 .mov .webm .mkv .avi, GIFs)"
		}
		return nil, fmt.Errorf("input folder %s holds no %s, in it or below", dir, what)
	}
	return items, nil
}

// groupOf is p's folder relative to the input folder dir ("" for dir itself), with slashes.
func groupOf(dir, p string) string {
	rel, err := filepath.Rel(dir, filepath.Dir(p))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return ""
	}
	return filepath.ToSlash(rel)
}

// importCaptions resolves each item's caption and names its source.
func importCaptions(items []importItem, prompts map[string]string) ([]dataset.ImportInput, []string, error) {
	inputs := make([]dataset.ImportInput, len(items))
	sources := make([]string, len(items))
	for i := range items {
		it := &items[i]
		caption, src := it.Prompt, captionFromList
		if !it.HasPrompt {
			if p, ok := scoring.LookupPrompt(prompts, it.Path); ok {
				caption, src = p, captionFromPrompts
			} else {
				txt := strings.TrimSuffix(it.Path, filepath.Ext(it.Path)) + ".txt"
				switch b, err := os.ReadFile(txt); {
				case err == nil:
					if caption = strings.Join(strings.Fields(string(b)), " "); caption == "" {
						return nil, nil, fmt.Errorf("%s: empty caption file (for %s)", txt, it.Path)
					}
					src = captionFromTextFile
				case !errors.Is(err, os.ErrNotExist):
					return nil, nil, err
				default:
					caption, src = scoring.PromptFromStem(it.Path), captionFromFileName
				}
			}
		}
		if strings.TrimSpace(caption) == "" {
			return nil, nil, fmt.Errorf("%s: no caption (its %s gives none)", it.Path, src)
		}
		inputs[i] = dataset.ImportInput{Path: it.Path, Caption: caption, Group: it.Group}
		sources[i] = src
	}
	return inputs, sources, nil
}

// dataImportReport is the summary `align data import` prints (--json: as is).
type dataImportReport struct {
	*dataset.ImportSummary
	CaptionSources map[string]int `json:"caption_sources"` // imported inputs by where their caption came from
}

func dataImportRun(cmd *cobra.Command, opts *DataImportOptions) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	stderr := cmd.ErrOrStderr()
	if m, err := dataset.ReadManifest(opts.OutputDir); err == nil && !opts.Overwrite {
		return usageError{fmt.Errorf("%s already holds a dataset (%s, %d images, %d clips); --overwrite replaces it",
			opts.OutputDir, m.DatasetVersion, m.Counts.Images, m.Counts.Clips)}
	}
	items, err := listImportInputs(opts.Inputs, opts.Video, opts.NumFrames, opts.OutputDir)
	if err != nil {
		return err
	}
	var prompts map[string]string
	if opts.PromptsFile != "" {
		if prompts, err = scoring.ReadPrompts(opts.PromptsFile); err != nil {
			return err
		}
	}
	inputs, sources, err := importCaptions(items, prompts)
	if err != nil {
		return err
	}
	if opts.Video && slices.ContainsFunc(items, func(it importItem) bool { return scoring.IsVideoFile(it.Path) }) {
		if _, err := ffmpeg.Find(); err != nil {
			return err // before decoding: --skip-errors would otherwise leave out every video file
		}
	}
	// The bar counts inputs; for clips it also counts the frames decoded, which is what moves
	// while a long video is read.
	noun := "images"
	if opts.Video {
		noun = "clip files"
	}
	bar := newProgressBar(stderr, "import "+noun, len(inputs))
	var (
		mu                     sync.Mutex
		inputsDone, framesDone int
	)
	frameNote := func() string {
		if !opts.Video {
			return ""
		}
		return counted(framesDone, "frame")
	}
	decode := func(i int, fit func(image.Image) (image.Image, error)) (*dataset.Decoded, error) {
		it := &items[i]
		if !opts.Video {
			img, err := scoring.LoadImageUpright(it.Path)
			if err == nil {
				img, err = fit(img)
			}
			return &dataset.Decoded{Frames: []image.Image{img}}, err
		}
		fps, sourceFPS := opts.FPS, opts.SourceFPS
		if it.FPS > 0 {
			fps = it.FPS
		}
		if it.SourceFPS > 0 {
			sourceFPS = it.SourceFPS
		}
		w, err := scoring.LoadClipWindows(it.Path, sourceFPS, opts.NumFrames, fps, opts.ClipsPerVideo, func(img image.Image) (image.Image, error) {
			mu.Lock()
			if framesDone++; framesDone%8 == 0 {
				bar.Update(inputsDone, frameNote())
			}
			mu.Unlock()
			return fit(img)
		})
		if err != nil {
			return nil, err
		}
		return &dataset.Decoded{Frames: w.Frames, Starts: w.Starts}, nil
	}
	info := dataset.ImportInfo{Inputs: opts.Inputs, FPS: opts.FPS}
	if opts.Video {
		info.ClipsPerVideo = &opts.ClipsPerVideo
	}
	s, err := dataset.Import(ctx, inputs, dataset.ImportOptions{
		OutputDir: opts.OutputDir, Video: opts.Video, Size: opts.Resolution, NumFrames: opts.NumFrames, Resize: opts.Resize, Decode: decode, SkipErrors: opts.SkipErrors,
		KeepDuplicates:   opts.KeepDuplicates,
		HeldOutPerMyriad: heldOutPerMyriad(opts.HeldOut),
		Info:             info,
		Progress: func(done int) {
			mu.Lock()
			defer mu.Unlock()
			inputsDone = done
			bar.Update(done, frameNote())
		},
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errCancelled
		}
		return err
	}
	bar.Finish(frameNote())
	rep := dataImportReport{ImportSummary: s, CaptionSources: map[string]int{}}
	for _, i := range s.KeptInputs {
		rep.CaptionSources[sources[i]]++
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printImportSummary(out, &rep, opts.Video)
}

// heldOutPerMyriad is ImportOptions.HeldOutPerMyriad for --held-out-percent p (its 0: none).
func heldOutPerMyriad(p float64) int {
	if n := int(math.Round(p * 100)); n > 0 {
		return n
	}
	return -1
}

// maxSkippedShown and maxDuplicatesShown bound the unreadable files and the duplicates the
// text summary names (--json names all).
const (
	maxSkippedShown    = 20
	maxDuplicatesShown = 5
)

// clipRef names an input of the summary: its path, and for a clip its start ("a.mp4 at 2s").
func clipRef(path string, start float64, video bool) string {
	if !video {
		return path
	}
	return fmt.Sprintf("%s at %gs", path, start)
}

func printImportSummary(out io.Writer, r *dataImportReport, video bool) error {
	c := r.Counts
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "dataset\t%s (%s, %dx%d)\n", r.OutputDir, r.DatasetVersion, r.ImageSize, r.ImageSize)
	fmt.Fprintf(w, "concepts\t%d: train %d, heldout %d\n", c.Concepts, c.Concepts-c.ConceptsHeldOut, c.ConceptsHeldOut)
	if video {
		fmt.Fprintf(w, "clips\t%d of %d files: train %d, heldout %d\n", c.Clips, r.Inputs, c.ClipsTrain, c.ClipsHeldOut)
	} else {
		fmt.Fprintf(w, "images\t%d: train %d, heldout %d\n", c.Images, c.ImagesTrain, c.ImagesHeldOut)
	}
	var parts []string
	for _, src := range []string{captionFromList, captionFromPrompts, captionFromTextFile, captionFromFileName} {
		if n := r.CaptionSources[src]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d from %s", n, map[string]string{
				captionFromList: "lists", captionFromPrompts: "--prompts", captionFromTextFile: ".txt files",
				captionFromFileName: "file names"}[src]))
		}
	}
	fmt.Fprintf(w, "captions\t%d distinct; %s\n", r.Captions, strings.Join(parts, ", "))
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "skipped\t%d unreadable:\n", len(r.Skipped))
		for _, sk := range r.Skipped[:min(len(r.Skipped), maxSkippedShown)] {
			fmt.Fprintf(w, "\t%s\n", sk.Error)
		}
		if n := len(r.Skipped) - maxSkippedShown; n > 0 {
			fmt.Fprintf(w, "\tand %d more (--json lists every one)\n", n)
		}
	}
	if len(r.Duplicates) > 0 {
		fmt.Fprintf(w, "duplicates\t%d left out, equal at %dx%d to an earlier one (--keep-duplicates keeps them):\n", len(r.Duplicates), r.ImageSize, r.ImageSize)
		for _, d := range r.Duplicates[:min(len(r.Duplicates), maxDuplicatesShown)] {
			fmt.Fprintf(w, "\t%s = %s\n", clipRef(d.Path, d.Start, video), clipRef(d.Of, d.OfStart, video))
		}
		if n := len(r.Duplicates) - maxDuplicatesShown; n > 0 {
			fmt.Fprintf(w, "\tand %d more (--json lists every one)\n", n)
		}
	}
	for _, f := range []*dataset.FileInfo{r.Files.Images, r.Files.ImageIndex, r.Files.Videos, r.Files.VideoIndex, r.Files.Preview} {
		if f != nil {
			fmt.Fprintf(w, "file\t%s\t%s\t%s\n", f.Name, formatBytes(f.Bytes), f.SHA256)
		}
	}
	fmt.Fprintf(w, "time\t%.1fs\n", r.Seconds)
	if c.ImagesTrain+c.ClipsTrain == 0 {
		fmt.Fprintf(w, "warning\tno input is in the training split: every concept fell among the held-out 5%%\n")
	}
	return w.Flush()
}
