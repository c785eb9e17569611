#!/bin/bash
# One GPU-machine run of the SAE, quantized-GEMV and weight-upload benchmarks beside PyTorch CUDA.
# Runs from a staged folder (scripts/gpu/stage-bench.sh): unpacks node, the Vulkan loaders,
# node_modules and the build into /tmp/app, then runs each step named, its output under $OUT.
# Usage (on the GPU machine): bash run.sh [qgemv] [load] [sae] [sae-induction]
set -u
here=$(cd "$(dirname "$0")" && pwd)
for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/node /tmp/app
xz -dc "$here/node.xz" > /tmp/node/node && chmod +x /tmp/node/node
export PATH=/tmp/node:$PATH
tar xJf "$here/nm.tar.xz" -C /tmp/app && tar xJf "$here/app.tar.xz" -C /tmp/app
cd /tmp/app
export ACTLAB_WEBGPU_FALLBACK= PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$OUT/gpu.txt"
node -e "const {create,globals}=require('webgpu');Object.assign(globalThis,globals);create([]).requestAdapter().then(a=>console.log('webgpu adapter:',a?a.info.vendor+' '+a.info.device:'NONE'))" 2>&1 | tee -a "$OUT/gpu.txt"
for step in "$@"; do
  t0=$(date +%s)
  case "$step" in
    qgemv) timeout 150 node dist/bench/webgpu-qgemv.js 2>&1 | tee "$OUT/qgemv.txt" ;;
    load) timeout 120 node dist/bench/webgpu-model.js --load-only 2>&1 | tee "$OUT/load.txt" ;;
    sae) timeout 330 node dist/bench/sae.js --backend webgpu --device cuda --planted --d-in 768 --d-sae 24576 --tokens 204800 --k 32 --l1 1 2>&1 | tee "$OUT/sae.txt" ;;
    sae-induction) timeout 120 node dist/bench/sae.js --backend webgpu --device cuda 2>&1 | tee "$OUT/sae-induction.txt" ;;
  esac
  echo "== $step took $(( $(date +%s) - t0 )) s" | tee -a "$OUT/gpu.txt"
done
