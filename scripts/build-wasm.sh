#!/usr/bin/env bash
# Builds the npm package's WebAssembly part into pkg/: installs the wasm32 target and
# wasm-bindgen-cli at the exact version of Cargo.lock, compiles wasm/ with SIMD128, generates the
# ES-module bindings (name section stripped); WASM_OPT=1 also runs wasm-opt (npm's binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version$"; then
  echo "== installing wasm-bindgen-cli $version (cargo install; a few minutes, once)"
  # --locked first; its lockfile can name a since-yanked crate, then resolve afresh. --force: cargo's
  # record of installed crates may name a binary that is no longer there (or another version).
  cargo install --force --locked wasm-bindgen-cli --version "$version" || cargo install --force wasm-bindgen-cli --version "$version"
fi

# +simd128 alone leaves the CPU kernels scalar: gemm's and flex's SIMD128 code comes with burn's
# `simd` feature (shared-model/Cargo.toml), which ran 3.7x faster in the browser (BENCHMARKS.md).
if ! cargo tree --locked --target wasm32-unknown-unknown -p clip-wasm -e features -i gemm --depth 1 | grep -q 'gemm feature "wasm-simd128-enable"'; then
  echo "the wasm build would run scalar CPU kernels: gemm's wasm-simd128-enable is off (burn's simd feature, shared-model/Cargo.toml)" >&2
  exit 1
fi

echo "== cargo build clip-wasm (wasm32, simd128)"
RUSTFLAGS="-C target-feature=+simd128 --cfg getrandom_backend=\"wasm_js\"" \
  cargo build --locked --profile wasm-release --target wasm32-unknown-unknown -p clip-wasm

rm -rf pkg && mkdir -p pkg
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir pkg "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/clip_wasm.wasm"

# wasm-opt (npm's binaryen) is opt-in: on this 36 MB module -Oz ran 7 minutes on 2 cores and
# did not shrink the gzipped size (7.2 vs 7.1 MB). WASM_OPT=1 runs it.
if [ "${WASM_OPT:-0}" = 1 ]; then
  [ -x node_modules/.bin/wasm-opt ] || npm install --no-audit --no-fund >/dev/null
  echo "== wasm-opt -Oz"
  node_modules/.bin/wasm-opt -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    pkg/clip_wasm_bg.wasm -o pkg/clip_wasm_bg.opt.wasm
  mv pkg/clip_wasm_bg.opt.wasm pkg/clip_wasm_bg.wasm
fi
raw=$(stat -c %s pkg/clip_wasm_bg.wasm)
gz=$(gzip -9 -c pkg/clip_wasm_bg.wasm | wc -c)
echo "pkg/clip_wasm_bg.wasm: $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzipped"
