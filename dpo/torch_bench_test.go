// Peer benchmark on the CPU: a Flow-DPO step of align finetune's defaults (8 pairs, LoRA rank
// 16 on every block's qkv and proj, beta 2000) on the default image model, in align and in
// PyTorch eager (scripts/bench/dit_torch.py --device cpu --dpo-pairs: the same model, its
// parameter count checked, PEFT-style adapters, the reference's forward without them) on the
// same cores in one run, fp32 and, where the CPU has AVX512_BF16, bf16: "<variant>_dpo_x" is
// align's pairs/s over PyTorch's (> 1: align is faster). Medians of 5 steps on both sides.
// The interpreter is internal/benchdev.Torch's; without torch the benchmark skips.
//
// Run: go test ./dpo -run '^$' -bench TorchCPUFinetune -benchtime 1x
package dpo

import (
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/benchdev"
	"github.com/alignkit/align/kernels"
)

func BenchmarkTorchCPUFinetune(b *testing.B) {
	py := benchdev.Torch(b, "..")
	const repeats = 5
	names, variants := benchdev.Variants(testDev)
	c := DefaultConfig()
	c.Seed = 1
	cfg := diffusion.DefaultImageConfig()
	tok, err := diffusion.BuildTokenizer(prompts, 1, cfg.MaxTextLen)
	if err != nil {
		b.Fatal(err)
	}
	cfg.VocabSize = tok.VocabSize()
	ours := map[string]float64{}
	for range b.N {
		for _, v := range names {
			m, err := diffusion.NewDiT(variants[v], &kernels.RNG{Seed: 1}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			m.Tokenizer = tok
			tr, err := NewTrainer(variants[v], m, c, memPairs(4*c.TrainBatchSize, cfg.SampleSize()), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ours[v] = float64(c.TrainBatchSize) / benchdev.Median(func() { tr.TrainOneStep() }, 2, repeats)
		}
	}
	tm := benchdev.TorchModel{Width: cfg.Width, Depth: cfg.Depth, Heads: cfg.Heads, MLPRatio: cfg.MLPRatio,
		Patch: cfg.PatchSize, ImageSize: cfg.ImageSize, Channels: cfg.Channels, TextLen: cfg.MaxTextLen,
		TextWidth: cfg.TextWidth, TextHeads: cfg.TextHeads, Layers: cfg.TextLayers, Vocab: cfg.VocabSize}
	it := strconv.Itoa
	args := append(tm.Args(), "--dpo-pairs", it(c.TrainBatchSize), "--lora-rank", it(c.LoRA.Rank),
		"--beta-dpo", strconv.FormatFloat(c.BetaDPO, 'g', -1, 64), "--repeats", it(repeats),
		"--variants", strings.Join(names, ","))
	var peer struct {
		Framework string `json:"framework"`
		Params    int    `json:"params"`
		Variants  map[string]struct {
			PairsPerSec float64 `json:"dpo_pairs_per_s"`
		} `json:"variants"`
	}
	benchdev.TorchScript(b, py, "..", args, &peer)
	if peer.Params != cfg.ParamCount() {
		b.Fatalf("PyTorch's model has %d parameters, align's %d: not the same model", peer.Params, cfg.ParamCount())
	}
	b.Logf("%s, %d parameters on both sides; LoRA rank %d alpha %g on %v", peer.Framework, peer.Params,
		c.LoRA.Rank, c.LoRA.Alpha, c.LoRA.Targets)
	for _, v := range names {
		p := peer.Variants[v].PairsPerSec
		b.ReportMetric(ours[v], v+"_align_pairs/s")
		b.ReportMetric(p, v+"_torch_pairs/s")
		b.ReportMetric(ours[v]/p, v+"_dpo_x")
	}
}
