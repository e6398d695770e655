// Package ffmpeg runs an ffmpeg executable to read and write video files.
//
// Reading takes two decoding passes: the first lists every frame's timestamp and duration,
// in presentation order, none duplicated or dropped (framecrc, -vsync 0); the second writes
// only the frames picked from those timings, as PNG on a pipe (its select filter counts the
// same frames). Only the picked frames are held in memory (Frames), or one at a time as they
// arrive (Decode), so a long high-resolution video costs what those frames cost; decoding
// twice is cheap next to scoring for the short clips reward models read. Writing feeds raw
// RGB frames on a pipe to H.264 in MP4 (yuv420p, the format browsers and players take).
//
// Test: go test ./internal/ffmpeg
package ffmpeg

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/alignkit/align/internal/thirdparty"
)

// EnvVar names the ffmpeg executable to use.
const EnvVar = "ALIGN_FFMPEG"

// MaxFrames is the most frames a video file may have (their timings are held, not the
// frames).
const MaxFrames = 1 << 20

// MaxPixels is the most pixels of a frame read.
const MaxPixels = 40 << 20

// Find returns the ffmpeg executable: $ALIGN_FFMPEG, else third_party/ffmpeg/ffmpeg
// (make ffmpeg) in the working folder or a folder above it or beside the executable (or
// one folder up), else ffmpeg on the PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvVar, err)
		}
		return p, nil
	}
	if p, ok := thirdparty.Find(filepath.Join("ffmpeg", "ffmpeg")); ok {
		return p, nil
	}
	if p, err := exec.LookPath("ffmpeg"); err == nil {
		return p, nil
	}
	return "", errors.New("video files need ffmpeg, and none was found\n" +
		"---> HINT: `make ffmpeg` fetches a static build into third_party/ffmpeg; or install ffmpeg on the PATH, " +
		"or name one with $" + EnvVar + "; or use GIFs (or folders of frames) for clips")
}

// Describe says which ffmpeg is used and its version ("/usr/bin/ffmpeg (5.1.6-0+deb12u1)"),
// or why there is none, for align info.
func Describe() string {
	bin, err := Find()
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		return "none: " + first + " (make ffmpeg, or $" + EnvVar + ")"
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		return bin + ": " + err.Error()
	}
	first, _, _ := strings.Cut(string(out), "\n")
	version, _, _ := strings.Cut(strings.TrimPrefix(first, "ffmpeg version "), " ")
	return bin + " (" + version + ")"
}

// Timing is what the first pass learns of a video file's frames.
type Timing struct {
	Starts   []float64 // start of each frame in seconds, the first at 0, in presentation order
	Duration float64   // end of the last frame
}

// Probe decodes the first video stream of path (0:V:0: not an attached picture, the cover
// some MP4 files carry as a video stream of one frame) with ffmpeg and returns its frames'
// timings (framecrc: "#tb 0: num/den", then "stream, dts, pts, duration, size, crc" per frame).
func Probe(ffmpeg, path string) (*Timing, error) {
	out, err := run(ffmpeg, path, "-map", "0:V:0", "-vsync", "0", "-f", "framecrc", "-")
	if err != nil {
		if strings.Contains(err.Error(), "matches no streams") { // ffmpeg's words for it
			return nil, fmt.Errorf("%s: no video stream", path)
		}
		return nil, err
	}
	return parseFrameCRC(path, out)
}

