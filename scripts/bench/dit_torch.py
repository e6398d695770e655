#!/usr/bin/env python3
"""Peer benchmark: a training step and a sampling run of align's image DiT in PyTorch (CUDA).

The model is diffusion/dit.go at the same size: a pre-LN text encoder (token embedding plus a
fixed position table, TransformerBlocks with LayerNorm eps 1e-5, final LayerNorm), text_proj
when the text width differs, a timestep embedder (256 sinusoidal features of 1000 t, MLP with
SiLU), the masked mean of the text tokens through pooled_text_proj, a patch embedding with a
fixed position table, the DiT blocks of nn/dit_block.go (and scripts/bench/dit_block_jax.py:
adaLN-Zero, LayerNorm without affine eps 1e-6, attention over [text | patches] with a key
padding bias, tanh-GELU MLP) and the adaLN final layer. Its parameter count equals
ModelConfig.ParamCount (no reward slot), which the output reports.

Measured, as in the Go benchmark BenchmarkDiTBase (kernels/cuda):
  train   flow-matching loss (logit-normal t, x_t = (1-t) x0 + t eps, target eps - x0, MSE),
          backward, clip_grad_norm_(1.0), AdamW: seconds per step and samples/s
  sample  Euler steps from sigma 1 to 0 with classifier-free guidance (conditional and
          unconditional halves as one batch of 2B; the captions through the text encoder
          once per run, as align's sampler does): seconds per run and images/s
for the variants fp32 (TF32 off for matmuls and cuDNN), tf32, and bf16 (torch.autocast to
bfloat16 around the forward passes and the loss: BF16 tensor-core products and BF16
activations where autocast keeps them, FP32 weights and optimizer). Attention is
torch.nn.functional.scaled_dot_product_attention, as a PyTorch user would write it.
Prints one JSON line; the Go benchmark runs this script in the same run and prints ratios.

With --dpo-pairs P, the script measures instead a Flow-DPO step as align finetune's defaults
run it (dpo/): LoRA adapters of rank --lora-rank (alpha 2*rank) on every block's qkv and proj,
written as PEFT's LoRA layers compute them (the base frozen, y = base(x) + s B(A(x))), the
reference's forward with the adapters off and without gradients, then the policy's forward
and backward on the 2P samples (winners, then losers, one t and noise per pair), the loss
-log sigmoid(-beta/2 ((e_w - e_ref_w) - (e_l - e_ref_l))), clip_grad_norm_(1.0) and AdamW on
the adapters: seconds per step and pairs/s per variant.

    python3 scripts/bench/dit_torch.py --width 768 --depth 12 --heads 12 --patch 2 --image-size 32
    python3 scripts/bench/dit_torch.py ... --dpo-pairs 8 --variants bf16

--sample-only leaves out the training step (sampling one image at a time: --sample-batch 1).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def pos_embed_1d(dim, n):
    """Sin-cos table (n, dim); the values do not matter for timing."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = pos * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], 1).float()


class Attention(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)

    def forward(self, x, kb):
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.NH, C // self.NH).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=kb[:, None, None, :])
        return self.proj(o.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.fc1 = nn.Linear(C, H)
        self.fc2 = nn.Linear(H, C)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class TransformerBlock(nn.Module):
    """nn/transformer_block.go: pre-LN, affine LayerNorms (eps 1e-5)."""

    def __init__(self, C, NH, ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, NH)
        self.norm2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C, int(ratio * C))

    def forward(self, x, kb):
        x = x + self.attn(self.norm1(x), kb)
        return x + self.mlp(self.norm2(x))


class LoRALinear(nn.Module):
    """A frozen nn.Linear with a LoRA adapter, as PEFT computes it: base(x) + s B(A(x)), A
    drawn from N(0, 1/r^2) and B zero (nn/lora.go's initialisation)."""

    def __init__(self, base, r):
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(r, base.in_features, device=base.weight.device) / r)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))
        self.s = 2.0  # alpha / r with alpha = 2 r
        self.enabled = True

    def forward(self, x):
        y = self.base(x)
        if self.enabled:
            y = y + self.s * F.linear(F.linear(x, self.A), self.B)
        return y


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """nn/dit_block.go: adaLN-Zero, LayerNorm without affine (eps 1e-6)."""

    def __init__(self, C, NH, ratio):
        super().__init__()
        self.C = C
        self.attn = Attention(C, NH)
        self.mlp = MLP(C, int(ratio * C))
        self.ada = nn.Linear(C, 6 * C)

    def forward(self, x, c, kb):
        s1, sc1, g1, s2, sc2, g2 = self.ada(F.silu(c)).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(modulate(F.layer_norm(x, (self.C,), eps=1e-6), s1, sc1), kb)
        return x + g2[:, None] * self.mlp(modulate(F.layer_norm(x, (self.C,), eps=1e-6), s2, sc2))


