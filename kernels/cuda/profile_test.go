package cuda

import (
	"io"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// syncCounter is the emulated driver with its Synchronize calls counted in order with the
// launches and GEMMs, to check that the profiler brackets each one.
type syncCounter struct {
	*EmuDriver
	log []string
}

func (s *syncCounter) Synchronize() error {
	s.log = append(s.log, "sync")
	return s.EmuDriver.Synchronize()
}

func (s *syncCounter) Gemm(g GemmArgs) error {
	s.log = append(s.log, "gemm")
	return s.EmuDriver.Gemm(g)
}

func TestProfiler(t *testing.T) {
	inner := &syncCounter{EmuDriver: NewEmuDriver()}
	inner.Trace = func(k string, grid, block Dim3, shmem int) { inner.log = append(inner.log, k) }
	prof := NewProfiler(inner)
	// A clock whose readings advance by 0.5, 1, 1.5, 2, ... ms: the i-th operation (from 1)
	// lasts the two steps between its readings, exactly i ms.
	clock, step := time.Unix(0, 0), time.Duration(0)
	prof.now = func() time.Time {
		step += time.Millisecond / 2
		clock = clock.Add(step)
		return clock
	}
	d := NewDevice(prof, "profile")
	N, C := 3, 5
	x, y := d.FromHost(normals(1, N*C), N, C), d.FromHost(normals(2, N*C), N, C)
	d.Add(x, x, y) // op 1: lasts 1 ms
	d.Add(x, x, y) // op 2: 2 ms
	m, n, k := 4, 3, 5
	a, b, c := d.FromHost(normals(3, m*k), m, k), d.FromHost(normals(4, k*n), k, n), d.New(m, n)
	d.Gemm(false, false, m, n, k, 1, a, b, 0, c) // op 3: lasts 3 ms

	stats := prof.Stats()
	if len(stats) != 2 {
		t.Fatalf("groups %+v, want add and one GEMM", stats)
	}
	add, g := stats[0], stats[1] // both 3 ms: in name order, add_f32 first
	if !strings.HasPrefix(g.Name, "gemm ") || g.Calls != 1 || g.Time != 3*time.Millisecond || g.FLOPs != 2*float64(m*n*k) {
		t.Errorf("GEMM group %+v, want 1 call, 3ms, %d FLOPs", g, 2*m*n*k)
	}
	if add.Calls != 2 || add.Time != 3*time.Millisecond || add.FLOPs != 0 {
		t.Errorf("kernel group %+v, want 2 calls, 3ms", add)
	}
	// Every launch and GEMM sits between two synchronisations.
	for i, e := range inner.log {
		if e == "sync" {
			continue
		}
		if i == 0 || i == len(inner.log)-1 || inner.log[i-1] != "sync" || inner.log[i+1] != "sync" {
			t.Errorf("operation %q at %d of %v is not bracketed by Synchronize", e, i, inner.log)
		}
	}

	var sb strings.Builder
	if err := prof.Report(&sb, 1); err != nil {
		t.Fatal(err)
	}
	rep := sb.String()
	// The top group (add, 3 of 6 ms), the GEMM summed into the rest, the total, and the two
	// kinds of work (the GEMM a product, add_f32 other).
	for _, want := range []string{add.Name, "50.0%", "(1 more)", "total", "6.000", "by kind: products (cuBLAS)",
		"by kind: other"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	cls := prof.Classes()
	if p, o := cls[0], cls[len(cls)-1]; p.Calls != 1 || p.Time != 3*time.Millisecond || p.FLOPs != g.FLOPs ||
		o.Name != "other" || o.Calls != 2 || o.Groups != 1 || o.Time != 3*time.Millisecond {
		t.Errorf("classes %+v, want the GEMM in products and add_f32's two calls in other", cls)
	}
	prof.Reset()
	if len(prof.Stats()) != 0 {
		t.Error("Reset left groups")
	}
}

// Every kernel of the device's families falls in the kind of work its name says.
func TestProfilerClasses(t *testing.T) {
	prof := NewProfiler(NewEmuDriver())
	for _, c := range []struct{ name, class string }{
		{"gemm 8x4x2 bf16", "products (cuBLAS)"},
		{"attention_forward_mma", "attention kernels"},
		{"attention_backward_dd", "attention kernels"},
		{"layernorm_backward_dx", "norms, modulation, gates"},
		{"modulate_backward", "norms, modulation, gates"},
		{"gate_backward", "norms, modulation, gates"},
		{"col_finish", "norms, modulation, gates"},
		{"adamw_chunks", "optimizer, clipping, zeros"},
		{"sum_squares_chunks", "optimizer, clipping, zeros"},
		{"fill_chunks", "optimizer, clipping, zeros"},
		{"f32_to_bf16", "BF16 conversions"},
		{"copy to host", "copies and sets"},
		{"memset", "copies and sets"},
		{"permute", "other"},
	} {
		prof.Reset()
		prof.stats[c.name] = &OpStat{Name: c.name, Calls: 1, Time: time.Millisecond}
		for _, k := range prof.Classes() {
			if (k.Calls == 1) != (k.Name == c.class) {
				t.Errorf("%s: class %q has %d calls, want it in %q", c.name, k.Name, k.Calls, c.class)
			}
		}
	}
}

func TestProfilerGemmNames(t *testing.T) {
	for _, c := range []struct {
		g    GemmArgs
		want string
	}{
		{GemmArgs{M: 8, N: 4, K: 2}, "gemm 8x4x2 fp32"},
		{GemmArgs{M: 8, N: 4, K: 2, Batch: 1, Compute: ComputeTF32}, "gemm 8x4x2 tf32"},
		{GemmArgs{M: 8, N: 4, K: 2, Batch: 6, AType: BFloat16, BType: BFloat16}, "gemm 8x4x2 x6 bf16"},
		{GemmArgs{M: 8, N: 4, K: 2, Batch: 1, Bias: 64, GELU: GeluForward, CType: BFloat16, AType: BFloat16}, "gemm 8x4x2 bf16 +bias +gelu >bf16"},
		{GemmArgs{M: 8, N: 4, K: 2, Batch: 1, GELU: GeluForward, Aux: 128, LDAux: 8}, "gemm 8x4x2 fp32 +gelu+aux"},
		{GemmArgs{M: 8, N: 4, K: 2, Batch: 1, BiasGrad: 64, GELU: GeluBackward}, "gemm 8x4x2 fp32 +bgrad +dgelu"},
	} {
		prof := NewProfiler(nopGemmDriver{NewEmuDriver()})
		if err := prof.Gemm(c.g); err != nil {
			t.Fatal(err)
		}
		if s := prof.Stats(); len(s) != 1 || s[0].Name != c.want || s[0].FLOPs != 2*8*4*2*float64(max(c.g.Batch, 1)) {
			t.Errorf("%+v: stats %+v, want one group %q", c.g, s, c.want)
		}
	}
}

// nopGemmDriver accepts any GEMM without touching memory (the names test passes no buffers).
type nopGemmDriver struct{ *EmuDriver }

func (nopGemmDriver) Gemm(GemmArgs) error { return nil }

// tunerDriver is an emulated driver that records the GEMM tuning asked of it.
type tunerDriver struct {
	*EmuDriver
	n int
}

func (t *tunerDriver) SetGemmTuning(n int) bool {
	t.n = n
	return true
}

// Device.SetGemmTuning reaches a driver that tunes, through a profiler too, and reports
// false where the driver cannot (the emulation has one algorithm per product).
func TestSetGemmTuning(t *testing.T) {
	if NewDevice(NewEmuDriver(), "emu").SetGemmTuning(8) {
		t.Error("the emulated driver reports that it tunes")
	}
	if NewDevice(NewProfiler(NewEmuDriver()), "emu").SetGemmTuning(8) {
		t.Error("a profiler over the emulated driver reports that it tunes")
	}
	drv := &tunerDriver{EmuDriver: NewEmuDriver()}
	d := NewDevice(NewProfiler(drv), "tuner")
	if !d.SetGemmTuning(5) || drv.n != 5 {
		t.Errorf("a profiler over a tuning driver: the driver got %d, want 5", drv.n)
	}
	if got := d.Describe(); !strings.HasSuffix(got, "GEMM fp32 tuned over 5 algorithms") {
		t.Errorf("Describe after SetGemmTuning(5): %q", got)
	}
}

// clockDriver is the emulated driver on a made-up GPU clock: each launch takes 2 ms of it,
// each GEMM 3 ms, each copy or set 1 ms, and its marks read that clock; the test moves the
// clock for time the GPU waits on the host. It counts its synchronisations.
type clockDriver struct {
	*EmuDriver
	clock time.Duration
	marks []time.Duration
	syncs int
}

func (c *clockDriver) Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error {
	c.clock += 2 * time.Millisecond
	return c.EmuDriver.Launch(kernel, grid, block, shmem, args)
}

func (c *clockDriver) Gemm(g GemmArgs) error {
	c.clock += 3 * time.Millisecond
	return c.EmuDriver.Gemm(g)
}

func (c *clockDriver) DtoD(dst, src DevPtr, bytes int) error {
	c.clock += time.Millisecond
	return c.EmuDriver.DtoD(dst, src, bytes)
}

func (c *clockDriver) DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error {
	c.clock += time.Millisecond
	return c.EmuDriver.DtoH(dst, src, bytes)
}

func (c *clockDriver) Synchronize() error {
	c.syncs++
	return nil
}

func (c *clockDriver) Mark() error {
	c.marks = append(c.marks, c.clock)
	return nil
}

func (c *clockDriver) MarkGaps() ([]time.Duration, error) {
	c.syncs++
	var gaps []time.Duration
	for i := 1; i < len(c.marks); i++ {
		gaps = append(gaps, c.marks[i]-c.marks[i-1])
	}
	c.marks = nil
	return gaps, nil
}

// In the stream, an operation's time runs from the end of the one before it: the GPU's
// wait for the host inside a series goes to the next operation, the wait after a
// synchronisation to none; nothing waits until the marks are read; copies are timed.
func TestStreamProfiler(t *testing.T) {
	if _, err := NewStreamProfiler(struct{ Driver }{NewEmuDriver()}); err == nil {
		t.Error("a profiler in the stream over a driver without marks")
	}
	drv := &clockDriver{EmuDriver: NewEmuDriver()}
	prof, err := NewStreamProfiler(drv)
	if err != nil || !prof.InStream() {
		t.Fatalf("NewStreamProfiler: %v", err)
	}
	d := NewDevice(prof, "stream")
	N, C := 3, 5
	x, y := d.FromHost(normals(1, N*C), N, C), d.FromHost(normals(2, N*C), N, C)
	m, n, k := 4, 3, 5
	a, b, c := d.FromHost(normals(3, m*k), m, k), d.FromHost(normals(4, k*n), k, n), d.New(m, n)
	prof.Reset() // the uploads' marks, read and dropped
	drv.syncs = 0
	d.Add(x, x, y)                    // 2 ms
	drv.clock += 5 * time.Millisecond // the GPU waits 5 ms for the host: the next operation's
	d.Add(x, x, y)                    // 5 + 2 ms
	d.Gemm(false, false, m, n, k, 1, a, b, 0, c)
	d.Copy(y, x) // 1 ms
	if drv.syncs != 0 {
		t.Errorf("%d waits while profiling in the stream, want none", drv.syncs)
	}
	got := make([]float32, N*C)
	d.CopyToHost(got, x)                // 1 ms, and the marks are read
	drv.clock += 100 * time.Millisecond // after a wait: counted nowhere
	d.Add(x, x, y)                      // 2 ms
	stats := map[string]OpStat{}
	for _, s := range prof.Stats() {
		stats[s.Name] = s
	}
	g := "gemm 3x4x5 fp32" // cuBLAS's column-major shape: n x m x k
	want := map[string]OpStat{
		"add_f32":      {Name: "add_f32", Calls: 3, Time: 11 * time.Millisecond},
		g:              {Name: g, Calls: 1, Time: 3 * time.Millisecond, FLOPs: 2 * float64(m*n*k)},
		"copy":         {Name: "copy", Calls: 1, Time: time.Millisecond},
		"copy to host": {Name: "copy to host", Calls: 1, Time: time.Millisecond},
	}
	if len(stats) != len(want) {
		t.Errorf("groups %+v, want %+v", stats, want)
	}
	for name, w := range want {
		if s := stats[name]; s != w {
			t.Errorf("group %q: %+v, want %+v", name, s, w)
		}
	}
	var sb strings.Builder
	if err := prof.Report(&sb, 0); err != nil {
		t.Fatal(err)
	}
	if rep := sb.String(); !strings.Contains(rep, "times in the stream") || !strings.Contains(rep, "16.000") {
		t.Errorf("report lacks its mode or the 16 ms total:\n%s", rep)
	}
}

// A profile whose marks do not match its operations fails its report instead of
// misattributing the times.
func TestStreamProfilerLostMarks(t *testing.T) {
	drv := &clockDriver{EmuDriver: NewEmuDriver()}
	prof, _ := NewStreamProfiler(drv)
	d := NewDevice(prof, "stream")
	x := d.FromHost(normals(1, 8), 2, 4)
	d.Add(x, x, x)
	drv.marks = drv.marks[:1]
	if err := prof.Report(io.Discard, 0); err == nil || !strings.Contains(err.Error(), "times read") {
		t.Errorf("report with lost marks: %v", err)
	}
	prof.Reset()
	d.Add(x, x, x)
	if err := prof.Report(io.Discard, 0); err != nil {
		t.Errorf("after Reset: %v", err)
	}
}

// The emulated driver's marks read the host clock, one gap fewer than the marks.
func TestEmuMarks(t *testing.T) {
	e := NewEmuDriver()
	for range 3 {
		e.Mark()
	}
	gaps, err := e.MarkGaps()
	if err != nil || len(gaps) != 2 || gaps[0] < 0 || gaps[1] < 0 {
		t.Errorf("gaps %v, %v: want two, not negative", gaps, err)
	}
	if gaps, _ := e.MarkGaps(); len(gaps) != 0 {
		t.Errorf("gaps %v after a read, want none", gaps)
	}
}

// checkStreamProfile profiles a few operations on d in the stream (Device.Profile): every
// launch and product gets a time, and their sum is at most the wall time from the first to
// the wait that reads them. TestStreamProfilerGPU runs it on the real driver's events.
func checkStreamProfile(t *testing.T, d *Device) {
	prof, err := d.Profile()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.Profile(); again != prof {
		t.Error("a second Profile made another profiler")
	}
	const n = 1 << 14
	x, y := d.FromHost(normals(1, n), n), d.FromHost(normals(2, n), n)
	a := d.FromHost(normals(3, 64*64), 64, 64)
	c := d.New(64, 64)
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	prof.Reset()
	t0 := time.Now()
	for range 5 {
		d.Add(x, x, y)
		d.Gemm(false, false, 64, 64, 64, 1, a, a, 0, c)
	}
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	var total time.Duration
	calls := 0
	for _, s := range prof.Stats() {
		if s.Time <= 0 {
			t.Errorf("%s: %v over %d calls", s.Name, s.Time, s.Calls)
		}
		total += s.Time
		calls += s.Calls
	}
	if calls != 10 || total > wall {
		t.Errorf("%d operations timed, %v in all, in %v of wall time; want 10, at most the wall time", calls, total, wall)
	}
	t.Logf("10 operations: %v in the stream, %v of wall time", total, wall)
}

func TestStreamProfilerEmulated(t *testing.T) { checkStreamProfile(t, NewEmulated()) }
