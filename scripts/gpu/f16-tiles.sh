#!/bin/bash
# One device run for the f16 subgroup-matrix tile sweep: every tile checked on odd shapes, timed on
# the target shapes, and the matmul conformance cases run with each larger tile forced.
# Usage (device `run`, carry [".gpu", "dist"]): bash scripts/gpu/f16-tiles.sh
source .gpu/setup.sh >/dev/null 2>&1
export ACTLAB_WEBGPU_FALLBACK=
timeout 100 node dist/bench/webgpu-tune.js check "$OUT" 2>&1 | grep -E "FAIL|ERR|checks done" | head -20
timeout 150 node dist/bench/webgpu-tune.js f16 "$OUT" 2>&1 | grep -E "^f16"
for t in 4,2,4,4 2,4,4,4 4,4,2,2 4,4,2,4; do
  echo "== conformance matmul with ACTLAB_WEBGPU_SGTILE=$t"
  ACTLAB_WEBGPU_SGTILE=$t timeout 60 node dist/src/cli/main.js test-ops --backend webgpu --op matmul 2>&1 | tail -2
done
