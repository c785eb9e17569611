#!/bin/bash
# Dawn toggles against the GEMM kernels: the f32 and f16 target shapes under each toggle set.
# Usage (on the GPU machine, with .gpu/ and a built dist/): bash scripts/gpu/toggles.sh
source .gpu/setup.sh >/dev/null 2>&1
export ACTLAB_WEBGPU_FALLBACK=
for tg in "" use_vulkan_memory_model use_vulkan_memory_model,disable_robustness; do
  echo "== toggles: ${tg:-none}"
  ACTLAB_DAWN_TOGGLES=$tg timeout 120 node dist/bench/webgpu-tune.js f32,f16 "$OUT" 2>&1 | grep -E "^f(32|16)" | grep -v -E 'SGN":4,"FM":4|G":true|DB":true'
done
