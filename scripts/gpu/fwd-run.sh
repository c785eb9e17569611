#!/bin/bash
# The forward-speed run on the GPU machine, from a folder made by pack.sh: host-side counts per
# decode step and per runWithCache (webgpu-counts), a CPU profile of decode, GPU time per op of a
# runWithCache and of a GPT-2-medium prefill (webgpu-tune), the model benchmark beside PyTorch,
# the f16 model benchmark beside PyTorch f16 (needs extra.tar.xz: node_modules/@huggingface) and
# the f32 tile and K-split sweep on products of few output tiles (webgpu-tune f32few).
# Usage: cd PACKED && bash scripts/gpu/fwd-run.sh [counts] [counts1] [profile] [ops] [ops-medium] [model] [model-quick] [medium] [f16] [few] [conf] [checks]
# (checks, conf: ACTLAB_OPS=op,op limits the conformance matrix; ACTLAB_TUNE_SHAPES the few sweep)
# Results go to $OUT/*.txt.
source unpack.sh
export ACTLAB_WEBGPU_FALLBACK=
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
for step in "$@"; do
  t0=$(date +%s)
  case "$step" in
    counts) timeout 120 node dist/bench/webgpu-counts.js --model small --steps 64 --T 128 2>&1 | tee -a "$OUT/counts.txt" ;;
    counts1) # every dispatch of a step in one submit
      echo "ACTLAB_WEBGPU_BATCH=100000" | tee -a "$OUT/counts.txt"
      ACTLAB_WEBGPU_BATCH=100000 timeout 120 node dist/bench/webgpu-counts.js --model small --steps 64 --T 128 2>&1 | tee -a "$OUT/counts.txt" ;;
    profile)
      rm -rf /tmp/prof && timeout 120 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/webgpu-counts.js --model small --steps 256 --T 128 >/dev/null 2>&1
      node scripts/gpu/cpuprofile-top.mjs /tmp/prof/*.cpuprofile 60 > "$OUT/profile.txt"; head -30 "$OUT/profile.txt" ;;
    ops)
      for m in small:128:cache medium:512; do
        ACTLAB_TUNE_PREFILL=$m timeout 150 node dist/bench/webgpu-tune.js prefill 2>&1 | tee -a "$OUT/ops.txt" | tail -14
      done ;;
    ops-medium) # GPT-2-medium T=512 only, as built and with ACTLAB_WEBGPU_SPLITK=few
      for s in 1 few; do
        echo "ACTLAB_WEBGPU_SPLITK=$s" | tee -a "$OUT/ops.txt"
        ACTLAB_WEBGPU_SPLITK=$s ACTLAB_TUNE_PREFILL=medium:512 timeout 150 node dist/bench/webgpu-tune.js prefill 2>&1 | tee -a "$OUT/ops.txt" | tail -14
      done ;;
    f16)
      [ -f extra.tar.xz ] && tar xJf extra.tar.xz
      PYTHONUNBUFFERED=1 timeout 300 node dist/bench/webgpu-f16.js 2>&1 | tee "$OUT/f16.txt" ;;
    few) timeout 150 node dist/bench/webgpu-tune.js f32few /tmp 2>&1 | tee "$OUT/few.txt" ;;
    medium) # GPT-2-medium only (quick, no upload), as built and with ACTLAB_WEBGPU_SPLITK=few; PyTorch once
      timeout 150 node dist/bench/webgpu-model.js --quick --models medium --no-load --no-peers 2>&1 | tee "$OUT/medium.txt" | tail -8
      echo "ACTLAB_WEBGPU_SPLITK=few" | tee -a "$OUT/medium.txt"
      ACTLAB_WEBGPU_SPLITK=few timeout 200 node dist/bench/webgpu-model.js --quick --models medium --no-load 2>&1 | tee -a "$OUT/medium.txt" | tail -12 ;;
    conf) ACTLAB_WEBGPU_SPLITK=${ACTLAB_CONF_SPLITK:-} timeout 150 node scripts/gpu/conformance.mjs "${ACTLAB_OPS:-}" 2>&1 | tee "$OUT/conformance.txt" | tail -8 ;;
    model) timeout 330 node dist/bench/webgpu-model.js 2>&1 | tee "$OUT/model.txt" | tail -20 ;;
    model-quick) timeout 240 node dist/bench/webgpu-model.js --quick 2>&1 | tee "$OUT/model.txt" | tail -20 ;;
    checks)
      timeout 150 node scripts/gpu/conformance.mjs "${ACTLAB_OPS:-}" 2>&1 | tee "$OUT/conformance.txt" | tail -8
      ln -sfn ../../fixtures fixtures  # the travelling checkout's transformers fixtures
      timeout 150 node scripts/gpu/check-models.mjs --backend webgpu 2>&1 | tee "$OUT/models.txt" | tail -12 ;;
  esac
  echo "== $step took $(( $(date +%s) - t0 )) s"
done
