#!/usr/bin/env bash
# CUDA parity on a GPU machine (run through the device tool; not in CI): a `clip-burn` built with
# `--features cuda` embeds the committed fixtures on CUDA, and the features are compared with
# open_clip's reference (tests/fixtures/*_io.safetensors) by tests/gpu/compare.py.
# Usage: tests/gpu/check.sh PATH/TO/clip-burn
set -euo pipefail
BIN=${1:?path to a clip-burn built with --features cuda}
cd "$(dirname "$0")/../.."
F=tests/fixtures
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# NVRTC (CUDA C++ runtime compiler) must be loadable: the toolkit's lib64 or a pip wheel's.
source tests/gpu/cuda-libs.sh
echo "NVRTC/NCCL found in: ${cuda_lib_dirs:-nowhere}"
mapfile -t PROMPTS < tests/gpu/prompts.txt
for model in vit_quickgelu vit_gelu rn; do
  args=()
  # Only vit_quickgelu has CLIP's real 49408-token vocabulary; the others embed images only.
  if [ $model = vit_quickgelu ]; then for p in "${PROMPTS[@]}"; do args+=(--text "$p"); done; fi
  for dev in cuda cpu; do
    start=$(date +%s%N)
    "$BIN" --device $dev embed --model $F/$model.json --weights $F/$model.safetensors \
      --image $F/images/astronaut.png --image $F/images/coffee.webp "${args[@]}" > /tmp/$model.$dev.json
    echo "$model on $dev: $(( ($(date +%s%N) - start) / 1000000 )) ms (process, load included)"
  done
  python3 tests/gpu/compare.py /tmp/$model.cuda.json /tmp/$model.cpu.json
done
