#!/bin/bash
# Where a WebGPU decode step's host time goes, on the GPU machine, from a folder made by pack.sh:
# a V8 CPU profile of greedy GPT-2 small decode with a hook at every hook_resid_post (webgpu-counts,
# summarized by cpuprofile-top.mjs), the decode variants interleaved (webgpu-decode, crossed with
# the dispatches per submit in BATCHES), GPT-2-medium prefill per-op GPU time (webgpu-tune)
# and the model benchmark beside PyTorch (MODELS, default small,medium).
# Usage: cd PACKED && tar xJf app.tar.xz && BATCHES=96,32 bash scripts/gpu/host-run.sh   (results in $OUT/*.txt)
source unpack.sh
[ -f extra.tar.xz ] && tar xJf extra.tar.xz
export ACTLAB_WEBGPU_FALLBACK=
uptime | tee "$OUT/host.txt"
step() { local name=$1; shift; local t0; t0=$(date +%s); "$@"; echo "== $name took $(( $(date +%s) - t0 )) s, $(uptime)" | tee -a "$OUT/host.txt"; }
step conformance bash -c "timeout 150 node scripts/gpu/conformance.mjs ${CONF_OPS:-attention,reshape} 2>&1 | tee \"\$OUT/conformance.txt\" | tail -6"
step profile bash -c 'timeout 120 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/webgpu-counts.js --model small --steps 400 --T 128 2>&1 | tee "$OUT/counts.txt"; node scripts/gpu/cpuprofile-top.mjs /tmp/prof/*.cpuprofile 60 > "$OUT/profile.txt"; head -30 "$OUT/profile.txt"'
step decode bash -c "timeout 200 node dist/bench/webgpu-decode.js --model small --steps 32 --rounds 5 --batches ${BATCHES:-96,32} 2>&1 | tee \"\$OUT/decode.txt\""
step model bash -c "timeout 240 node dist/bench/webgpu-model.js --quick --no-load --models ${MODELS:-small,medium} 2>&1 | tee \"\$OUT/model.txt\" | tail -24"
step ops bash -c 'ACTLAB_TUNE_PREFILL=medium:512 timeout 120 node dist/bench/webgpu-tune.js prefill 2>&1 | tee "$OUT/ops.txt" | tail -16'
