#!/usr/bin/env python3
"""Export a CLIP-style PyTorch reward model to ONNX plus the manifest `align score` reads.

What it writes into --out DIR (NAME is --name, default the preset):

    NAME.onnx      the scorer: inputs pixel_values (B,3,S,S), input_ids and attention_mask
                   (B,77) int64 (no text inputs for aesthetic); output score (B,)
    NAME.json      the align manifest: CLIP preprocessing (shorter side to S, centre crop,
                   bicubic, CLIP mean/std), the clip-bpe tokenizer files, the output mapped
                   to one reward dimension, and an optional calibration
    vocab.json, merges.txt   the tokenizer, as Hugging Face saves it

Presets (weights come from the Hugging Face hub the first time, so run it where that is
reachable; align itself never downloads anything):

    pickscore   yuvalkirstain/PickScore_v1 (CLIP-H/14), score = logit_scale * cos(image, text)
    clip-score  openai/clip-vit-large-patch14, score = max(100 * cos(image, text), 0)
    aesthetic   openai/clip-vit-large-patch14 image tower + the LAION aesthetic v2 MLP
                (--head sac+logos+ava1-l14-linearMSE.pth), score = MLP(image_emb / |image_emb|)

A scorer of your own: --model ID_OR_PATH (any transformers CLIPModel) with --kind cosine.

Requirements (not needed by align's build or tests): torch, transformers, and for --check
onnxruntime. Example:

    python -m venv venv && venv/bin/pip install torch transformers onnxruntime
    venv/bin/python scripts/export_onnx/export_clip_scorer.py --preset pickscore --out rewards/pickscore --check
    align score samples/ --reward rewards/pickscore/pickscore.onnx --weights pickscore=1

Scores are comparable within a prompt (HPSv2's and PickScore's authors say so); give
--calib-mean/--calib-std (statistics of the score on your own validation images) to make the
z-scores meaningful across dimensions.
"""
import argparse
import json
import os
import sys

PRESETS = {
    "pickscore": dict(model="yuvalkirstain/PickScore_v1", processor="laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
                      kind="logit", dim="pickscore"),
    "clip-score": dict(model="openai/clip-vit-large-patch14", processor="openai/clip-vit-large-patch14",
                       kind="clipscore", dim="clipscore"),
    "aesthetic": dict(model="openai/clip-vit-large-patch14", processor="openai/clip-vit-large-patch14",
                      kind="aesthetic", dim="aesthetic"),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), help="a known scorer")
    p.add_argument("--model", help="transformers CLIPModel id or folder (overrides the preset's)")
    p.add_argument("--processor", help="CLIPProcessor id or folder (default: --model)")
    p.add_argument("--kind", choices=["logit", "cosine", "clipscore", "aesthetic"],
                   help="logit: logit_scale*cos; cosine: cos; clipscore: max(100*cos, 0); aesthetic: MLP on the image embedding")
    p.add_argument("--head", help="aesthetic: the LAION MLP state dict (.pth)")
    p.add_argument("--dim", help="reward dimension name in align (default: the preset's)")
    p.add_argument("--name", help="file name stem (default: the preset or 'reward')")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--calib-mean", type=float, help="mean of the raw score on validation data")
    p.add_argument("--calib-std", type=float, help="standard deviation of the raw score on validation data")
    p.add_argument("--check", action="store_true", help="compare onnxruntime with torch on random inputs")
    a = p.parse_args()
    preset = PRESETS.get(a.preset, {})
    a.model = a.model or preset.get("model")
    a.processor = a.processor or preset.get("processor") or a.model
    a.kind = a.kind or preset.get("kind") or "cosine"
    a.dim = a.dim or preset.get("dim") or "reward"
    a.name = a.name or a.preset or "reward"
    if not a.model:
        p.error("give --preset or --model")
    if a.kind == "aesthetic" and not a.head:
        p.error("--kind aesthetic needs --head (the LAION aesthetic MLP weights)")
    if (a.calib_mean is None) != (a.calib_std is None) or (a.calib_std is not None and a.calib_std <= 0):
        p.error("--calib-mean and --calib-std go together, std > 0")
    return a


