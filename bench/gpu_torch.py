# PyTorch CUDA peer of the WebGPU benchmarks (bench/webgpu-gemm.ts, bench/webgpu-model.ts):
# the same GEMM shapes (f32 with TF32 off, f16) and GPT-2-small/medium-shaped prefill and greedy
# decode in eager mode, f32, random weights; `f16`: bench/webgpu-f16.ts's GPT-2-small and
# TinyLlama-1.1B shapes in f32 and f16 (prefill, decode, and the f16 model's mean KL to its f32
# original with top-1 agreement); `load DIR`: the weight upload of bench/webgpu-load.ts
# (DIR/model.safetensors read with safetensors' load_file, then .to('cuda') of every tensor).
# Prints one JSON object per line.
# Usage: python3 bench/gpu_torch.py gemm|model|f16 [--quick] [--models gpt2-small,llama-1b] | load DIR
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
            print(json.dumps({'bench': 'model', 'model': label, 'impl': impl, 'metric': 'decode_ms_per_token', 'T': 128,
                              'value': decode_ms(m, 50257)}), flush=True)
        del m
        torch.cuda.empty_cache()


def decode_ms(m, vocab):
    """Greedy decode ms/token from a 128-token prompt (median of 3 timed runs after one warm-up)."""
    prompt = torch.randint(0, vocab, (1, 128), device='cuda')
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
    return per[len(per) // 2] * 1e3


def f16():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    makers = {
        'gpt2-small': lambda: GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)),
        'gpt2-tiny': lambda: GPT2LMHeadModel(GPT2Config(vocab_size=1000, n_positions=1024, n_embd=64, n_layer=2, n_head=4)),
        'llama-1b': lambda: LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)),
    }
    names = sys.argv[sys.argv.index('--models') + 1].split(',') if '--models' in sys.argv else list(makers)
    for label in names:
        torch.manual_seed(0)
        m = makers[label]().to('cuda').eval()
        vocab = m.config.vocab_size
        impl = f'pytorch {torch.__version__} eager ({m.config._attn_implementation})'
        x = torch.randint(0, vocab, (1, 128), device='cuda')
        logits = {}
        with torch.no_grad():
            for name, dtype in (('f32', torch.float32), ('f16', torch.float16)):
                m = m.to(dtype)
                logits[name] = m(x).logits.float()
                for T in (128, 512):
                    xt = torch.randint(0, vocab, (1, T), device='cuda')
                    s = cuda_time(lambda: m(xt).logits, 5 if T == 512 else 10)
                    print(json.dumps({'bench': 'model', 'model': f'{label} {name}', 'impl': impl, 'metric': 'prefill_tok_s', 'T': T,
                                      'value': T / s, 'ms': s * 1e3}), flush=True)
                print(json.dumps({'bench': 'model', 'model': f'{label} {name}', 'impl': impl, 'metric': 'decode_ms_per_token', 'T': 128,
                                  'value': decode_ms(m, vocab)}), flush=True)
            lp32 = torch.log_softmax(logits['f32'].double(), -1)
            lp16 = torch.log_softmax(logits['f16'].double(), -1)
            kl = (lp32.exp() * (lp32 - lp16)).sum(-1).mean().item()
            top1 = (logits['f32'].argmax(-1) == logits['f16'].argmax(-1)).float().mean().item()
            print(json.dumps({'bench': 'model', 'model': f'{label} f16', 'impl': impl, 'metric': 'kl_to_f32', 'T': 128,
                              'value': kl, 'note': f'top-1 {100 * top1:.1f}%'}), flush=True)
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
    {'gemm': gemm, 'model': model, 'f16': f16, 'load': load}[sys.argv[1]]()
