// Tests: a stretch that holds 64 MiB reports it in both figures; the next stretch, after
// the memory is dropped, reports none of it.
//
// Test: go test ./internal/benchmem
package benchmem

import (
	"runtime"
	"testing"
)

func TestStretchPeaks(t *testing.T) {
	const n = 64 << 20
	s := Start()
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i) // resident, not only reserved
	}
	u := s.Stop()
	runtime.KeepAlive(buf)
	if u.Heap < 63 || u.Heap > 80 {
		t.Errorf("heap peak %.1f MiB holding 64 MiB", u.Heap)
	}
	if u.HasRSS && !raceDetector && (u.RSS < 60 || u.RSS > 80) {
		t.Errorf("rss peak %.1f MiB holding 64 MiB", u.RSS)
	}
	// buf is dead from here on: the next stretch must not see it.
	u = Start().Stop()
	if u.Heap > 4 || (u.HasRSS && !raceDetector && u.RSS > 4) {
		t.Errorf("an empty stretch after dropping 64 MiB: heap %.1f MiB, rss %.1f MiB", u.Heap, u.RSS)
	}
}
