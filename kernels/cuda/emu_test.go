// Tests of the CPU emulation itself: the kernel table, argument checking, a deadlock
// reported exactly (fibers), the watchdog, real threads (atomics, shared memory, barriers),
// and the accuracy of kmath.h.
//
// Test: go test ./kernels/cuda -run 'Emu|KMath'
package cuda

import (
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// emuBuf allocates n bytes on the emulated driver, zeroed.
func emuBuf(t *testing.T, drv *EmuDriver, n int) DevPtr {
	t.Helper()
	p, err := drv.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Memset32(p, 0, (n+3)/4); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drv.Free(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestEmuKernelTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range emuKernels() {
		if seen[k.Name] {
			t.Errorf("kernel %s registered twice", k.Name)
		}
		seen[k.Name] = true
		if strings.Trim(k.Sig, "pifudq") != "" {
			t.Errorf("kernel %s: signature %q", k.Name, k.Sig)
		}
	}
	if !seen["add_f32"] {
		t.Fatal("add_f32 missing from the kernel table")
	}
}

func TestEmuArgumentChecks(t *testing.T) {
	drv := NewEmuDriver()
	p := emuBuf(t, drv, 64)
	one := Dim3{1, 1, 1}
	w := Dim3{32, 1, 1}
	cases := []struct {
		name   string
		kernel string
		grid   Dim3
		block  Dim3
		args   []Arg
		want   string
	}{
		{"types", "add_f32", one, w, []Arg{P(p), P(p), P(p), F(1)}, "takes (pppi)"},
		{"count", "add_f32", one, w, []Arg{P(p), P(p), P(p)}, "takes (pppi)"},
		{"name", "no_such_kernel", one, w, nil, "no kernel named"},
		// 4096: below the lowest address the host allocator hands out (p + 1 MiB could fall inside
		// a block another test left allocated: the registry of blocks is the process's).
		{"pointer", "add_f32", one, w, []Arg{P(4096), P(p), P(p), I(1)}, "outside every allocated block"},
		{"partial warp", "add_f32", one, Dim3{48, 1, 1}, []Arg{P(p), P(p), P(p), I(1)}, "whole number of warps"},
		{"grid", "add_f32", Dim3{1, 70000, 1}, w, []Arg{P(p), P(p), P(p), I(1)}, "invalid grid"},
		{"block", "add_f32", one, Dim3{2048, 1, 1}, []Arg{P(p), P(p), P(p), I(1)}, "invalid block"},
		{"shared", "add_f32", one, w, []Arg{P(p), P(p), P(p), I(1)}, ""},
	}
	for _, c := range cases {
		err := drv.Launch(c.kernel, c.grid, c.block, 0, c.args)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if err := drv.Launch("add_f32", one, w, 64<<10, []Arg{P(p), P(p), P(p), I(1)}); err == nil {
		t.Error("64 KiB of dynamic shared memory accepted")
	}
}

func TestEmuRedZone(t *testing.T) {
	drv := NewEmuDriver()
	p, err := drv.Alloc(40)
	if err != nil {
		t.Fatal(err)
	}
	// 11 floats from a 40-byte block: the 11th lands in the red zone.
	if err := drv.Launch("scale_f32", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(p), F(2), I(11)}); err != nil {
		t.Fatal(err)
	}
	if err := drv.Free(p); err == nil || !strings.Contains(err.Error(), "past its end") {
		t.Fatalf("Free after an overrun: %v", err)
	}
}

func TestEmuDeadlock(t *testing.T) {
	drv := NewEmuDriver()
	p := emuBuf(t, drv, 4*32)
	err := drv.Launch("emu_test_deadlock", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(p)})
	if err == nil || !strings.Contains(err.Error(), "deadlock in block (0,0,0): 16 threads wait at __syncthreads; 16 threads wait at a warp shuffle") {
		t.Fatalf("got %v, want a deadlock report", err)
	}
	// The emulator is usable afterwards.
	if err := drv.Launch("scale_f32", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(p), F(2), I(32)}); err != nil {
		t.Fatal(err)
	}
}

func TestEmuWatchdog(t *testing.T) {
	drv := NewEmuDriver()
	flag := emuBuf(t, drv, 4)
	drv.Timeout = 200 * time.Millisecond
	err := drv.Launch("emu_test_spin", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(flag)})
	if err == nil || !strings.Contains(err.Error(), "watchdog: kernel emu_test_spin") {
		t.Fatalf("got %v, want a watchdog error", err)
	}
	err = drv.Launch("scale_f32", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(flag), F(2), I(1)})
	if err == nil || !strings.Contains(err.Error(), "emulator busy") {
		t.Fatalf("launch during a runaway kernel: %v", err)
	}
	one := int32(1)
	if err := drv.HtoD(flag, unsafe.Pointer(&one), 4); err != nil { // lets the spinning kernel end
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = drv.Launch("scale_f32", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, []Arg{P(flag), F(2), I(0)})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("emulator still refuses launches after the runaway kernel ended: %v", err)
	}
}

