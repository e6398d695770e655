// Tests of Tensor views and reshapes. Run: go test ./kernels -run Tensor
package kernels

import (
	"strings"
	"testing"
)

func TestTensorViewSharesStorage(t *testing.T) {
	d := NewCPU(1)
	x := d.FromHost([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 4)
	v := x.View(4, 2, 2)
	if got := Host(v); len(got) != 4 || got[0] != 4 || got[3] != 7 {
		t.Fatalf("view data = %v, want [4 5 6 7]", got)
	}
	d.Fill(v, -1)
	want := []float32{0, 1, 2, 3, -1, -1, -1, -1, 8, 9, 10, 11}
	for i, w := range Host(x) {
		if w != want[i] {
			t.Fatalf("after Fill on view, parent = %v, want %v", Host(x), want)
		}
	}
	r := x.Row(2)
	if r.Offset != 8 || r.Len() != 4 || Host(r)[0] != 8 {
		t.Fatalf("Row(2) = %v offset %d data %v", r, r.Offset, Host(r))
	}
	// A view of a view adds offsets.
	vv := r.View(1, 2)
	if Host(vv)[0] != 9 || Host(vv)[1] != 10 {
		t.Fatalf("view of view = %v, want [9 10]", Host(vv))
	}
}

func TestTensorReshape(t *testing.T) {
	d := NewCPU(1)
	x := d.New(2, 3, 4)
	r := x.Reshape(6, -1)
	if r.Dim(0) != 6 || r.Dim(-1) != 4 || r.Mem != x.Mem {
		t.Fatalf("Reshape(6,-1) = %v", r)
	}
	for _, bad := range [][]int{{5, 5}, {-1, -1}, {7, -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Reshape%v of %v did not panic", bad, x.Shape)
				}
			}()
			x.Reshape(bad...)
		}()
	}
}

func TestTensorViewOutOfRangePanics(t *testing.T) {
	d := NewCPU(1)
	x := d.New(10)
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "out of range") {
			t.Fatalf("View past the end: recover() = %v", r)
		}
	}()
	x.View(8, 3)
}

func TestCPUCopies(t *testing.T) {
	d := NewCPU(2)
	src := []float32{1, 2, 3, 4, 5, 6}
	x := d.FromHost(src, 2, 3)
	y := d.New(2, 3)
	d.Copy(y, x)
	got := make([]float32, 6)
	d.CopyToHost(got, y)
	for i := range src {
		if got[i] != src[i] {
			t.Fatalf("Copy/CopyToHost = %v, want %v", got, src)
		}
	}
	d.CopyFromHost(y.View(3, 3), []float32{7, 8, 9})
	d.CopyToHost(got, y)
	if got[2] != 3 || got[3] != 7 || got[5] != 9 {
		t.Fatalf("CopyFromHost into view: %v", got)
	}
	if !SameShape(x, y) || SameShape(x, x.Reshape(3, 2)) {
		t.Fatal("SameShape wrong")
	}
}

func TestCPUParallelCoversRange(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		d := NewCPU(threads)
		for _, n := range []int{0, 1, 5, 37, 1000} {
			hits := make([]int32, n)
			d.parallel(n, 3, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads=%d n=%d: index %d visited %d times", threads, n, i, h)
				}
			}
		}
	}
}
