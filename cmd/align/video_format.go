// A video model's clips as files: GIF (align's own encoder) or MP4 (H.264 through ffmpeg,
// internal/ffmpeg), both at 0.12 s a frame (align sample --video-format).
//
// Test: go test ./cmd/align -run VideoFormat
package main

import (
	"fmt"
	"image"

	"github.com/disintegration/imaging"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/ffmpeg"
)

// The values of --video-format.
const (
	videoFormatGIF = "gif"
	videoFormatMP4 = "mp4"
)

// clipDelay is a clip frame's time in 1/100 s; clipFPS the rate it makes.
const (
	clipDelay = 12
	clipFPS   = 100.0 / clipDelay
)

// clipWriter writes clips in one format.
type clipWriter struct {
	format string
	ffmpeg string // the executable, for mp4
}

// newClipWriter checks that format can be written here before any sampling: mp4 needs ffmpeg.
func newClipWriter(format string) (*clipWriter, error) {
	w := &clipWriter{format: format}
	if format == videoFormatMP4 {
		bin, err := ffmpeg.Find()
		if err != nil {
			return nil, fmt.Errorf("--video-format mp4: %w", err)
		}
		w.ffmpeg = bin
	}
	return w, nil
}

// mp4MinSide is the side an MP4's frames are enlarged to at least (a variable for the test
// that measures what the enlargement buys).
var mp4MinSide = 256

// write writes frames to path (with the format's extension) atomically. An MP4's frames are
// enlarged by the integer factor that brings their shorter side to mp4MinSide or more, each
// pixel a square block: 4:2:0 chroma then halves the blocks, not the model's pixels (at 32x32
// it would keep 16x16 of colour), and a reader's box filter (align score's, a native model's)
// gives the frame back but for the encoder's losses. Small clips also play at a watchable size.
func (w *clipWriter) write(path string, frames []image.Image) error {
	if w.format != videoFormatMP4 {
		return diffusion.WriteGIF(path, frames, clipDelay)
	}
	b := frames[0].Bounds()
	if k := (mp4MinSide + min(b.Dx(), b.Dy()) - 1) / min(b.Dx(), b.Dy()); k > 1 {
		big := make([]image.Image, len(frames))
		for i, f := range frames {
			big[i] = imaging.Resize(f, k*b.Dx(), k*b.Dy(), imaging.NearestNeighbor)
		}
		frames = big
	}
	return ffmpeg.WriteMP4(w.ffmpeg, path, frames, clipFPS)
}
