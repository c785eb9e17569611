#!/bin/bash
# One part of the shakespeare-char training run on the GPU machine (see bench/shakespeare-char.ts):
# trains from the newest checkpoint in /tmp/shakespeare-char for at most BUDGET seconds, then copies
# the logs and the newest model (split in 15 MB parts, rejoin with cat) to $OUT.
# Usage (from a staged folder, scripts/gpu/stage.sh): bash scripts/gpu/train-shakespeare.sh BUDGET [peer]
# With `peer`, PyTorch then times the same training step on the same GPU (bench/shakespeare_char_torch.py).
source .gpu/setup.sh >/dev/null
export ACTLAB_WEBGPU_FALLBACK= ACTLAB_WEBGPU_POOL_MB=32768
dir=/tmp/shakespeare-char
node dist/bench/shakespeare-char.js --data .gpu/data --out $dir --budget-s "${1:-500}" --eval-every 250 2>&1 | tee -a $OUT/train.txt
cp $dir/eval_log.jsonl $dir/train_log.jsonl $OUT/ 2>/dev/null
last=$dir/checkpoint-$(ls $dir | sed -n 's/^checkpoint-\([0-9]*\)$/\1/p' | sort -n | tail -1)
echo "newest checkpoint: $last"
cp $last/trainer_state.json $OUT/
split -b 15000000 $last/model.safetensors $OUT/model.safetensors.part-
[ "$2" = peer ] && PYTHONUNBUFFERED=1 timeout 60 python3 bench/shakespeare_char_torch.py --runs 20 2>&1 | tee $OUT/torch.txt
ls -la $OUT
