#!/usr/bin/env bash
# Every test of clip-burn, on a fresh machine: installs what the tests need, then runs
#   1. the whole workspace on the CPU (flex backend): unit, parity, tokenizer, preprocessing, CLI tests;
#   2. the model parity tests and a few training steps on the wgpu backend, on lavapipe (Mesa's CPU Vulkan driver);
#   3. a check that the CUDA build compiles offline (no GPU here; see vendor/cubecl-llvm);
#   4. the npm package (wasm) in headless Chromium, CPU and WebGPU (SwiftShader).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outputs live outside the clone so later runs reuse them; nothing depends on the cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TERM_COLOR=never

need_apt=()
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
ldconfig -p | grep -q libvulkan.so.1 || need_apt+=(libvulkan1)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# One build serves both backends: the CPU (flex) tests and, on the same binaries, the wgpu ones.
FEATURES=(--features clip-model/wgpu,clip-trainer/wgpu)

echo "== CPU: cargo test (clip-model, clip-trainer)"
cargo test --locked "${FEATURES[@]}"

echo "== wgpu (lavapipe): model parity, and training steps"
# `--test train` keeps clip-trainer in the build: without it cargo would resolve burn without the
# trainer's features (optim, autodiff) and rebuild burn from scratch. Its tests that pin
# `--device cpu` run again (seconds); `training_runs_on_the_test_device` trains on wgpu.
VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json CLIP_TEST_DEVICE=wgpu \
  cargo test --locked "${FEATURES[@]}" --test parity --test train

echo "== CUDA: offline build check"
# Its own target dir: the cuda features rebuild burn's whole stack, kept apart from the test build.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/cuda-check" cargo check --locked -p clip-trainer --features cuda

echo "== browser: the npm package in headless Chromium"
bash scripts/test-browser.sh
