#!/bin/bash
# One run on the GPU machine (see ../shared/gpu/README.md): the conformance matrix, the
# models against transformers, then the GEMM and/or model benchmarks beside PyTorch CUDA.
# Usage (on the GPU machine, from a checkout with .gpu/ and a built dist/): bash scripts/gpu/device-run.sh [checks] [gemm] [model]
# Results go to $OUT/*.txt (and models.json).
source .gpu/setup.sh
export ACTLAB_WEBGPU_FALLBACK=
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$OUT/gpu.txt"
for step in "$@"; do
  t0=$(date +%s)
  case "$step" in
    checks)
      timeout 150 node dist/src/cli/main.js test-ops --backend webgpu 2>&1 | tee "$OUT/conformance.txt" | tail -25
      timeout 150 node scripts/gpu/check-models.mjs --backend webgpu --json "$OUT/models.json" 2>&1 | tee "$OUT/models.txt" | tail -12 ;;
    gemm) timeout 200 node dist/bench/gemm.js --backend webgpu 2>&1 | tee "$OUT/gemm.txt" | tail -16 ;;
    model) timeout 330 node dist/bench/model.js --backend webgpu 2>&1 | tee "$OUT/model.txt" | tail -16 ;;
  esac
  echo "== $step took $(( $(date +%s) - t0 )) s"
done
