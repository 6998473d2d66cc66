#!/usr/bin/env bash
# The command-line example (the main command is scripts/demo.sh, the demo page): build the CLI
# and classify the bundled example pictures with the default model (models/synth/clip-synth.bpk,
# a small CLIP this project trained from scratch on its synthetic shapes data; the pictures show
# colour-shape pairs it never saw in training). Point --model/--weights at real CLIP weights and
# --image at photos for real use.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
cargo build --release --locked -p clip-trainer
M=models/synth
images=()
for f in "$M"/examples/*.png; do images+=(--image "$f"); done
templates=()
while IFS= read -r t; do [ -n "$t" ] && templates+=(--template "$t"); done < "$M/templates.txt"
"$CARGO_TARGET_DIR/release/clip-burn" --device cpu classify --weights "$M/clip-synth.bpk" \
  --labels-file "$M/classnames.txt" "${templates[@]}" "${images[@]}" --top 3 "$@"
