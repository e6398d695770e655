// LoRA on chosen projections of a DiT (Hu et al., arXiv 2106.09685): which layers carry
// adapters (--lora-targets), switching them off (the frozen base is Flow-DPO's reference),
// merging them into plain weights, and adapter files.
//
// Targets, in every DiT block: qkv (the packed q, k, v projection), proj (attention output),
// fc1 and fc2 (the MLP), ada (the adaLN modulation). The default, qkv and proj, is
// VideoAlign's q/k/v/o. Adapter parameters keep PEFT's names under the layer's:
// "blocks.3.attn.qkv.lora_A.weight".
//
// Adapter file (adapter.safetensors): the lora_A and lora_B tensors only, the base model's
// config (nn.Checkpoint Config), and the metadata keys model_type = "align.dit.lora",
// lora = {"rank":16,"alpha":32,"targets":["qkv","proj"]}, base_model (the model file trained
// from; "" for the embedded default image model) and base_model_crc32c (the CRC-32C of the
// base weights, baseFingerprint), and reward_condition_max when the model has maxima
// (diffusion/reward_max.go). An adapter applies only to the base it was trained on: a
// base file rewritten since (a pre-training run that went on) fails the CRC check instead of
// giving a model that was never trained.
//
// Test: go test ./dpo -run LoRA

package dpo

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/nn"
)

// LoRA targets (--lora-targets).
const (
	TargetQKV  = "qkv"
	TargetProj = "proj"
	TargetFC1  = "fc1"
	TargetFC2  = "fc2"
	TargetAda  = "ada"
)

// LoRATargets lists the accepted targets.
var LoRATargets = []string{TargetQKV, TargetProj, TargetFC1, TargetFC2, TargetAda}

// LoRAConfig sizes the adapters: y = x W^T + b + (alpha/rank) (x A^T) B^T.
type LoRAConfig struct {
	Rank    int      `json:"rank"`    // e.g. 16
	Alpha   float64  `json:"alpha"`   // e.g. 32 (2*rank)
	Targets []string `json:"targets"` // e.g. ["qkv","proj"]
}

// DefaultLoRAConfig is rank 16, alpha 32 on qkv and proj.
func DefaultLoRAConfig() LoRAConfig {
	return LoRAConfig{Rank: 16, Alpha: 32, Targets: []string{TargetQKV, TargetProj}}
}

// Validate checks the config.
func (c *LoRAConfig) Validate() error {
	if c.Rank < 1 {
		return fmt.Errorf("--lora-rank must be >= 1, got %d", c.Rank)
	}
	if !(c.Alpha > 0) {
		return fmt.Errorf("--lora-alpha must be > 0, got %v", c.Alpha)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("--lora-targets is empty; want some of %s", strings.Join(LoRATargets, ", "))
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if !slices.Contains(LoRATargets, t) {
			return fmt.Errorf("--lora-targets: unknown target %q (known: %s)", t, strings.Join(LoRATargets, ", "))
		}
		if seen[t] {
			return fmt.Errorf("--lora-targets: %q given twice", t)
		}
		seen[t] = true
	}
	return nil
}

// LoRALayers returns the layers of m that the targets name, block by block in the order of
// LoRATargets.
func LoRALayers(m *diffusion.DiT, targets []string) []*nn.Linear {
	var out []*nn.Linear
	for _, b := range m.Blocks {
		for _, t := range LoRATargets {
			if !slices.Contains(targets, t) {
				continue
			}
			switch t {
			case TargetQKV:
				out = append(out, b.Attn.QKV)
			case TargetProj:
				out = append(out, b.Attn.Proj)
			case TargetFC1:
				out = append(out, b.MLP.FC1)
			case TargetFC2:
				out = append(out, b.MLP.FC2)
			case TargetAda:
				if b.Ada != nil { // nil: the modulations stacked (diffusion.DiT.UnstackAdaLN), no adapters
					out = append(out, b.Ada)
				}
			}
		}
	}
	return out
}

// EnableLoRA freezes every base parameter of m and attaches adapters to the target layers,
// A drawn from r (nil: zeros, for loading), B zero, so the model's output is unchanged. It
// returns the adapted layers.
func EnableLoRA(m *diffusion.DiT, r nn.Rand, c LoRAConfig) []*nn.Linear {
	if slices.Contains(c.Targets, TargetAda) {
		m.UnstackAdaLN()
	}
	m.SetTrainable(false)
	ls := LoRALayers(m, c.Targets)
	for _, l := range ls {
		l.EnableLoRA(r, c.Rank, float32(c.Alpha))
	}
	return ls
}

// SetLoRAEnabled switches the adapters of layers on or off (off: the frozen base).
func SetLoRAEnabled(layers []*nn.Linear, on bool) {
	for _, l := range layers {
		l.SetLoRAEnabled(on)
	}
}

