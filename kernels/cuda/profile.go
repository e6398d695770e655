// Profiler: a Driver that times every kernel launch and GEMM of the driver it wraps, to find
// where a training step or a sampling run spends its time (which kernels to fuse next). It
// has two modes.
//
// In-stream (NewStreamProfiler, on a driver that is a StreamMarker): an event is recorded
// into the stream after each operation, nothing waits, and the events are read when the
// device waits anyway (Synchronize, DtoH) or a report is asked for. An operation's time is
// then the time from the end of the one before it on the stream to its own end: its run,
// and the gap before it (its launch, or the GPU waiting for the host to issue it). The
// times add up to the run's time on the GPU, so the shares are those of a plain run.
// Copies and sets are timed too (they are in the stream); the time the GPU waits after a
// synchronisation, while the host works, is left out (the next operation starts a new
// series of events).
//
// Isolated (NewProfiler): each launch and GEMM is bracketed by Synchronize calls, so an
// operation's time is its own: the stream is drained before the clock starts and after it
// stops. That serialises the stream and adds a synchronisation's latency (some
// microseconds on a GPU) to every call, so a profiled run is slower than a plain one and the
// small kernels' shares are upper bounds; a kernel's own rate is what it is for. Memory
// copies and sets are not timed.
//
// Operations are grouped by kernel name; GEMMs by shape (m x n x k, times the batch count)
// and compute type, with their arithmetic rate 2*m*n*k*batch / time. The report ends with
// the time by kind of work (products, attention, norms and gates, optimizer, conversions,
// copies, other: Classes), the first thing to read against a step's budget.
//
//	prof, err := NewStreamProfiler(drv)
//	d := NewDevice(prof, "cuda:0")
//	... work on d ...
//	prof.Report(os.Stderr, 20)
//
// Test: go test ./kernels/cuda -run Profiler
package cuda

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// OpStat is the accumulated time of one operation group.
type OpStat struct {
	Name  string
	Calls int
	Time  time.Duration
	FLOPs float64 // GEMM groups: 2*m*n*k*batch summed over the calls; 0 for kernels
}

// Profiler wraps a Driver and times its launches and GEMMs. Not safe for concurrent use
// (the Device issues its work from one goroutine at a time).
type Profiler struct {
	Driver
	now   func() time.Time // time.Now, replaced in tests (isolated mode)
	stats map[string]*OpStat

	marker  StreamMarker // in-stream mode; nil when isolated
	pending []pendingOp  // operations marked since the last read of the marks
	err     error        // the first failure to read the marks, returned by Report
}

// pendingOp is an operation whose end is marked in the stream and not yet read.
type pendingOp struct {
	name  string
	flops float64
}

// NewProfiler returns a profiler over drv that times each operation on its own.
func NewProfiler(drv Driver) *Profiler {
	return &Profiler{Driver: drv, now: time.Now, stats: map[string]*OpStat{}}
}

// NewStreamProfiler returns a profiler over drv that times the operations in the stream,
// by events, without waiting between them; drv must be a StreamMarker.
func NewStreamProfiler(drv Driver) (*Profiler, error) {
	m, ok := drv.(StreamMarker)
	if !ok {
		return nil, fmt.Errorf("cuda: the %s driver cannot time its stream", drv.Info().Name)
	}
	p := NewProfiler(drv)
	p.marker = m
	return p, nil
}

// InStream reports whether the profiler times in the stream (NewStreamProfiler).
func (p *Profiler) InStream() bool { return p.marker != nil }

// SetGemmTuning passes the setting on to the profiled driver where it has one.
func (p *Profiler) SetGemmTuning(n int) bool {
	t, ok := p.Driver.(gemmTuner)
	return ok && t.SetGemmTuning(n)
}

// add adds one call of time t to the group name.
func (p *Profiler) add(name string, flops float64, t time.Duration) {
	s := p.stats[name]
	if s == nil {
		s = &OpStat{Name: name}
		p.stats[name] = s
	}
	s.Calls++
	s.Time += t
	s.FLOPs += flops
}

// timed runs op and adds its time to the group name: between two synchronisations, or in
// the stream up to a mark after it (the first operation of a series marks its start too).
func (p *Profiler) timed(name string, flops float64, op func() error) error {
	if p.marker != nil {
		if len(p.pending) == 0 {
			if err := p.marker.Mark(); err != nil {
				return err
			}
		}
		if err := op(); err != nil {
			return err
		}
		if err := p.marker.Mark(); err != nil {
			return err
		}
		p.pending = append(p.pending, pendingOp{name, flops})
		return nil
	}
	if err := p.Driver.Synchronize(); err != nil {
		return err
	}
	t0 := p.now()
	if err := op(); err != nil {
		return err
	}
	if err := p.Driver.Synchronize(); err != nil {
		return err
	}
	p.add(name, flops, p.now().Sub(t0))
	return nil
}

