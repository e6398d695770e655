// Tests of the text inputs: the word tokenizer's ids and mask, CLIP BPE on a tiny merge table
// (merge order, "</w>", start/end/padding, truncation, the byte order of the derived
// vocabulary), and, when ALIGN_CLIP_BPE names open_clip's bpe_simple_vocab_16e6.txt.gz,
// the ids of the real CLIP tokenizer for known prompts.
//
// Test: go test ./rewards/onnx -run Tokenizer
package onnx

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestTokenizerWord(t *testing.T) {
	tok := testTokenizer(t, 5)
	m := &Manifest{Text: &TextSpec{Tokenizer: TokenizerWord, Vocab: tok.Vocab, MaxLen: 5}}
	enc, err := newTextEncoder(m)
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := enc.encode("Red apple, ZEBRA")
	want32, n, _, _ := tok.Encode("red apple zebra")
	for i := range ids {
		if ids[i] != int64(want32[i]) || (mask[i] == 1) != (i < n) {
			t.Fatalf("ids %v mask %v, want %v (n %d)", ids, mask, want32, n)
		}
	}
	if ids, mask := enc.encode(""); ids[0] != 2 || mask[0] != 1 || mask[1] != 0 {
		t.Errorf("empty prompt: %v %v", ids, mask)
	}
	m.Text.Vocab = []string{"a", "b"}
	if _, err := newTextEncoder(m); err == nil {
		t.Error("a vocabulary without the special tokens was accepted")
	}
}

func TestTokenizerCLIPBPETiny(t *testing.T) {
	merges, err := ParseMerges("#version: 0.2\nr e\nre d</w>\na p\nap p\n")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewCLIPBPE(merges, nil, 6, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Derived vocabulary: 256 byte runes ('!' first), 256 with </w>, 4 merges, start, end.
	if tok.Start != 516 || tok.End != 517 {
		t.Fatalf("start %d end %d, want 516 517", tok.Start, tok.End)
	}
	red := int64(512 + 1)                    // "red</w>"
	excl := int64(256 + 0)                   // "!</w>": '!' is the first byte rune
	app := int64(512 + 3)                    // "app"
	l := int64(int('l') - int('!'))          // "l"
	eEnd := int64(256 + int('e') - int('!')) // "e</w>"
	got := tok.Tokens("Red&amp;  RED!")
	// "red", "&", "red", "!": & is its own word.
	amp := int64(256 + int('&') - int('!'))
	if want := []int64{red, amp, red, excl}; !slices.Equal(got, want) {
		t.Errorf("tokens %v, want %v", got, want)
	}
	got = tok.Tokens("apple")
	if want := []int64{app, l, eEnd}; !slices.Equal(got, want) {
		t.Errorf("apple: %v, want %v", got, want)
	}
	ids, mask := tok.encode("red red red red red red")
	if want := []int64{516, red, red, red, red, 517}; !slices.Equal(ids, want) || !slices.Equal(mask, []int64{1, 1, 1, 1, 1, 1}) {
		t.Errorf("truncated: %v %v", ids, mask)
	}
	ids, mask = tok.encode("red")
	if want := []int64{516, red, 517, 0, 0, 0}; !slices.Equal(ids, want) || !slices.Equal(mask, []int64{1, 1, 1, 0, 0, 0}) {
		t.Errorf("padded: %v %v", ids, mask)
	}
	if _, err := ParseMerges("a b c\n"); err == nil {
		t.Error("a three-token merge line was accepted")
	}
}

// FuzzParseMerges: accepted rules are pairs of non-empty tokens without spaces or line
// breaks (what the BPE loop joins); a refused file says which line.
// Fuzz: go test ./rewards/onnx -run '^$' -fuzz FuzzParseMerges -fuzztime 30s
func FuzzParseMerges(f *testing.F) {
	for _, s := range []string{"#version: 0.2\nr e\nre d</w>\n", "a b\r\n\nc d", "a b c\n", "", " a\n", "#version\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		merges, err := ParseMerges(text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "clip-bpe merges") {
				t.Fatalf("error without its source: %v", err)
			}
			return
		}
		if len(merges) == 0 {
			t.Fatal("no rules accepted")
		}
		for _, m := range merges {
			for _, tok := range m {
				if tok == "" || strings.ContainsAny(tok, " \n") {
					t.Fatalf("rule %q", m)
				}
			}
		}
	})
}

// Known ids of OpenAI CLIP's tokenizer (Hugging Face's CLIPTokenizer documentation example).
func TestTokenizerCLIPBPEGolden(t *testing.T) {
	path := os.Getenv("ALIGN_CLIP_BPE")
	if path == "" {
		t.Skip("set ALIGN_CLIP_BPE to open_clip's bpe_simple_vocab_16e6.txt.gz to check against CLIP's ids")
	}
	tok, err := loadCLIPBPE(path, "", 77, 0)
	if err != nil {
		t.Fatal(err)
	}
	for prompt, want := range map[string][]int64{
		"a photo of a cat": {49406, 320, 1125, 539, 320, 2368, 49407},
		"a photo of a dog": {49406, 320, 1125, 539, 320, 1929, 49407},
	} {
		ids, _ := tok.encode(prompt)
		if !slices.Equal(ids[:len(want)], want) || ids[len(want)] != 0 {
			t.Errorf("%q: %v, want %v", prompt, ids[:len(want)+1], want)
		}
	}
}
