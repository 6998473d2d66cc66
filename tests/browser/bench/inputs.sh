#!/usr/bin/env bash
# What the ViT-B-32 benchmarks need (scripts/bench-browser.sh, tests/bench/load.sh), made when
# missing: tests/.venv with onnx, onnxruntime-web in node_modules, target/browser-bench (the
# random-init weights as safetensors and their image tower as ONNX, from export.py), and pkg/.
# Run from the repository root.
set -euo pipefail
[ -x tests/.venv/bin/python ] || bash tests/fixtures/generate.sh
tests/.venv/bin/python -c "import onnx" 2>/dev/null || tests/.venv/bin/pip install -q onnx==1.23.2
[ -d node_modules/onnxruntime-web ] || npm install --no-audit --no-fund --no-save onnxruntime-web@1.30.0
[ -f target/browser-bench/vitb32_text_cut.onnx ] || tests/.venv/bin/python tests/browser/bench/export.py target/browser-bench
[ -f pkg/clip_wasm_bg.wasm ] && [ -f pkg-cpu/clip_wasm_bg.wasm ] && [ -f pkg-threads/clip_wasm_bg.wasm ] || bash scripts/build-wasm.sh