class DiT(nn.Module):
    def __init__(self, a):
        super().__init__()
        C, Ct = a.width, a.text_width
        self.a = a
        self.Fp = a.channels * a.patch * a.patch
        self.grid = a.image_size // a.patch
        P = self.grid * self.grid
        self.x_embedder = nn.Linear(self.Fp, C)
        self.register_buffer("pos", pos_embed_1d(C, P))
        self.t_fc1, self.t_fc2 = nn.Linear(256, C), nn.Linear(C, C)
        self.token_embedding = nn.Embedding(a.vocab, Ct)
        self.register_buffer("text_pos", pos_embed_1d(Ct, a.text_len))
        self.text_layers = nn.ModuleList(TransformerBlock(Ct, a.text_heads, a.mlp_ratio) for _ in range(a.text_layers))
        self.final_norm = nn.LayerNorm(Ct, eps=1e-5)
        self.text_proj = nn.Linear(Ct, C) if Ct != C else None
        self.pooled_text_proj = nn.Linear(C, C)
        self.blocks = nn.ModuleList(DiTBlock(C, a.heads, a.mlp_ratio) for _ in range(a.depth))
        self.final_ada = nn.Linear(C, 2 * C)
        self.final_linear = nn.Linear(C, self.Fp)
        half = 128
        self.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half))

    def encode_text(self, ids, kb_text, mask):
        """The text tokens and their pooled projection (align's DiT.EncodeText)."""
        txt = self.token_embedding(ids) + self.text_pos
        for blk in self.text_layers:
            txt = blk(txt, kb_text)
        txt = self.final_norm(txt)
        if self.text_proj is not None:
            txt = self.text_proj(txt)
        pooled = (txt * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return txt, self.pooled_text_proj(pooled)

    def forward(self, x, t, ids, kb_text, mask, text=None):
        """v for x_t; text from encode_text (a sampling run encodes its captions once, as
        align's does) or None to encode ids here (training)."""
        a, B = self.a, x.shape[0]
        g, p, Cin = self.grid, a.patch, a.channels
        txt, pooled = text if text is not None else self.encode_text(ids, kb_text, mask)
        s = 1000 * t[:, None] * self.freqs[None]
        temb = self.t_fc2(F.silu(self.t_fc1(torch.cat([torch.cos(s), torch.sin(s)], 1))))
        c = pooled + temb
        # Patch tokens (features ordered c, dy, dx), one sequence with the text.
        xp = x.reshape(B, Cin, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, self.Fp)
        h = torch.cat([txt, self.x_embedder(xp) + self.pos], 1)
        kb = torch.cat([kb_text, kb_text.new_zeros(B, g * g)], 1)
        for blk in self.blocks:
            h = blk(h, c, kb)
        shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=1)
        y = self.final_linear(modulate(F.layer_norm(h[:, a.text_len:], (a.width,), eps=1e-6), shift, scale))
        return y.reshape(B, g, g, Cin, p, p).permute(0, 3, 1, 4, 2, 5).reshape(x.shape)


def prompts(a, B, dev, null=False):
    """Token ids (B, L) of captions of 2..L tokens (or the empty prompt), key bias and mask."""
    L = a.text_len
    lengths = torch.ones(B, dtype=torch.long) if null else 2 + torch.arange(B) % (L - 1)
    ids = torch.randint(3, a.vocab, (B, L)) if a.vocab > 3 else torch.zeros(B, L, dtype=torch.long)
    mask = (torch.arange(L)[None] < lengths[:, None]).float()
    ids = torch.where(mask > 0, ids, torch.zeros_like(ids))
    kb = torch.zeros(B, L).masked_fill(mask == 0, float("-inf"))
    return ids.to(dev), kb.to(dev), mask.to(dev)