// parseFrameCRC reads ffmpeg's framecrc output of the video file path.
func parseFrameCRC(path string, out []byte) (*Timing, error) {
	var num, den int64
	var pts, dur []int64
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "#tb 0:"); ok {
			n, d, ok := strings.Cut(strings.TrimSpace(rest), "/")
			var err1, err2 error
			num, err1 = strconv.ParseInt(n, 10, 64)
			den, err2 = strconv.ParseInt(d, 10, 64)
			if !ok || err1 != nil || err2 != nil || num < 1 || den < 1 {
				return nil, fmt.Errorf("%s: ffmpeg gave the time base %q", path, rest)
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 4 || strings.TrimSpace(f[0]) != "0" {
			continue
		}
		p, err1 := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		d, err2 := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
		// Timestamps within ±2^53 keep their differences exact and in range.
		if err1 != nil || err2 != nil || p < -1<<53 || p > 1<<53 || d < -1<<53 || d > 1<<53 {
			return nil, fmt.Errorf("%s: ffmpeg gave the frame line %q", path, line)
		}
		if len(pts) == MaxFrames {
			return nil, fmt.Errorf("%s: more than %d frames", path, MaxFrames)
		}
		pts, dur = append(pts, p), append(dur, d)
	}
	if den == 0 {
		return nil, fmt.Errorf("%s: ffmpeg gave no time base for its video stream", path)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%s: no video frames", path)
	}
	tb := float64(num) / float64(den)
	t := &Timing{Starts: make([]float64, len(pts))}
	for i, p := range pts {
		if i > 0 && p < pts[i-1] {
			return nil, fmt.Errorf("%s: frame %d starts before frame %d", path, i, i-1)
		}
		t.Starts[i] = float64(p-pts[0]) * tb
	}
	last := dur[len(dur)-1]
	if last <= 0 && len(pts) > 1 { // no duration on the last frame: the mean frame time
		last = (pts[len(pts)-1] - pts[0]) / int64(len(pts)-1)
	}
	t.Duration = float64(pts[len(pts)-1]-pts[0]+last) * tb
	return t, nil
}

// Frames decodes the frames idx (indices into the n frames of path that Probe found, in
// presentation order, repeats allowed) and returns one image per index.
func Frames(ffmpeg, path string, idx []int, n int) ([]image.Image, error) {
	want := slices.Clone(idx)
	slices.Sort(want)
	want = slices.Compact(want)
	frames := make(map[int]image.Image, len(want))
	if err := Decode(ffmpeg, path, want, n, func(k int, img image.Image) error {
		frames[k] = img
		return nil
	}); err != nil {
		return nil, err
	}
	imgs := make([]image.Image, len(idx))
	for i, k := range idx {
		imgs[i] = frames[k]
	}
	return imgs, nil
}

// Decode decodes the frames want (indices into the n frames of path that Probe found,
// increasing) and calls fn with each as ffmpeg writes it, so that one frame at full size is
// held at a time however many are picked (the windows of a long video). An error of fn
// stops ffmpeg and is returned as it is.
func Decode(ffmpeg, path string, want []int, n int, fn func(k int, img image.Image) error) error {
	ok := len(want) > 0 && want[0] >= 0 && want[len(want)-1] < n
	for i := 1; ok && i < len(want); i++ {
		ok = want[i] > want[i-1]
	}
	if !ok {
		return fmt.Errorf("%s: frames %v picked of %d", path, want, n)
	}
	terms := make([]string, len(want))
	for i, k := range want {
		terms[i] = "eq(n\\," + strconv.Itoa(k) + ")"
	}
	// PNGs stored without compression (zlib level 0): the pipe carries a few MB a frame, and
	// neither ffmpeg's deflate nor Go's inflate is the slowest step of a long video.
	cmd, stderr := command(ffmpeg, path, "-map", "0:V:0", "-vf", "select='"+strings.Join(terms, "+")+"'",
		"-vsync", "0", "-c:v", "png", "-compression_level", "0", "-f", "image2pipe", "-")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: ffmpeg: %w", path, err)
	}
	r := bufio.NewReader(pipe)
	var readErr, fnErr error
	for _, k := range want {
		img, err := png.Decode(r)
		if err != nil {
			readErr = fmt.Errorf("%s: frame %d of %d from ffmpeg: %w", path, k, n, err)
			break
		}
		if b := img.Bounds(); b.Dx() < 1 || b.Dy() < 1 || int64(b.Dx())*int64(b.Dy()) > MaxPixels {
			readErr = fmt.Errorf("%s: frame of %dx%d pixels is empty or too large", path, b.Dx(), b.Dy())
			break
		}
		if fnErr = fn(k, img); fnErr != nil {
			cmd.Process.Kill()
			break
		}
	}
	if readErr == nil && fnErr == nil {
		if _, err := r.ReadByte(); err != io.EOF {
			readErr = fmt.Errorf("%s: ffmpeg wrote more than the %d frames picked", path, len(want))
		}
	}
	io.Copy(io.Discard, r) // to the end, so that Wait does not cut ffmpeg's last words
	waitErr := cmd.Wait()
	switch {
	case fnErr != nil:
		return fnErr
	case waitErr != nil: // ffmpeg's own reason comes before what its output lacked
		return ffmpegError(path, stderr, waitErr)
	}
	return readErr
}

