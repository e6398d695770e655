// Package benchmem measures the peak memory of a stretch of a benchmark (make bench), so that
// each figure is the stretch's own even when several stretches or benchmarks share a process.
//
// Start frees what is unreachable and returns it to the OS (debug.FreeOSMemory), so that
// nothing an earlier stretch left is counted or silently reused, and takes both baselines;
// Stop returns the growth over them, in MiB (2^20 bytes):
//
//	heap = max over the stretch of /memory/classes/heap/objects:bytes - its value at Start
//	rss  = VmHWM at Stop - VmRSS at Start   (VmHWM reset at Start)
//
// heap is the Go heap's object bytes (runtime/metrics): live objects plus dead ones the
// collector has not yet swept, so it includes the garbage a process really holds between
// collections (up to GOGC% over the live heap). The CPU device allocates every tensor as a
// Go slice (kernels.CPU.New), so this is the device's memory as well: package kernels keeps
// no allocation counter of its own (the CUDA device's MemStats peak is reported by
// kernels/cuda's benchmarks). A goroutine samples it every millisecond; a peak between two
// samples is missed by at most what is allocated in one millisecond. Its wake-ups slow the
// work beside them (on 2 cores the default model's training step ran at 101 samples/s with
// it, 127 with a 100 ms period), so a benchmark stops its stretch after untimed warm-up
// iterations and times the others without it.
//
// rss is the process's resident set from the kernel (Linux /proc/self/status; the peak is
// reset by writing 5 to /proc/self/clear_refs), exact rather than sampled, and it also
// counts memory outside the Go heap: ONNX Runtime's and OpenBLAS's C allocations, goroutine
// stacks, the runtime's own structures. It is not reported where /proc is missing.
//
// Test: go test ./internal/benchmem
package benchmem

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// period is the sampling interval of the heap.
const period = time.Millisecond

const heapMetric = "/memory/classes/heap/objects:bytes"

// Stretch is a measurement in progress.
type Stretch struct {
	stop    chan struct{}
	done    chan struct{}
	heap0   uint64
	heapMax uint64  // written by the sampler until done is closed
	rss0    float64 // KiB; < 0 without /proc
}

// Usage is the peak growth of a stretch in MiB.
type Usage struct {
	Heap   float64
	RSS    float64
	HasRSS bool // false where /proc/self is absent
}

// Start begins a stretch.
func Start() *Stretch {
	debug.FreeOSMemory()
	s := &Stretch{stop: make(chan struct{}), done: make(chan struct{}), rss0: -1}
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil {
		s.rss0 = procStatusKiB("VmRSS:")
	}
	smp := []metrics.Sample{{Name: heapMetric}}
	s.heap0 = heapBytes(smp)
	s.heapMax = s.heap0
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			s.heapMax = max(s.heapMax, heapBytes(smp))
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the stretch (one last sample included) and returns its peaks.
func (s *Stretch) Stop() Usage {
	close(s.stop)
	<-s.done
	const mib = 1 << 20
	u := Usage{Heap: float64(s.heapMax-s.heap0) / mib}
	if s.rss0 >= 0 {
		if hwm := procStatusKiB("VmHWM:"); hwm >= 0 {
			u.RSS, u.HasRSS = (hwm-s.rss0)*1024/mib, true
		}
	}
	return u
}

// Report adds the peaks to b as prefix+"peak_heap_MiB" and prefix+"peak_rss_MiB".
func (u Usage) Report(b *testing.B, prefix string) {
	b.ReportMetric(u.Heap, prefix+"peak_heap_MiB")
	if u.HasRSS {
		b.ReportMetric(u.RSS, prefix+"peak_rss_MiB")
	}
}

// heapBytes reads heapMetric into s (one sample, reused so that sampling allocates nothing).
func heapBytes(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// procStatusKiB reads a "Name: N kB" line of /proc/self/status, or -1.
func procStatusKiB(name string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return kb
			}
		}
	}
	return -1
}
