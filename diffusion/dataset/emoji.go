// Emoji metadata: concepts and their skin-tone variants from emoji-datasource's emoji.json,
// keywords from emojilib, the caption of every variant, and the fixed held-out split.
//
// Test: go test ./diffusion/dataset -run 'Caption|Keyword|Split|Concepts'

package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Split names an item's side of the concept split.
type Split string

const (
	SplitTrain   Split = "train"
	SplitHeldOut Split = "heldout"
)

// HeldOutPerMyriad is the held-out share of concepts in units of 1/10000 (5%).
const HeldOutPerMyriad = 500

// MaxHeldOutPerMyriad bounds an import's held-out share (50%).
const MaxHeldOutPerMyriad = 5000

// HeldOutRule describes the split at a share of perMyriad in words; it is recorded in the
// manifest.
func HeldOutRule(perMyriad int) string {
	return fmt.Sprintf("held out iff uint64(sha256(upper(unified) without -FE0F)[:8], big endian) %% 10000 < %d", perMyriad)
}

// IsHeldOut reports whether the concept with this base code point sequence (emoji.json "unified",
// e.g. "1F44B" or "0023-FE0F-20E3") belongs to the held-out split. The rule depends only on the
// code points, so it stays the same across emoji-data versions and sets; FE0F variation selectors
// are ignored so that a change of qualification does not move a concept.
func IsHeldOut(unified string) bool { return HeldOutAt(unified, HeldOutPerMyriad) }

// HeldOutAt is IsHeldOut's rule at a share of perMyriad of the concepts (an import's
// --held-out-percent): a concept held out at one share is held out at every larger one.
func HeldOutAt(unified string, perMyriad int) bool {
	key := strings.ReplaceAll(strings.ToUpper(unified), "-FE0F", "")
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])%10000 < uint64(perMyriad)
}

// skinTones maps a Fitzpatrick modifier to its CLDR name.
var skinTones = map[string]string{
	"1F3FB": "light skin tone",
	"1F3FC": "medium-light skin tone",
	"1F3FD": "medium skin tone",
	"1F3FE": "medium-dark skin tone",
	"1F3FF": "dark skin tone",
}

// ToneName turns a skin_variations key ("1F3FD", "1F3FB-1F3FF") into words: "medium skin tone",
// "light skin tone, dark skin tone"; a repeated tone is named once, as CLDR does.
func ToneName(key string) (string, error) {
	var names []string
	for _, part := range strings.Split(strings.ToUpper(key), "-") {
		n, ok := skinTones[part]
		if !ok {
			return "", fmt.Errorf("unknown skin tone %q in %q", part, key)
		}
		if len(names) == 0 || names[len(names)-1] != n {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", "), nil
}

// WithTone appends a tone to a name the CLDR way: "waving hand: medium skin tone", and
// "kiss: woman, woman, light skin tone" when the name already has a colon.
func WithTone(name, tone string) string {
	if tone == "" {
		return name
	}
	if strings.Contains(name, ":") {
		return name + ", " + tone
	}
	return name + ": " + tone
}

// CleanKeyword turns an emojilib keyword into caption text: "_" and no-break spaces become spaces,
// letters are lower-cased and spaces collapsed. Emoticons and symbols (":D", "+1", "¯\_(ツ)_/¯",
// "12:30") give "" and are dropped.
func CleanKeyword(k string) string {
	k = strings.NewReplacer("_", " ", "\u00a0", " ").Replace(k)
	k = strings.Join(strings.Fields(strings.ToLower(k)), " ")
	letters := 0
	for _, r := range k {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r), r == ' ', strings.ContainsRune("-'’.&!", r):
		default:
			return ""
		}
	}
	if letters < 2 {
		return ""
	}
	return k
}

// Variant is one rendering-independent image of a concept: the base emoji or a skin-tone form.
type Variant struct {
	Unified string // code points of this variant, e.g. "1F44B-1F3FD"
	Image   string // PNG file name in every set, e.g. "1f44b-1f3fd.png"
	ToneKey string // skin_variations key ("" for the base emoji)
	Tone    string // "medium skin tone" ("" for the base emoji)
	Sets    []string
}

// Concept is one emoji (emoji.json entry) with all its variants.
type Concept struct {
	Unified     string // base code points, the concept's identity
	Name        string // lower-case name, e.g. "waving hand"
	Category    string
	Subcategory string
	Keywords    []string // cleaned emojilib keywords, in emojilib order, deduplicated
	SortOrder   int
	HeldOut     bool
	Variants    []Variant // base first, then skin tones by key
}

// Caption is the primary caption of a variant: the name, with the tone for skin-tone variants.
func (c *Concept) Caption(v *Variant) string { return WithTone(c.Name, v.Tone) }

// AltCaptions are the alternative captions of a variant: the keywords (without those equal to
// the primary caption) and then the subcategory with "-" read as a space.
func (c *Concept) AltCaptions(v *Variant) []string {
	primary := c.Caption(v)
	seen := map[string]bool{primary: true}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, k := range c.Keywords {
		add(k)
	}
	add(strings.ReplaceAll(c.Subcategory, "-", " "))
	return out
}

