// The training set of a fine-tuning run, built from preference data with every file read:
// pairs for Flow-DPO, weighted samples for Flow-RWR, winners for SFT.
//
//	dpo  PairData(pairs)                        every pair (ties flagged)
//	sft  WinnerData(pairs)                      the chosen sample of each decisive pair
//	sft  ScoredData(scored, MethodSFT, ...)     the best sample of each prompt group
//	rwr  ScoredData(scored, MethodRWR, ...)     every sample, weight softmax(r/temperature) per group
//
// A scored sample's reward r combines its scores with the run's weights and combiner
// (rewards.Combine: linear, unit-direction, lsc with the per-prompt 0.85 quantile as the
// reference, pareto).
//
// Test: go test ./dpo -run 'TrainSet|Data'

package dpo

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/rewards"
)

// Methods (--method).
const (
	MethodDPO = "dpo"
	MethodRWR = "rwr"
	MethodSFT = "sft"
	// MethodRewardCond teaches the reward-condition slot (rewardcond.go).
	MethodRewardCond = "reward-cond"
)

// Methods lists the accepted --method values.
var Methods = []string{MethodDPO, MethodRWR, MethodSFT, MethodRewardCond}

// PairItem is one training pair: sample indices into the store.
type PairItem struct {
	Prompt           string
	Chosen, Rejected int
	Tie              bool
}

// Item is one weighted training sample.
type Item struct {
	Prompt string
	Sample int
	Weight float64
	// Reward is the reward condition of the sample (--method reward-cond): one z-score per
	// reward dimension of the model, in its order, NaN for a dimension without a score;
	// nil for the other methods.
	Reward []float32
}

// Data is a run's training set with its samples loaded.
type Data struct {
	Store *Store
	Pairs []PairItem // Flow-DPO
	Items []Item     // Flow-RWR, SFT
}

// Len is the number of training units: pairs for Flow-DPO, samples otherwise.
func (d *Data) Len() int {
	if d.Pairs != nil {
		return len(d.Pairs)
	}
	return len(d.Items)
}

// Fingerprint is the CRC-32C of the records (prompts, files, ties, weights, reward
// conditions), kept in checkpoints so that a run resumes only on the data it started with.
func (d *Data) Fingerprint() uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var buf [8]byte
	put := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	for _, p := range d.Pairs {
		put(p.Prompt)
		put(d.Store.Paths[p.Chosen])
		put(d.Store.Paths[p.Rejected])
		if p.Tie {
			put("tie")
		}
	}
	for _, it := range d.Items {
		put(it.Prompt)
		put(d.Store.Paths[it.Sample])
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(it.Weight))
		h.Write(buf[:])
		for _, r := range it.Reward {
			binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(r))
			h.Write(buf[:4])
		}
	}
	return h.Sum32()
}

// PairData loads the samples of pairs for a model with config cfg (Flow-DPO).
func PairData(set *PairSet, cfg *diffusion.ModelConfig) (*Data, error) {
	var refs []Ref
	for _, p := range set.Pairs {
		refs = append(refs, Ref{p.Chosen, p.Source}, Ref{p.Rejected, p.Source})
	}
	st, err := LoadStore(refs, cfg)
	if err != nil {
		return nil, err
	}
	d := &Data{Store: st}
	for _, p := range set.Pairs {
		d.Pairs = append(d.Pairs, PairItem{Prompt: p.Prompt, Chosen: st.Index(p.Chosen), Rejected: st.Index(p.Rejected), Tie: p.Tie})
	}
	return d, nil
}

// WinnerData loads the chosen sample of every decisive pair (SFT on pairs), weight 1.
func WinnerData(set *PairSet, cfg *diffusion.ModelConfig) (*Data, error) {
	var refs []Ref
	var prompts []string
	for _, p := range set.Pairs {
		if !p.Tie {
			refs = append(refs, Ref{p.Chosen, p.Source})
			prompts = append(prompts, p.Prompt)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("no decisive pairs for SFT (all %d are ties)", len(set.Pairs))
	}
	st, err := LoadStore(refs, cfg)
	if err != nil {
		return nil, err
	}
	d := &Data{Store: st}
	for i, r := range refs {
		d.Items = append(d.Items, Item{Prompt: prompts[i], Sample: st.Index(r.Path), Weight: 1})
	}
	return d, nil
}

// ScoredOptions turn a scored set's per-dimension scores into rewards and weights.
type ScoredOptions struct {
	Weights     string  // "vq=1,ta=2" over the set's dimensions; "" equal
	Combine     string  // rewards.Combiners; "" linear
	Temperature float64 // Flow-RWR softmax temperature
	Global      bool    // one softmax over the whole set instead of one per prompt
}

// lscQuantile is the per-prompt reference quantile of the lsc combiner.
const lscQuantile = 0.85

// Rewards combines the scores of a scored set into one reward per sample.
func (o ScoredOptions) Rewards(set *ScoredSet) ([]float64, error) {
	w, err := rewards.ParseWeights(o.Weights, set.Dims)
	if err != nil {
		return nil, err
	}
	kind := o.Combine
	if kind == "" {
		kind = rewards.CombineLinear
	}
	z := make([][]float64, len(set.Items))
	prompts := make([]string, len(set.Items))
	for i, it := range set.Items {
		z[i], prompts[i] = it.Scores, it.Prompt
	}
	var ref [][]float64
	if kind == rewards.CombineLogSigmoid {
		if ref, err = rewards.PromptReference(z, prompts, lscQuantile); err != nil {
			return nil, err
		}
	}
	return rewards.Combine(kind, z, w, ref)
}

// ScoredData loads a scored set for Flow-RWR (every sample, softmax weights) or SFT (the
// best sample of each prompt, weight 1).
func ScoredData(set *ScoredSet, method string, o ScoredOptions, cfg *diffusion.ModelConfig) (*Data, error) {
	r, err := o.Rewards(set)
	if err != nil {
		return nil, err
	}
	prompts := make([]string, len(set.Items))
	for i, it := range set.Items {
		prompts[i] = it.Prompt
	}
	var idx []int
	var weights []float64
	switch method {
	case MethodRWR:
		groups := prompts
		if o.Global {
			groups = nil
		}
		if weights, err = RWRWeights(r, groups, o.Temperature); err != nil {
			return nil, err
		}
		for i := range set.Items {
			idx = append(idx, i)
		}
	case MethodSFT:
		idx = BestOfGroups(r, prompts)
		for range idx {
			weights = append(weights, 1)
		}
	default:
		return nil, fmt.Errorf("a scored set trains --method rwr or sft, not %q", method)
	}
	refs := make([]Ref, len(idx))
	for k, i := range idx {
		refs[k] = Ref{set.Items[i].Path, set.Items[i].Source}
	}
	st, err := LoadStore(refs, cfg)
	if err != nil {
		return nil, err
	}
	d := &Data{Store: st}
	for k, i := range idx {
		d.Items = append(d.Items, Item{Prompt: prompts[i], Sample: st.Index(refs[k].Path), Weight: weights[k]})
	}
	return d, nil
}
