#!/usr/bin/env python3
"""A simulated annotator for align reward train --pairs: labels pairs of samples by warmth.

Reads an output folder of `align sample` (samples.json) and writes a labelled pairs file
(align's pairs JSONL): every two samples of one prompt make a pair, labelled for vq by how
warm they are, w = mean over pixels of (R - B) / 255:

    vq = A if w_A - w_B > margin, B if w_A - w_B < -margin, tie otherwise

A preference the emoji data's pairs never teach (they ask for clean, not warm), so a reward
model can agree with it on held-out pairs only if it learned it from the file. Standard
library only (PNG decoding by zlib: 8-bit RGB or RGBA, not interlaced, as align writes).

    python3 scripts/analysis/warmth_labels.py out/samples -o warm.jsonl

Without -o it prints the mean warmth of the folder's samples (how warm a reward model's
best-of-N picks are).
"""
import argparse
import itertools
import json
import os
import struct
import zlib


def read_png_rgb(path):
    """Returns (width, height, bytes of R, G, B per pixel) of an 8-bit RGB(A) PNG file."""
    with open(path, "rb") as f:
        return decode_png_rgb(f.read(), path)


def decode_png_rgb(data, path="PNG"):
    """read_png_rgb of a PNG's bytes (path names it in errors)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError(f"{path}: want 8-bit RGB or RGBA, not interlaced")
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), w * bpp
    prev, out = bytearray(stride), bytearray()
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        for x in range(w):
            out += line[x * bpp:x * bpp + 3]
    return w, h, bytes(out)


def warmth(path):
    return rgb_warmth(read_png_rgb(path)[2])


def rgb_warmth(rgb):
    """mean (R - B) / 255 of R, G, B bytes."""
    n = len(rgb) // 3
    return sum(rgb[3 * i] - rgb[3 * i + 2] for i in range(n)) / (255 * n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", help="output folder of align sample (with samples.json)")
    ap.add_argument("-o", "--output", help="pairs JSONL to write (without: print the samples' mean warmth)")
    ap.add_argument("--margin", type=float, default=0.02, help="warmth difference at or below which a pair is a tie")
    args = ap.parse_args()
    with open(os.path.join(args.samples, "samples.json")) as f:
        index = json.load(f)
    by_prompt = {}
    for it in index["files"]:
        by_prompt.setdefault(it["prompt"], []).append(os.path.join(args.samples, it["path"]))
    if not args.output:
        ws = [warmth(p) for files in by_prompt.values() for p in files]
        print(f"{args.samples}: mean warmth {sum(ws) / len(ws):.4f} over {len(ws)} samples")
        return
    out_dir = os.path.dirname(os.path.abspath(args.output))
    n, labels = 0, {"A": 0, "B": 0, "tie": 0}
    with open(args.output + ".tmp", "w") as out:
        for prompt, files in by_prompt.items():
            w = {p: warmth(p) for p in files}
            for a, b in itertools.combinations(files, 2):
                d = w[a] - w[b]
                label = "A" if d > args.margin else "B" if d < -args.margin else "tie"
                labels[label] += 1
                out.write(json.dumps({"prompt": prompt, "chosen": os.path.relpath(a, out_dir),
                                      "rejected": os.path.relpath(b, out_dir), "labels": {"vq": label}}) + "\n")
                n += 1
    os.replace(args.output + ".tmp", args.output)
    print(f"wrote {args.output}: {n} pairs of {len(by_prompt)} prompts, vq labels {labels}")


if __name__ == "__main__":
    main()
