#!/bin/bash
# Stages what a GPU-machine run needs into one folder that travels with a command to a machine
# that has a GPU but no Node.js or npm registry: .gpu/ (node, Vulkan loaders, node_modules, data),
# the build (dist/src, dist/bench), the Python peers and scripts/gpu.
# Usage: bash scripts/gpu/stage.sh DEST
set -euo pipefail
dest=${1:?usage: stage.sh DEST}
rm -rf "$dest" && mkdir -p "$dest"
tar cf - package.json .gpu dist/src dist/bench bench/*.py scripts/gpu | tar xf - -C "$dest"
du -sh "$dest"
