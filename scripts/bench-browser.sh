#!/usr/bin/env bash
# Browser benchmark (not in CI): ViT-B-32 image encoding in headless Chromium, clip-burn vs
# onnxruntime-web on the same weights. Needs tests/.venv (tests/fixtures/generate.sh) for the
# torch ONNX export. Writes the browser section of BENCHMARKS.md (BACKENDS=cpu or webgpu: one pair,
# printed only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/browser/bench/inputs.sh
CHROMIUM_VERSION="$(/usr/bin/chromium --version)" node tests/browser/bench/run.js
