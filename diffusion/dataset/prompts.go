// Concepts of a split and prompt sets drawn from them: the primary caption of every concept,
// in disjoint parts chosen by a hash of the concept (fine-tuning prompts from one part,
// evaluation prompts from another) and in an order that does not depend on the dataset's,
// so that a prefix (--limit) is stable.
//
// Test: go test ./diffusion/dataset -run 'Concept|Prompt'

package dataset

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// ConceptGroup is one concept of a split with its variants.
type ConceptGroup struct {
	Concept string // base code points (Item.Concept)
	// Variants are the indices (into the items) of the first item of each variant (Unified),
	// in item order: the base emoji first, then the skin tones (the order Prepare writes).
	Variants []int
}

// GroupConcepts groups the items of split s by concept, concepts in the order of their first
// item.
func GroupConcepts(items []Item, s Split) []ConceptGroup {
	var groups []ConceptGroup
	pos := map[string]int{}
	seen := map[string]bool{}
	for i := range items {
		it := &items[i]
		if it.Split != s {
			continue
		}
		g, ok := pos[it.Concept]
		if !ok {
			g = len(groups)
			pos[it.Concept] = g
			groups = append(groups, ConceptGroup{Concept: it.Concept})
		}
		if !seen[it.Unified] {
			seen[it.Unified] = true
			groups[g].Variants = append(groups[g].Variants, i)
		}
	}
	return groups
}

// PromptHash places a concept in prompt parts and orders a prompt set:
//
//	uint64(sha256("prompts/" + concept)[:8], big endian)
//
// The "prompts/" prefix makes it independent of the held-out split's hash (IsHeldOut) and of
// the reward model's concept parts (rewards.ConceptPart), so a prompt part is not correlated
// with either.
func PromptHash(concept string) uint64 {
	sum := sha256.Sum256([]byte("prompts/" + concept))
	return binary.BigEndian.Uint64(sum[:8])
}

// ConceptPrompt is the primary caption of one concept.
type ConceptPrompt struct {
	Concept string `json:"concept"`
	Caption string `json:"caption"`
	Hash    uint64 `json:"hash"` // PromptHash(Concept)
}

// ConceptPrompts returns the primary caption (that of the base emoji, the concept's first
// variant) of every concept of split s with PromptHash % parts == part, sorted by PromptHash
// (the concept breaks a tie), at most limit of them (0: all). Parts of one parts count are
// disjoint and together hold every concept; the order does not depend on the dataset's
// order or on other concepts, so a smaller limit gives a prefix of a larger one.
func ConceptPrompts(items []Item, s Split, part, parts, limit int) ([]ConceptPrompt, error) {
	if parts < 1 || part < 0 || part >= parts {
		return nil, fmt.Errorf("prompt part %d/%d: want 0 <= part < parts", part, parts)
	}
	if limit < 0 {
		return nil, fmt.Errorf("prompt limit %d: want >= 0 (0: all)", limit)
	}
	var out []ConceptPrompt
	for _, g := range GroupConcepts(items, s) {
		h := PromptHash(g.Concept)
		if h%uint64(parts) == uint64(part) {
			out = append(out, ConceptPrompt{Concept: g.Concept, Caption: items[g.Variants[0]].Caption, Hash: h})
		}
	}
	slices.SortFunc(out, func(a, b ConceptPrompt) int {
		return cmp.Or(cmp.Compare(a.Hash, b.Hash), cmp.Compare(a.Concept, b.Concept))
	})
	if limit > 0 && limit < len(out) {
		out = out[:limit]
	}
	return out, nil
}