def timed(fn, warmup, n):
    """The median of n timed calls of fn after warmup untimed ones, and the n times. Each
    repeat is timed on its own and the median reported: eager PyTorch is limited by its
    host-side dispatch at this size, and one slow repeat (seen: a BF16 step at 643 samples/s
    in one run, 945 in another) would otherwise count against it. align's side reports the
    mean, so the ratio errs in PyTorch's favour."""

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench(a, model, dev, bf16=False):
    shape = (a.channels, a.image_size, a.image_size)
    B = a.train_batch
    x0 = torch.rand(B, *shape, device=dev) * 2 - 1
    ids, kb, mask = prompts(a, B, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        t = torch.sigmoid(torch.randn(B, device=dev))
        eps = torch.randn_like(x0)
        tb = t[:, None, None, None]
        xt = (1 - tb) * x0 + tb * eps
        with autocast():
            v = model(xt, t, ids, kb, mask)
            loss = ((v.float() - (eps - x0)) ** 2).mean(dim=(1, 2, 3)).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    S = a.sample_batch
    ci, ck, cm = prompts(a, S, dev)
    ni, nk, nm = prompts(a, S, dev, null=True)
    ids2, kb2, mask2 = torch.cat([ci, ni]), torch.cat([ck, nk]), torch.cat([cm, nm])
    sigmas = [1 - i / a.steps for i in range(a.steps + 1)]

    @torch.inference_mode()
    def sample():
        x = torch.randn(S, *shape, device=dev)
        with autocast():
            text = model.encode_text(ids2, kb2, mask2)
        for i in range(a.steps):
            t = torch.full((2 * S,), sigmas[i], device=dev)
            with autocast():
                v2 = model(torch.cat([x, x]), t, ids2, kb2, mask2, text).float()
            vc, vu = v2[:S], v2[S:]
            x = x + (sigmas[i + 1] - sigmas[i]) * (vu + a.guidance * (vc - vu))
        return x

    out = {}
    if not a.sample_only:
        ts, tr = timed(train_step, 3, a.repeats)
        out.update(train_s=ts, train_samples_per_s=B / ts, train_repeats_s=tr)
    ss, sr = timed(sample, 1, max(1, a.repeats // 2))
    out.update(sample_s=ss, images_per_s=S / ss, sample_repeats_s=sr)
    return out


def bench_dpo(a, model, dev, bf16=False):
    """Flow-DPO steps through LoRA adapters on model (apply_lora): pairs/s."""
    shape = (a.channels, a.image_size, a.image_size)
    P = a.dpo_pairs
    x0 = torch.rand(2 * P, *shape, device=dev) * 2 - 1  # winners, then losers
    ids, kb, mask = prompts(a, P, dev)
    ids, kb, mask = torch.cat([ids, ids]), torch.cat([kb, kb]), torch.cat([mask, mask])
    loras = [m for m in model.modules() if isinstance(m, LoRALinear)]
    params = [p for m in loras for p in (m.A, m.B)]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    def errors(v, target):
        return ((v.float() - target) ** 2).mean(dim=(1, 2, 3))

    def step():
        t = torch.sigmoid(torch.randn(P, device=dev)).repeat(2)
        eps = torch.randn(P, *shape, device=dev).repeat(2, 1, 1, 1)
        tb = t[:, None, None, None]
        xt = (1 - tb) * x0 + tb * eps
        target = eps - x0
        with torch.no_grad(), autocast():
            for m in loras:
                m.enabled = False
            e_ref = errors(model(xt, t, ids, kb, mask), target)
            for m in loras:
                m.enabled = True
        with autocast():
            e = errors(model(xt, t, ids, kb, mask), target)
        d = (e - e_ref)[:P] - (e - e_ref)[P:]
        loss = -F.logsigmoid(-a.beta_dpo / 2 * d).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    sec, reps = timed(step, 3, a.repeats)
    return {"dpo_s": sec, "dpo_pairs_per_s": P / sec, "dpo_repeats_s": reps}


def apply_lora(model, r):
    """LoRA adapters on every DiT block's qkv and proj (align finetune's default targets)."""
    model.requires_grad_(False)
    for blk in model.blocks:
        blk.attn.qkv = LoRALinear(blk.attn.qkv, r)
        blk.attn.proj = LoRALinear(blk.attn.proj, r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--mlp-ratio", type=float, default=4)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--text-len", type=int, default=16)
    ap.add_argument("--text-width", type=int, default=256)
    ap.add_argument("--text-heads", type=int, default=4)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=900)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--sample-batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--guidance", type=float, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", default="fp32,tf32,bf16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sample-only", action="store_true")
    ap.add_argument("--dpo-pairs", type=int, default=0)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--beta-dpo", type=float, default=2000)
    a = ap.parse_args()

    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = DiT(a).to(dev)
    out = {"framework": "torch " + torch.__version__, "params": sum(p.numel() for p in model.parameters()),
           "train_batch": a.train_batch, "sample_batch": a.sample_batch, "steps": a.steps, "variants": {}}
    if a.dpo_pairs > 0:
        apply_lora(model, a.lora_rank)
        out["dpo_pairs"] = a.dpo_pairs
    out["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    for v in a.variants.split(","):
        if v not in ("fp32", "tf32", "bf16"):
            ap.error(f"--variants: unknown variant {v!r} (fp32, tf32, bf16)")
        tf32 = v != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        run = bench_dpo if a.dpo_pairs > 0 else bench
        out["variants"][v] = run(a, model, dev, bf16=v == "bf16")  # --device cpu: a quick check of the script
    if dev.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    print(json.dumps(out))


if __name__ == "__main__":
    main()
