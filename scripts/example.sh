#!/usr/bin/env bash
# The main job until the demo page lands: build the CLI and classify the bundled example photos.
# The bundled model is the tiny random-init open_clip fixture (tests/fixtures/vit_quickgelu.*):
# it shows the whole pipeline (decode, preprocess, tokenize, both towers, prompt ensembling),
# not meaningful predictions; point --model/--weights at real CLIP weights for those.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
cargo build --release --locked -p clip-trainer
F=tests/fixtures
"$CARGO_TARGET_DIR/release/clip-burn" classify \
  --model "$F/vit_quickgelu.json" --weights "$F/vit_quickgelu.safetensors" \
  --image "$F/images/chelsea.jpg" --image "$F/images/coffee.webp" --image "$F/images/astronaut.png" \
  --labels "cat,cup of coffee,astronaut,rocket" --templates imagenet --top 4 "$@"
