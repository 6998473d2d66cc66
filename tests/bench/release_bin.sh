#!/usr/bin/env bash
# Prints the path of the clip-burn the CPU benchmarks time: $CLIP_BURN when set, else the release
# build (`cargo build --release -p clip-trainer`, made or refreshed here; its messages go to stderr).
#   BIN=$(bash tests/bench/release_bin.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${CLIP_BURN:-}" ]; then
  echo "$CLIP_BURN"
  exit
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
cargo build --release --locked -p clip-trainer >&2
echo "$CARGO_TARGET_DIR/release/clip-burn"
