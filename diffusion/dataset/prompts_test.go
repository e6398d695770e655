// Tests of concept grouping and prompt sets: hand-computed hashes and parts on a few inline
// items, disjoint parts that cover the split, limits that keep a prefix, and an order that
// does not depend on the order of the concepts in the index.
//
// Run: go test ./diffusion/dataset -run 'Concept|Prompt'

package dataset

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// promptItems: three training concepts (one with a skin-tone variant) and a held-out one, in
// Prepare's order (base emoji first, Twemoji before Noto).
func promptItems() []Item {
	mk := func(concept, unified, caption string, split Split) Item {
		return Item{Concept: concept, Unified: unified, Caption: caption, Split: split}
	}
	return []Item{
		mk("1F600", "1F600", "grinning face", SplitTrain),
		mk("1F600", "1F600", "grinning face", SplitTrain),
		mk("1F44B", "1F44B", "waving hand", SplitTrain),
		mk("1F44B", "1F44B", "waving hand", SplitTrain),
		mk("1F44B", "1F44B-1F3FD", "waving hand: medium skin tone", SplitTrain),
		mk("1F311", "1F311", "new moon", SplitHeldOut),
		mk("1F34E", "1F34E", "red apple", SplitTrain),
	}
}

func TestGroupConcepts(t *testing.T) {
	got := GroupConcepts(promptItems(), SplitTrain)
	want := []ConceptGroup{{"1F600", []int{0}}, {"1F44B", []int{2, 4}}, {"1F34E", []int{6}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("train: %+v, want %+v", got, want)
	}
	if got := GroupConcepts(promptItems(), SplitHeldOut); !reflect.DeepEqual(got, []ConceptGroup{{"1F311", []int{5}}}) {
		t.Errorf("heldout: %+v", got)
	}
}

func TestPromptHash(t *testing.T) {
	// python3: int.from_bytes(hashlib.sha256(b"prompts/1F600").digest()[:8], "big")
	for concept, want := range map[string]uint64{
		"1F600": 0xff53bfd4d7531986,
		"1F34E": 0x472d06ea76728157,
		"1F44B": 0x7eed9f41795e9347,
	} {
		if got := PromptHash(concept); got != want {
			t.Errorf("PromptHash(%s) = %#x, want %#x", concept, got, want)
		}
	}
}

func captions(ps []ConceptPrompt) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Caption)
	}
	return out
}

func TestConceptPrompts(t *testing.T) {
	items := promptItems()
	// Hashes (TestPromptHash): 1F34E 0x47.. < 1F44B 0x7e.. < 1F600 0xff..; odd, odd, even.
	cases := []struct {
		split              Split
		part, parts, limit int
		want               []string
	}{
		{SplitTrain, 0, 1, 0, []string{"red apple", "waving hand", "grinning face"}},
		{SplitTrain, 0, 1, 2, []string{"red apple", "waving hand"}},
		{SplitTrain, 0, 2, 0, []string{"grinning face"}},
		{SplitTrain, 1, 2, 0, []string{"red apple", "waving hand"}},
		{SplitTrain, 1, 2, 1, []string{"red apple"}},
		{SplitTrain, 1, 2, 9, []string{"red apple", "waving hand"}},
		{SplitHeldOut, 0, 1, 0, []string{"new moon"}},
	}
	for _, c := range cases {
		got, err := ConceptPrompts(items, c.split, c.part, c.parts, c.limit)
		if err != nil || !slices.Equal(captions(got), c.want) {
			t.Errorf("%s %d/%d limit %d: %q, %v; want %q", c.split, c.part, c.parts, c.limit, captions(got), err, c.want)
		}
	}
	got, _ := ConceptPrompts(items, SplitTrain, 0, 2, 0)
	if want := (ConceptPrompt{Concept: "1F600", Caption: "grinning face", Hash: 0xff53bfd4d7531986}); got[0] != want {
		t.Errorf("prompt %+v, want %+v", got[0], want)
	}
	for _, bad := range [][3]int{{2, 2, 0}, {-1, 2, 0}, {0, 0, 0}, {0, 1, -1}} {
		if _, err := ConceptPrompts(items, SplitTrain, bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("part %d/%d limit %d: want an error", bad[0], bad[1], bad[2])
		}
	}
}

// TestConceptPromptsPartsAndStability: on 300 concepts, the parts of 3 are disjoint and
// together hold every concept once, a limit is a prefix of the whole part, and reversing the
// order of the concepts in the index changes nothing.
func TestConceptPromptsPartsAndStability(t *testing.T) {
	var items []Item
	for k := range 300 {
		c := fmt.Sprintf("C%03d", k)
		items = append(items, Item{Concept: c, Unified: c, Caption: "caption " + c, Split: SplitTrain})
	}
	reversed := slices.Clone(items)
	slices.Reverse(reversed)
	all, _ := ConceptPrompts(items, SplitTrain, 0, 1, 0)
	if len(all) != 300 {
		t.Fatalf("%d prompts, want 300", len(all))
	}
	seen := map[string]int{}
	for part := range 3 {
		ps, err := ConceptPrompts(items, SplitTrain, part, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) < 70 || len(ps) > 130 {
			t.Errorf("part %d/3 holds %d of 300 concepts", part, len(ps))
		}
		for _, p := range ps {
			seen[p.Concept]++
			if p.Hash%3 != uint64(part) {
				t.Errorf("part %d/3 holds %s with hash %#x", part, p.Concept, p.Hash)
			}
		}
		again, _ := ConceptPrompts(reversed, SplitTrain, part, 3, 0)
		if !reflect.DeepEqual(again, ps) {
			t.Errorf("part %d/3 depends on the index order", part)
		}
		head, _ := ConceptPrompts(reversed, SplitTrain, part, 3, 20)
		if !reflect.DeepEqual(head, ps[:20]) {
			t.Errorf("part %d/3 limit 20 is not the first 20 of the part", part)
		}
		for i := 1; i < len(ps); i++ {
			if ps[i-1].Hash >= ps[i].Hash {
				t.Fatalf("part %d/3 not sorted by hash at %d", part, i)
			}
		}
	}
	for _, p := range all {
		if seen[p.Concept] != 1 {
			t.Errorf("%s is in %d parts of 3", p.Concept, seen[p.Concept])
		}
	}
}
