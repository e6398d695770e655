// Tests of the CPU random fills: the element rule (counter block offset + i/4 with 64-bit
// carry, key = seed split lo/hi, word i%4), uniform and normal statistics on 1e5 draws,
// identical output for GOMAXPROCS 1, 2, 7 and for NewCPU(1) vs NewCPU(4), and guarded
// views that continue the stream.
//
// Test: go test ./kernels -run Rand
package kernels

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"
)

func TestRandElementRule(t *testing.T) {
	// A seed and an offset with both 32-bit halves set, and an offset whose low word
	// overflows inside the draw (carry into word 1).
	for _, sc := range []struct{ seed, offset uint64 }{
		{0x0123456789abcdef, 0xfedcba98_76543210},
		{42, 0x00000001_fffffffe},
	} {
		n := 23
		d := NewCPU(2)
		u, z := guarded(d, nil, n), guarded(d, nil, n)
		d.RandUniform(u, sc.seed, sc.offset)
		d.RandNormal(z, sc.seed, sc.offset)
		for i := 0; i < n; i++ {
			blk := sc.offset + uint64(i/4)
			w := philox([4]uint32{uint32(blk), uint32(blk >> 32), 0, 0}, [2]uint32{uint32(sc.seed), uint32(sc.seed >> 32)})
			wantU := (float64(w[i%4]>>8) + 0.5) / (1 << 24)
			if got := Host(u)[i]; math.Abs(float64(got)-wantU) > 1.0/(1<<25) || got <= 0 || got >= 1 {
				t.Errorf("seed %x offset %x: uniform[%d] = %v, want %v", sc.seed, sc.offset, i, got, wantU)
			}
			p := i % 4 / 2 * 2 // first word of the pair
			r := math.Sqrt(-2 * math.Log((float64(w[p]>>8)+0.5)/(1<<24)))
			th := 2 * math.Pi * (float64(w[p+1]>>8) + 0.5) / (1 << 24)
			wantZ := r * math.Cos(th)
			if i%2 == 1 {
				wantZ = r * math.Sin(th)
			}
			if got := Host(z)[i]; float64(got) != float64(float32(wantZ)) {
				t.Errorf("seed %x offset %x: normal[%d] = %v, want %v", sc.seed, sc.offset, i, got, wantZ)
			}
		}
		assertGuard(t, "RandUniform", u)
		assertGuard(t, "RandNormal", z)
	}
}

func meanVar(x []float32) (m, v float64) {
	for _, a := range x {
		m += float64(a)
	}
	m /= float64(len(x))
	for _, a := range x {
		v += (float64(a) - m) * (float64(a) - m)
	}
	return m, v / float64(len(x))
}

func TestRandStatistics(t *testing.T) {
	const n = 100000
	d := NewCPU(0)
	x := d.New(n)
	d.RandUniform(x, 1234, 0)
	m, v := meanVar(Host(x))
	// 5 standard errors: sd(mean) = sqrt(1/12/n), sd(var) ~ sqrt(1/180/n).
	if math.Abs(m-0.5) > 5*math.Sqrt(1.0/12/n) || math.Abs(v-1.0/12) > 5*math.Sqrt(1.0/180/n) {
		t.Errorf("uniform mean %v var %v, want 0.5 and 1/12", m, v)
	}
	lo, hi := slices.Min(Host(x)), slices.Max(Host(x))
	if lo <= 0 || hi >= 1 {
		t.Errorf("uniform range [%v, %v] not inside (0,1)", lo, hi)
	}
	below := 0
	for _, u := range Host(x) {
		if u < 0.25 {
			below++
		}
	}
	if f := float64(below) / n; math.Abs(f-0.25) > 5*math.Sqrt(0.25*0.75/n) {
		t.Errorf("uniform P(u < 0.25) = %v", f)
	}

	d.RandNormal(x, 1234, 0)
	m, v = meanVar(Host(x))
	if math.Abs(m) > 5*math.Sqrt(1.0/n) || math.Abs(v-1) > 5*math.Sqrt(2.0/n) {
		t.Errorf("normal mean %v var %v, want 0 and 1", m, v)
	}
	var k4 float64
	within1 := 0
	for _, z := range Host(x) {
		k4 += math.Pow(float64(z), 4)
		if math.Abs(float64(z)) < 1 {
			within1++
		}
	}
	if k4 /= n; math.Abs(k4-3) > 5*math.Sqrt(96.0/n) {
		t.Errorf("normal fourth moment %v, want 3", k4)
	}
	if f := float64(within1) / n; math.Abs(f-0.682689) > 5*math.Sqrt(0.68*0.32/n) {
		t.Errorf("normal P(|z| < 1) = %v, want 0.6827", f)
	}
}

func TestRandThreadIndependence(t *testing.T) {
	const n = 40003 // several chunks and a partial last block
	fill := func(d *CPU) (u, z []float32) {
		a, b := guarded(d, nil, n), guarded(d, nil, n)
		d.RandUniform(a, 99, 7)
		d.RandNormal(b, 99, 7)
		return Host(a), Host(b)
	}
	u0, z0 := fill(NewCPU(1))
	u4, z4 := fill(NewCPU(4))
	assertSame(t, "RandUniform NewCPU(1) vs NewCPU(4)", u4, u0)
	assertSame(t, "RandNormal NewCPU(1) vs NewCPU(4)", z4, z0)
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	for _, p := range []int{1, 2, 7} {
		runtime.GOMAXPROCS(p)
		u, z := fill(NewCPU(0))
		assertSame(t, fmt.Sprintf("RandUniform GOMAXPROCS=%d", p), u, u0)
		assertSame(t, fmt.Sprintf("RandNormal GOMAXPROCS=%d", p), z, z0)
	}
}

func TestRandViewsContinueTheStream(t *testing.T) {
	// Filling a view that starts 4k elements into a draw with offset + k gives the same
	// values as the whole draw.
	const n, k = 101, 5
	d := NewCPU(3)
	all := d.New(n)
	d.RandNormal(all, 5, 1000)
	v := guarded(d, nil, n-4*k)
	d.RandNormal(v, 5, 1000+k)
	assertSame(t, "RandNormal view", Host(v), Host(all)[4*k:])
	assertGuard(t, "RandNormal view", v)
	d.RandUniform(all, 5, 1000)
	d.RandUniform(v, 5, 1000+k)
	assertSame(t, "RandUniform view", Host(v), Host(all)[4*k:])
}
