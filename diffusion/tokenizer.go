// Word-level tokenizer for captions: a vocabulary built from the training captions, with
// padding, unknown-word and empty-prompt tokens. It is saved with the model (JSON in the
// safetensors metadata) so a model always decodes prompts the way it was trained.
//
// Test: go test ./diffusion -run Tokenizer

package diffusion

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Special token ids. NullID stands for the empty prompt: classifier-free guidance trains
// and samples the unconditional branch with the caption [NullID].
const (
	PadID  = 0
	UnkID  = 1
	NullID = 2
)

var specialTokens = []string{"<pad>", "<unk>", "<null>"}

// Tokenizer maps lower-cased words to ids. Words are runs of letters and digits; an
// apostrophe inside a word is kept ("o'clock"), everything else separates words.
type Tokenizer struct {
	Vocab  []string       `json:"vocab"`   // id -> word; the first three are special
	MaxLen int            `json:"max_len"` // sequence length after padding
	index  map[string]int // word -> id
}

// Words splits a caption into lower-case words.
func Words(caption string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, strings.Trim(cur.String(), "'"))
			cur.Reset()
		}
	}
	for _, r := range strings.ToLower(caption) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur.WriteRune(r)
		case (r == '\'' || r == '’') && cur.Len() > 0:
			cur.WriteRune('\'')
		default:
			flush()
		}
	}
	flush()
	out := words[:0]
	for _, w := range words {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// BuildTokenizer makes a vocabulary of every word occurring at least minCount times in
// captions, ordered by descending frequency then alphabetically (so the ids are stable).
func BuildTokenizer(captions []string, minCount, maxLen int) (*Tokenizer, error) {
	if maxLen < 1 {
		return nil, fmt.Errorf("tokenizer: max length must be >= 1, got %d", maxLen)
	}
	tok := &Tokenizer{Vocab: append(append([]string(nil), specialTokens...), rankWords(captions, minCount, nil)...), MaxLen: maxLen}
	tok.reindex()
	return tok, nil
}

// Extend returns a tokenizer that keeps every id of t and appends the words of captions
// that t lacks, ordered as BuildTokenizer orders them (minCount 1); MaxLen is t's. A model
// inflated from t's model (InflateImageModel) reads its old words as before and learns the
// new ones (a video model's motion words, "moving", "left").
func (t *Tokenizer) Extend(captions []string) *Tokenizer {
	known := make(map[string]int, len(t.Vocab))
	for i, w := range t.Vocab {
		known[w] = i
	}
	out := &Tokenizer{Vocab: append(slices.Clone(t.Vocab), rankWords(captions, 1, known)...), MaxLen: t.MaxLen}
	out.reindex()
	return out
}

// Extends reports whether t keeps every word of base at base's id (as base.Extend makes it)
// and base's MaxLen.
func (t *Tokenizer) Extends(base *Tokenizer) bool {
	n := base.VocabSize()
	return t.MaxLen == base.MaxLen && t.VocabSize() >= n && slices.Equal(t.Vocab[:n], base.Vocab)
}

// rankWords lists the words of captions that occur at least minCount times and are not
// keys of known, by descending frequency then alphabetically.
func rankWords(captions []string, minCount int, known map[string]int) []string {
	counts := map[string]int{}
	for _, c := range captions {
		for _, w := range Words(c) {
			if _, ok := known[w]; !ok {
				counts[w]++
			}
		}
	}
	words := make([]string, 0, len(counts))
	for w, n := range counts {
		if n >= minCount {
			words = append(words, w)
		}
	}
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	return words
}

func (t *Tokenizer) reindex() {
	t.index = make(map[string]int, len(t.Vocab))
	for i, w := range t.Vocab {
		t.index[w] = i
	}
}

// VocabSize is the number of ids, special tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.Vocab) }

// Encode returns MaxLen ids (words first, then padding), the number of real tokens, and
// the words that are not in the vocabulary (encoded as UnkID). An empty caption encodes
// as the single NullID token. Words beyond MaxLen are dropped and counted in truncated.
func (t *Tokenizer) Encode(caption string) (ids []int32, n int, unknown []string, truncated int) {
	ids = make([]int32, t.MaxLen)
	words := Words(caption)
	if len(words) == 0 {
		ids[0] = NullID
		return ids, 1, nil, 0
	}
	if len(words) > t.MaxLen {
		truncated = len(words) - t.MaxLen
		words = words[:t.MaxLen]
	}
	for i, w := range words {
		id, ok := t.index[w]
		if !ok {
			id = UnkID
			unknown = append(unknown, w)
		}
		ids[i] = int32(id)
	}
	return ids, len(words), unknown, truncated
}

// MarshalJSON stores the vocabulary and length.
func (t *Tokenizer) MarshalJSON() ([]byte, error) {
	type plain Tokenizer
	return json.Marshal((*plain)(t))
}

// UnmarshalJSON restores a tokenizer and checks that its special tokens are in place.
func (t *Tokenizer) UnmarshalJSON(b []byte) error {
	type plain Tokenizer
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	if len(t.Vocab) < len(specialTokens) {
		return fmt.Errorf("tokenizer: vocabulary of %d entries lacks the special tokens", len(t.Vocab))
	}
	for i, s := range specialTokens {
		if t.Vocab[i] != s {
			return fmt.Errorf("tokenizer: id %d is %q, want %q", i, t.Vocab[i], s)
		}
	}
	if t.MaxLen < 1 {
		return fmt.Errorf("tokenizer: max_len %d < 1", t.MaxLen)
	}
	t.reindex()
	if len(t.index) != len(t.Vocab) {
		return fmt.Errorf("tokenizer: vocabulary has duplicate words")
	}
	return nil
}