// WriteMP4 writes frames (one size) to path as an H.264 MP4 of fps frames per second, through
// a temporary file renamed into place: yuv420p at CRF 18 (near-transparent quality), an odd
// width or height made even by repeating the last column or row (4:2:0 chroma needs it; the
// padding is part of the video), the index at
// the front (+faststart) so that players start before the end has arrived.
func WriteMP4(bin, path string, frames []image.Image, fps float64) error {
	if len(frames) == 0 {
		return fmt.Errorf("%s: no frames", path)
	}
	b0 := frames[0].Bounds()
	W, H := b0.Dx(), b0.Dy()
	W2, H2 := W+W%2, H+H%2 // the last column and row repeated where odd
	raw := make([]byte, 0, len(frames)*W2*H2*3)
	for k, f := range frames {
		b := f.Bounds()
		if b.Dx() != W || b.Dy() != H {
			return fmt.Errorf("%s: frame %d is %dx%d, frame 0 %dx%d", path, k, b.Dx(), b.Dy(), W, H)
		}
		for y := range H2 {
			for x := range W2 {
				r, g, bl, _ := f.At(b.Min.X+min(x, W-1), b.Min.Y+min(y, H-1)).RGBA()
				raw = append(raw, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // nothing to remove once renamed
	// CreateTemp makes it 0600; the other outputs are 0644.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-nostdin", "-v", "error", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", W2, H2), "-framerate", strconv.FormatFloat(fps, 'g', -1, 64), "-i", "-",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-movflags", "+faststart", "-f", "mp4", "file:"+tmp.Name())
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: ffmpeg: %s", path, cmp.Or(strings.TrimSpace(stderr.String()), err.Error()))
	}
	return os.Rename(tmp.Name(), path)
}

// run runs ffmpeg on input path with args (the output's) and returns its standard
// output; an error carries the last lines ffmpeg wrote to standard error.
func run(ffmpeg, path string, args ...string) ([]byte, error) {
	cmd, stderr := command(ffmpeg, path, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return nil, ffmpegError(path, stderr, err)
	}
	return stdout.Bytes(), nil
}

// command is ffmpeg reading input path with args (the output's), its standard error kept.
// The input is named with the file: protocol, so that a file called "concat:a|b" or
// "http://x" is read as a file.
func command(ffmpeg, path string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(ffmpeg, append([]string{"-nostdin", "-v", "error", "-i", "file:" + path}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// ffmpegError is the error of an ffmpeg run on path that failed with err: the last lines
// of its standard error, where it wrote any.
func ffmpegError(path string, stderr *bytes.Buffer, err error) error {
	// ffmpeg names the input in its messages; the error names it once, in front.
	msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), "file:"+path+": ", ""))
	if lines := strings.Split(msg, "\n"); len(lines) > 3 {
		msg = strings.Join(lines[len(lines)-3:], "\n")
	}
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%s: ffmpeg: %s", path, msg)
}
