// framecrc's timings on hand values.
package ffmpeg

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParseFrameCRC(t *testing.T) {
	const head = "#software: Lavf58\n#tb 0: 1/12800\n#media_type 0: video\n#dimensions 0: 64x48\n"
	// Three frames of 512/12800 s = 0.04 s, the first at pts 1024; a line of stream 1 ignored.
	tm, err := parseFrameCRC("v.mp4", []byte(head+"0, 1024, 1024, 512, 9216, 0xaa\n1, 0, 0, 1, 4, 0x1\n0, 1536, 1536, 512, 9216, 0xbb\n0, 2048, 2048, 512, 9216, 0xcc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tm.Starts) != "[0 0.04 0.08]" || math.Abs(tm.Duration-0.12) > 1e-12 {
		t.Errorf("starts %v, duration %v; want [0 0.04 0.08], 0.12", tm.Starts, tm.Duration)
	}
	// A last frame without duration lasts the mean frame time: (2048-1024)/2 = 512.
	tm, err = parseFrameCRC("v.mp4", []byte(head+"0, 1024, 1024, 512, 1, 0xaa\n0, 1536, 1536, 512, 1, 0xbb\n0, 2048, 2048, 0, 1, 0xcc\n"))
	if err != nil || math.Abs(tm.Duration-0.12) > 1e-12 {
		t.Errorf("last frame without duration: %v, %v; want 0.12", tm, err)
	}
	for name, c := range map[string]struct{ out, want string }{
		"no time base": {"0, 0, 0, 1, 1, 0x1\n", "v.mp4: ffmpeg gave no time base"},
		"bad base":     {"#tb 0: 1/0\n", `v.mp4: ffmpeg gave the time base " 1/0"`},
		"no frames":    {"#tb 0: 1/25\n", "v.mp4: no video frames"},
		"bad line":     {"#tb 0: 1/25\n0, 0, x, 1, 1, 0x1\n", `v.mp4: ffmpeg gave the frame line "0, 0, x, 1, 1, 0x1"`},
		"backwards":    {"#tb 0: 1/25\n0, 0, 2, 1, 1, 0x1\n0, 1, 1, 1, 1, 0x1\n", "v.mp4: frame 1 starts before frame 0"},
	} {
		if _, err := parseFrameCRC("v.mp4", []byte(c.out)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzParseFrameCRC: any output is parsed without panicking, and what parses has one start
// per frame, from 0, in order, within a finite duration.
func FuzzParseFrameCRC(f *testing.F) {
	f.Add("#tb 0: 1/12800\n0, 1024, 1024, 512, 9216, 0xaa\n0, 1536, 1536, 512, 9216, 0xbb\n")
	f.Add("#tb 0: 1/25\n0, 0, 0, 0, 1, 0x1\n")
	f.Add("#tb 0: 1/1\n0, 0, -5, 1, 1, 0x1\n0, 0, 9223372036854775807, 1, 1, 0x1\n")
	f.Fuzz(func(t *testing.T, out string) {
		tm, err := parseFrameCRC("f.mp4", []byte(out))
		if err != nil {
			return
		}
		if len(tm.Starts) == 0 || tm.Starts[0] != 0 {
			t.Fatalf("starts %v", tm.Starts)
		}
		for i := 1; i < len(tm.Starts); i++ {
			if !(tm.Starts[i] >= tm.Starts[i-1]) {
				t.Fatalf("starts out of order: %v", tm.Starts)
			}
		}
		if math.IsNaN(tm.Duration) || math.IsInf(tm.Duration, 0) {
			t.Fatalf("duration %v", tm.Duration)
		}
	})
}
