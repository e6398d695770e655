// On-disk format of the emoji dataset and its loader.
//
// A dataset directory holds
//
//	manifest.json   format version, source packages, split rule, counts, and the size and
//	                sha256 of every file below (written last)
//	images.u8       uint8 pixels (N,3,32,32), RGB over white, no header
//	images.jsonl    one Item per line, line i describes image i
//	videos.u8       uint8 pixels (B,T,3,32,32), T = 8 (absent when no clips were asked for)
//	videos.jsonl    one Clip per line
//	preview.gif     a few clips, one per motion, for the docs
//
// Every file is written to a temporary name and renamed into place; the manifest goes first out
// of the way and comes back last, so a half-written directory never loads. Load checks sizes,
// checksums and the format version and names the offending file in every error.
//
// Test: go test ./diffusion/dataset -run 'Load|RoundTrip|Corrupt|Index'; fuzz: go test
// ./diffusion/dataset -fuzz FuzzParseImageIndex -fuzztime 30s

package dataset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Format identifies the directory layout; FormatVersion changes with any incompatible change.
const (
	Format         = "align-emoji-dataset"
	FormatVersion  = 1
	DatasetVersion = "emoji32-v1" // 32 px RGB, Twemoji + Noto 16.0.0, emojilib 4.0.3 captions
	ManifestFile   = "manifest.json"
	ImagesFile     = "images.u8"
	ImageIndexFile = "images.jsonl"
	VideosFile     = "videos.u8"
	VideoIndexFile = "videos.jsonl"
	PreviewFile    = "preview.gif"
)

// ImageBytes is the size of one image of the emoji set (3,32,32); ClipBytes of one clip
// (8,3,32,32). An imported dataset has its own size (Manifest.ImageSize; Dataset.ImageLen).
const (
	ImageBytes = Channels * ImageSize * ImageSize
	ClipBytes  = Frames * ImageBytes
)

// Bounds of a dataset's geometry (Manifest.ImageSize, Manifest.Frames) that Load accepts.
const (
	MinImageSize = 8
	MaxImageSize = 256
	MaxFrames    = 64
)

// Item is one image's record in images.jsonl.
type Item struct {
	Index       int      `json:"index"`
	ID          string   `json:"id"`      // "<image stem>/<set>", e.g. "1f44b-1f3fd/twitter"
	Concept     string   `json:"concept"` // base code points: the unit of the split
	Unified     string   `json:"unified"` // code points of this variant
	Set         string   `json:"set"`     // "twitter" (Twemoji) or "google" (Noto)
	Name        string   `json:"name"`    // lower-case concept name
	Tone        string   `json:"tone,omitempty"`
	Caption     string   `json:"caption"` // name, with the tone for skin-tone variants
	AltCaptions []string `json:"alt_captions"`
	Category    string   `json:"category"`
	Subcategory string   `json:"subcategory"`
	Split       Split    `json:"split"`
}

