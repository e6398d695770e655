// Tests of the CUDA device's own Go logic on the emulated driver: launch order, the caching
// allocator (size classes, reuse, release on out-of-memory), freed tensors, shape checks,
// and that memory stays linear in T for attention.
//
// Test: go test ./kernels/cuda -run 'Device|Alloc'
package cuda

import (
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestDeviceLaunchOrder(t *testing.T) {
	drv := NewEmuDriver()
	var order []string
	drv.Trace = func(k string, grid, block Dim3, shmem int) { order = append(order, k) }
	d := NewDevice(drv, "trace")
	N, C := 3, 5
	x, w := d.FromHost(normals(1, N*C), N, C), d.FromHost(normals(2, C), C)
	mean, rstd, dw, db := d.New(N), d.New(N), d.New(C), d.New(C)
	d.LayerNormBackward(x, dw, db, x, x, w, mean, rstd, N, C)
	want := []string{"layernorm_backward_params", "layernorm_backward_dx"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("launches %v, want %v (parameter gradients before dinp overwrites dout)", order, want)
	}
	order = nil
	d.Add(d.New(0), d.New(0), d.New(0)) // empty: no launch (a GPU refuses a zero grid)
	if len(order) != 0 {
		t.Fatalf("launches for empty tensors: %v", order)
	}
}

func TestAllocSizeClass(t *testing.T) {
	for _, c := range [][2]int{{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<17}, {3 << 20, 3 << 20}, {5<<20 + 7, 5<<20 + 1<<19}} {
		if got := sizeClass(c[0]); got != c[1] {
			t.Errorf("sizeClass(%d) = %d, want %d", c[0], got, c[1])
		}
		if got := sizeClass(c[0]); got < c[0] || float64(got) > 1.125*float64(max(c[0], 1<<20)) {
			t.Errorf("sizeClass(%d) = %d wastes too much", c[0], got)
		}
	}
}

func TestAllocReuseAndRelease(t *testing.T) {
	drv := NewEmuDriver()
	d := NewDevice(drv, "alloc")
	a := d.New(1000)
	p := d.ptr(a)
	d.Free(a)
	b := d.New(1000)
	if d.ptr(b) != p {
		t.Error("a freed block of the same class was not reused")
	}
	st := d.MemStats()
	if st.Allocs != 1 || st.Reuses != 1 || st.InUse != 4096 || st.Cached != 0 {
		t.Errorf("stats %+v", st)
	}
	// Out of memory: cached blocks are released and the allocation retried.
	drv.MemLimit = drv.Used() + 16384
	c := d.New(3000) // 12000 bytes (class 12032): fits
	d.Free(c)
	e := d.New(2000) // 8000 bytes (class 8192): fits only after the cached 12032 bytes go back
	if st := d.MemStats(); st.Cached != 0 || st.InUse != 4096+8192 {
		t.Errorf("after release and retry: %+v", st)
	}
	d.Free(b)
	d.Free(e)
	if err := d.EmptyCache(); err != nil {
		t.Fatal(err)
	}
	if drv.Used() != 0 {
		t.Errorf("%d bytes still allocated after EmptyCache", drv.Used())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "HINT") {
			t.Errorf("allocation beyond the limit: %v", r)
		}
	}()
	d.New(1 << 20)
}

func mustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Errorf("no panic, want one containing %q", want)
			return
		}
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("panic %v, want one containing %q", r, want)
		}
	}()
	fn()
}

func TestDeviceChecks(t *testing.T) {
	d := NewEmulated()
	x := d.New(4)
	v := x.View(1, 2)
	d.Free(x)
	mustPanic(t, "was freed", func() { d.Scale(x, 2) })
	mustPanic(t, "was freed", func() { d.Scale(v, 2) })
	cpu := kernels.NewCPU(1)
	mustPanic(t, "not a tensor of a CUDA device", func() { d.Scale(cpu.New(3), 2) })
	other := NewEmulated()
	mustPanic(t, "another CUDA device", func() { d.Scale(other.New(3), 2) })
	y := d.New(6)
	mustPanic(t, "has 6 elements, want 5", func() { d.AddBias(y, y, d.New(2), 5, 1) })
	mustPanic(t, "head size 200", func() { d.AttentionForward(d.New(200), d.New(1), d.New(600), nil, 1, 1, 1, 200) })
	mustPanic(t, "out of range", func() { d.EmbeddingForward(d.New(2), d.New(6), []int32{0, 3}, 2) })
}

// TestAttentionMemoryLinear checks that the fused attention allocates scratch linear in T
// (the (T,T) score matrix is never stored).
func TestAttentionMemoryLinear(t *testing.T) {
	d := NewEmulated()
	B, T, NH, HS := 1, 200, 1, 8
	qkv := d.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
	out, lse, dout, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.FromHost(normals(4, B*T*NH*HS), B, T, NH, HS), d.New(B, T, 3, NH, HS)
	before := d.MemStats().Peak
	d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
	d.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS)
	if extra := d.MemStats().Peak - before; extra > int64(4*B*NH*T+256) {
		t.Errorf("attention used %d bytes of scratch for T=%d, want O(T)", extra, T)
	}
}

func TestDescribe(t *testing.T) {
	if s := NewEmulated().Describe(); !strings.HasPrefix(s, "CPU emulation (fibers), compute capability 9.0") {
		t.Errorf("Describe() = %q", s)
	}
}
