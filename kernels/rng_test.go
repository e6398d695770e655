// Tests of the host side of the random numbers: the Philox4x32-10 block function against the
// Random123 known-answer vectors, the float32 rounding of the top uniform value, and RNG:
// Offset advance by ceil(n/4), host scalars equal to the device values, checkpoint and
// resume, Perm.
//
// Test: go test ./kernels -run 'Philox|Uniform32|RNG'
package kernels

import (
	"slices"
	"testing"
)

func TestPhiloxKnownAnswers(t *testing.T) {
	// Known-answer vectors of Random123 (kat_vectors, philox4x32 with 10 rounds).
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0},
			[4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		if got := philox(c.ctr, c.key); got != c.want {
			t.Errorf("philox(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

func TestUniform32StaysBelowOne(t *testing.T) {
	top := uniformOf(0xffffffff) // 1 - 2^-25, which rounds to 1 in float32
	if got := uniform32(top); got >= 1 || got != maxUniform32 {
		t.Errorf("uniform32(%v) = %v, want %v", top, got, maxUniform32)
	}
	if got := uniform32(uniformOf(0)); got != 1.0/(1<<25) {
		t.Errorf("smallest uniform = %v, want 2^-25", got)
	}
}

func TestRNG(t *testing.T) {
	d := NewCPU(2)
	r := RNG{Seed: 77}
	a := d.New(5)
	r.Normal(a) // 5 values: 2 blocks
	if r.Offset != 2 {
		t.Fatalf("Offset after 5 normals = %d, want 2", r.Offset)
	}
	saved := r // checkpoint
	b := d.New(3, 3)
	r.Uniform(b) // 9 values: 3 blocks
	host := r.Float64s(6)
	nz := r.Normals(7)
	perm := r.Perm(10)
	if r.Offset != 2+3+2+2+3 {
		t.Errorf("Offset = %d, want %d", r.Offset, 2+3+2+2+3)
	}

	// Resume from the checkpoint: the same sequence.
	r2 := saved
	b2 := d.New(9)
	r2.Uniform(b2)
	assertSame(t, "resumed Uniform", Host(b2), Host(b))
	if h2 := r2.Float64s(6); !slices.Equal(h2, host) {
		t.Errorf("resumed Float64s %v, want %v", h2, host)
	}
	if z2 := r2.Normals(7); !slices.Equal(z2, nz) {
		t.Errorf("resumed Normals %v, want %v", z2, nz)
	}
	if p2 := r2.Perm(10); !slices.Equal(p2, perm) {
		t.Errorf("resumed Perm %v, want %v", p2, perm)
	}

	// Host scalars are the device values before rounding to float32.
	dev := d.New(6)
	d.RandUniform(dev, 77, 5)
	for i, u := range host {
		if uniform32(u) != Host(dev)[i] {
			t.Errorf("Float64s[%d] = %v, device %v", i, u, Host(dev)[i])
		}
	}
	devZ := d.New(7)
	d.RandNormal(devZ, 77, 7)
	for i, z := range nz {
		if float32(z) != Host(devZ)[i] {
			t.Errorf("Normals[%d] = %v, device %v", i, z, Host(devZ)[i])
		}
	}
	sorted := slices.Clone(perm)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != i {
			t.Fatalf("Perm(10) = %v is not a permutation", perm)
		}
	}
}
