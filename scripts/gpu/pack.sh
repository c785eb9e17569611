#!/bin/bash
# Packs what a run on a GPU machine without Node needs into one small folder: a stripped node
# binary (xz), node_modules with only
# the `webgpu` package (Dawn for linux-x64; nothing else is loaded by the WebGPU benchmarks), the
# Vulkan/EGL loader .debs, the build's JavaScript (no maps, no .d.ts), the Python peers and
# scripts/gpu; about 27 MB in all. On the GPU machine: `source DEST/unpack.sh` from DEST.
# Where the checkout and the pack together exceed what one transfer carries, send node.xz first
# and copy it out of the checkout there (cp node.xz /tmp/): a later transfer replaces the carried
# folder; then carry the rest and `cp /tmp/node.xz .` before `source unpack.sh`.
# Usage (project root, after the build): bash scripts/gpu/pack.sh DEST [DEBDIR]
set -euo pipefail
dest=${1:?usage: pack.sh DEST [DEBDIR]}
debs=${2:-.gpu/gl}
mkdir -p "$dest/gl"
cp "$debs"/*.deb "$dest/gl/"
if [ ! -f "$dest/node.xz" ]; then
  t=$(mktemp -d); cp "$(readlink -f "$(command -v node)")" "$t/node"; strip "$t/node"
  xz -9e -T2 -c "$t/node" > "$dest/node.xz"; rm -rf "$t"
fi
if [ ! -f "$dest/nm.tar.xz" ]; then
  t=$(mktemp -d); mkdir -p "$t/node_modules/webgpu/dist" && W=node_modules/webgpu
  cp $W/index.js $W/package.json "$t/$W/" && cp -r $W/dist/linux-x64 "$t/$W/dist/"
  for d in debug ms; do [ -d node_modules/$d ] && cp -r node_modules/$d "$t/node_modules/"; done
  tar cf - -C "$t" node_modules | xz -9 -T2 > "$dest/nm.tar.xz"; rm -rf "$t"
fi
find dist/src dist/bench -name '*.js' -o -name '*.wasm' | tar cf - -T - package.json bench/*.py scripts/gpu | xz -6 -T2 > "$dest/app.tar.xz"
cat > "$dest/unpack.sh" <<'EOS'
# Source from the packed folder on the GPU machine: loaders into /, node onto PATH, the app here.
for f in gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/node && xz -dc node.xz > /tmp/node/node && chmod +x /tmp/node/node
export PATH=/tmp/node:$PATH
tar xJf nm.tar.xz && tar xJf app.tar.xz
node -e "const {create,globals}=require('webgpu');Object.assign(globalThis,globals);create([]).requestAdapter().then(a=>console.log('webgpu adapter:',a?a.info.vendor+' '+a.info.device:'NONE'))" 2>&1 || echo "webgpu did not load"
EOS
du -sh "$dest"; du -sh "$dest"/*
