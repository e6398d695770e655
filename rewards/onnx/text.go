// Text inputs of ONNX reward models: prompts to token ids with align's word tokenizer or with
// CLIP's byte-level BPE (OpenAI CLIP, open_clip, Hugging Face CLIPTokenizer files).
//
// Test: go test ./rewards/onnx -run Tokenizer
package onnx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/alignkit/align/diffusion"
)

// textEncoder turns a prompt into exactly MaxLen ids and the attention mask (1 for tokens,
// 0 for padding).
type textEncoder interface {
	encode(prompt string) (ids, mask []int64)
}

// newTextEncoder builds the tokenizer a text spec names, reading its files relative to the
// manifest.
func newTextEncoder(m *Manifest) (textEncoder, error) {
	t := m.Text
	switch t.Tokenizer {
	case TokenizerWord:
		vocab := t.Vocab
		if t.VocabFile != "" {
			var err error
			if vocab, err = readWordList(m.Path(t.VocabFile)); err != nil {
				return nil, err
			}
		}
		js, err := json.Marshal(map[string]any{"vocab": vocab, "max_len": t.MaxLen})
		if err != nil {
			return nil, err
		}
		tok := &diffusion.Tokenizer{}
		if err := json.Unmarshal(js, tok); err != nil {
			return nil, fmt.Errorf("text vocabulary: %w", err)
		}
		return wordEncoder{tok}, nil
	case TokenizerCLIPBPE:
		return loadCLIPBPE(m.Path(t.MergesFile), m.Path(t.VocabFile), t.MaxLen, t.PadID)
	}
	return nil, fmt.Errorf("unknown tokenizer %q", t.Tokenizer)
}

// readWordList reads a vocabulary: a JSON array of words, or one word per line.
func readWordList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("text vocabulary: %w", err)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var words []string
		if err := json.Unmarshal(t, &words); err != nil {
			return nil, fmt.Errorf("text vocabulary %s: %w", path, err)
		}
		return words, nil
	}
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		words = append(words, strings.TrimRight(sc.Text(), "\r"))
	}
	return words, sc.Err()
}

type wordEncoder struct{ tok *diffusion.Tokenizer }

func (w wordEncoder) encode(prompt string) (ids, mask []int64) {
	id32, n, _, _ := w.tok.Encode(prompt)
	ids, mask = make([]int64, len(id32)), make([]int64, len(id32))
	for i, v := range id32 {
		ids[i] = int64(v)
		if i < n {
			mask[i] = 1
		}
	}
	return ids, mask
}

// ---- CLIP byte-level BPE ----

