#!/usr/bin/env bash
# Rebuilds the default model (models/synth/) from nothing: the synthetic data set, training from
# scratch on the CPU with models/synth/train.toml, the f16 burnpack, the bundled examples.
#   scripts/train-default-model.sh            # about 20 minutes on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
cargo build --locked -p clip-trainer
BIN="$CARGO_TARGET_DIR/debug/clip-burn"
M=models/synth

"$BIN" synth --out data/synth
rm -rf logs/synth
/usr/bin/time -f "training took %e s" "$BIN" --device cpu train --config $M/train.toml
"$BIN" convert --weights logs/synth/final.bpk --out $M/clip-synth.bpk --dtype f16
"$BIN" plot logs/synth --out $M/curves.png
cp logs/synth/metrics.jsonl $M/metrics.jsonl
cp data/synth/zero-shot/classnames.txt data/synth/zero-shot/templates.txt $M/

# Examples: one new picture of each held-out pair (a seed the evaluation split did not use).
rm -rf data/examples $M/examples && mkdir -p $M/examples
"$BIN" synth --out data/examples --seed 7 --train-samples 0 --val-samples 0 --eval-per-class 1 --formats wds
for dir in data/examples/zero-shot/*/; do
  name=$(basename "$dir"); cp "$dir/0000.png" "$M/examples/${name#*_}.png"
done
"$BIN" --device cpu eval zero-shot --weights $M/clip-synth.bpk --data data/synth/zero-shot
