// Benchmark of Flow-DPO fine-tuning of the default image model (diffusion.DefaultImageConfig:
// width 256, 6 blocks, 4 heads, patch 4) with `align finetune`'s defaults (DefaultConfig: 8
// pairs per step, LoRA rank 16 on qkv and proj), LoRA and full fine-tuning in one run. Each
// is whole optimizer steps of the Trainer (TrainOneStep: the reference's forward, the
// policy's forward and backward on 2P samples, clipping, AdamW) after one untimed step:
//
//	<mode>_pairs/s          P*b.N / time of b.N steps
//	<mode>_peak_*_MiB       peak memory from building the model to two untimed steps
//	                        (internal/benchmem: Go heap, resident set)
//	full/lora_time          lora_pairs/s / full_pairs/s (> 1: full fine-tuning is slower)
//	full/lora_peak_heap     full_peak_heap_MiB / lora_peak_heap_MiB
//
// ns/op is the time of one LoRA step plus one full step.
//
// Run: go test ./dpo -run '^$' -bench '^BenchmarkFinetune$' -benchtime 3x (in BF16 where the CPU has
// AVX512_BF16: ALIGN_BENCH_PRECISION=bf16, internal/benchdev)
package dpo

import (
	"testing"
	"time"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/benchdev"
	"github.com/alignkit/align/internal/benchmem"
	"github.com/alignkit/align/kernels"
)

func BenchmarkFinetune(b *testing.B) {
	b.StopTimer() // runs only while the timed loops do
	dev := benchdev.Device(b, testDev)
	type result struct {
		pairsPerSec float64
		mem         benchmem.Usage
	}
	// run builds everything it measures, so that nothing of one mode is alive in the other.
	run := func(full bool) result {
		mem := benchmem.Start()
		cfg := diffusion.DefaultImageConfig()
		tok, err := diffusion.BuildTokenizer(prompts, 1, cfg.MaxTextLen)
		if err != nil {
			b.Fatal(err)
		}
		cfg.VocabSize = tok.VocabSize()
		m, err := diffusion.NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		m.Tokenizer = tok
		c := DefaultConfig()
		c.Seed, c.FullFinetune = 1, full
		tr, err := NewTrainer(dev, m, c, memPairs(4*c.TrainBatchSize, cfg.SampleSize()), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		// Two untimed steps allocate the step's buffers and the optimizer's moments: counted
		// in the memory, whose stretch ends here (its heap sampler, waking every millisecond,
		// would slow the timed steps by a fifth on 2 cores), not in the time.
		tr.TrainOneStep()
		tr.TrainOneStep()
		usage := mem.Stop()
		b.StartTimer()
		t0 := time.Now()
		for range b.N {
			tr.TrainOneStep()
		}
		sec := time.Since(t0).Seconds()
		b.StopTimer()
		return result{float64(c.TrainBatchSize*b.N) / sec, usage}
	}
	lora, full := run(false), run(true)
	b.ReportMetric(lora.pairsPerSec, "lora_pairs/s")
	b.ReportMetric(full.pairsPerSec, "full_pairs/s")
	b.ReportMetric(lora.pairsPerSec/full.pairsPerSec, "full/lora_time")
	lora.mem.Report(b, "lora_")
	full.mem.Report(b, "full_")
	b.ReportMetric(full.mem.Heap/lora.mem.Heap, "full/lora_peak_heap")
}
