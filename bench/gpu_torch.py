# PyTorch CUDA peer of the WebGPU benchmarks (bench/webgpu-gemm.ts, bench/webgpu-model.ts):
# the same GEMM shapes (f32 with TF32 off, f16) and GPT-2-small/medium-shaped prefill and greedy
# decode in eager mode, f32, random weights; `load DIR`: the weight upload of bench/webgpu-load.ts
# (DIR/model.safetensors read with safetensors' load_file, then .to('cuda') of every tensor).
# Prints one JSON object per line.
# Usage: python3 bench/gpu_torch.py gemm|model [--quick] | load DIR
import json
import sys
import time

import torch

QUICK = '--quick' in sys.argv


def cuda_time(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = []
    for _ in range(3 if QUICK else 5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        best.append((time.perf_counter() - t0) / reps)
    best.sort()
    return best[len(best) // 2]


def gemm():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    shapes = [(4096, 4096, 4096), (2048, 768, 3072), (512, 768, 3072), (1, 4096, 4096), (1, 768, 3072)]
    for dtype, name in ((torch.float32, 'f32'), (torch.float16, 'f16')):
        for (m, k, n) in shapes:
            a = torch.randn(m, k, device='cuda', dtype=dtype)
            b = torch.randn(k, n, device='cuda', dtype=dtype)
            flops = 2 * m * n * k
            reps = max(3, min(2000, int(2e11 / max(flops, 1))))
            s = cuda_time(lambda: torch.mm(a, b), reps)
            print(json.dumps({'bench': 'gemm', 'impl': f'pytorch {torch.__version__}', 'dtype': name,
                              'shape': [m, k, n], 'tflops': flops / s / 1e12, 'ms': s * 1e3}), flush=True)


def model():
    from transformers import GPT2Config, GPT2LMHeadModel
    shapes = {'gpt2-small': dict(n_embd=768, n_layer=12, n_head=12), 'gpt2-medium': dict(n_embd=1024, n_layer=24, n_head=16)}
    for label, dims in shapes.items():
        torch.manual_seed(0)
        cfg = GPT2Config(vocab_size=50257, n_positions=1024, **dims)
        m = GPT2LMHeadModel(cfg).to('cuda').eval()
        impl = f'pytorch {torch.__version__} eager ({m.config._attn_implementation})'
        with torch.no_grad():
            for T in (128, 512):
                x = torch.randint(0, 50257, (1, T), device='cuda')
                s = cuda_time(lambda: m(x).logits, 5 if T == 512 else 10)
                print(json.dumps({'bench': 'model', 'model': label, 'impl': impl, 'metric': 'prefill_tok_s', 'T': T,
                                  'value': T / s, 'ms': s * 1e3}), flush=True)
            prompt = torch.randint(0, 50257, (1, 128), device='cuda')
            steps = 16 if QUICK else 64
            per = []
            for r in range(4):
                out = m(prompt, use_cache=True)
                past = out.past_key_values
                nxt = int(out.logits[:, -1].argmax(-1).item())
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(steps):
                    out = m(torch.tensor([[nxt]], device='cuda'), past_key_values=past, use_cache=True)
                    past = out.past_key_values
                    nxt = int(out.logits[:, -1].argmax(-1).item())
                if r > 0:
                    per.append((time.perf_counter() - t0) / steps)
            per.sort()
            print(json.dumps({'bench': 'model', 'model': label, 'impl': impl, 'metric': 'decode_ms_per_token', 'T': 128,
                              'value': per[len(per) // 2] * 1e3}), flush=True)
        del m
        torch.cuda.empty_cache()


def load():
    path = sys.argv[2] + '/model.safetensors'
    try:
        from safetensors.torch import load_file
    except ImportError:  # a plain reader (numpy) where the safetensors package is missing
        import struct
        import numpy as np

        def load_file(p):
            with open(p, 'rb') as f:
                n = struct.unpack('<Q', f.read(8))[0]
                header = json.loads(f.read(n))
                data = f.read()
            header.pop('__metadata__', None)
            return {k: torch.from_numpy(np.frombuffer(data, np.float32, int(np.prod(e['shape'])), e['data_offsets'][0]).reshape(e['shape']).copy())
                    for k, e in header.items()}
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    read, move, total = [], [], []
    for _ in range(3):
        if dev == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sd = load_file(path)
        t1 = time.perf_counter()
        on = {k: v.to(dev) for k, v in sd.items()}
        if dev == 'cuda':
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        read.append(t1 - t0)
        move.append(t2 - t1)
        total.append(t2 - t0)
        del sd, on
        if dev == 'cuda':
            torch.cuda.empty_cache()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(json.dumps({'bench': 'model', 'model': 'gpt2-small', 'impl': f'pytorch {torch.__version__} load_file + .to({dev!r})',
                      'metric': 'load_s', 'T': 0, 'value': med(total), 'ms': med(total) * 1e3,
                      'note': f'read {med(read):.2f} s + .to({dev!r}) {med(move):.2f} s'}), flush=True)


if __name__ == '__main__':
    {'gemm': gemm, 'model': model, 'load': load}[sys.argv[1]]()
