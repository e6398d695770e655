// Random number generation of the CPU device: Philox4x32-10 blocks (rng.go) mapped to
// uniform and normal values. Each element depends only on (seed, offset, index), so the
// output is the same for any number of threads and on any device.
//
// Test: go test ./kernels -run 'Philox|Rand|RNG'
package kernels

// randGrain is the smallest number of counter blocks worth a goroutine.
const randGrain = 1 << 10

// RandUniform fills t with U(0,1) draws: element i is uniformOf(word i%4 of the Philox block
// offset + i/4 under seed), ((x>>8)+0.5)*2^-24, stored as float32 and kept below 1.
func (d *CPU) RandUniform(t *Tensor, seed, offset uint64) {
	x := Host(t)
	n := len(x)
	d.parallel((n+3)/4, randGrain, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			w := philoxBlock(seed, offset+uint64(j))
			for k := 0; k < 4 && 4*j+k < n; k++ {
				x[4*j+k] = uniform32(uniformOf(w[k]))
			}
		}
	})
}

// RandNormal fills t with N(0,1) draws: element i is Box–Muller (normalsOf) of the Philox
// block offset + i/4 under seed, component i%4, computed in float64 and stored as float32.
func (d *CPU) RandNormal(t *Tensor, seed, offset uint64) {
	x := Host(t)
	n := len(x)
	d.parallel((n+3)/4, randGrain/4, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			z := normalsOf(philoxBlock(seed, offset+uint64(j)))
			for k := 0; k < 4 && 4*j+k < n; k++ {
				x[4*j+k] = float32(z[k])
			}
		}
	})
}