// flush reads the marks of the pending operations (waiting for the stream) and adds their
// times; the next operation starts a new series.
func (p *Profiler) flush() error {
	if len(p.pending) == 0 {
		return nil
	}
	gaps, err := p.marker.MarkGaps()
	if err == nil && len(gaps) != len(p.pending) {
		err = fmt.Errorf("cuda: profile: %d times read for %d operations", len(gaps), len(p.pending))
	}
	if err == nil {
		for i, op := range p.pending {
			p.add(op.name, op.flops, gaps[i])
		}
	} else if p.err == nil {
		p.err = err
	}
	p.pending = p.pending[:0]
	return err
}

// Synchronize waits for the stream, then reads the pending marks.
func (p *Profiler) Synchronize() error {
	if err := p.Driver.Synchronize(); err != nil {
		return err
	}
	return p.flush()
}

// DtoH copies (and waits: in the stream, the copy is timed with its wait), then reads the
// pending marks.
func (p *Profiler) DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error {
	if p.marker == nil {
		return p.Driver.DtoH(dst, src, bytes)
	}
	if err := p.timed("copy to host", 0, func() error { return p.Driver.DtoH(dst, src, bytes) }); err != nil {
		return err
	}
	return p.flush()
}

// HtoD, DtoD and Memset32 are timed in the stream only.
func (p *Profiler) HtoD(dst DevPtr, src unsafe.Pointer, bytes int) error {
	if p.marker == nil {
		return p.Driver.HtoD(dst, src, bytes)
	}
	return p.timed("copy from host", 0, func() error { return p.Driver.HtoD(dst, src, bytes) })
}

func (p *Profiler) DtoD(dst, src DevPtr, bytes int) error {
	if p.marker == nil {
		return p.Driver.DtoD(dst, src, bytes)
	}
	return p.timed("copy", 0, func() error { return p.Driver.DtoD(dst, src, bytes) })
}

func (p *Profiler) Memset32(dst DevPtr, v uint32, n int) error {
	if p.marker == nil {
		return p.Driver.Memset32(dst, v, n)
	}
	return p.timed("memset", 0, func() error { return p.Driver.Memset32(dst, v, n) })
}

// Launch times the launch under the kernel's name.
func (p *Profiler) Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error {
	return p.timed(kernel, 0, func() error { return p.Driver.Launch(kernel, grid, block, shmem, args) })
}

// Gemm times the product under its shape and compute type.
func (p *Profiler) Gemm(g GemmArgs) error {
	batch := max(g.Batch, 1)
	name := fmt.Sprintf("gemm %dx%dx%d", g.M, g.N, g.K)
	if batch > 1 {
		name += fmt.Sprintf(" x%d", batch)
	}
	name += " " + gemmInputs(g)
	if g.Bias != 0 {
		name += " +bias"
	}
	if g.BiasGrad != 0 {
		name += " +bgrad"
	}
	switch {
	case g.GELU == GeluForward && g.Aux == 0:
		name += " +gelu" // a forward no backward follows: no aux matrix
	case g.GELU == GeluForward:
		name += " +gelu+aux"
	case g.GELU == GeluBackward:
		name += " +dgelu"
	}
	if g.CType == BFloat16 {
		name += " >bf16"
	}
	if g.Ptrs {
		name += " ptrs"
	}
	return p.timed(name, 2*float64(g.M)*float64(g.N)*float64(g.K)*float64(batch), func() error { return p.Driver.Gemm(g) })
}

// gemmInputs names a GEMM's arithmetic: bf16 inputs, or fp32 data with FP32 or TF32 products.
func gemmInputs(g GemmArgs) string {
	switch {
	case g.AType == BFloat16:
		return "bf16"
	case g.Compute == ComputeTF32:
		return "tf32"
	}
	return "fp32"
}