// clipPattern splits cleaned text into words as CLIP's tokenizer does.
var clipPattern = regexp.MustCompile(`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)

// clipMerges is the number of merges CLIP's 49408-token vocabulary uses.
const clipMerges = 49152 - 256 - 2

// CLIPBPE is CLIP's tokenizer: lower-cased, HTML-unescaped, whitespace-collapsed text split
// by clipPattern; every word's UTF-8 bytes mapped to printable runes, "</w>" appended to the
// last, and merged by rank. Ids are [start, tokens..., end] truncated to MaxLen and padded
// with PadID. ftfy's mojibake repair (used by the Python tokenizers when installed) is not
// reproduced: prompts with broken encodings may tokenize differently.
type CLIPBPE struct {
	MaxLen     int
	PadID      int64
	Start, End int64

	encoder map[string]int64
	ranks   map[[2]string]int
	byteMap [256]string

	mu    sync.Mutex
	cache map[string][]int64
}

// loadCLIPBPE reads merges (HF merges.txt or open_clip's bpe_simple_vocab_16e6.txt, gzipped or
// not) and, when vocabPath is set, the vocab.json mapping tokens to ids.
func loadCLIPBPE(mergesPath, vocabPath string, maxLen, padID int) (*CLIPBPE, error) {
	merges, err := readMerges(mergesPath)
	if err != nil {
		return nil, err
	}
	var vocab map[string]int64
	if vocabPath != "" {
		data, err := os.ReadFile(vocabPath)
		if err != nil {
			return nil, fmt.Errorf("clip-bpe vocabulary: %w", err)
		}
		if err := json.Unmarshal(data, &vocab); err != nil {
			return nil, fmt.Errorf("clip-bpe vocabulary %s: %w", vocabPath, err)
		}
	}
	return NewCLIPBPE(merges, vocab, maxLen, int64(padID))
}

func readMerges(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip-bpe merges: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("clip-bpe merges %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("clip-bpe merges %s: %w", path, err)
	}
	return ParseMerges(string(data))
}

// ParseMerges reads merge rules "a b", one per line; a first line holding "#version" is
// skipped, as are empty lines.
func ParseMerges(text string) ([][2]string, error) {
	var out [][2]string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if (i == 0 && strings.Contains(line, "#version")) || line == "" {
			continue
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("clip-bpe merges line %d: %q is not two tokens", i+1, line)
		}
		out = append(out, [2]string{a, b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clip-bpe merges: no merge rules")
	}
	return out, nil
}

// clipByteRunes is CLIP's bytes_to_unicode: printable bytes map to themselves, the others to
// runes from 256 on. order lists the bytes in the table's order (the printable ones first,
// then the rest), which is the order of the first 256 vocabulary entries.
func clipByteRunes() (m [256]string, order []byte) {
	printable := func(b int) bool { return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF }
	n := 0
	for b := range 256 {
		if printable(b) {
			m[b] = string(rune(b))
			order = append(order, byte(b))
		}
	}
	for b := range 256 {
		if !printable(b) {
			m[b] = string(rune(256 + n))
			order = append(order, byte(b))
			n++
		}
	}
	return m, order
}

// NewCLIPBPE builds the tokenizer from merge rules and a vocabulary (nil: derived from the
// merges as open_clip does: the 256 byte runes, the same with "</w>", the first 48894 merges
// joined, then the start and end tokens, 49408 in all).
func NewCLIPBPE(merges [][2]string, vocab map[string]int64, maxLen int, padID int64) (*CLIPBPE, error) {
	if maxLen < 2 {
		return nil, fmt.Errorf("clip-bpe: max_len %d < 2", maxLen)
	}
	t := &CLIPBPE{MaxLen: maxLen, PadID: padID, ranks: map[[2]string]int{}, cache: map[string][]int64{}}
	var order []byte
	t.byteMap, order = clipByteRunes()
	if vocab == nil {
		if len(merges) > clipMerges {
			merges = merges[:clipMerges]
		}
		vocab = map[string]int64{}
		var list []string
		for _, b := range order {
			list = append(list, t.byteMap[b])
		}
		for _, b := range order {
			list = append(list, t.byteMap[b]+"</w>")
		}
		for _, m := range merges {
			list = append(list, m[0]+m[1])
		}
		list = append(list, "<|startoftext|>", "<|endoftext|>")
		for i, w := range list {
			vocab[w] = int64(i)
		}
	}
	for i, m := range merges {
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	t.encoder = vocab
	var ok1, ok2 bool
	t.Start, ok1 = vocab["<|startoftext|>"]
	t.End, ok2 = vocab["<|endoftext|>"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("clip-bpe: the vocabulary lacks <|startoftext|> or <|endoftext|>")
	}
	return t, nil
}

// Tokens returns the ids of prompt's words, without start, end or padding.
func (t *CLIPBPE) Tokens(prompt string) []int64 {
	text := html.UnescapeString(html.UnescapeString(prompt))
	text = strings.ToLower(strings.Join(strings.Fields(text), " "))
	var ids []int64
	for _, w := range clipPattern.FindAllString(text, -1) {
		ids = append(ids, t.word(w)...)
	}
	return ids
}

// encode implements textEncoder.
func (t *CLIPBPE) encode(prompt string) (ids, mask []int64) {
	toks := t.Tokens(prompt)
	if len(toks) > t.MaxLen-2 {
		toks = toks[:t.MaxLen-2]
	}
	ids, mask = make([]int64, t.MaxLen), make([]int64, t.MaxLen)
	ids[0] = t.Start
	copy(ids[1:], toks)
	ids[len(toks)+1] = t.End
	for i := range ids {
		if i < len(toks)+2 {
			mask[i] = 1
		} else {
			ids[i] = t.PadID
		}
	}
	return ids, mask
}

// word applies the merges to one pre-tokenized word.
func (t *CLIPBPE) word(w string) []int64 {
	t.mu.Lock()
	if ids, ok := t.cache[w]; ok {
		t.mu.Unlock()
		return ids
	}
	t.mu.Unlock()
	var parts []string
	for _, b := range []byte(w) {
		parts = append(parts, t.byteMap[b])
	}
	if len(parts) == 0 {
		return nil
	}
	parts[len(parts)-1] += "</w>"
	for len(parts) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := t.ranks[[2]string{parts[i], parts[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b := parts[at], parts[at+1]
		merged := parts[:0:0]
		for i := 0; i < len(parts); i++ {
			if i+1 < len(parts) && parts[i] == a && parts[i+1] == b {
				merged = append(merged, a+b)
				i++
			} else {
				merged = append(merged, parts[i])
			}
		}
		parts = merged
	}
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		if id, ok := t.encoder[p]; ok {
			ids = append(ids, id)
		} else {
			// Not in the vocabulary (a vocab.json that lacks a merge result): fall back to the
			// byte runes, which every CLIP vocabulary holds.
			for _, r := range p {
				if id, ok := t.encoder[string(r)]; ok {
					ids = append(ids, id)
				}
			}
		}
	}
	t.mu.Lock()
	if len(t.cache) < 1<<16 {
		t.cache[w] = ids
	}
	t.mu.Unlock()
	return ids
}
