#!/usr/bin/env bash
# Kernel launches of one training step (ViT-B-32 unless MODEL says, batch 2, fp32) on wgpu through lavapipe, by kernel
# family, from cubecl's profiling log (tests/gpu/kernels.py). Launch counts do not depend on the
# device or the batch size: what a change saves in launches here, it saves on a GPU (the times
# are lavapipe's, not a GPU's). Needs a build with `--features clip-trainer/wgpu` (scripts/test.sh
# makes one) and lavapipe (mesa-vulkan-drivers; scripts/test.sh installs it). ~4 minutes.
#
# Usage: [MODEL=RN50] [PRECISION=amp] scripts/kernel-count.sh [CLIP_BURN_BINARY]
#   MODEL: a `--model` (default ViT-B-32).
#   PRECISION: a `--precision` (default fp32). The race runs amp_bf16; lavapipe has no bf16, so
#   count mixed precision with `amp` (f16: the same casts and kernels; its first step compiles
#   for minutes more).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}/debug/clip-burn}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '[profiling.logger]\nlevel = "basic"\nstderr = true\n' > "$dir/cubecl.toml"
(cd "$dir" && XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$dir}" VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json \
  "$bin" bench train --model "${MODEL:-ViT-B-32}" --synthetic --device wgpu --batch 2 --steps 1 --warmup-steps 1 \
  --precision "${PRECISION:-fp32}" 2> profile.log)
python3 tests/gpu/kernels.py "$dir/profile.log"
