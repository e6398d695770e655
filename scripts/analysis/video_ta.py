#!/usr/bin/env python3
"""How much text alignment (TA) there is to steer on in a video model's samples.

Reward-steered sampling can only raise the held-out judge's TA if the training reward and the
judge rank one prompt's candidates alike. This script takes a scored set of candidate clips
(`align pairs --model default-video --scored`, several candidates per prompt) and reports:

  motion     the share of clips with a straight-line motion ("moving left", "moving up and
             right", ...) whose sprite's centroid moves at least 2 px the asked way between the
             first and last frame (the centroid of the non-white pixels), and the spread of that
             displacement: when every candidate moves the asked way, motion words give a
             reward nothing to choose between
  readable   with each image reward model (--image-model, repeatable; e.g. the image
             experiment's training reward and judge): the share of clips whose middle frame
             scores higher TA under its own caption (the prompt without article and motion)
             than under another prompt's, drawn at random; 50% is chance
             and the same with each video reward model (--video-model) on the whole clip, the
             other caption being another prompt's object with the clip's own motion phrase
  agreement  the within-prompt correlation of TA (Pearson of the scores centred on each
             prompt's mean, as align eval agreement) between every two score sources:
             the scored set itself, --rescored sets (align pairs --from-scored --rescore
             --scored, e.g. by the judge) and the image models on the middle frames

Needs numpy and Pillow, and the align binary (--align) for `align score`.

    python3 scripts/analysis/video_ta.py --align bin/align --scored runs/vta/scored.jsonl \\
        --rescored runs/vta/scored-judge.jsonl \\
        --image-model runs/align-exp-hard/reward/model.safetensors \\
        --image-model runs/align-exp-hard/judge/model.safetensors
"""
import argparse
import json
import os
import random
import re
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageSequence

# Unit steps on screen (y down) of the straight-line motion phrases (diffusion/dataset/video.go).
DIRECTIONS = {
    "moving up and left": (-1, -1), "moving up and right": (1, -1),
    "moving down and left": (-1, 1), "moving down and right": (1, 1),
    "moving left": (-1, 0), "moving right": (1, 0), "moving up": (0, -1), "moving down": (0, 1),
}
PHRASES = list(DIRECTIONS) + ["bouncing", "rotating clockwise", "rotating counterclockwise",
                              "zooming in", "zooming out"]


def split_prompt(prompt):
    """A clip prompt's object and motion phrase: "a red apple moving left" -> ("red apple", "moving left")."""
    motion = next((p for p in PHRASES if prompt.endswith(" " + p)), "")
    obj = prompt[: len(prompt) - len(motion)].strip()
    return re.sub(r"^(a|an) ", "", obj), motion


def clip_caption(obj, motion):
    """diffusion/dataset.VideoCaption's form: article, object, motion phrase."""
    article = "a" if obj.startswith(("uni", "use", "eu", "one ")) or obj[:1] not in "aeiou" else "an"
    return f"{article} {obj} {motion}"


def frames(path):
    return [np.asarray(f.convert("RGB"), dtype=np.float32) / 255 for f in ImageSequence.Iterator(Image.open(path))]


def centroid(f):
    w = np.clip(1 - f.mean(2), 0, 1)
    w = np.where(w > 0.1, w, 0)
    ys, xs = np.mgrid[0 : f.shape[0], 0 : f.shape[1]]
    s = max(w.sum(), 1e-6)
    return (xs * w).sum() / s, (ys * w).sum() / s


def load_set(path):
    """Rows of a scored set with their image paths made absolute."""
    base = os.path.dirname(os.path.abspath(path))
    rows = [json.loads(line) for line in open(path)]
    for r in rows:
        if not os.path.isabs(r["image"]):
            r["image"] = os.path.join(base, r["image"])
    return rows


def score(align, model, items, out):
    """TA of each (path, prompt) item under an image reward model, via align score."""
    lst = out + ".in.jsonl"
    with open(lst, "w") as f:
        for p, q in items:
            f.write(json.dumps({"path": p, "prompt": q}) + "\n")
    subprocess.run([align, "score", "--input", lst, "--reward", model, "--json", "-o", out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line)["ta"] for line in open(out)]


