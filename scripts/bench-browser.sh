#!/usr/bin/env bash
# Browser benchmarks (not in CI), in headless Chromium: ViT-B-32 image encoding, clip-burn vs
# onnxruntime-web on the same weights (tests/browser/bench/run.js: the browser section of
# BENCHMARKS.md; BACKENDS=cpu or webgpu: one pair, printed only), and the lighter models of issue
# 30 (tests/browser/bench/weights.js: f32/f16/int8 file sizes and load times, first visit and
# cached, int8 vs f16 latency, embedImages vs embedImage; its own section; ONLY=sizes,loads,tower,batch
# runs parts, printed only). WHAT=ort or WHAT=weights runs one of the two. Needs tests/.venv
# (tests/fixtures/generate.sh) for the torch ONNX export, and the native CLI (CLIP_BURN_BIN) for
# the burnpacks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
export CLIP_BURN_BIN="${CLIP_BURN_BIN:-$CARGO_TARGET_DIR/debug/clip-burn}"
bash tests/browser/bench/inputs.sh
export CHROMIUM_VERSION="$(/usr/bin/chromium --version 2>/dev/null)"
case "${WHAT:-all}" in
  ort) node tests/browser/bench/run.js ;;
  weights) node tests/browser/bench/weights.js ;;
  all) node tests/browser/bench/run.js && node tests/browser/bench/weights.js ;;
  *) echo "WHAT must be ort, weights or all, got $WHAT" >&2; exit 2 ;;
esac
