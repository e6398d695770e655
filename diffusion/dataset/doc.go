// Package dataset builds and loads align's emoji training data: a 32x32 RGB text-to-image set
// and an 8-frame 32x32 text-to-video set, both captioned, with a fixed held-out split of
// concepts for evaluation.
//
// # Sources
//
// Three pinned npm packages, fetched with `npm pack` and checked by sha256 (sources.go):
// emoji-datasource-twitter 16.0.0 (Twemoji, CC-BY 4.0) and emoji-datasource-google 16.0.0 (Noto,
// Apache-2.0), each with 3786 64 px PNGs, and emojilib 4.0.3 (MIT) for keywords. Only emoji.json,
// img/<set>/64/*.png and dist/emoji-en-US.json are read out of the tarballs, in memory.
//
// # Items
//
// A concept is one emoji.json entry (1911); its variants are the base emoji and its skin-tone
// forms; each variant has one image per set (Twemoji, Noto). Items are ordered by sort_order,
// then variant, then set. Captions (emoji.go): the primary caption is the lower-case name with
// the tone ("waving hand sign: medium skin tone"); the alternatives are the emojilib keywords
// ("_" read as a space, emoticons dropped) and the subcategory ("-" read as a space).
//
// # Split
//
// A concept is held out when a hash of its code points falls in the lowest 5% (IsHeldOut). All
// variants, both renderings and every clip of a held-out concept are on the held-out side; the
// rule does not depend on the seed, the package version or the item order.
//
// # Video
//
// Clip i has motion Motions[i%13] (8 directions of translation, bounce, rotation either way, zoom
// in or out) applied to a base-variant sprite drawn from a seeded stream (video.go); its caption
// is "a red apple moving left", and the motion label and trajectory are stored beside it.
//
// # Format and loading
//
// See store.go for the files. Load and LoadVideo return the items and the uint8 pixels;
// ToUnit, ImageFloat32 and BatchFloat32 give float32 in [-1, 1] in (C,H,W) or (T,C,H,W) order,
// the range the generator trains on.
//
// Test: go test ./diffusion/dataset (fixture only, no download, well under a second).
package dataset
