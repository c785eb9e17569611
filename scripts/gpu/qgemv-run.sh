#!/bin/bash
# One GPU-machine run of the quantized-GEMV kernel variants (beside PyTorch's copy and f16 GEMV),
# the quantized conformance cases on the GPU, the packed-KV-cache decode comparison and the SAE
# trainer's timing, from a folder made by scripts/gpu/pack.sh (sourced unpack.sh first).
# Each step's output goes to $OUT/STEP.txt. Usage: bash scripts/gpu/qgemv-run.sh [qgemv] [conf] [kv] [sae]
set -u
export ACTLAB_WEBGPU_FALLBACK= PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"
for step in "$@"; do
  t0=$(date +%s)
  case "$step" in
    qgemv) timeout 200 node dist/bench/webgpu-qgemv.js --types q4_0,q4_k,q8_0,q6_k \
      --variants "${QGEMV_VARIANTS:-f32,a8,a8:r1,a8:r4,a8:t16,a8:nov4,a8:nosg}" 2>&1 | tee "$OUT/qgemv.txt" ;;
    conf) timeout 150 node scripts/gpu/conformance.mjs qmatmul,dequantize 2>&1 | tee "$OUT/conf.txt" ;;
    kv) timeout 200 node dist/bench/webgpu-kv.js 2>&1 | tee "$OUT/kv.txt" ;;
    sae) [ -f extra.tar.xz ] && tar xJf extra.tar.xz; timeout 200 node dist/bench/sae.js --backend webgpu --device cuda --planted --d-in 768 --d-sae 24576 --tokens 204800 --k 32 --l1 1 2>&1 | tee "$OUT/sae.txt" ;;
  esac
  echo "== $step took $(( $(date +%s) - t0 )) s" | tee -a "$OUT/gpu.txt"
done
