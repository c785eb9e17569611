#!/bin/bash
# One GPU run for the GEMM tiles: every f16 tile checked on odd shapes, then the f32 and f16
# tiles timed on the target shapes (robust-off: with Dawn's disable_robustness).
# Usage (on the GPU machine, with .gpu/ and a built dist/): bash scripts/gpu/f16-tiles.sh [robust-off]
source .gpu/setup.sh >/dev/null 2>&1
export ACTLAB_WEBGPU_FALLBACK=
[ "$1" = robust-off ] && export ACTLAB_DAWN_TOGGLES=disable_robustness
timeout 100 node dist/bench/webgpu-tune.js sgcheck "$OUT" 2>&1 | grep -E "FAIL|ERR|checks done" | head -20
timeout 200 node dist/bench/webgpu-tune.js f32,f16 "$OUT" 2>&1 | grep -E "^f(16|32)"
