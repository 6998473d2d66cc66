#!/usr/bin/env bash
# Builds the npm package's three WebAssembly modules, of which a page fetches one: pkg/ (WebGPU,
# and a CPU fallback when the GPU is lost), pkg-cpu/ (the CPU path on one thread, without the
# WebGPU runtime: less than half the download) and pkg-threads/ (the CPU path on a pool of Web
# Workers: wasm atomics and shared memory). Installs
# the wasm32 target, wasm-bindgen-cli at the exact version of Cargo.lock and, for pkg-threads/, the
# pinned nightly with rust-src (a std built with atomics: stable's prebuilt wasm32 std has none);
# compiles wasm/ with SIMD128, generates the ES-module bindings (name section stripped);
# WASM_OPT=1 also runs wasm-opt (npm's binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The project's one pinned nightly (scripts/fuzz.sh takes it too), for `-Z build-std`.
NIGHTLY=$(cat scripts/nightly-toolchain)
if ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "== installing $NIGHTLY with rust-src (rustup; the threaded module's std is built with atomics)"
  rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src --target wasm32-unknown-unknown
fi
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

rm -rf pkg pkg-cpu pkg-threads && mkdir -p pkg pkg-cpu pkg-threads
# Each module as cargo wrote it (names kept) goes to $CARGO_TARGET_DIR/wasm-modules/ too, for
# `scripts/wasm-sizes.py` (what is in it, by crate).
mkdir -p "$CARGO_TARGET_DIR/wasm-modules"
bindgen() { # out-dir, module
  cp "$2" "$CARGO_TARGET_DIR/wasm-modules/$1.wasm"
  wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$1" "$2"
}

# pkg/ and pkg-cpu/: the same flags, other features (one target dir: the crates whose features
# agree are built once; the module file is overwritten, so each is bound right after its build).
for module in pkg pkg-cpu; do
  features=(); [ "$module" = pkg-cpu ] && features=(--no-default-features)
  echo "== cargo build clip-wasm ${features[*]} (wasm32, simd128) -> $module/"
  RUSTFLAGS="-C target-feature=+simd128 --cfg getrandom_backend=\"wasm_js\"" \
    cargo build --locked --profile wasm-release --target wasm32-unknown-unknown -p clip-wasm "${features[@]}"
  bindgen "$module" "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/clip_wasm.wasm"
done

# Its own target dir: other RUSTFLAGS and std would otherwise rebuild the first module's crates
# each time. The memory is imported and shared (the pool workers instantiate the module on it),
# may grow to 4 GiB (ViT-B-32's f32 weights alone are 0.6 GB, held twice while a model loads), and
# the thread-local storage symbols are exported for wasm-bindgen's per-thread start.
echo "== cargo build clip-wasm --features threads (wasm32, simd128, atomics; $NIGHTLY, build-std)"
link="-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296"
for symbol in __wasm_init_tls __tls_size __tls_align __tls_base; do link+=" -C link-arg=--export=$symbol"; done
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/threads" \
RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+simd128 $link --cfg getrandom_backend=\"wasm_js\"" \
  cargo "+$NIGHTLY" build --locked -Z build-std=panic_abort,std --profile wasm-release --target wasm32-unknown-unknown \
    -p clip-wasm --no-default-features --features threads

bindgen pkg-threads "$CARGO_TARGET_DIR/threads/wasm32-unknown-unknown/wasm-release/clip_wasm.wasm"

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
for m in pkg/clip_wasm_bg.wasm pkg-cpu/clip_wasm_bg.wasm pkg-threads/clip_wasm_bg.wasm; do
  raw=$(stat -c %s "$m")
  gz=$(gzip -9 -c "$m" | wc -c)
  echo "$m: $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzipped"
done
