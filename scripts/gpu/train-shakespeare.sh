#!/bin/bash
# One part of the shakespeare-char training run on the GPU machine (see bench/shakespeare-char.ts):
# trains from the newest checkpoint in /tmp/shakespeare-char for at most BUDGET seconds, then copies
# the logs and the model of the checkpoint with the lowest validation loss so far (nanoGPT keeps
# that one), split in 15 MB parts (rejoin with cat), to $OUT.
# Usage, from a staged folder (scripts/gpu/stage.sh) or a packed one (scripts/gpu/pack.sh, after
# `source unpack.sh`; DATA=folder with input.txt): bash scripts/gpu/train-shakespeare.sh BUDGET [peer]
# With `peer`, PyTorch then times the same training step on the same GPU (bench/shakespeare_char_torch.py).
[ -f .gpu/setup.sh ] && source .gpu/setup.sh >/dev/null
export ACTLAB_WEBGPU_FALLBACK= ACTLAB_WEBGPU_POOL_MB=32768
dir=/tmp/shakespeare-char
node dist/bench/shakespeare-char.js --data "${DATA:-.gpu/data}" --out $dir --budget-s "${1:-500}" --eval-every 250 2>&1 | tee -a $OUT/train.txt
cp $dir/eval_log.jsonl $dir/train_log.jsonl $OUT/ 2>/dev/null
best=$(node -e "const l=require('fs').readFileSync('$dir/eval_log.jsonl','utf8').trim().split('\n').map(JSON.parse);l.sort((a,b)=>a.val_loss-b.val_loss);console.log(l[0].step)")
echo "best checkpoint by validation loss: step $best"
cp $dir/checkpoint-$best/trainer_state.json $OUT/
split -b 15000000 $dir/checkpoint-$best/model.safetensors $OUT/model.safetensors.part-
[ "$2" = peer ] && PYTHONUNBUFFERED=1 timeout 60 python3 bench/shakespeare_char_torch.py --runs 20 2>&1 | tee $OUT/torch.txt
ls -la $OUT
