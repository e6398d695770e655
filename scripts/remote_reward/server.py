#!/usr/bin/env python3
"""A reward server speaking align's remote reward protocol (rewards/remote), standard library only.

    python3 scripts/remote_reward/server.py --port 8000
    align score samples/ --reward scripts/remote_reward/example.json

POST / with {"dims": [...], "samples": [{"prompt": str, "frames": [base64 PNG, ...]}, ...]}
answers {"scores": [{dim: number, ...}, ...]}, one per sample, in order. Replace `score` with
the call into your model (VideoReward's inference, HPSv3, ...): it gets the prompt and the
frames as PNG bytes, and returns a number per dimension. The example scores warmth, the mean
of red minus blue (in [-1, 1]; scripts/analysis/warmth_labels.py's simulated annotator), as
"warmth".
"""
import argparse
import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from warmth_labels import decode_png_rgb, rgb_warmth  # noqa: E402  (the example's PNG reader)


def score(prompt, frames):
    """The reward of one sample: here its warmth, mean (R - B) / 255 over its frames' pixels."""
    return {"warmth": sum(rgb_warmth(decode_png_rgb(png)[2]) for png in frames) / len(frames)}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(self.server.delay)  # --delay: a model's latency, to try a client against
            scores = [score(s["prompt"], [base64.b64decode(f) for f in s["frames"]]) for s in req["samples"]]
            body, status = json.dumps({"scores": scores}).encode(), 200
        except Exception as e:  # the client shows the status and this text
            body, status = str(e).encode(), 400
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--delay", type=float, default=0, help="seconds each request waits before it is scored (a slow model)")
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.delay = args.delay
    srv.serve_forever()
