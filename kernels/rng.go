// Counter-based random numbers: the Philox4x32-10 block function (Salmon, Moraes, Dror and
// Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011), the mapping of its output
// words to uniform and normal values shared by every device, and RNG, the host-side
// generator whose whole state is (Seed, Offset) so that a run can be checkpointed and
// resumed exactly.
//
// The stream rule (Device.RandUniform / RandNormal): element i of a draw at offset o uses
// the 64-bit counter block o + i/4 (words 0,1 = its low and high halves, words 2,3 = 0), the
// key (seed low 32 bits, seed high 32 bits), and output word i%4.
//
// Test: go test ./kernels -run 'Philox|Uniform32|Rand|RNG'
package kernels

import "math"

// Philox4x32 round multipliers and Weyl key increments (Salmon et al. 2011).
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// philox returns Philox4x32-10 of counter ctr under key: ten rounds of
//
//	hi0:lo0 = M0*ctr[0],  hi1:lo1 = M1*ctr[2]
//	ctr = (hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0)
//
// with the key bumped by (W0, W1) after every round.
func philox(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c0, c1, c2, c3, k0, k1 := ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]
	for r := 0; r < 10; r++ {
		p0 := uint64(c0) * philoxM0
		p1 := uint64(c2) * philoxM1
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
		k0 += philoxW0
		k1 += philoxW1
	}
	return [4]uint32{c0, c1, c2, c3}
}

// philoxBlock returns the four output words of counter block blk under seed.
func philoxBlock(seed, blk uint64) [4]uint32 {
	return philox([4]uint32{uint32(blk), uint32(blk >> 32), 0, 0}, [2]uint32{uint32(seed), uint32(seed >> 32)})
}

// uniformOf maps a word to ((x>>8) + 0.5) * 2^-24, in the open interval (0,1).
func uniformOf(x uint32) float64 { return (float64(x>>8) + 0.5) * (1.0 / (1 << 24)) }

// maxUniform32 is the largest float32 below 1 (1 - 2^-24).
const maxUniform32 = float32(1 - 1.0/(1<<24))

// uniform32 stores a uniform value as float32, kept inside (0,1): the top value
// 1 - 2^-25 would round to 1.0, so it is clamped to 1 - 2^-24.
func uniform32(u float64) float32 { return min(float32(u), maxUniform32) }

// normalsOf applies Box–Muller to the word pairs (0,1) and (2,3) of a block: with
// u = uniformOf(word), element k (k = i%4) of the block is
//
//	k = 0: sqrt(-2 ln u0) cos(2π u1)    k = 1: sqrt(-2 ln u0) sin(2π u1)
//	k = 2: sqrt(-2 ln u2) cos(2π u3)    k = 3: sqrt(-2 ln u2) sin(2π u3)
//
// computed in float64.
func normalsOf(w [4]uint32) [4]float64 {
	r0 := math.Sqrt(-2 * math.Log(uniformOf(w[0])))
	s0, c0 := math.Sincos(2 * math.Pi * uniformOf(w[1]))
	r1 := math.Sqrt(-2 * math.Log(uniformOf(w[2])))
	s1, c1 := math.Sincos(2 * math.Pi * uniformOf(w[3]))
	return [4]float64{r0 * c0, r0 * s0, r1 * c1, r1 * s1}
}

// RNG is the run's random generator: a Philox key (Seed) and the next unused counter block
// (Offset). Every draw, on a device or on the host, takes ceil(n/4) blocks from the same
// stream and advances Offset by that much, so (Seed, Offset) is the whole state: save it in
// a checkpoint and restore it to continue the same sequence. The zero Offset is the start.
type RNG struct {
	Seed, Offset uint64
}

// blocks is the number of counter blocks n values use, ceil(n/4).
func blocks(n int) uint64 { return uint64((n + 3) / 4) }

// Normal fills t with N(0,1) draws on t's device and advances the stream.
func (r *RNG) Normal(t *Tensor) {
	t.Dev.RandNormal(t, r.Seed, r.Offset)
	r.Offset += blocks(t.Len())
}

// Uniform fills t with U(0,1) draws (open interval) on t's device and advances the stream.
func (r *RNG) Uniform(t *Tensor) {
	t.Dev.RandUniform(t, r.Seed, r.Offset)
	r.Offset += blocks(t.Len())
}

// Uint32s returns the next n raw Philox words of the stream.
func (r *RNG) Uint32s(n int) []uint32 {
	out := make([]uint32, n)
	for i := 0; i < n; i += 4 {
		w := philoxBlock(r.Seed, r.Offset+uint64(i/4))
		copy(out[i:min(i+4, n)], w[:])
	}
	r.Offset += blocks(n)
	return out
}

// Float64s returns n U(0,1) values from the stream, the same values RandUniform would
// store for this (Seed, Offset), before their rounding to float32: ((x>>8)+0.5)*2^-24.
func (r *RNG) Float64s(n int) []float64 {
	out := make([]float64, n)
	for i, w := range r.Uint32s(n) {
		out[i] = uniformOf(w)
	}
	return out
}

// Normals returns n N(0,1) values from the stream, the same values RandNormal would store
// for this (Seed, Offset), before their rounding to float32.
func (r *RNG) Normals(n int) []float64 {
	out := make([]float64, n)
	for i := 0; i < n; i += 4 {
		z := normalsOf(philoxBlock(r.Seed, r.Offset+uint64(i/4)))
		copy(out[i:min(i+4, n)], z[:])
	}
	r.Offset += blocks(n)
	return out
}

// Perm returns a random permutation of 0..n-1 (Fisher–Yates; index j = floor(w*(i+1)/2^32)
// from one 32-bit word per swap, a bias below n/2^32).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	if n < 2 {
		return p
	}
	w := r.Uint32s(n - 1)
	for i := n - 1; i > 0; i-- {
		j := int((uint64(w[n-1-i]) * uint64(i+1)) >> 32)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
