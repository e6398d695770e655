// Benchmarks: scoring throughput of the default-size native image reward model in Go and of
// its ONNX export in ONNX Runtime, same batch, same machine, same run (images/s).
//
// Run: go test ./rewards/onnx -run '^$' -bench Score -benchtime 20x
package onnx

import (
	"math/rand/v2"
	"testing"

	"github.com/alignkit/align/rewards"
)

func BenchmarkScore(b *testing.B) {
	requireORT(b)
	m, data, man := exportDefault(b, 3)
	const B = 64
	r := rand.New(rand.NewPCG(1, 1))
	pixels := randomPixels(r, append([]int{B}, m.Config.SampleShape()...)...)
	prompts := make([]string, B)
	for i := range prompts {
		prompts[i] = testPrompts[i%len(testPrompts)]
	}
	batch := rewards.Batch{Pixels: pixels, Prompts: prompts}
	b.Run("native-go", func(b *testing.B) {
		for b.Loop() {
			m.Forward(pixels, prompts)
		}
		b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "images/s")
	})
	om, err := New(data, man, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer om.Close()
	b.Run("onnxruntime", func(b *testing.B) {
		for b.Loop() {
			if _, err := om.Score(batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "images/s")
	})
}
