// Package onnx runs ONNX reward models through ONNX Runtime (github.com/yalue/onnxruntime_go;
// the shared library is loaded at run time, see runtime.go) and exports align's native reward
// model as ONNX, built op by op from the generated onnx.proto code (internal/onnxpb).
//
// Files (each with its test beside it):
//
//	manifest.go  the manifest format, parsing and validation
//	geometry.go  resize / crop / pad with PIL's antialiased filters
//	text.go      token ids: align's word tokenizer, CLIP's byte-level BPE
//	model.go     Model: a manifest + an .onnx file as a rewards.Model
//	runtime.go   finding and loading libonnxruntime.so.1 (make ort)
//	graph.go     a small ONNX graph builder (IR 9, opset 17)
//	export.go    ExportNative: rewards.Native as ONNX plus its manifest
//
// # Manifest
//
// A JSON file beside the .onnx file (reward.onnx -> reward.json) that says how to feed the
// graph and how to read it:
//
//	{
//	  "format": "align.onnx-reward", "version": 1,
//	  "name": "PickScore v1",                  optional
//	  "model": "pickscore.onnx",               relative to the manifest
//	  "max_batch": 0,                          largest batch the graph takes (0: any)
//	  "image": {
//	    "input": "pixel_values",               graph input, float32
//	    "layout": "NCHW",                      NCHW, NHWC; clips NTCHW, NCTHW, NTHWC
//	    "size": 224,                           or "height" and "width"
//	    "frames": 8,                           clip layouts only
//	    "resize": "shorter",                   stretch | shorter (+ centre crop) | longer (+ centre pad) | none
//	    "filter": "bicubic",                   nearest | bilinear | bicubic | box
//	    "pad_value": 0,                        border of "longer", in [0, 1]
//	    "range": 1,                            pixels in [0, 1] (or 255: [0, 255]) before normalising
//	    "mean": [0.4815, 0.4578, 0.4082],      x' = (x - mean_c) / std_c
//	    "std":  [0.2686, 0.2613, 0.2758],
//	    "clip_reduce": "mean"                  an image model given clips: mean over frames | reject
//	  },
//	  "text": {                                omit for a model without text
//	    "input": "input_ids", "max_len": 77, "dtype": "int64",
//	    "attention_mask": "attention_mask",    optional second input, 1 = token
//	    "tokenizer": "clip-bpe",               clip-bpe | word
//	    "merges_file": "merges.txt",           clip-bpe: merges.txt or bpe_simple_vocab_16e6.txt.gz
//	    "vocab_file": "vocab.json",            clip-bpe: optional; word: a word list
//	    "vocab": ["<pad>", "<unk>", "<null>", "red", ...],   word: inline vocabulary
//	    "pad_id": 0                            clip-bpe: id after the end token
//	  },
//	  "outputs": [{"name": "score", "dims": ["pickscore"]}],  (B), (B,1) or (B,K) with K dims; "" skips a column
//	  "calibration": {"dims": ["pickscore"], "mean": [21.5], "std": [1.1], "n": 1000}   optional
//	}
//
// Defaults: resize "shorter", filter "bicubic", range 1, mean 0 and std 1, dtype "int64",
// clip_reduce "mean". Unknown keys are errors. Load checks the manifest against the graph's
// declared inputs and outputs (names, element types, ranks, static sizes) and lists both on
// a mismatch.
//
// Test: go test ./rewards/onnx (the ONNX Runtime tests skip without the library, except
// under CI=true); benchmark: go test ./rewards/onnx -run '^$' -bench Score -benchtime 20x
package onnx
