#!/usr/bin/env python3
"""Peer of `actlab cache` for bench/cache.ts: a TransformerLens-style caching loop in PyTorch.

Model: GPT-2 small shape (12 layers, d_model 768, 12 heads, vocab 50257), nanoGPT-style blocks as in
../shared/anchors/gpt2_torch.py, random weights (std 0.02), f32, torch.inference_mode(). Every
activation passes through a HookPoint (an nn.Identity named by its TransformerLens path, e.g.
blocks.3.hook_resid_post); `run_with_cache(tokens, names_filter, stop_at_layer)` registers forward
hooks on the HookPoints that match and keeps their outputs, as TransformerLens does, and stops after
the last block a hook needs (as SAELens' activation store asks with stop_at_layer).

Loop (the activation store of an SAE pipeline): the contexts given in --tokens (int32 [n, context],
the ones actlab cached) in batches of --batch; each batch's activations are copied out of the cache
and written as one .npy file per hook per batch into --out (temporary name, then renamed).
Tokens/s over the timed batches after one warm-up batch; one JSON line with the peak resident memory.

  python3 cache_torch.py --tokens tokens.i32 --context 128 --hooks 'blocks.*.hook_resid_post' --out DIR
"""
import argparse
import fnmatch
import json
import math
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class HookPoint(nn.Identity):
    """An identity module a forward hook can be put on (TransformerLens' HookPoint)."""


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.n_head = h
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)
        for name in ["hook_resid_pre", "hook_q", "hook_k", "hook_v", "hook_pattern", "hook_z", "hook_attn_out",
                     "hook_resid_mid", "hook_mlp_pre", "hook_mlp_post", "hook_mlp_out", "hook_resid_post"]:
            setattr(self, name, HookPoint())

    def forward(self, x, mask):
        B, T, C = x.shape
        H = self.n_head
        hd = C // H
        x = self.hook_resid_pre(x)                                  # [batch, pos, d_model]
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = self.hook_q(q.view(B, T, H, hd))                        # [batch, pos, head, d_head]
        k = self.hook_k(k.view(B, T, H, hd))
        v = self.hook_v(v.view(B, T, H, hd))
        att = (q.transpose(1, 2) @ k.transpose(1, 2).transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = self.hook_pattern(F.softmax(att.masked_fill(mask, float("-inf")), dim=-1))  # [batch, head, q, k]
        z = self.hook_z((att @ v.transpose(1, 2)).transpose(1, 2))  # [batch, pos, head, d_head]
        attn_out = self.hook_attn_out(self.attn_proj(z.reshape(B, T, C)))
        x = self.hook_resid_mid(x + attn_out)
        pre = self.hook_mlp_pre(self.c_fc(self.ln_2(x)))            # [batch, pos, d_mlp]
        post = self.hook_mlp_post(F.gelu(pre, approximate="tanh"))
        mlp_out = self.hook_mlp_out(self.mlp_proj(post))
        return self.hook_resid_post(x + mlp_out)


class GPT(nn.Module):
    def __init__(self, n_layer=12, n_embd=768, n_head=12, vocab=50257, n_ctx=1024):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(n_ctx, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        self.register_buffer("causal", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1), persistent=False)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("ln_"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def hook_points(self):
        """TransformerLens names -> HookPoint."""
        out = {}
        for i, b in enumerate(self.blocks):
            for attr, tl in [("hook_resid_pre", "hook_resid_pre"), ("hook_q", "attn.hook_q"), ("hook_k", "attn.hook_k"),
                             ("hook_v", "attn.hook_v"), ("hook_pattern", "attn.hook_pattern"), ("hook_z", "attn.hook_z"),
                             ("hook_attn_out", "hook_attn_out"), ("hook_resid_mid", "hook_resid_mid"),
                             ("hook_mlp_pre", "mlp.hook_pre"), ("hook_mlp_post", "mlp.hook_post"),
                             ("hook_mlp_out", "hook_mlp_out"), ("hook_resid_post", "hook_resid_post")]:
                out[f"blocks.{i}.{tl}"] = getattr(b, attr)
        return out

    def forward(self, idx, stop_at_layer=None):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        mask = self.causal[:T, :T]
        for i, blk in enumerate(self.blocks):
            if stop_at_layer is not None and i >= stop_at_layer:
                return x
            x = blk(x, mask)
        return F.linear(self.ln_f(x), self.wte.weight)

    def run_with_cache(self, idx, names_filter, stop_at_layer=None):
        cache = {}
        handles = []
        for name, hp in self.hook_points().items():
            if names_filter(name):
                handles.append(hp.register_forward_hook(lambda _m, _i, out, name=name: cache.__setitem__(name, out.detach())))
        try:
            out = self(idx, stop_at_layer)
        finally:
            for h in handles:
                h.remove()
        return out, cache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", required=True, help="int32 [n, context], raw little-endian")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--hooks", default="blocks.*.hook_resid_post", help="comma-separated globs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokens = np.fromfile(args.tokens, dtype=np.int32).reshape(-1, args.context)
    model = GPT().eval()
    pats = args.hooks.split(",")
    names = [n for n in model.hook_points() if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    stop = max(int(n.split(".")[1]) for n in names) + 1
    os.makedirs(args.out, exist_ok=True)
    batches = [tokens[i:i + args.batch] for i in range(0, len(tokens), args.batch)]
    t0 = None
    timed_tokens = 0
    with torch.inference_mode():
        for bi, b in enumerate(batches):
            if bi == 1:
                t0 = time.perf_counter()
            _, cache = model.run_with_cache(torch.from_numpy(b.astype(np.int64)), lambda n: n in names, stop)
            for n in names:
                a = cache[n].contiguous().numpy()
                path = os.path.join(args.out, f"{n}.{bi:05d}.npy")
                with open(path + ".tmp", "wb") as f:
                    np.save(f, a)
                os.replace(path + ".tmp", path)
            if bi >= 1:
                timed_tokens += b.size
    dt = time.perf_counter() - t0
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "threads": args.threads, "hooks": len(names), "stop_at_layer": stop,
        "contexts": int(len(tokens)), "timed_tokens": int(timed_tokens), "seconds": round(dt, 3),
        "tok_s": round(timed_tokens / dt, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
