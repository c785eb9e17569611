#!/bin/bash
# Stages what a GPU-machine run needs into one folder that another checkout of the project can
# carry (the machine receives another checkout of the project, so a working tree's build and
# scripts travel as a carried, git-ignored folder): .gpu/ (node, loaders, node_modules, data),
# the build (dist/src, dist/bench), the Python peers and scripts/gpu. Usage: bash scripts/gpu/stage.sh DEST
set -euo pipefail
dest=${1:?usage: stage.sh DEST}
rm -rf "$dest" && mkdir -p "$dest"
tar cf - package.json .gpu dist/src dist/bench bench/*.py scripts/gpu | tar xf - -C "$dest"
du -sh "$dest"
