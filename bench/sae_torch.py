#!/usr/bin/env python3
"""PyTorch reference of actlab's SAE training (`npm run bench:sae`, test-shared/sae-torch.test.ts).

Trains the same TopK or ReLU-L1 SAE as actlab from the same activations (an actlab activation
store, read here from its manifest and safetensors shards), the same initial weights and the same
batch order (both read from the seed file actlab writes), with SAELens' semantics written in plain
torch autograd: MSE summed over the width and averaged over rows; ReLU-L1 penalty weighted by the
decoder row norms; TopK's auxiliary-k loss on dead features (k_aux = d_in // 2, scaled by
min(dead / k_aux, 1), dead = not fired for more than `dead_window` steps); decoder rows held at
unit norm with the gradient along each row removed before the update; gradient clipping at norm 1;
Adam; linear lr warmup / decay; linearly warmed-up L1 coefficient. Inputs are multiplied by the
seed file's scaling factor. After training, FVU and L0 on the seed file's evaluation rows.
The activations come from a store (--store) or from one safetensors file holding `rows` [n, d]
(--rows, planted data). --device cuda trains on the GPU (the rows, order and weights moved there
first; the clock read after torch.cuda.synchronize()).

tokens_per_s counts the steps after the first `warm_steps` of the seed file's settings (CUDA and
kernel start-up excluded, as on the actlab side); seconds is the whole run.
Prints one JSON line: {"impl","torch","device","threads","tokens","seconds","tokens_per_s","fvu","l0","mse"}.
Usage: python3 bench/sae_torch.py (--store DIR | --rows FILE) --seed-file FILE [--threads N] [--device cpu|cuda]
"""
import argparse
import json
import struct
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    dt = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "BF16": None}
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        if e["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=dt[e["dtype"]])
        out[name] = arr.reshape(e["shape"])
    return out, meta


def store_rows(store, hook):
    """Every row of `hook` in the store, in store order ([rows, d], float32)."""
    manifest = json.load(open(f"{store}/manifest.json"))
    if hook not in manifest["hooks"]:
        raise SystemExit(f"{store}: no hook {hook!r} (it has {', '.join(manifest['hooks'])})")
    parts = []
    for s in manifest["shards"]:
        t, _ = read_safetensors(f"{store}/{s['file']}")
        a = t[hook].astype(np.float32)
        parts.append(a.reshape(-1, a.shape[-1]))
    return np.concatenate(parts, 0)


def lr_at(step, steps, lr, warmup, decay):
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if decay > 0 and step >= steps - decay:
        return lr * (steps - step) / decay
    return lr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store")
    ap.add_argument("--rows")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--seed-file", required=True)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if (args.store is None) == (args.rows is None):
        raise SystemExit("give one of --store DIR or --rows FILE")
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 products, as actlab's
    seed, meta = read_safetensors(args.seed_file)
    cfg = json.loads(meta["config"])
    if args.store:
        rows = torch.from_numpy(store_rows(args.store, cfg["hook"]).copy()).to(dev)
    else:
        rows = torch.from_numpy(read_safetensors(args.rows)[0]["rows"].astype(np.float32).copy()).to(dev)
    order = torch.from_numpy(seed["order"].astype(np.int64)).to(dev)
    scale = float(cfg["scaling_factor"])
    B, steps, arch = cfg["batch_size"], cfg["steps"], cfg["architecture"]
    W_enc = torch.nn.Parameter(torch.from_numpy(seed["W_enc"].copy()).to(dev))
    b_enc = torch.nn.Parameter(torch.from_numpy(seed["b_enc"].copy()).to(dev))
    W_dec = torch.nn.Parameter(torch.from_numpy(seed["W_dec"].copy()).to(dev))
    b_dec = torch.nn.Parameter(torch.from_numpy(seed["b_dec"].copy()).to(dev))
    params = [W_enc, b_enc, W_dec, b_dec]
    d_in, d_sae = W_enc.shape
    opt = torch.optim.Adam(params, lr=cfg["lr"], betas=(cfg["adam_beta1"], cfg["adam_beta2"]), eps=1e-8)
    since_fired = torch.zeros(d_sae, device=dev)
    neg_inf = torch.tensor(-float("inf"), device=dev)
    warm = int(cfg.get("warm_steps", 0))

    def encode(x):
        pre = (x - b_dec) @ W_enc + b_enc
        if arch == "topk":
            vals, idx = pre.topk(cfg["k"], dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, vals.relu()), pre
        return pre.relu(), pre

    sync()
    t0 = time.perf_counter()
    t_warm = t0
    for step in range(steps):
        if step == warm:
            sync()
            t_warm = time.perf_counter()
        x = rows[order[step * B:(step + 1) * B]] * scale
        dead = since_fired > cfg["dead_window"]
        acts, pre = encode(x)
        out = acts @ W_dec + b_dec
        loss = (out - x).pow(2).sum(-1).mean()
        if arch == "standard":
            w = cfg["coefficient_warmup"]
            coef = cfg["coefficient"] * (min(step / w, 1.0) if w > 0 else 1.0)
            loss = loss + coef * (acts * W_dec.norm(dim=1)).sum(-1).mean()
        num_dead = int(dead.sum())
        if arch == "topk" and num_dead > 0:
            residual = (x - out).detach()
            k_aux = d_in // 2
            sc = min(num_dead / k_aux, 1.0)
            k_aux = min(k_aux, num_dead)
            masked = torch.where(dead[None], pre, neg_inf)
            top = masked.topk(k_aux, dim=-1)
            aux_acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
            loss = loss + cfg["aux_coefficient"] * sc * ((aux_acts @ W_dec + b_dec) - residual).pow(2).sum(-1).mean()
        with torch.no_grad():
            fired = (acts != 0).sum(0) > 0
            since_fired += 1
            since_fired[fired] = 0
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            g = W_dec.grad
            g -= ((g * W_dec).sum(1, keepdim=True) / (W_dec * W_dec).sum(1, keepdim=True)) * W_dec
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, cfg["lr"], cfg["lr_warmup"], cfg["lr_decay"])
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=1, keepdim=True)
    sync()
    t1 = time.perf_counter()
    seconds = t1 - t0

    with torch.no_grad():
        ev = rows[cfg["eval_start"]:cfg["eval_start"] + cfg["eval_rows"]] * scale
        acts, _ = encode(ev)
        rec = acts @ W_dec + b_dec
        err = (rec - ev).pow(2).sum()
        var = (ev - ev.mean(0)).pow(2).sum()
        res = {
            "impl": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
            "tokens": steps * B, "seconds": seconds, "tokens_per_s": (steps - warm) * B / (t1 - t_warm),
            "fvu": float(err / var), "l0": float((acts != 0).float().sum(-1).mean()), "mse": float(err / ev.shape[0]),
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
