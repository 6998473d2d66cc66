#!/usr/bin/env bash
# Every test of clip-burn, on a fresh machine: installs what the tests need, then runs
#   1. the whole workspace on the CPU (flex backend): unit, parity, tokenizer, preprocessing, CLI tests;
#   2. the model parity tests and a few training steps on the wgpu backend, on lavapipe (Mesa's CPU Vulkan driver);
#   3. the npm package (wasm) in headless Chromium, CPU and WebGPU (SwiftShader).
# The one native build has the CUDA backend compiled in (offline, see vendor/cubecl-llvm; no GPU
# here, so its tests take the no-driver path): CUDA code is built and linked on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outputs live outside the clone so later runs reuse them; nothing depends on the cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TERM_COLOR=never
# The vendored crates are content-addressed (their versions carry a hash of their files): with their
# files' times settled, a new clone reuses the cached burn stack built from the same vendored code
# instead of rebuilding it (~21 minutes on 2 cores). Refuses a stale stamp; its own tests first.
echo "== vendored crates: content stamps (scripts/vendored.py)"
python3 scripts/vendored_test.py
python3 scripts/vendored.py settle

# Debian packages for steps 2 and 3, installed while step 1 compiles.
need_apt=()
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
ldconfig -p | grep -q libvulkan.so.1 || need_apt+=(libvulkan1)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
apt_pid=
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt, in the background)"
  apt_log=$(mktemp)
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq "${need_apt[@]}") >"$apt_log" 2>&1 &
  apt_pid=$!
fi
apt_done() {
  [ -z "$apt_pid" ] && return 0
  wait "$apt_pid" || { cat "$apt_log"; echo "apt-get install ${need_apt[*]} failed"; exit 1; }
  apt_pid=
}

# One build serves every native step: the CPU (flex) tests, on the same binaries the wgpu ones,
# and the CLI the browser tests compare with. scripts/test-browser.sh names the same features.
FEATURES=(--features clip-model/wgpu,clip-trainer/wgpu,clip-trainer/cuda)

# Like scripts/build-wasm.sh's SIMD128 check: gemm's AVX-512 micro-kernels come with burn's
# `x86-v4` feature (shared-model/Cargo.toml); without it matmuls stop at AVX2 on AVX-512 CPUs
# (1.8x slower embedding, tests/bench/builds.sh in BENCHMARKS.md) and every test still passes.
if ! cargo tree --locked "${FEATURES[@]}" -p clip-trainer -e features -i gemm --depth 1 | grep -q 'gemm feature "x86-v4"'; then
  echo "native builds would skip gemm's AVX-512 kernels: gemm's x86-v4 is off (burn's x86-v4 feature, shared-model/Cargo.toml)" >&2
  exit 1
fi

echo "== CPU: cargo test (clip-model, clip-trainer)"
cargo test --locked "${FEATURES[@]}"

apt_done
echo "== wgpu (lavapipe): model parity, training steps, the vendored cubek kernels, the hand-written backward passes"
# `--test train` keeps clip-trainer in the build: without it cargo would resolve burn without the
# trainer's features (optim, autodiff) and rebuild burn from scratch. Its tests that pin
# `--device cpu` run again (seconds); `training_runs_on_the_test_device` trains on wgpu.
# cubek_patches runs the reduction and matmul routines CUDA takes without autotune; backward
# checks the hand-written LayerNorm and attention backward passes through burn's fusion.
VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json CLIP_TEST_DEVICE=wgpu \
  cargo test --locked "${FEATURES[@]}" --test parity --test train --test cubek_patches --test backward

echo "== browser: the npm package in headless Chromium"
bash scripts/test-browser.sh