def within_prompt_corr(prompts, a, b):
    """Pearson correlation of the scores centred on each prompt's mean (align eval agreement's corr)."""
    groups = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    xs, ys = [], []
    for idx in groups.values():
        x, y = np.array([a[i] for i in idx]), np.array([b[i] for i in idx])
        xs.append(x - x.mean())
        ys.append(y - y.mean())
    x, y = np.concatenate(xs), np.concatenate(ys)
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum())), len(groups)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--align", default="bin/align")
    ap.add_argument("--scored", required=True, help="scored set of candidate clips")
    ap.add_argument("--rescored", action="append", default=[], help="the same set rescored by another model")
    ap.add_argument("--image-model", action="append", default=[], help="image reward model for the middle frames")
    ap.add_argument("--video-model", action="append", default=[], help="video reward model for the whole clips")
    ap.add_argument("--seed", type=int, default=0, help="draw of the other prompts")
    a = ap.parse_args()

    rows = load_set(a.scored)
    prompts = [r["prompt"] for r in rows]
    clips = [frames(r["image"]) for r in rows]

    moved, disp = 0, []
    for p, fs in zip(prompts, clips):
        d = next((v for k, v in DIRECTIONS.items() if p.endswith(" " + k)), None)
        if d is None:
            continue
        (x0, y0), (x1, y1) = centroid(fs[0]), centroid(fs[-1])
        proj = ((x1 - x0) * d[0] + (y1 - y0) * d[1]) / np.hypot(*d)
        disp.append(proj)
        moved += proj >= 2
    if disp:
        print(f"motion: {moved} of {len(disp)} straight-line clips move >= 2 px the asked way "
              f"(displacement {np.mean(disp):.1f} px, sd {np.std(disp):.1f})")

    sources = {os.path.basename(a.scored): [r["scores"]["ta"] for r in rows]}
    for f in a.rescored:
        by_image = {r["image"]: r["scores"]["ta"] for r in load_set(f)}
        sources[os.path.basename(f)] = [by_image[r["image"]] for r in rows]

    rng = random.Random(a.seed)
    objects = [split_prompt(p)[0] for p in prompts]
    motions = [split_prompt(p)[1] for p in prompts]
    distinct = sorted(set(objects))
    others = [rng.choice([o for o in distinct if o != own]) for own in objects]

    def readable(name, own, other):
        share = np.mean([x > y for x, y in zip(own, other)])
        print(f"readable: {name}: own caption above another prompt's on {100 * share:.1f}% of {len(own)} clips")

    with tempfile.TemporaryDirectory() as tmp:
        own_out, other_out = os.path.join(tmp, "own.jsonl"), os.path.join(tmp, "other.jsonl")
        paths = []
        for i, fs in enumerate(clips):
            p = os.path.join(tmp, f"{i:06d}.png")
            Image.fromarray((fs[len(fs) // 2] * 255).round().astype(np.uint8)).save(p)
            paths.append(p)
        for m in a.image_model:
            name = os.path.relpath(m) + " (middle frames)"
            own = score(a.align, m, list(zip(paths, objects)), own_out)
            readable(name, own, score(a.align, m, list(zip(paths, others)), other_out))
            sources[name] = own
        gifs = [r["image"] for r in rows]
        for m in a.video_model:
            name = os.path.relpath(m)
            own = score(a.align, m, list(zip(gifs, prompts)), own_out)
            readable(name, own, score(a.align, m, [(g, clip_caption(o, mo)) for g, o, mo in zip(gifs, others, motions)], other_out))
            sources[name] = own

    names = list(sources)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            c, n = within_prompt_corr(prompts, sources[names[i]], sources[names[j]])
            print(f"agreement: TA {names[i]} ~ {names[j]}: within-prompt correlation {c:.3f} ({n} prompts)")


if __name__ == "__main__":
    main()