type emojiEntry struct {
	Name           string                    `json:"name"`
	Unified        string                    `json:"unified"`
	NonQualified   *string                   `json:"non_qualified"`
	Image          string                    `json:"image"`
	ShortName      string                    `json:"short_name"`
	Category       string                    `json:"category"`
	Subcategory    string                    `json:"subcategory"`
	SortOrder      int                       `json:"sort_order"`
	HasImgTwitter  bool                      `json:"has_img_twitter"`
	HasImgGoogle   bool                      `json:"has_img_google"`
	SkinVariations map[string]emojiVariation `json:"skin_variations"`
}

type emojiVariation struct {
	Unified       string `json:"unified"`
	Image         string `json:"image"`
	HasImgTwitter bool   `json:"has_img_twitter"`
	HasImgGoogle  bool   `json:"has_img_google"`
}

func (e *emojiEntry) sets() []string     { return hasSets(e.HasImgTwitter, e.HasImgGoogle) }
func (v *emojiVariation) sets() []string { return hasSets(v.HasImgTwitter, v.HasImgGoogle) }

func hasSets(twitter, google bool) []string {
	var s []string
	if twitter {
		s = append(s, SetTwitter)
	}
	if google {
		s = append(s, SetGoogle)
	}
	return s
}

// codePointsToString turns "1F44B-1F3FD" into the emoji's characters.
func codePointsToString(unified string) (string, error) {
	var b strings.Builder
	for _, p := range strings.Split(unified, "-") {
		r, err := strconv.ParseUint(p, 16, 32)
		if err != nil {
			return "", fmt.Errorf("bad code point %q in %q", p, unified)
		}
		b.WriteRune(rune(r))
	}
	return b.String(), nil
}

// ParseConcepts reads emoji.json and emojilib's emoji-en-US.json and returns the concepts sorted by
// emoji.json sort_order (then unified). Names that occur twice in emoji.json ("MAN IN TUXEDO" is
// both U+1F935 and U+1F935 U+200D U+2642) are told apart with the short name of the entry whose
// short name differs from the name.
func ParseConcepts(emojiJSON, keywordsJSON []byte) ([]*Concept, error) {
	var entries []emojiEntry
	if err := json.Unmarshal(emojiJSON, &entries); err != nil {
		return nil, fmt.Errorf("emoji.json: %w", err)
	}
	keywords := map[string][]string{}
	if len(keywordsJSON) > 0 {
		if err := json.Unmarshal(keywordsJSON, &keywords); err != nil {
			return nil, fmt.Errorf("emoji-en-US.json: %w", err)
		}
	}
	nameCount := map[string]int{}
	for _, e := range entries {
		nameCount[strings.ToLower(e.Name)]++
	}
	concepts := make([]*Concept, 0, len(entries))
	seen := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		if e.Unified == "" || e.Name == "" || e.Image == "" {
			return nil, fmt.Errorf("emoji.json: entry %d lacks unified, name or image", i)
		}
		if seen[e.Unified] {
			return nil, fmt.Errorf("emoji.json: %s listed twice", e.Unified)
		}
		seen[e.Unified] = true
		name := strings.ToLower(e.Name)
		if short := strings.ReplaceAll(e.ShortName, "_", " "); nameCount[name] > 1 && short != "" && short != name {
			name = short
		}
		c := &Concept{
			Unified:     e.Unified,
			Name:        name,
			Category:    e.Category,
			Subcategory: e.Subcategory,
			SortOrder:   e.SortOrder,
			HeldOut:     IsHeldOut(e.Unified),
		}
		kw, err := lookupKeywords(keywords, e)
		if err != nil {
			return nil, err
		}
		kseen := map[string]bool{}
		for _, k := range kw {
			if k = CleanKeyword(k); k != "" && !kseen[k] {
				kseen[k] = true
				c.Keywords = append(c.Keywords, k)
			}
		}
		c.Variants = append(c.Variants, Variant{Unified: e.Unified, Image: e.Image, Sets: e.sets()})
		keys := make([]string, 0, len(e.SkinVariations))
		for k := range e.SkinVariations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sv := e.SkinVariations[k]
			tone, err := ToneName(k)
			if err != nil {
				return nil, fmt.Errorf("emoji.json: %s: %w", e.Unified, err)
			}
			if sv.Image == "" {
				return nil, fmt.Errorf("emoji.json: %s skin variation %s has no image", e.Unified, k)
			}
			c.Variants = append(c.Variants, Variant{Unified: sv.Unified, Image: sv.Image, ToneKey: k, Tone: tone, Sets: sv.sets()})
		}
		concepts = append(concepts, c)
	}
	sort.SliceStable(concepts, func(i, j int) bool {
		if concepts[i].SortOrder != concepts[j].SortOrder {
			return concepts[i].SortOrder < concepts[j].SortOrder
		}
		return concepts[i].Unified < concepts[j].Unified
	})
	return concepts, nil
}

// lookupKeywords finds an entry's emojilib keywords under its fully qualified, non-qualified or
// FE0F-free characters (emojilib is keyed by characters, not always fully qualified).
func lookupKeywords(keywords map[string][]string, e *emojiEntry) ([]string, error) {
	cands := []string{e.Unified}
	if e.NonQualified != nil && *e.NonQualified != "" {
		cands = append(cands, *e.NonQualified)
	}
	cands = append(cands, strings.ReplaceAll(strings.ToUpper(e.Unified), "-FE0F", ""))
	for _, u := range cands {
		s, err := codePointsToString(u)
		if err != nil {
			return nil, fmt.Errorf("emoji.json: %w", err)
		}
		if kw, ok := keywords[s]; ok {
			return kw, nil
		}
	}
	return nil, nil
}
