#!/usr/bin/env bash
# Builds scripts/llamacpp/cvec_logits against the prebuilt libllama in ../shared/peers/llama.cpp.
# Headers: llama.h and ggml's include/ of the same llama.cpp commit (3f545bec…), found in
#   $LLAMA_CPP_SRC/include and $LLAMA_CPP_SRC/ggml/include   (a llama.cpp checkout), or
#   $PEERS/include                                            (headers copied next to the libraries).
# usage: scripts/llamacpp/build.sh [OUT_DIR]   (default: build/llamacpp); prints the binary's path.
# Run the binary (and the prebuilt tools) with LD_LIBRARY_PATH=OUT_DIR/lib: libllama carries a
# RUNPATH of its own build folder, which overrides any rpath given here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
peers="${PEERS:-$root/../shared/peers/llama.cpp}"
out="${1:-$root/build/llamacpp}"
[ -e "$peers/libllama.so" ] || { echo "build.sh: no libllama.so in $peers" >&2; exit 3; }
# The library links (libllama.so -> libllama.so.0 -> libllama.so.0.2.0) may have been copied as
# small text files holding the target's name; rebuild them as symlinks in $out/lib, which also
# serves the prebuilt tools (LD_LIBRARY_PATH=$out/lib).
lib="$out/lib"
mkdir -p "$lib"
for f in "$peers"/lib*.so*; do
  name="$(basename "$f")"
  target="$f"
  for _ in 1 2 3 4; do
    if [ ! -L "$target" ] && [ "$(stat -c %s "$target")" -lt 256 ] && ! head -c 4 "$target" | grep -q ELF; then
      target="$peers/$(cat "$target")"
    else
      break
    fi
  done
  ln -sfn "$(readlink -f "$target")" "$lib/$name"
done
bin="$out/cvec_logits"
if [ ! -x "$bin" ] || [ "$here/cvec_logits.cpp" -nt "$bin" ]; then
  inc=()
  if [ -n "${LLAMA_CPP_SRC:-}" ] && [ -f "$LLAMA_CPP_SRC/include/llama.h" ]; then
    inc=(-I"$LLAMA_CPP_SRC/include" -I"$LLAMA_CPP_SRC/ggml/include")
  elif [ -f "$peers/include/llama.h" ]; then
    inc=(-I"$peers/include")
  else
    echo "build.sh: no llama.cpp headers (set LLAMA_CPP_SRC to a llama.cpp checkout at the peers' commit)" >&2
    exit 3
  fi
  g++ -O2 -std=c++17 "$here/cvec_logits.cpp" "${inc[@]}" -L"$lib" -lllama -lggml -lggml-base -Wl,--disable-new-dtags,-rpath,"$lib" -o "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
