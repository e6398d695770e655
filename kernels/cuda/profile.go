// Profiler: a Driver that times every kernel launch and GEMM of the driver it wraps, to find
// where a training step or a sampling run spends its time (which kernels to fuse next).
//
// Each Launch and Gemm is bracketed by Synchronize calls, so an operation's time is its own:
// the stream is drained before the clock starts and after it stops. That serialises the
// stream and adds a synchronisation's latency (some microseconds on a GPU) to every call, so
// a profiled run is slower than a plain one and the small kernels' shares are upper bounds;
// the ranking of the large ones is what it is for. Memory copies and sets are not timed.
//
// Operations are grouped by kernel name; GEMMs by shape (m x n x k, times the batch count)
// and compute type, with their arithmetic rate 2*m*n*k*batch / time. The report ends with
// the time by kind of work (products, attention, norms and gates, optimizer, conversions,
// other: Classes), the first thing to read against a step's budget.
//
//	d := NewDevice(NewProfiler(drv), "cuda:0")
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
	now   func() time.Time // time.Now, replaced in tests
	stats map[string]*OpStat
}

// NewProfiler returns a profiler over drv.
func NewProfiler(drv Driver) *Profiler {
	return &Profiler{Driver: drv, now: time.Now, stats: map[string]*OpStat{}}
}

// SetGemmTuning passes the setting on to the profiled driver where it has one.
func (p *Profiler) SetGemmTuning(n int) bool {
	t, ok := p.Driver.(gemmTuner)
	return ok && t.SetGemmTuning(n)
}

// timed runs op between two synchronisations and adds its time to the group name.
func (p *Profiler) timed(name string, flops float64, op func() error) error {
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
	s := p.stats[name]
	if s == nil {
		s = &OpStat{Name: name}
		p.stats[name] = s
	}
	s.Calls++
	s.Time += p.now().Sub(t0)
	s.FLOPs += flops
	return nil
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
	switch g.GELU {
	case GeluForward:
		name += " +gelu"
	case GeluBackward:
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

// Stats returns the groups, longest total time first (name order among equal times).
func (p *Profiler) Stats() []OpStat {
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

// Reset forgets every group (e.g. after a warm-up).
func (p *Profiler) Reset() { clear(p.stats) }

// Report writes the top groups (all with top <= 0) as a table: calls, total milliseconds,
// mean microseconds per call, share of the profiled time, and GFLOP/s for GEMMs; then the
// rest summed and the total; then the time by kind of work (Classes).
func (p *Profiler) Report(w io.Writer, top int) error {
	stats := p.Stats()
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
