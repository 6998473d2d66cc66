#!/usr/bin/env bash
# Two clip-burn builds against each other on this machine's CPU (not in CI): `embed` of ViT-B-32
# (random-init open_clip weights and PNG images, made by tests/fullsize/check.py when missing) on
# 32 texts and 32 images and on 1 of each, whole processes alternating between the builds, medians
# of ROUNDS (default 5); the speed-up counts the 31 inputs beyond the first (tests/bench/embed_ab.py).
# For a change's effect: build before and after (e.g. `git stash`, tests/bench/release_bin.sh) and
# copy each binary aside.
#   bash tests/bench/builds.sh BEFORE_BIN AFTER_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
BEFORE=$(realpath "${1:?usage: builds.sh BEFORE_BIN AFTER_BIN}")
AFTER=$(realpath "${2:?usage: builds.sh BEFORE_BIN AFTER_BIN}")
W=target/fullsize/ViT-B-32.safetensors
[ -e "$W" ] && [ -d target/fullsize/images ] || tests/.venv/bin/python tests/fullsize/check.py target/fullsize --models ViT-B-32
python3 tests/bench/embed_ab.py --weights "$W" --images target/fullsize/images --rounds "${ROUNDS:-5}" \
  --setup before "$BEFORE" --setup after "$AFTER"
