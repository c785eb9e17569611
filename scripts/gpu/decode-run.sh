#!/bin/bash
# The decode-fusion run on the GPU machine, from a folder made by pack.sh: the adapter's features,
# conformance of the changed kernels (addNorm, the norms, linear layers and products; the GEMV
# cases again with ACTLAB_WEBGPU_GEMV_SPLIT=off), the decode variants interleaved in one process
# (bench/webgpu-decode), the model benchmark beside PyTorch, host-side counts per step
# (webgpu-counts) and GPU time per op of a GPT-2-medium prefill at T=512 (webgpu-tune).
# The benchmarks import @huggingface packages: PACKED/extra.tar.xz (node_modules/@huggingface).
# Usage: cd PACKED && bash scripts/gpu/decode-run.sh   (results in $OUT/*.txt)
source unpack.sh
[ -f extra.tar.xz ] && tar xJf extra.tar.xz
export ACTLAB_WEBGPU_FALLBACK=
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
uptime | tee -a "$OUT/gpu.txt"
node -e "const {create,globals}=require('webgpu');Object.assign(globalThis,globals);create(['enable-dawn-features=allow_unsafe_apis']).requestAdapter().then(a=>console.log('adapter features:',[...a.features].sort().join(' ')))" 2>&1 | tee "$OUT/adapter.txt"
step() { local name=$1; shift; local t0; t0=$(date +%s); "$@"; echo "== $name took $(( $(date +%s) - t0 )) s, $(uptime)"; }
step conformance bash -c 'timeout 150 node scripts/gpu/conformance.mjs addNorm,layernorm,rmsnorm,linear,matmul 2>&1 | tee "$OUT/conformance.txt" | tail -8'
step conformance-unsplit bash -c 'ACTLAB_WEBGPU_GEMV_SPLIT=off timeout 120 node scripts/gpu/conformance.mjs linear,matmul 2>&1 | tee "$OUT/conformance-unsplit.txt" | tail -5'
step decode bash -c 'timeout 240 node dist/bench/webgpu-decode.js --model small --steps 32 --rounds 5 2>&1 | tee "$OUT/decode.txt"'
step model bash -c 'timeout 300 node dist/bench/webgpu-model.js --quick --no-load 2>&1 | tee "$OUT/model.txt" | tail -20'
step counts bash -c 'timeout 120 node dist/bench/webgpu-counts.js --model small --steps 64 --T 128 2>&1 | tee "$OUT/counts.txt"'
step ops bash -c 'ACTLAB_TUNE_PREFILL=medium:512 timeout 150 node dist/bench/webgpu-tune.js prefill 2>&1 | tee "$OUT/ops.txt" | tail -16'