// TestEmuThreads runs a kernel with shared memory, barriers, shuffles and atomics with one
// OS thread per CUDA thread, and with fibers.
func TestEmuThreads(t *testing.T) {
	for _, mode := range []EmuMode{EmuThreads, EmuFibers, EmuFibersReverse} {
		drv := NewEmuDriver()
		drv.Mode = mode
		const grid, block = 3, 256
		out := emuBuf(t, drv, 8*2*grid)
		counter := emuBuf(t, drv, 4)
		if err := drv.Launch("emu_test_race", Dim3{grid, 1, 1}, Dim3{block, 1, 1}, 0, []Arg{P(out), P(counter)}); err != nil {
			t.Fatal(err)
		}
		var got [2 * grid]float64
		var n int32
		if err := drv.DtoH(unsafe.Pointer(&got[0]), out, 8*2*grid); err != nil {
			t.Fatal(err)
		}
		if err := drv.DtoH(unsafe.Pointer(&n), counter, 4); err != nil {
			t.Fatal(err)
		}
		if n != grid*block {
			t.Errorf("%v: atomic counter %d, want %d", mode, n, grid*block)
		}
		for i, v := range got {
			if v != block*(block-1)/2 {
				t.Errorf("%v: block sum %d = %g, want %d", mode, i, v, block*(block-1)/2)
			}
		}
	}
}

// ulps is the distance between a and b in float32 units in the last place.
func ulps(a, b float32) int64 {
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

func TestKMathFloat(t *testing.T) {
	drv := NewEmuDriver()
	var xs []float32
	for x := -104.0; x < 89; x += 0.0137 {
		xs = append(xs, float32(x))
	}
	for _, v := range []float64{0, 1, 1e-30, 1e-40, 3e38, math.Inf(1), math.Inf(-1), math.NaN(), -1, -126.5, -149, 127.9} {
		xs = append(xs, float32(v))
	}
	n := len(xs)
	in, out := emuBuf(t, drv, 4*n), emuBuf(t, drv, 4*n)
	if err := drv.HtoD(in, unsafe.Pointer(&xs[0]), 4*n); err != nil {
		t.Fatal(err)
	}
	for fn, name := range []string{"km_expf", "km_logf", "exp2_approx"} {
		if err := drv.Launch("kmath_eval_f", Dim3{8, 1, 1}, Dim3{256, 1, 1}, 0, []Arg{P(out), P(in), I(n), I(fn)}); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, n)
		if err := drv.DtoH(unsafe.Pointer(&got[0]), out, 4*n); err != nil {
			t.Fatal(err)
		}
		worst := int64(0)
		for i, x := range xs {
			var want float32
			switch fn {
			case 0:
				want = float32(math.Exp(float64(x)))
			case 1:
				want = float32(math.Log(float64(x)))
			default:
				want = float32(math.Exp2(float64(x)))
			}
			switch {
			case math.IsNaN(float64(want)):
				if !math.IsNaN(float64(got[i])) {
					t.Errorf("%s(%g) = %g, want NaN", name, x, got[i])
				}
			case math.Abs(float64(want)) < 1.2e-38: // subnormal results flush to zero
				if math.Abs(float64(got[i])) > 1.2e-38 {
					t.Errorf("%s(%g) = %g, want %g", name, x, got[i], want)
				}
			default:
				if u := ulps(got[i], want); u > worst {
					worst = u
					if u > 2 {
						t.Errorf("%s(%g) = %.9g, want %.9g (%d ulp)", name, x, got[i], want, u)
					}
				}
			}
		}
		t.Logf("%s: worst %d ulp over %d values", name, worst, n)
	}
}

func TestKMathDouble(t *testing.T) {
	drv := NewEmuDriver()
	var xs []float64
	for x := -740.0; x < 709; x += 0.731 {
		xs = append(xs, x)
	}
	for x := 1e-300; x < 1e300; x *= 17.3 {
		xs = append(xs, x, 1/x)
	}
	for x := 0.0; x < 1e5; x = x*1.1 + 0.01 {
		xs = append(xs, x, -x)
	}
	n := len(xs)
	in, out := emuBuf(t, drv, 8*n), emuBuf(t, drv, 8*n)
	if err := drv.HtoD(in, unsafe.Pointer(&xs[0]), 8*n); err != nil {
		t.Fatal(err)
	}
	ref := []func(float64) float64{math.Exp, math.Log, math.Sin, math.Cos}
	for fn, name := range []string{"km_exp", "km_log", "sin", "cos"} {
		if err := drv.Launch("kmath_eval_d", Dim3{8, 1, 1}, Dim3{256, 1, 1}, 0, []Arg{P(out), P(in), I(n), I(fn)}); err != nil {
			t.Fatal(err)
		}
		got := make([]float64, n)
		if err := drv.DtoH(unsafe.Pointer(&got[0]), out, 8*n); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, x := range xs {
			want := ref[fn](x)
			if math.IsNaN(want) || math.IsInf(want, 0) {
				if math.IsNaN(want) != math.IsNaN(got[i]) || (math.IsInf(want, 0) && want != got[i]) {
					t.Errorf("%s(%g) = %g, want %g", name, x, got[i], want)
				}
				continue
			}
			if (fn == 2 || fn == 3) && math.Abs(x) > 1e5 {
				continue
			}
			scale := math.Abs(want)
			if fn >= 2 {
				scale = 1 // sin and cos: absolute error
			}
			if want != 0 && math.Abs(want) < 2.3e-308 {
				continue
			}
			if e := math.Abs(got[i]-want) / math.Max(scale, 1e-300); e > worst {
				worst = e
				if e > 2e-15 {
					t.Errorf("%s(%g) = %.17g, want %.17g (error %g)", name, x, got[i], want, e)
				}
			}
		}
		t.Logf("%s: worst error %g over %d values", name, worst, n)
	}
}

func TestRegisterEmulated(t *testing.T) {
	d, err := kernels.Open("cuda-emu")
	if err != nil {
		t.Fatal(err)
	}
	x := d.FromHost([]float32{1, 2, 3}, 3)
	d.Scale(x, 2)
	got := make([]float32, 3)
	d.CopyToHost(got, x)
	if got[0] != 2 || got[1] != 4 || got[2] != 6 {
		t.Fatalf("Scale on cuda-emu: %v", got)
	}
}
