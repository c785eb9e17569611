"""The nanoGPT-style GPT that the PyTorch training peers time (bench/train_torch.py,
bench/shakespeare_char_torch.py): GPT-2 layout with biases, pre-LN blocks (fused q/k/v Linear,
causal softmax attention, GELU-tanh MLP 4x wide), final LayerNorm, unembedding tied to the token
embedding, dropout p on the embedding sum, the attention pattern and each residual branch (p = 0:
none). `sdpa` uses F.scaled_dot_product_attention instead of the written-out attention.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h, n_ctx, p=0.0, sdpa=False):
        super().__init__()
        self.h, self.p, self.sdpa = h, p, sdpa
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.ones(n_ctx, n_ctx, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        b, t, c = x.shape
        p = self.p if self.training else 0.0
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.h)
            att = att.masked_fill(self.mask[:t, :t], float("-inf")).softmax(-1)
            y = F.dropout(att, p, self.training) @ v
        y = y.transpose(1, 2).reshape(b, t, c)
        x = x + F.dropout(self.c_proj(y), p, self.training)
        return x + F.dropout(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")), p, self.training)


class GPT(nn.Module):
    def __init__(self, V=50257, n_ctx=1024, d=768, L=12, h=12, p=0.0, sdpa=False):
        super().__init__()
        self.p = p
        self.wte = nn.Embedding(V, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.blocks = nn.ModuleList([Block(d, h, n_ctx, p, sdpa) for _ in range(L)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        x = F.dropout(x, self.p, self.training)
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.T
