#!/usr/bin/env python3
"""How recognisable the object of a dataset's clips is to image reward models.

For each dataset directory (align data prepare, e.g. with different --clip-sprite-scale) and
each image reward model: the share of held-out clips whose middle frame scores higher TA
under the clip's own object name than under another held-out clip's, drawn at random (50%
is chance). A video reward model or a video generator can hardly make its TA follow an
object that an image model trained on full-size images cannot tell apart in the frames.

Needs numpy and Pillow, and the align binary (--align) for `align score`.

    python3 scripts/analysis/clip_readability.py --align bin/align \\
        --data data/emoji --data data/emoji-s15 \\
        --image-model runs/align-exp-hard/reward/model.safetensors \\
        --image-model runs/align-exp-hard/judge/model.safetensors
"""
import argparse
import json
import os
import random
import tempfile

import numpy as np
from PIL import Image

from video_ta import score  # the same align score call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--align", default="bin/align")
    ap.add_argument("--data", action="append", required=True, help="dataset directory with videos.u8")
    ap.add_argument("--image-model", action="append", required=True)
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--seed", type=int, default=0, help="draw of the other names")
    a = ap.parse_args()

    for d in a.data:
        manifest = json.load(open(os.path.join(d, "manifest.json")))
        shape = manifest["files"]["videos"]["shape"]  # (N, T, C, H, W)
        pixels = np.memmap(os.path.join(d, "videos.u8"), dtype=np.uint8, mode="r", shape=tuple(shape))
        clips = [json.loads(line) for line in open(os.path.join(d, "videos.jsonl"))]
        clips = [c for c in clips if c["split"] == a.split]
        names = sorted(set(c["name"] for c in clips))
        rng = random.Random(a.seed)
        others = [rng.choice([n for n in names if n != c["name"]]) for c in clips]
        sizes = [max(c["params"]["size0"], c["params"]["size1"]) for c in clips]
        scale = manifest.get("clip_sprite_scale", 1)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for c in clips:
                f = pixels[c["index"], shape[1] // 2].transpose(1, 2, 0)
                p = os.path.join(tmp, f"{c['index']:06d}.png")
                Image.fromarray(np.ascontiguousarray(f)).save(p)
                paths.append(p)
            for m in a.image_model:
                own = score(a.align, m, [(p, c["name"]) for p, c in zip(paths, clips)], os.path.join(tmp, "own.jsonl"))
                other = score(a.align, m, list(zip(paths, others)), os.path.join(tmp, "other.jsonl"))
                share = np.mean([x > y for x, y in zip(own, other)])
                print(f"{d} (sprite scale {scale}, largest box {np.mean(sizes):.1f} px on average): "
                      f"{os.path.relpath(m)}: own name above another on {100 * share:.1f}% of {len(clips)} {a.split} clips")


if __name__ == "__main__":
    main()