// Stats returns the groups, longest total time first (name order among equal times). In
// the stream, it reads the pending marks first (waiting for the stream).
func (p *Profiler) Stats() []OpStat {
	if p.marker != nil {
		p.flush() // a failure is kept in p.err for Report
	}
	out := make([]OpStat, 0, len(p.stats))
	for _, s := range p.stats {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b OpStat) int {
		if c := cmp.Compare(b.Time, a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// opClasses are the kinds of work Report sums the groups into, each with the name prefixes
// of its groups (the first class whose prefix matches); "other" takes the rest.
var opClasses = []opClass{
	{"products (cuBLAS)", []string{"gemm "}},
	{"attention kernels", []string{"attention_"}},
	{"norms, modulation, gates", []string{"layernorm_", "modulate_", "gate_", "col_finish"}},
	{"optimizer, clipping, zeros", []string{"adamw", "sum_", "fill_"}},
	{"BF16 conversions", []string{"f32_to_bf16", "bf16_to_f32"}},
	{"copies and sets", []string{"copy", "memset"}}, // in the stream only
}

type opClass struct {
	name     string
	prefixes []string
}

// has reports whether the group name is of this kind.
func (c opClass) has(name string) bool {
	return slices.ContainsFunc(c.prefixes, func(pre string) bool { return strings.HasPrefix(name, pre) })
}

// ClassStat is the time of one kind of work (opClasses) and the groups in it.
type ClassStat struct {
	Name   string
	Groups int
	Calls  int
	Time   time.Duration
	FLOPs  float64
}

// Classes sums the groups by kind of work, in opClasses' order, then "other".
func (p *Profiler) Classes() []ClassStat {
	if p.marker != nil {
		p.flush()
	}
	out := make([]ClassStat, len(opClasses)+1)
	for i, c := range opClasses {
		out[i].Name = c.name
	}
	out[len(opClasses)].Name = "other"
	for _, s := range p.stats {
		i := slices.IndexFunc(opClasses, func(c opClass) bool { return c.has(s.Name) })
		if i < 0 {
			i = len(opClasses)
		}
		out[i].Groups++
		out[i].Calls += s.Calls
		out[i].Time += s.Time
		out[i].FLOPs += s.FLOPs
	}
	return out
}

// Reset forgets every group (e.g. after a warm-up), and in the stream the pending marks
// (read and dropped).
func (p *Profiler) Reset() {
	if p.marker != nil {
		p.flush()
	}
	clear(p.stats)
	p.err = nil
}

// Report writes the top groups (all with top <= 0) as a table: calls, total milliseconds,
// mean microseconds per call, share of the profiled time, and GFLOP/s for GEMMs; then the
// rest summed and the total; then the time by kind of work (Classes).
func (p *Profiler) Report(w io.Writer, top int) error {
	stats := p.Stats()
	if p.err != nil {
		return p.err
	}
	mode := "each operation timed on its own (synchronised): shares of a slower run"
	if p.marker != nil {
		mode = "times in the stream (events): each operation from the end of the one before it, its launch gap included"
	}
	if _, err := fmt.Fprintln(w, mode); err != nil {
		return err
	}
	var total time.Duration
	for _, s := range stats {
		total += s.Time
	}
	share := func(t time.Duration) float64 {
		if total == 0 {
			return 0
		}
		return 100 * float64(t) / float64(total)
	}
	ms := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) }
	if _, err := fmt.Fprintf(w, "%-40s %7s %10s %10s %7s %9s\n", "operation", "calls", "total ms", "mean us", "share", "GFLOP/s"); err != nil {
		return err
	}
	if top <= 0 || top > len(stats) {
		top = len(stats)
	}
	for _, s := range stats[:top] {
		rate := ""
		if s.FLOPs > 0 && s.Time > 0 {
			rate = fmt.Sprintf("%.0f", s.FLOPs/s.Time.Seconds()/1e9)
		}
		if _, err := fmt.Fprintf(w, "%-40s %7d %10.3f %10.1f %6.1f%% %9s\n", s.Name, s.Calls, ms(s.Time),
			float64(s.Time)/float64(time.Microsecond)/float64(s.Calls), share(s.Time), rate); err != nil {
			return err
		}
	}
	var rest time.Duration
	restCalls := 0
	for _, s := range stats[top:] {
		rest += s.Time
		restCalls += s.Calls
	}
	if restCalls > 0 {
		if _, err := fmt.Fprintf(w, "%-40s %7d %10.3f %10s %6.1f%%\n", fmt.Sprintf("(%d more)", len(stats)-top), restCalls, ms(rest), "", share(rest)); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(w, "%-40s %7s %10.3f\n", "total", "", ms(total)); err != nil {
		return err
	}
	for _, c := range p.Classes() {
		if c.Calls == 0 {
			continue
		}
		rate := ""
		if c.FLOPs > 0 && c.Time > 0 {
			rate = fmt.Sprintf("%.0f", c.FLOPs/c.Time.Seconds()/1e9)
		}
		if _, err := fmt.Fprintf(w, "%-40s %7d %10.3f %10s %6.1f%% %9s\n", "by kind: "+c.Name, c.Calls, ms(c.Time), "",
			share(c.Time), rate); err != nil {
			return err
		}
	}
	return nil
}
