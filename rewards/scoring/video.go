// Video files (MP4, MOV, WebM, MKV, AVI, M4V) as clips, read through an ffmpeg executable
// (internal/ffmpeg): the frames' timings first, then only the frames picked from them.
//
// Test: go test ./rewards/scoring -run Video
package scoring

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"

	"github.com/alignkit/align/internal/ffmpeg"
)

// videoExts are the extensions read as video files (through ffmpeg).
var videoExts = map[string]bool{".mp4": true, ".m4v": true, ".mov": true, ".webm": true, ".mkv": true, ".avi": true}

// IsVideoFile reports whether path has a video file extension (read through ffmpeg).
func IsVideoFile(path string) bool { return videoExts[strings.ToLower(filepath.Ext(path))] }

// LoadVideoFrames reads the frames pick chooses (indices into the n frames of path, in
// presentation order, repeats allowed, from the frames' starts and the video's duration),
// one image per index picked.
func LoadVideoFrames(path string, pick func(n int, starts []float64, duration float64) ([]int, error)) ([]image.Image, error) {
	bin, t, err := probeVideo(path)
	if err != nil {
		return nil, err
	}
	idx, err := pick(len(t.Starts), t.Starts, t.Duration)
	if err != nil {
		return nil, err
	}
	return ffmpeg.Frames(bin, path, idx, len(t.Starts))
}

// decodeVideoFrames passes each frame pick chooses (increasing indices, none repeated) to fn
// as ffmpeg decodes it (ffmpeg.Decode: one frame at full size held at a time).
func decodeVideoFrames(path string, pick func(n int, starts []float64, duration float64) ([]int, error), fn func(k int, img image.Image) error) error {
	bin, t, err := probeVideo(path)
	if err != nil {
		return err
	}
	want, err := pick(len(t.Starts), t.Starts, t.Duration)
	if err != nil {
		return err
	}
	return ffmpeg.Decode(bin, path, want, len(t.Starts), fn)
}

// probeVideo finds ffmpeg and learns the timings of the video file path's frames.
func probeVideo(path string) (string, *ffmpeg.Timing, error) {
	if _, err := os.Stat(path); err != nil {
		return "", nil, err
	}
	bin, err := ffmpeg.Find()
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := ffmpeg.Probe(bin, path)
	return bin, t, err
}
