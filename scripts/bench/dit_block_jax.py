#!/usr/bin/env python3
"""Peer benchmark: forward+backward of one DiT block (adaLN-Zero) in JAX on the CPU.

The same block as nn/dit_block.go and scripts/golden/dit_block.py, at the size the Go
benchmark BenchmarkDiTBlock uses. Prints one JSON line {"framework", "ms", "gflops", ...};
the Go benchmark runs this script in the same run and prints the ratio.

    python3 scripts/bench/dit_block_jax.py --batch 16 --text 16 --tokens 256 --width 256 --heads 4
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--text", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--cond", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    B, T, C, NH, DC = a.batch, a.text + a.tokens, a.width, a.heads, a.cond
    HS = C // NH

    def linear(x, w, b):
        return x @ w.T + b

    def layernorm(x):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) * jax.lax.rsqrt(v + 1e-6)

    def gelu(x):
        return jax.nn.gelu(x, approximate=True)

    def attn(p, x, kb):
        qkv = linear(x, p["qkv_w"], p["qkv_b"]).reshape(B, T, 3, NH, HS)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(jnp.float32(HS)) + kb[:, None, None, :]
        o = (jax.nn.softmax(s, -1) @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        return linear(o, p["proj_w"], p["proj_b"])

    def block(p, x, c, kb):
        mod = linear(jax.nn.silu(c), p["ada_w"], p["ada_b"])
        s1, sc1, g1, s2, sc2, g2 = jnp.split(mod, 6, axis=1)
        x1 = x + g1[:, None] * attn(p, layernorm(x) * (1 + sc1[:, None]) + s1[:, None], kb)
        h = layernorm(x1) * (1 + sc2[:, None]) + s2[:, None]
        h = linear(gelu(linear(h, p["fc1_w"], p["fc1_b"])), p["fc2_w"], p["fc2_b"])
        return x1 + g2[:, None] * h

    rng = np.random.default_rng(0)
    f = lambda *s: jnp.asarray(rng.normal(0, 0.05, s), jnp.float32)
    p = {"ada_w": f(6 * C, DC), "ada_b": f(6 * C), "qkv_w": f(3 * C, C), "qkv_b": f(3 * C),
         "proj_w": f(C, C), "proj_b": f(C), "fc1_w": f(4 * C, C), "fc1_b": f(4 * C),
         "fc2_w": f(C, 4 * C), "fc2_b": f(C)}
    x, c, dout = f(B, T, C), f(B, DC), f(B, T, C)
    kb = jnp.zeros((B, T), jnp.float32)

    step = jax.jit(jax.grad(lambda p, x, c: jnp.sum(block(p, x, c, kb) * dout), argnums=(0, 1, 2)))
    jax.block_until_ready(step(p, x, c))
    best = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(p, x, c))
        best = min(best, time.perf_counter() - t0)
    N = B * T
    # Matmul flops: forward 2*N*C*(3C + C + 8C) + 4*B*T*T*C (scores, P.V); backward twice that.
    flops = 3 * (2 * N * C * 12 * C + 4 * B * T * T * C) + 3 * 2 * B * DC * 6 * C
    print(json.dumps({"framework": "jax " + jax.__version__, "ms": best * 1e3,
                      "gflops": flops / best / 1e9, "batch": B, "tokens": T, "width": C,
                      "heads": NH, "threads": os.cpu_count()}))


if __name__ == "__main__":
    main()
