#!/usr/bin/env python3
"""PyTorch peer of `node dist/bench/shakespeare-char.js --time-steps N`: one training step
(forward, cross-entropy backward, grad clip 1.0, AdamW) of nanoGPT's shakespeare-char model as
actlab trains it (GPT-2 layout with biases, 6 layers, 6 heads, 384 wide, context 256, vocabulary
65, tied embeddings, dropout 0.2 on the embedding sum, the attention pattern and each residual
branch), batch 64, on random character ids. Modes:
  f32-explicit  f32 (TF32 off), attention written out (scores, softmax, dropout, P·V): actlab's math
  f32-sdpa      f32 (TF32 off), F.scaled_dot_product_attention with dropout (nanoGPT's default path)
  bf16-sdpa     bf16 autocast + SDPA, TF32 on (nanoGPT's own settings, without torch.compile)
Prints one JSON line per mode {"impl","mode","torch","device","step_ms"}.
Usage: python3 bench/shakespeare_char_torch.py [--device cuda] [--runs 20] [--warmup 5] [--modes f32-explicit,f32-sdpa]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from gpt_torch import GPT

V, T, D, L, H, B, P = 65, 256, 384, 6, 6, 64, 0.2


def time_mode(mode, device, runs, warmup):
    torch.backends.cuda.matmul.allow_tf32 = mode.startswith("bf16")
    torch.backends.cudnn.allow_tf32 = mode.startswith("bf16")
    torch.manual_seed(0)
    model = GPT(V=V, n_ctx=T, d=D, L=L, h=H, p=P, sdpa=mode.endswith("sdpa")).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    x = torch.randint(0, V, (B, T + 1), device=device)
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if mode.startswith("bf16") else torch.autocast(device_type="cuda", enabled=False)

    def step():
        with ctx:
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step().item()  # the host reads the loss every step, as a training loop that logs it does
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--modes", default="f32-explicit,f32-sdpa,bf16-sdpa")
    a = ap.parse_args()
    for mode in a.modes.split(","):
        med = time_mode(mode, a.device, a.runs, a.warmup)
        print(json.dumps({"impl": "pytorch", "mode": mode, "torch": torch.__version__, "device": a.device, "step_ms": round(med * 1e3, 2)}), flush=True)


if __name__ == "__main__":
    main()