def build_scorer(a):
    import torch
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(a.model).eval()

    class Aesthetic(torch.nn.Module):
        # LAION aesthetic predictor v2: 768-1024-128-64-16-1 with dropout (inactive in eval).
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(768, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128), torch.nn.Dropout(0.2),
                torch.nn.Linear(128, 64), torch.nn.Dropout(0.1), torch.nn.Linear(64, 16), torch.nn.Linear(16, 1))

        def forward(self, x):
            return self.layers(x)

    class Scorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.clip = clip
            self.head = None
            if a.kind == "aesthetic":
                self.head = Aesthetic()
                sd = torch.load(a.head, map_location="cpu", weights_only=True)
                self.head.load_state_dict(sd)
                self.head.eval()

        def image_embeds(self, pixel_values):
            e = self.clip.get_image_features(pixel_values=pixel_values)
            return e / e.norm(dim=-1, keepdim=True)

        def forward(self, pixel_values, input_ids=None, attention_mask=None):
            img = self.image_embeds(pixel_values)
            if self.head is not None:
                return self.head(img)[:, 0]
            txt = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            cos = (img * txt).sum(-1)  # one prompt per image: the diagonal, not the B x B matrix
            if a.kind == "logit":
                return self.clip.logit_scale.exp() * cos
            if a.kind == "clipscore":
                return torch.clamp(100 * cos, min=0)
            return cos

    return Scorer().eval()


def main():
    a = parse_args()
    import torch
    from transformers import CLIPProcessor

    os.makedirs(a.out, exist_ok=True)
    proc = CLIPProcessor.from_pretrained(a.processor)
    ip, tok = proc.image_processor, proc.tokenizer
    size = ip.crop_size["height"] if isinstance(ip.crop_size, dict) else int(ip.crop_size)
    max_len = tok.model_max_length if tok.model_max_length and tok.model_max_length < 10000 else 77
    scorer = build_scorer(a)
    text = a.kind != "aesthetic"

    B = 2
    pixels = torch.randn(B, 3, size, size)
    enc = tok(["a photo of a cat", "a red apple on a table"], padding="max_length", truncation=True,
              max_length=max_len, return_tensors="pt")
    inputs = (pixels, enc["input_ids"], enc["attention_mask"]) if text else (pixels,)
    names = ["pixel_values", "input_ids", "attention_mask"] if text else ["pixel_values"]
    onnx_path = os.path.join(a.out, a.name + ".onnx")
    dynamic = {n: {0: "batch"} for n in names}
    dynamic["score"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(scorer, inputs, onnx_path, input_names=names, output_names=["score"],
                          dynamic_axes=dynamic, opset_version=a.opset, do_constant_folding=True, dynamo=False)

    manifest = {
        "format": "align.onnx-reward",
        "version": 1,
        "name": f"{a.preset or a.model} ({a.kind})",
        "model": a.name + ".onnx",
        "image": {
            "input": "pixel_values", "layout": "NCHW", "size": size,
            "resize": "shorter", "filter": "bicubic",
            "mean": [float(v) for v in ip.image_mean], "std": [float(v) for v in ip.image_std],
        },
        "outputs": [{"name": "score", "dims": [a.dim]}],
    }
    if text:
        tok.save_pretrained(a.out)  # writes vocab.json and merges.txt (and configs align ignores)
        manifest["text"] = {
            "input": "input_ids", "attention_mask": "attention_mask", "max_len": max_len, "dtype": "int64",
            "tokenizer": "clip-bpe", "vocab_file": "vocab.json", "merges_file": "merges.txt",
            "pad_id": int(tok.pad_token_id if tok.pad_token_id is not None else 0),
        }
    if a.calib_mean is not None:
        manifest["calibration"] = {"dims": [a.dim], "mean": [a.calib_mean], "std": [a.calib_std], "n": 0}
    man_path = os.path.join(a.out, a.name + ".json")
    with open(man_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    if a.check:
        import numpy as np
        import onnxruntime as ort
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        feed = {n: t.numpy() for n, t in zip(names, inputs)}
        got = sess.run(["score"], feed)[0]
        with torch.no_grad():
            want = scorer(*inputs).numpy()
        diff = float(np.abs(got - want).max())
        print(f"check: onnxruntime vs torch max |diff| {diff:.3g} (scores {want})")
        if diff > 1e-3 * max(1.0, float(np.abs(want).max())):
            sys.exit("check failed")
    print(f"wrote {onnx_path} and {man_path}")


if __name__ == "__main__":
    main()
