#!/usr/bin/env bash
# The npm package's, the demo page's and the consumer apps' tests in headless Chromium: builds pkg/, installs Debian's
# chromium and the npm dependencies when missing, builds the native CLI when missing (the demo test
# compares with `clip-burn classify`), then runs Node's test runner over tests/browser/ and tests/apps/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
export CLIP_BURN_BIN="${CLIP_BURN_BIN:-$CARGO_TARGET_DIR/debug/clip-burn}"
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund
[ -e web/node_modules/clip-burn ] || (cd web && npm ci --no-audit --no-fund --offline)
if [ ! -x "$CLIP_BURN_BIN" ]; then
  echo "== building the native CLI ($CLIP_BURN_BIN)"
  # The features of test.sh's first step: the same build, burn not rebuilt.
  cargo build --locked --features clip-model/wgpu,clip-trainer/wgpu,clip-trainer/cuda
fi
bash scripts/build-wasm.sh
# tests/apps/: the packed package in Vite, webpack and plain-page apps (their tools from
# tests/apps/package-lock.json, through the npm cache after the first run).
node --test --test-concurrency=1 tests/browser/ tests/apps/
