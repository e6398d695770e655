// Tests of the caption tokenizer. Run: go test ./diffusion -run Tokenizer
package diffusion

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		"A red Apple":                        {"a", "red", "apple"},
		"waving hand: medium-dark skin tone": {"waving", "hand", "medium", "dark", "skin", "tone"},
		"one o'clock, 'quoted'":              {"one", "o'clock", "quoted"},
		"  ":                                 nil,
		"t-rex 2":                            {"t", "rex", "2"},
	} {
		if got := Words(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenizerBuildEncode(t *testing.T) {
	tok, err := BuildTokenizer([]string{"a red apple", "a green apple", "a red car", "zebra"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Frequencies: a 3, apple 2, red 2, car 1, green 1, zebra 1 -> ties broken alphabetically.
	want := []string{"<pad>", "<unk>", "<null>", "a", "apple", "red", "car", "green", "zebra"}
	if !reflect.DeepEqual(tok.Vocab, want) {
		t.Fatalf("vocab = %q, want %q", tok.Vocab, want)
	}
	ids, n, unk, trunc := tok.Encode("A red bicycle")
	if !reflect.DeepEqual(ids, []int32{3, 5, UnkID, PadID}) || n != 3 || !reflect.DeepEqual(unk, []string{"bicycle"}) || trunc != 0 {
		t.Fatalf("Encode = %v n=%d unk=%q trunc=%d", ids, n, unk, trunc)
	}
	ids, n, _, _ = tok.Encode("")
	if ids[0] != NullID || n != 1 {
		t.Fatalf("empty prompt encodes as %v (n=%d), want [<null>]", ids, n)
	}
	_, n, _, trunc = tok.Encode("a a a a a a")
	if n != 4 || trunc != 2 {
		t.Fatalf("long prompt: n=%d truncated=%d, want 4 and 2", n, trunc)
	}
	if _, err := BuildTokenizer(nil, 1, 0); err == nil {
		t.Fatal("max length 0 accepted")
	}
}

// Extend keeps every id and appends the new words, most frequent first, ties alphabetical.
func TestTokenizerExtend(t *testing.T) {
	base, _ := BuildTokenizer([]string{"a red apple", "a green apple", "a red car", "zebra"}, 1, 4)
	ext := base.Extend([]string{"a red apple moving up", "a car zooming", "zooming moving", "zebra up", "zebra bouncing"})
	want := append(slices.Clone(base.Vocab), "moving", "up", "zooming", "bouncing")
	if !reflect.DeepEqual(ext.Vocab, want) || ext.MaxLen != 4 {
		t.Fatalf("extended vocab %q (max len %d), want %q", ext.Vocab, ext.MaxLen, want)
	}
	for _, c := range []string{"a red apple", "green car zebra"} {
		a, _, _, _ := base.Encode(c)
		b, _, unk, _ := ext.Encode(c)
		if !reflect.DeepEqual(a, b) || unk != nil {
			t.Errorf("%q: ids %v before, %v after (unknown %q)", c, a, b, unk)
		}
	}
	if ids, _, unk, _ := ext.Encode("red apple moving up"); !reflect.DeepEqual(ids, []int32{5, 4, 9, 10}) || unk != nil {
		t.Errorf("new words encode as %v (unknown %q), want [5 4 9 10]", ids, unk)
	}
	if base.VocabSize() != 9 {
		t.Errorf("Extend changed its receiver: %d words", base.VocabSize())
	}
	if same := base.Extend([]string{"apple red"}); !reflect.DeepEqual(same.Vocab, base.Vocab) {
		t.Errorf("captions without new words changed the vocabulary: %q", same.Vocab)
	}
	// Extends: ext keeps base's ids; base lacks ext's words; a tokenizer built from the same
	// captions anew orders them by frequency, not by base's ids.
	fresh, _ := BuildTokenizer([]string{"a red apple moving up", "a car zooming", "zooming moving", "zebra up", "zebra bouncing"}, 1, 4)
	if !ext.Extends(base) || !base.Extends(base) || base.Extends(ext) || fresh.Extends(base) {
		t.Errorf("Extends: ext %v, itself %v, base of ext %v, fresh %v", ext.Extends(base), base.Extends(base), base.Extends(ext), fresh.Extends(base))
	}
}

func TestTokenizerJSONRoundTrip(t *testing.T) {
	tok, _ := BuildTokenizer([]string{"a red apple"}, 1, 8)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var back Tokenizer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	a1, _, _, _ := tok.Encode("red apple pie")
	a2, _, _, _ := back.Encode("red apple pie")
	if !reflect.DeepEqual(a1, a2) {
		t.Fatalf("round trip changed encoding: %v vs %v", a1, a2)
	}
	for _, bad := range []string{
		`{"vocab":["a","b"],"max_len":4}`,
		`{"vocab":["<pad>","<unk>","<null>","x","x"],"max_len":4}`,
		`{"vocab":["<pad>","<unk>","<null>"],"max_len":0}`,
		`{"vocab":`,
	} {
		var tk Tokenizer
		if err := json.Unmarshal([]byte(bad), &tk); err == nil {
			t.Errorf("accepted bad tokenizer %s", bad)
		}
	}
}

func FuzzTokenizerEncode(f *testing.F) {
	tok, _ := BuildTokenizer([]string{"a red apple", "grinning face"}, 1, 6)
	for _, s := range []string{"", "a red apple", "ÄÖÜ ß", "'''", "x'y'z", strings.Repeat("a ", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, n, unk, trunc := tok.Encode(s)
		if len(ids) != tok.MaxLen || n < 1 || n > tok.MaxLen || trunc < 0 {
			t.Fatalf("Encode(%q) = %v n=%d trunc=%d", s, ids, n, trunc)
		}
		for i, id := range ids {
			if int(id) >= tok.VocabSize() || id < 0 || (i >= n && id != PadID) {
				t.Fatalf("Encode(%q): bad id %d at %d (n=%d)", s, id, i, n)
			}
		}
		if len(unk) > n {
			t.Fatalf("more unknown words than tokens")
		}
	})
}
