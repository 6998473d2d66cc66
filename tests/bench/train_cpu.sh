#!/usr/bin/env bash
# Training throughput on this machine's CPU: clip-burn (the default model's recipe, real data
# pipeline: tar shards, PNG decoding, random resized crop, tokenizing on worker threads) against
# open_clip (the same model config, batch and optimiser on synthetic tensors, no data loading),
# measured in the same run. Prints a Markdown table row for BENCHMARKS.md.
#   tests/bench/train_cpu.sh [STEPS]      needs tests/.venv (tests/fixtures/generate.sh makes it)
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS="${1:-80}"
# CLIP_BURN=path/to/clip-burn uses an existing build (any profile with optimised dependencies).
BIN=$(bash tests/bench/release_bin.sh)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BIN" synth --out "$WORK/data" --train-samples 10000 --val-samples 0 --eval-per-class 1 --formats wds 2>/dev/null
cp models/synth/model.json "$WORK/synth_tiny_rn.json"

"$BIN" --device cpu train --model "$WORK/synth_tiny_rn.json" --train-data "$WORK/data/wds/train-{0000..0001}.tar" \
  --train-num-samples 10000 --batch-size 64 --steps "$STEPS" --warmup 10 --lr 1e-3 --wd 0.1 --save-frequency 100000 \
  --logs "$WORK/logs" 2>/dev/null
# Steady state: the rate of the last 30-second window of the run.
burn=$(python3 - "$WORK/logs/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
print(f"{rows[-1]['samples_per_s']:.1f}")
PY
)
synthetic=$("$BIN" --device cpu bench train --model "$WORK/synth_tiny_rn.json" --batch 64 --steps 20 --synthetic --json)
torch=$(tests/.venv/bin/python tests/bench/train_open_clip.py --config "$WORK/synth_tiny_rn.json" --batch-size 64 --steps 20 --threads "$(nproc)" 2>/dev/null)
python3 - "$burn" "$synthetic" "$torch" "$(nproc)" <<'PY'
import json, sys
burn = float(sys.argv[1]); syn = json.loads(sys.argv[2]); ref = json.loads(sys.argv[3])
r = ref["samples_per_s"]
print(f"| `clip-burn bench train --synthetic` vs open_clip, both on random tensors | {r:.1f} | {syn['samples_per_s']:.1f} | **{syn['samples_per_s'] / r:.2f}x** |")
print(f"| `clip-burn train` on synth shards (data pipeline on the same 2 cores) vs open_clip on random tensors | {r:.1f} | {burn:.1f} | **{burn / r:.2f}x** |")
print(f"(torch {ref['torch']}, open_clip {ref['open_clip']}, {sys.argv[4]} threads)")
PY
