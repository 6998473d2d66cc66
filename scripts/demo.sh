#!/usr/bin/env bash
# The main command: builds what the demo page needs (the npm package's wasm via
# scripts/build-wasm.sh, the native CLI that writes the default model's int8 file, the page in
# web/dist with the default model) and serves it on http://127.0.0.1:8080/ (PORT=... for another
# port). Needs no network once the toolchain is in.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
export CLIP_BURN_BIN="${CLIP_BURN_BIN:-$CARGO_TARGET_DIR/debug/clip-burn}"
bash scripts/build-wasm.sh
if [ ! -x "$CLIP_BURN_BIN" ]; then
  # web/build.js converts the default model to int8 with it (clip-burn convert --dtype int8).
  # The features of scripts/test-browser.sh's build: one build of the CLI serves both.
  echo "== building the native CLI ($CLIP_BURN_BIN)"
  cargo build --locked --features clip-model/wgpu,clip-trainer/wgpu,clip-trainer/cuda
fi
[ -e web/node_modules/clip-burn ] || (cd web && npm ci --no-audit --no-fund --offline)
node web/build.js
exec node web/serve.js
