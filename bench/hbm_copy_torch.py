# PyTorch CUDA peer of bench/webgpu-qgemv.ts: the HBM bandwidth a device-to-device copy reaches
# (y.copy_(x) on 1 GiB f32 tensors; bytes read + bytes written over the time, CUDA events), and
# PyTorch's own f16 GEMV on the weight shape of the quantized products, as a second reference.
# Prints one JSON object per line.
# Usage: python3 bench/hbm_copy_torch.py [--n N --k K]
import json
import sys

import torch


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def cuda_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / reps)
    times.sort()
    return times[len(times) // 2]


def main():
    dev = torch.device('cuda')
    n = 1 << 28  # 1 GiB of f32
    x = torch.empty(n, dtype=torch.float32, device=dev).normal_()
    y = torch.empty_like(x)
    ms = cuda_ms(lambda: y.copy_(x))
    print(json.dumps({'impl': 'torch', 'what': 'copy_', 'bytes': 2 * 4 * n, 'ms': ms, 'gbs': 2 * 4 * n / ms / 1e6,
                      'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}), flush=True)
    del x, y
    N, K = arg('--n', 65536), arg('--k', 16384)
    w = [torch.empty(N, K, dtype=torch.float16, device=dev).normal_() for _ in range(2)]
    v = torch.empty(1, K, dtype=torch.float16, device=dev).normal_()
    i = [0]

    def gemv():
        i[0] ^= 1
        torch.matmul(v, w[i[0]].t())

    ms = cuda_ms(gemv)
    print(json.dumps({'impl': 'torch', 'what': f'f16 gemv [{N},{K}]', 'bytes': 2 * N * K, 'ms': ms, 'gbs': 2 * N * K / ms / 1e6}), flush=True)


main()