// FileInfo describes one data file in the manifest.
type FileInfo struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape,omitempty"`
	DType  string `json:"dtype,omitempty"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Files lists the files of a dataset directory.
type Files struct {
	Images     *FileInfo `json:"images"`
	ImageIndex *FileInfo `json:"image_index"`
	Videos     *FileInfo `json:"videos,omitempty"`
	VideoIndex *FileInfo `json:"video_index,omitempty"`
	Preview    *FileInfo `json:"preview,omitempty"`
}

// Counts are the sizes of the dataset per split.
type Counts struct {
	Concepts        int `json:"concepts"`
	ConceptsHeldOut int `json:"concepts_heldout"`
	Images          int `json:"images"`
	ImagesTrain     int `json:"images_train"`
	ImagesHeldOut   int `json:"images_heldout"`
	Clips           int `json:"clips"`
	ClipsTrain      int `json:"clips_train"`
	ClipsHeldOut    int `json:"clips_heldout"`
}

// HeldOutInfo records the split rule.
type HeldOutInfo struct {
	Rule      string `json:"rule"`
	PerMyriad int    `json:"per_myriad"`
}

// Manifest is manifest.json.
type Manifest struct {
	Format         string      `json:"format"`
	FormatVersion  int         `json:"format_version"`
	DatasetVersion string      `json:"dataset_version"`
	ImageSize      int         `json:"image_size"`
	Channels       int         `json:"channels"`
	Frames         int         `json:"frames"`
	Seed           uint64      `json:"seed"`
	SpriteScale    float64     `json:"clip_sprite_scale,omitempty"` // Options.SpriteScale; absent: 1
	Import         *ImportInfo `json:"import,omitempty"`            // an imported dataset's inputs
	HeldOut        HeldOutInfo `json:"heldout"`
	Sources        []Package   `json:"sources"`
	Files          Files       `json:"files"`
	Counts         Counts      `json:"counts"`
}

// ---------------------------------------------------------------------------------------------
// Writing

// writeFileAtomic writes dir/name through fill into a temporary file, syncs it and renames it
// into place, returning its size and sha256.
func writeFileAtomic(dir, name string, fill func(w io.Writer) error) (*FileInfo, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	cw := &countWriter{w: bw}
	err = fill(cw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return &FileInfo{Name: name, Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeJSONL writes one JSON object per line.
func writeJSONL[T any](w io.Writer, recs []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeImages starts writing a dataset into dir: it removes the manifest (so that a directory
// half rewritten never loads), then writes images.u8 through fill (the images' (3,H,W) bytes in
// order) and images.jsonl and records them in m.
func writeImages(dir string, m *Manifest, items []Item, fill func(w io.Writer) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var err error
	if m.Files.Images, err = writeFileAtomic(dir, ImagesFile, fill); err != nil {
		return err
	}
	m.Files.Images.Shape, m.Files.Images.DType = []int{len(items), Channels, m.ImageSize, m.ImageSize}, "uint8"
	m.Files.ImageIndex, err = writeFileAtomic(dir, ImageIndexFile, func(w io.Writer) error {
		return writeJSONL(w, items)
	})
	return err
}

// writeVideos writes videos.u8 through fill (the clips' (T,3,H,W) bytes in order),
// videos.jsonl and preview.gif of the preview clips, and records them in m.
func writeVideos(dir string, m *Manifest, clips []Clip, fill func(w io.Writer) error, preview [][]uint8) error {
	var err error
	if m.Files.Videos, err = writeFileAtomic(dir, VideosFile, fill); err != nil {
		return err
	}
	m.Files.Videos.Shape, m.Files.Videos.DType = []int{len(clips), m.Frames, Channels, m.ImageSize, m.ImageSize}, "uint8"
	if m.Files.VideoIndex, err = writeFileAtomic(dir, VideoIndexFile, func(w io.Writer) error {
		return writeJSONL(w, clips)
	}); err != nil {
		return err
	}
	m.Files.Preview, err = writeFileAtomic(dir, PreviewFile, func(w io.Writer) error {
		return WritePreviewGIF(w, preview, m.Frames, m.ImageSize, 5, 2, 15)
	})
	return err
}

// writeParts is a fill function of writeImages and writeVideos writing parts one after
// another.
func writeParts(parts [][]uint8) func(w io.Writer) error {
	return func(w io.Writer) error {
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// removeVideos deletes the video files of a dataset rewritten without clips.
func removeVideos(dir string) error {
	for _, name := range []string{VideosFile, VideoIndexFile, PreviewFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeManifest writes manifest.json (atomically).
func writeManifest(dir string, m *Manifest) error {
	_, err := writeFileAtomic(dir, ManifestFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(m)
	})
	return err
}

// ---------------------------------------------------------------------------------------------
// Loading

// ErrNoDataset is wrapped by Load when the directory has no manifest.
var ErrNoDataset = errors.New("no dataset")

// ReadManifest reads and checks dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	name := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (missing or incomplete)\n---> HINT: run `align data prepare --output-dir %s` (the emoji set) "+
			"or `align data import YOUR-FILES --output-dir %s` (your own captioned images or clips)", name, ErrNoDataset, dir, dir)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: corrupted manifest: %w", name, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q", name, m.Format, Format)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: dataset format version %d, this build reads version %d\n"+
			"---> HINT: run `align data prepare --output-dir %s` again", name, m.FormatVersion, FormatVersion, dir)
	}
	if m.Channels != Channels || m.ImageSize < MinImageSize || m.ImageSize > MaxImageSize || m.Frames < 1 || m.Frames > MaxFrames {
		return nil, fmt.Errorf("%s: images of %dx%dx%d with %d frames, this build reads %d channels of %d to %d pixels a side, 1 to %d frames",
			name, m.Channels, m.ImageSize, m.ImageSize, m.Frames, Channels, MinImageSize, MaxImageSize, MaxFrames)
	}
	if m.Files.Images == nil || m.Files.ImageIndex == nil {
		return nil, fmt.Errorf("%s: lists no images", name)
	}
	return &m, nil
}

// readVerified reads dir/info.Name whole and checks its size and sha256 against the manifest.
func readVerified(dir string, info *FileInfo) ([]byte, error) {
	name := filepath.Join(dir, info.Name)
	if filepath.Base(info.Name) != info.Name {
		return nil, fmt.Errorf("%s: manifest names file %q outside the dataset", filepath.Join(dir, ManifestFile), info.Name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != info.Bytes {
		return nil, fmt.Errorf("%s: %d bytes, the manifest says %d (truncated or from another build)", name, st.Size(), info.Bytes)
	}
	b := make([]byte, info.Bytes)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != info.SHA256 {
		return nil, fmt.Errorf("%s: corrupted: sha256 %s, the manifest says %s", name, got, info.SHA256)
	}
	return b, nil
}

// parseJSONL decodes one record per line with check run on each; errors say "name:line: ...".
func parseJSONL[T any](name string, data []byte, check func(i int, rec *T) error) ([]T, error) {
	var out []T
	line := 0
	for len(data) > 0 {
		line++
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("%s:%d: truncated (no newline at the end of the file)", name, line)
		}
		var rec T
		if err := json.Unmarshal(data[:nl], &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if err := check(len(out), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, rec)
		data = data[nl+1:]
	}
	return out, nil
}

func checkSplit(s Split) error {
	if s != SplitTrain && s != SplitHeldOut {
		return fmt.Errorf("split %q is neither %q nor %q", s, SplitTrain, SplitHeldOut)
	}
	return nil
}

// ParseImageIndex parses images.jsonl (name is used in errors).
func ParseImageIndex(name string, data []byte) ([]Item, error) {
	return parseJSONL(name, data, func(i int, it *Item) error {
		switch {
		case it.Index != i:
			return fmt.Errorf("index %d, want %d", it.Index, i)
		case it.Caption == "" || it.Concept == "":
			return fmt.Errorf("item %d has no caption or concept", i)
		case it.Set != SetTwitter && it.Set != SetGoogle && it.Set != SetImport:
			return fmt.Errorf("item %d: unknown set %q", i, it.Set)
		}
		return checkSplit(it.Split)
	})
}

// ParseVideoIndex parses videos.jsonl (name is used in errors).
func ParseVideoIndex(name string, data []byte) ([]Clip, error) {
	return parseJSONL(name, data, func(i int, c *Clip) error {
		switch {
		case c.Index != i:
			return fmt.Errorf("index %d, want %d", c.Index, i)
		case !c.Motion.Valid() && !(c.Motion == "" && c.Set == SetImport):
			return fmt.Errorf("clip %d: unknown motion %q", i, c.Motion)
		case c.Caption == "":
			return fmt.Errorf("clip %d has no caption", i)
		}
		return checkSplit(c.Split)
	})
}

// Dataset is the loaded image dataset.
type Dataset struct {
	Dir      string
	Manifest *Manifest
	Items    []Item
	Pixels   []uint8 // (N,3,Size,Size)
}

// Load reads the image part of a dataset directory written by Prepare, checking the format
// version, the sizes and the sha256 of images.u8 and images.jsonl.
func Load(dir string) (*Dataset, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	idx, err := readVerified(dir, m.Files.ImageIndex)
	if err != nil {
		return nil, err
	}
	items, err := ParseImageIndex(filepath.Join(dir, m.Files.ImageIndex.Name), idx)
	if err != nil {
		return nil, err
	}
	if want := int64(len(items)) * int64(Channels*m.ImageSize*m.ImageSize); m.Files.Images.Bytes != want {
		return nil, fmt.Errorf("%s: %d bytes for %d items in %s, want %d",
			filepath.Join(dir, m.Files.Images.Name), m.Files.Images.Bytes, len(items), m.Files.ImageIndex.Name, want)
	}
	pix, err := readVerified(dir, m.Files.Images)
	if err != nil {
		return nil, err
	}
	return &Dataset{Dir: dir, Manifest: m, Items: items, Pixels: pix}, nil
}

// Len is the number of images.
func (d *Dataset) Len() int { return len(d.Items) }

// Size is the side of the images: the manifest's, or ImageSize for a dataset built in memory
// without one.
func (d *Dataset) Size() int {
	if d.Manifest == nil {
		return ImageSize
	}
	return d.Manifest.ImageSize
}

// ImageLen is the number of bytes of one image, Channels·Size².
func (d *Dataset) ImageLen() int { return Channels * d.Size() * d.Size() }

// Image returns image i as (3,Size,Size) bytes (a view into Pixels).
func (d *Dataset) Image(i int) []uint8 { n := d.ImageLen(); return d.Pixels[i*n : (i+1)*n] }

// Indices returns the indices of the items of one split, in order.
func (d *Dataset) Indices(s Split) []int {
	var out []int
	for i := range d.Items {
		if d.Items[i].Split == s {
			out = append(out, i)
		}
	}
	return out
}

// ImageFloat32 writes image i into dst as (3,Size,Size) float32 in [-1, 1] (x/127.5 − 1).
func (d *Dataset) ImageFloat32(dst []float32, i int) { ToUnit(dst, d.Image(i)) }

// BatchFloat32 writes the images idx into dst as (B,3,Size,Size) float32 in [-1, 1].
func (d *Dataset) BatchFloat32(dst []float32, idx []int) {
	n := d.ImageLen()
	if len(dst) != len(idx)*n {
		panic(fmt.Sprintf("BatchFloat32: dst has %d values, want %d", len(dst), len(idx)*n))
	}
	for b, i := range idx {
		ToUnit(dst[b*n:(b+1)*n], d.Image(i))
	}
}

// VideoDataset is the loaded video dataset.
type VideoDataset struct {
	Dir      string
	Manifest *Manifest
	Clips    []Clip
	Pixels   []uint8 // (B,T,3,Size,Size)
}

// LoadVideo reads the video part of a dataset directory, with the same checks as Load.
func LoadVideo(dir string) (*VideoDataset, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if m.Files.Videos == nil || m.Files.VideoIndex == nil {
		return nil, fmt.Errorf("%s: the dataset has no video clips\n---> HINT: run `align data prepare --video-clips N`",
			filepath.Join(dir, ManifestFile))
	}
	idx, err := readVerified(dir, m.Files.VideoIndex)
	if err != nil {
		return nil, err
	}
	clips, err := ParseVideoIndex(filepath.Join(dir, m.Files.VideoIndex.Name), idx)
	if err != nil {
		return nil, err
	}
	if want := int64(len(clips)) * int64(m.Frames*Channels*m.ImageSize*m.ImageSize); m.Files.Videos.Bytes != want {
		return nil, fmt.Errorf("%s: %d bytes for %d clips in %s, want %d",
			filepath.Join(dir, m.Files.Videos.Name), m.Files.Videos.Bytes, len(clips), m.Files.VideoIndex.Name, want)
	}
	pix, err := readVerified(dir, m.Files.Videos)
	if err != nil {
		return nil, err
	}
	return &VideoDataset{Dir: dir, Manifest: m, Clips: clips, Pixels: pix}, nil
}

// Len is the number of clips.
func (v *VideoDataset) Len() int { return len(v.Clips) }

// Size is the side of the frames, NumFrames the frames of a clip: the manifest's, or ImageSize
// and Frames for a dataset built in memory without one.
func (v *VideoDataset) Size() int {
	if v.Manifest == nil {
		return ImageSize
	}
	return v.Manifest.ImageSize
}

// NumFrames is the number of frames of a clip (see Size).
func (v *VideoDataset) NumFrames() int {
	if v.Manifest == nil {
		return Frames
	}
	return v.Manifest.Frames
}

// ClipLen is the number of bytes of one clip, NumFrames·Channels·Size².
func (v *VideoDataset) ClipLen() int { return v.NumFrames() * Channels * v.Size() * v.Size() }

// Clip returns clip i as (T,3,Size,Size) bytes (a view into Pixels).
func (v *VideoDataset) Clip(i int) []uint8 { n := v.ClipLen(); return v.Pixels[i*n : (i+1)*n] }

// CheckMotionLabels fails where the clips carry no motion labels (those of align data
// import): use, what needs them, cannot run on them.
func (v *VideoDataset) CheckMotionLabels(use string) error {
	for _, c := range v.Clips {
		if c.Motion == "" {
			return fmt.Errorf("%s: its clips carry no motion labels (imported clips); %s needs the labelled clips of `align data prepare`", v.Dir, use)
		}
	}
	return nil
}

// Indices returns the indices of the clips of one split, in order.
func (v *VideoDataset) Indices(s Split) []int {
	var out []int
	for i := range v.Clips {
		if v.Clips[i].Split == s {
			out = append(out, i)
		}
	}
	return out
}

// ClipFloat32 writes clip i into dst as (T,3,Size,Size) float32 in [-1, 1].
func (v *VideoDataset) ClipFloat32(dst []float32, i int) { ToUnit(dst, v.Clip(i)) }

// BatchFloat32 writes the clips idx into dst as (B,T,3,Size,Size) float32 in [-1, 1].
func (v *VideoDataset) BatchFloat32(dst []float32, idx []int) {
	n := v.ClipLen()
	if len(dst) != len(idx)*n {
		panic(fmt.Sprintf("BatchFloat32: dst has %d values, want %d", len(dst), len(idx)*n))
	}
	for b, i := range idx {
		ToUnit(dst[b*n:(b+1)*n], v.Clip(i))
	}
}

// unitTable[x] = x/127.5 − 1: 0 → −1, 255 → 1.
var unitTable = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i)/127.5 - 1
	}
	return
}()

// ToUnit converts bytes to float32 in [-1, 1] (x/127.5 − 1), the range the generator trains on.
func ToUnit(dst []float32, src []uint8) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("ToUnit: dst has %d values, src %d", len(dst), len(src)))
	}
	for i, x := range src {
		dst[i] = unitTable[x]
	}
}

// FromUnit converts float32 in [-1, 1] back to bytes ((x+1)·127.5, rounded, clamped).
func FromUnit(dst []uint8, src []float32) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("FromUnit: dst has %d values, src %d", len(dst), len(src)))
	}
	for i, x := range src {
		v := (x + 1) * 127.5
		switch {
		case !(v > 0): // also NaN
			dst[i] = 0
		case v >= 255:
			dst[i] = 255
		default:
			dst[i] = uint8(v + 0.5)
		}
	}
}
