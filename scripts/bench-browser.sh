#!/usr/bin/env bash
# Browser benchmark (not in CI): ViT-B-32 image encoding in headless Chromium, clip-burn vs
# onnxruntime-web on the same weights. Needs tests/.venv (tests/fixtures/generate.sh) for the
# torch ONNX export. Writes the browser section of BENCHMARKS.md (BACKENDS=cpu or webgpu: one pair,
# printed only).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x tests/.venv/bin/python ] || bash tests/fixtures/generate.sh
tests/.venv/bin/python -c "import onnx" 2>/dev/null || tests/.venv/bin/pip install -q onnx==1.23.2
[ -d node_modules/onnxruntime-web ] || npm install --no-audit --no-fund --no-save onnxruntime-web@1.30.0
[ -f target/browser-bench/vitb32_visual.onnx ] || tests/.venv/bin/python tests/browser/bench/export.py target/browser-bench
[ -f pkg/clip_wasm_bg.wasm ] || bash scripts/build-wasm.sh
CHROMIUM_VERSION="$(/usr/bin/chromium --version)" node tests/browser/bench/run.js
