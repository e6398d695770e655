#!/usr/bin/env python3
"""Golden reference for one DiT block with adaLN-Zero, computed in JAX (float64, CPU).

Writes nn/testdata/dit_block_golden.safetensors with the block's weights, inputs, output and
every gradient of loss = sum(out * dout). nn/dit_block_golden_test.go loads it, runs the Go
block with the same weights and compares every tensor.

Regenerate (needs jax, numpy, safetensors from the package index):
    python3 -m venv /tmp/py && /tmp/py/bin/pip install jax numpy safetensors
    /tmp/py/bin/python scripts/golden/dit_block.py

The block, as nn/dit_block.go defines it (C width, NH heads, c the conditioning vector):
    mod = Linear_ada(SiLU(c))          -> shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
    x1  = x  + gate_msa * Attn(LN(x)  * (1 + scale_msa) + shift_msa)
    out = x1 + gate_mlp * MLP(LN(x1) * (1 + scale_mlp) + shift_mlp)
LN has no affine and eps 1e-6; Attn is multi-head self-attention with packed qkv (B,T,3,NH,HS),
scores q.k/sqrt(HS) plus an additive key bias (0 or -inf for padded text tokens), then proj;
MLP is fc1 -> GELU (tanh approximation) -> fc2.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import save_file

jax.config.update("jax_enable_x64", True)

B, TEXT, IMG, C, NH, DC, RATIO = 2, 6, 16, 48, 3, 32, 4
T, HS = TEXT + IMG, C // NH
EPS = 1e-6
SEED = 20261125


def linear(x, w, b):
    return x @ w.T + b


def layernorm(x):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + EPS)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + jnp.tanh(jnp.sqrt(2.0 / jnp.pi) * (x + 0.044715 * x**3)))


def silu(x):
    return x * jax.nn.sigmoid(x)


def attention(p, x, key_bias):
    qkv = linear(x, p["attn.qkv.weight"], p["attn.qkv.bias"]).reshape(B, T, 3, NH, HS)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B,NH,T,HS)
    s = q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(HS) + key_bias[:, None, None, :]
    o = jax.nn.softmax(s, axis=-1) @ v  # (B,NH,T,HS)
    o = o.transpose(0, 2, 1, 3).reshape(B, T, C)
    return linear(o, p["attn.proj.weight"], p["attn.proj.bias"])


def mlp(p, x):
    h = gelu_tanh(linear(x, p["mlp.fc1.weight"], p["mlp.fc1.bias"]))
    return linear(h, p["mlp.fc2.weight"], p["mlp.fc2.bias"])


def block(p, x, c, key_bias):
    mod = linear(silu(c), p["ada.weight"], p["ada.bias"])  # (B,6C)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = jnp.split(mod, 6, axis=1)
    h = layernorm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
    x1 = x + gate_msa[:, None] * attention(p, h, key_bias)
    h2 = layernorm(x1) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
    return x1 + gate_mlp[:, None] * mlp(p, h2)


def main():
    rng = np.random.default_rng(SEED)
    shapes = {
        "ada.weight": (6 * C, DC), "ada.bias": (6 * C,),
        "attn.qkv.weight": (3 * C, C), "attn.qkv.bias": (3 * C,),
        "attn.proj.weight": (C, C), "attn.proj.bias": (C,),
        "mlp.fc1.weight": (RATIO * C, C), "mlp.fc1.bias": (RATIO * C,),
        "mlp.fc2.weight": (C, RATIO * C), "mlp.fc2.bias": (C,),
    }
    # Weights of the size a trained block has (not adaLN-Zero's zero init, which would make
    # every gradient past the gates vanish and the test blind).
    params = {k: rng.normal(0, 1.0 / np.sqrt(s[-1]), s) for k, s in shapes.items()}
    params["ada.weight"] *= 0.5
    x = rng.normal(0, 1, (B, T, C))
    c = rng.normal(0, 1, (B, DC))
    dout = rng.normal(0, 1, (B, T, C))
    # Batch 0 has 4 real text tokens (2 padded), batch 1 all 6: padded keys get -inf.
    valid = np.ones((B, T))
    valid[0, 4:TEXT] = 0
    key_bias = np.where(valid > 0, 0.0, -np.inf)

    def loss(p, x, c):
        return jnp.sum(block(p, x, c, key_bias) * dout)

    out = block(params, x, c, key_bias)
    gp, gx, gc = jax.grad(loss, argnums=(0, 1, 2))(params, x, c)

    f32 = lambda a: np.asarray(a, dtype=np.float32)
    tensors = {"in.x": f32(x), "in.c": f32(c), "in.dout": f32(dout), "in.key_valid": f32(valid),
               "out.out": f32(out), "grad.x": f32(gx), "grad.c": f32(gc)}
    for k in shapes:
        tensors["param." + k] = f32(params[k])
        tensors["grad." + k] = f32(gp[k])
    meta = {"B": B, "T": T, "TEXT": TEXT, "C": C, "NH": NH, "DC": DC, "MLP_RATIO": RATIO,
            "EPS": EPS, "seed": SEED, "jax": jax.__version__}
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "nn", "testdata", "dit_block_golden.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata={k: str(v) for k, v in meta.items()})
    print(f"wrote {os.path.normpath(path)}: {len(tensors)} tensors, |out|max={np.abs(out).max():.4f}")


if __name__ == "__main__":
    main()
