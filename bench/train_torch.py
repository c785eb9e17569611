#!/usr/bin/env python3
"""PyTorch CPU peer of `npm run bench:train`: one training step (forward, cross-entropy backward,
AdamW) of a GPT-2-small-shaped model (nanoGPT-style, bench/gpt_torch.py) at
batch 4, T=128, f32. Prints one JSON line {"impl","torch","threads","step_ms","steps_per_s"}.
Usage: /usr/bin/python3 bench/train_torch.py [--runs N] [--warmup N] [--batch B] [--T T]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from gpt_torch import GPT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--T", type=int, default=128)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    x = torch.randint(0, 50257, (a.batch, a.T + 1))

    def step():
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    ts = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "step_ms": round(med * 1e3, 1), "steps_per_s": round(1 / med, 3)}))


if __name__ == "__main__":
    main()