// MergeLoRA folds the adapters into their base weights, W += (alpha/r) B A, and removes
// them: the model is plain again and saves as a normal model file.
func MergeLoRA(layers []*nn.Linear) {
	for _, l := range layers {
		l.MergeLoRA()
	}
}

// isLoRAParam reports whether a parameter name is an adapter's.
func isLoRAParam(name string) bool {
	return strings.HasSuffix(name, ".lora_A.weight") || strings.HasSuffix(name, ".lora_B.weight")
}

// Metadata of adapter files.
const (
	metaModelType    = "model_type" // diffusion's key for the kind of file
	metaTokenizer    = "tokenizer"  // diffusion's key for the tokenizer JSON
	metaLoRA         = "lora"
	metaBaseModel    = "base_model"
	metaBaseCRC      = "base_model_crc32c" // 8 hex digits
	modelTypeLoRA    = "align.dit.lora"
	modelTypeDiT     = "align.dit" // diffusion's plain model file
	modelTypeFTState = "align.dit.finetune-state"
)

// baseFingerprint is the CRC-32C (Castagnoli) of m's base weights: every parameter but the
// adapters', in Params order, as little-endian float32 bits.
func baseFingerprint(m *diffusion.DiT) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli)
	var crc uint32
	var host []float32
	var buf []byte
	for _, p := range m.Params() {
		if isLoRAParam(p.Name) {
			continue
		}
		host = slices.Grow(host[:0], p.W.Len())[:p.W.Len()]
		p.W.Dev.CopyToHost(host, p.W)
		buf = buf[:0]
		for _, v := range host {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		crc = crc32.Update(crc, tab, buf)
	}
	return crc
}

// AdapterCheckpoint returns the adapters of m (LoRA attached with c) as a checkpoint;
// baseModel is the file of m's base weights ("" for the embedded default model).
func AdapterCheckpoint(m *diffusion.DiT, c LoRAConfig, baseModel string) (*nn.Checkpoint, error) {
	var ps []nn.Param
	for _, p := range m.Params() {
		if isLoRAParam(p.Name) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("model carries no LoRA adapters")
	}
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, err
	}
	lc, _ := json.Marshal(c)
	ck := &nn.Checkpoint{Tensors: nn.HostParams(ps, nn.F32), Config: cfg,
		Extra: map[string]string{metaModelType: modelTypeLoRA, metaLoRA: string(lc), metaBaseModel: baseModel,
			metaBaseCRC: fmt.Sprintf("%08x", baseFingerprint(m))}}
	if err := diffusion.SetRewardConditionMax(ck, m.Config.RewardDims, m.RewardConditionMax); err != nil {
		return nil, err
	}
	return ck, nil
}

// AdapterBase reports whether c is an adapter file and returns the base model file it was
// trained on ("" for the embedded default image model).
func AdapterBase(c *nn.Checkpoint) (base string, ok bool) {
	if c.Extra[metaModelType] != modelTypeLoRA {
		return "", false
	}
	return c.Extra[metaBaseModel], true
}

// ApplyAdapter attaches the adapters of adapter file c to m, whose config must be the
// adapter's base model's and whose weights must be that base's (base_model_crc32c; files
// without the key are not checked), and takes over the adapter's reward-condition maxima
// when it has some. It returns the adapter's config and the adapted layers (switched on);
// MergeLoRA turns m into a plain model.
func ApplyAdapter(m *diffusion.DiT, c *nn.Checkpoint) (LoRAConfig, []*nn.Linear, error) {
	if c.Extra[metaModelType] != modelTypeLoRA {
		return LoRAConfig{}, nil, fmt.Errorf("%s: not a LoRA adapter file (model_type %q)", c.Source(), c.Extra[metaModelType])
	}
	a, err := checkAdapter(m, c, baseFingerprint(m))
	if err != nil {
		return a.lora, nil, err
	}
	ls, err := a.attach(m)
	return a.lora, ls, err
}

// attach attaches the checked adapter to m (switched on) and takes over its
// reward-condition maxima when it has some; it returns the adapted layers.
func (a *adapter) attach(m *diffusion.DiT) ([]*nn.Linear, error) {
	ls := EnableLoRA(m, nil, a.lora)
	var ps []nn.Param
	for _, p := range m.Params() {
		if isLoRAParam(p.Name) {
			ps = append(ps, p)
		}
	}
	if err := a.c.CopyToParams(ps); err != nil {
		MergeLoRA(ls) // nothing was copied: B is zero, so this only removes the adapters
		m.SetTrainable(true)
		return nil, err
	}
	if a.maxes != nil {
		m.RewardConditionMax = a.maxes
	}
	return ls, nil
}
