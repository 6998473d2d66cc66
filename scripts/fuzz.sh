#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with libFuzzer (cargo-fuzz), then minimises the corpus
# that native-trainer/tests/fuzz_corpus.rs replays in the ordinary tests.
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS per target, default 180]
#
# Targets (fuzz/fuzz_targets/): weights (format detection, safetensors and burnpack readers, the
# model load), pytorch (torch.save zips and pickles), image (decode + preprocessing), text
# (tokenizer with cleaning), config (model-config JSON), shard (webdataset tar), table (TSV),
# pattern (shard brace patterns). Each input runs in-process with libFuzzer's allocation limit:
# one allocation over 2 GiB (-malloc_limit_mb) is a finding, as is a panic or a 20 s hang.
# Findings land in fuzz/artifacts/TARGET/; `cargo +NIGHTLY fuzz run TARGET FILE` replays one.
#
# Needs a nightly toolchain (sanitizer-coverage flags) and cargo-fuzz; both are installed here,
# pinned. The build is instrumented (a second build of burn, ~25 min on 2 cores, cached in
# fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

NIGHTLY=$(cat scripts/nightly-toolchain) # the project's one pinned nightly (build-wasm.sh takes it too)
CARGO_FUZZ=0.13.2
TARGETS=(weights pytorch image text config shard table pattern)
which=${1:-all}
seconds=${2:-180}
case "$which" in
  all) targets=("${TARGETS[@]}") ;;
  *) [[ " ${TARGETS[*]} " == *" $which "* ]] || { echo "unknown target $which (one of: ${TARGETS[*]}, all)" >&2; exit 2; }
     targets=("$which") ;;
esac
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive whole number, got $seconds" >&2; exit 2; }

rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ$" || cargo install --locked --force cargo-fuzz --version "$CARGO_FUZZ"

# Seeds: small valid files of every format (a burnpack through the CLI).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
clip_burn="${CLIP_BURN:-$CARGO_TARGET_DIR/debug/clip-burn}"
[ -x "$clip_burn" ] || cargo build --locked -p clip-trainer
rm -rf fuzz/seeds
python3 fuzz/seeds.py "$clip_burn"

# The instrumented build lives apart from the tests' (other flags, other toolchain).
export CARGO_TARGET_DIR="$PWD/fuzz/target"
# The longest input per target: room for a whole valid file of the seeds' kind (a complete
# state dict of the fuzz entry points' tiny model is a few KB), and a corpus that stays small.
max_len() {
  case "$1" in
    weights | pytorch) echo 16384 ;;
    shard) echo 8192 ;;
    image | config) echo 4096 ;;
    table) echo 2048 ;;
    text) echo 1024 ;;
    pattern) echo 256 ;;
  esac
}
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  limits=(-max_len="$(max_len "$target")" -malloc_limit_mb=2048 -rss_limit_mb=4096)
  echo "== fuzzing $target for $seconds s"
  cargo "+$NIGHTLY" fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    "${limits[@]}" -max_total_time="$seconds" -timeout=20 -print_final_stats=1
  # Every edge covered, hit counts not told apart (-use_counters=0): half the files.
  echo "== minimising fuzz/corpus/$target"
  cargo "+$NIGHTLY" fuzz cmin "$target" "fuzz/corpus/$target" -- "${limits[@]}" -use_counters=0
done
du -sh fuzz/corpus
