#!/usr/bin/env bash
# glibc's allocator settings for inference (native-trainer/src/allocator.rs) against glibc's
# defaults, in the same run (not in CI). `clip-burn --device cpu embed` of ViT-B-32 (random-init
# open_clip weights, made by tests/fullsize/check.py when missing) on 32 texts and on 1, whole
# processes, alternating, medians of ROUNDS (default 5; tests/bench/embed_ab.py). Setting any
# MALLOC_* variable makes clip-burn leave glibc's defaults alone: the "defaults" runs set
# MALLOC_ARENA_TEST=8, which is glibc's own default on 64-bit. Prints a Markdown table.
#   bash tests/bench/allocator.sh            CLIP_BURN=path/to/clip-burn names a build (default: release)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-5}"
BIN=$(bash tests/bench/release_bin.sh)
W=target/fullsize/ViT-B-32.safetensors
[ -e "$W" ] || tests/.venv/bin/python tests/fullsize/check.py target/fullsize --models ViT-B-32
python3 tests/bench/embed_ab.py --weights "$W" --kinds texts --rounds "$ROUNDS" \
  --setup "glibc's defaults" "$BIN" MALLOC_ARENA_TEST=8 --setup "clip-burn's settings" "$BIN"
