#!/bin/bash
# Stages scripts/gpu/bench-run.sh and what it needs into DEST (an ignored folder the GPU machine's
# call carries): a stripped node binary (xz), the Vulkan/EGL loader .debs, the production
# node_modules minus other platforms' binaries, and this checkout's build and Python peers.
# Usage (from the project root, after the build): bash scripts/gpu/stage-bench.sh DEST
set -euo pipefail
dest=${1:?usage: stage-bench.sh DEST}
mkdir -p "$dest/gl"
nm=$(readlink -f node_modules)
if [ ! -f "$dest/node.xz" ]; then
  cp "$(readlink -f "$(command -v node)")" "$dest/node.bin" && strip "$dest/node.bin"
  xz -9e -T2 -c "$dest/node.bin" > "$dest/node.xz" && rm "$dest/node.bin"
fi
if ! ls "$dest"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial && apt-get $o update -qq
  (cd "$dest/gl" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
if [ ! -f "$dest/nm.tar.xz" ]; then
  list=$(mktemp)
  (cd "$nm/.." && npm ls --omit=dev --all --parseable 2>/dev/null | sed "s#^$PWD/##" | grep '^node_modules/' \
    | grep -v -E 'onnxruntime-node|@webgpu/types|^node_modules/webgpu$' | sort -u) > "$list"
  (cd "$nm/.." && ls -d node_modules/webgpu/* | grep -v '/dist$'; echo node_modules/webgpu/dist/linux-x64) >> "$list"
  tar cJf "$dest/nm.tar.xz" -C "$nm/.." -T "$list"
  rm "$list"
fi
tar cJf "$dest/app.tar.xz" package.json dist/src dist/bench bench/*.py scripts/gpu models/organisms/induction
cp scripts/gpu/bench-run.sh "$dest/run.sh"
du -sh "$dest"/*
