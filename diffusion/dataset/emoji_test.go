// Tests of the metadata: tone names, captions, keyword cleaning, duplicate names and the held-out
// split (stable, about 5%, FE0F-insensitive), on testdata/fixture and small inline JSON.
//
// Run: go test ./diffusion/dataset -run 'Tone|Caption|Keyword|Concepts|HeldOut'

package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixtureDir = "testdata/fixture"

func TestToneName(t *testing.T) {
	for key, want := range map[string]string{
		"1F3FB":       "light skin tone",
		"1F3FD":       "medium skin tone",
		"1f3fe":       "medium-dark skin tone",
		"1F3FB-1F3FF": "light skin tone, dark skin tone",
		"1F3FD-1F3FD": "medium skin tone",
	} {
		got, err := ToneName(key)
		if err != nil || got != want {
			t.Errorf("ToneName(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := ToneName("1F600"); err == nil {
		t.Error("ToneName(1F600): want an error")
	}
}

func TestWithTone(t *testing.T) {
	cases := [][3]string{
		{"waving hand", "medium skin tone", "waving hand: medium skin tone"},
		{"kiss: woman, woman", "light skin tone, dark skin tone", "kiss: woman, woman, light skin tone, dark skin tone"},
		{"red apple", "", "red apple"},
	}
	for _, c := range cases {
		if got := WithTone(c[0], c[1]); got != c[2] {
			t.Errorf("WithTone(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestCleanKeyword(t *testing.T) {
	for in, want := range map[string]string{
		"grinning_face":    "grinning face",
		"keycap_":          "keycap",
		"shadow\u00a0moon": "shadow moon",
		"UFO":              "ufo",
		"vicuña":           "vicuña",
		"o’clock":          "o’clock",
		":D":               "",
		":)":               "",
		"+1":               "",
		"12:30":            "",
		"🚓\u00a0cop":       "",
		"¯\\_(ツ)_/¯":       "",
		"hi":               "hi",
	} {
		if got := CleanKeyword(in); got != want {
			t.Errorf("CleanKeyword(%q) = %q, want %q", in, got, want)
		}
	}
}

func fixtureConcepts(t *testing.T) []*Concept {
	t.Helper()
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseConcepts(src.EmojiJSON, src.Keywords)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestConceptsCaptions(t *testing.T) {
	cs := fixtureConcepts(t)
	by := map[string]*Concept{}
	var order []int
	for _, c := range cs {
		by[c.Unified] = c
		order = append(order, c.SortOrder)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("concepts not in sort_order: %v", order)
		}
	}
	wave := by["1F44B"]
	var got []string
	for i := range wave.Variants {
		got = append(got, wave.Caption(&wave.Variants[i]))
	}
	want := []string{"waving hand sign", "waving hand sign: light skin tone", "waving hand sign: medium skin tone"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waving hand captions %q, want %q", got, want)
	}
	hands := by["1F9D1-200D-1F91D-200D-1F9D1"]
	got = nil
	for i := range hands.Variants {
		got = append(got, hands.Caption(&hands.Variants[i]))
	}
	want = []string{"people holding hands", "people holding hands: light skin tone, dark skin tone", "people holding hands: medium skin tone"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("people holding hands captions %q, want %q", got, want)
	}
	if v := hands.Variants[1]; v.Image != "1f9d1-1f3fb-200d-1f91d-200d-1f9d1-1f3ff.png" || v.ToneKey != "1F3FB-1F3FF" {
		t.Errorf("variant %+v", v)
	}

	apple := by["1F34E"]
	alt := apple.AltCaptions(&apple.Variants[0])
	wantAlt := []string{"fruit", "mac", "school", "delicious", "plant", "food fruit"}
	if apple.Caption(&apple.Variants[0]) != "red apple" || !reflect.DeepEqual(alt, wantAlt) {
		t.Errorf("apple: %q %q, want \"red apple\" %q", apple.Caption(&apple.Variants[0]), alt, wantAlt)
	}
	// Keywords are found for FE0F-qualified keys and cleaned; emoticon-like keywords go.
	plate := by["1F37D-FE0F"]
	if len(plate.Keywords) == 0 || plate.Keywords[0] != "fork and knife with plate" {
		t.Errorf("fork and knife keywords %q", plate.Keywords)
	}
	moon := by["1F311"]
	if alt := moon.AltCaptions(&moon.Variants[0]); alt[len(alt)-1] != "sky & weather" || !contains(alt, "shadow moon") {
		t.Errorf("moon alternatives %q", alt)
	}
	hash := by["0023-FE0F-20E3"]
	if hash.Keywords[0] != "keycap" {
		t.Errorf("keycap keywords %q", hash.Keywords)
	}
	// Skin-tone variants share the concept's keywords; the tone is in the primary caption only.
	if a, b := wave.AltCaptions(&wave.Variants[0]), wave.AltCaptions(&wave.Variants[2]); !reflect.DeepEqual(a, b) {
		t.Errorf("tone variants' alternatives differ: %q vs %q", a, b)
	}
}

func TestConceptsDuplicateNames(t *testing.T) {
	js := []byte(`[
 {"name":"MAN IN TUXEDO","unified":"1F935-200D-2642-FE0F","image":"a.png","short_name":"man_in_tuxedo","sort_order":2,"has_img_twitter":true},
 {"name":"MAN IN TUXEDO","unified":"1F935","image":"b.png","short_name":"person_in_tuxedo","sort_order":1,"has_img_twitter":true}]`)
	cs, err := ParseConcepts(js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].Name != "person in tuxedo" || cs[1].Name != "man in tuxedo" {
		t.Errorf("names %q, %q", cs[0].Name, cs[1].Name)
	}
	if !reflect.DeepEqual(cs[0].Variants[0].Sets, []string{SetTwitter}) {
		t.Errorf("sets %v", cs[0].Variants[0].Sets)
	}
}

func TestConceptsErrors(t *testing.T) {
	for _, js := range []string{
		`{`,
		`[{"name":"X","unified":"1F600"}]`,
		`[{"name":"X","unified":"1F600","image":"x.png"},{"name":"Y","unified":"1F600","image":"y.png"}]`,
		`[{"name":"X","unified":"1F600","image":"x.png","skin_variations":{"1F600":{"image":"z.png"}}}]`,
		`[{"name":"X","unified":"ZZ","image":"x.png"}]`,
	} {
		if _, err := ParseConcepts([]byte(js), []byte(`{}`)); err == nil {
			t.Errorf("ParseConcepts(%s): want an error", js)
		}
	}
}

func TestHeldOutStable(t *testing.T) {
	// Fixed forever: changing the rule would move concepts between the splits.
	for u, want := range map[string]bool{
		"1F951": true, "1F919": true, "1F1EF-1F1F5": true, "2615": true,
		"1F34E": false, "1F44B": false, "1F600": false, "0023-FE0F-20E3": false,
	} {
		if got := IsHeldOut(u); got != want {
			t.Errorf("IsHeldOut(%s) = %v, want %v", u, got, want)
		}
	}
	if IsHeldOut("1F202-FE0F") != IsHeldOut("1F202") || IsHeldOut("1f202-fe0f") != IsHeldOut("1F202") {
		t.Error("the split depends on FE0F or letter case")
	}
	held := 0
	n := 0
	for r := 0x1F300; r < 0x1FB00; r++ {
		n++
		if IsHeldOut(fmt.Sprintf("%X", r)) {
			held++
		}
	}
	if f := float64(held) / float64(n); f < 0.04 || f > 0.06 {
		t.Errorf("held-out share %.3f over %d code points, want about 0.05", f, n)
	}
	// At 30% about 30% are held out, among them every one held out at 5%.
	held = 0
	for r := 0x1F300; r < 0x1FB00; r++ {
		u := fmt.Sprintf("%X", r)
		if HeldOutAt(u, 3000) {
			held++
		} else if IsHeldOut(u) {
			t.Errorf("%s: held out at 5%%, not at 30%%", u)
		}
	}
	if f := float64(held) / float64(n); f < 0.27 || f > 0.33 {
		t.Errorf("held-out share %.3f at 30%% over %d code points", f, n)
	}
	if HeldOutAt("1F951", 0) {
		t.Error("a concept held out at 0%")
	}
}

func TestFixtureHasBothSplits(t *testing.T) {
	var heldOut []string
	for _, c := range fixtureConcepts(t) {
		if c.HeldOut {
			heldOut = append(heldOut, c.Name)
		}
	}
	if want := []string{"call me hand", "avocado"}; !reflect.DeepEqual(heldOut, want) {
		t.Errorf("held-out fixture concepts %q, want %q", heldOut, want)
	}
	if _, err := os.Stat(filepath.Join(fixtureDir, "img", "twitter", "64", "1f951.png")); err != nil {
		t.Error(err)
	}
}

// The NOTICE at the repository root must name every source package and describe the fixture.
func TestFixtureMatchesNotice(t *testing.T) {
	notice, err := os.ReadFile(filepath.Join("..", "..", "NOTICE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Packages {
		for _, s := range []string{p.Name + " " + p.Version, p.SHA256} {
			if !strings.Contains(string(notice), s) {
				t.Errorf("NOTICE does not mention %q", s)
			}
		}
	}
	for _, s := range []string{"CC-BY 4.0", "Apache License, Version 2.0", "Cal Henderson", "Mu-An Chiou"} {
		if !strings.Contains(string(notice), s) {
			t.Errorf("NOTICE does not mention %q", s)
		}
	}
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range Sets {
		if n := len(src.Images[set]); n != 14 || !strings.Contains(string(notice), "holds 14 of") {
			t.Errorf("fixture has %d %s PNGs; NOTICE says 14", n, set)
		}
	}
	if cs := fixtureConcepts(t); len(cs) != 9 || strings.Count(string(notice), "trimmed copy (9 entries)") != 2 {
		t.Errorf("fixture has %d concepts; NOTICE says 9", len(cs))
	}
}
