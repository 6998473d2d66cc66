#!/usr/bin/env bash
# CUDA training checks and the first race with open_clip, on a GPU machine (device tool; not CI):
#   1. `clip-burn bench train --synthetic` ViT-B-32 batch 256 fp32 on CUDA;
#   2. open_clip's step at the same settings (tests/bench/train_open_clip.py), when torch is
#      present; open-clip-torch comes from the wheels carried in tests/gpu/wheels (no network);
#   3. `clip-burn train --device cuda` on synth data: the loss falls over 50 steps.
# Usage: tests/gpu/train.sh PATH/TO/clip-burn(cuda build)   -> JSON lines in $OUT (or /tmp)
set -uo pipefail
BIN=${1:?path to a clip-burn built with --features cuda}
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvrtc_dirs=$(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libnvrtc-builtins.so*' \) -printf '%h\n' 2>/dev/null | grep -v /stubs | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$nvrtc_dirs"

echo "== 1. clip-burn bench train ViT-B-32 batch 256 fp32 (CUDA)"
timeout 300 "$BIN" --device cuda bench train --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --synthetic --json \
  | tee "$OUTDIR/clip_burn_vitb32_256_fp32.json"

echo "== 2. open_clip at the same settings"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 -m pip install -q --no-index --find-links tests/gpu/wheels --no-deps --target /tmp/ocpkgs \
    open_clip_torch ftfy wcwidth regex tqdm 2>&1 | tail -2
  for precision in fp32 amp_bf16; do
    PYTHONPATH="/tmp/ocpkgs:${PYTHONPATH:-}" timeout 120 python3 tests/bench/train_open_clip.py --model ViT-B-32 \
      --device cuda --batch-size 256 --steps 20 --warmup-steps 3 --precision $precision 2>/dev/null \
      | tee "$OUTDIR/open_clip_vitb32_256_$precision.json"
  done
else
  echo "no PyTorch with CUDA here: open_clip not measured"
fi

echo "== 3. loss falls on CUDA (synth, a tiny ViT, 50 steps; minimal autotune)"
"$BIN" synth --out /tmp/synth --train-samples 4000 --val-samples 0 --eval-per-class 2 --formats wds 2>/dev/null
start=$(date +%s)
cat > /tmp/tiny_vit.json <<'JSON'
{"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
 "text_cfg": {"context_length": 32, "width": 64, "heads": 2, "layers": 2}}
JSON
CUBECL_AUTOTUNE_LEVEL=minimal timeout 150 "$BIN" --device cuda train --model /tmp/tiny_vit.json --train-data '/tmp/synth/wds/train-0000.tar' \
  --train-num-samples 4000 --batch-size 64 --steps 50 --warmup 10 --lr 1e-3 --wd 0.1 --logs /tmp/cuda-run \
  --save-frequency 1000 --zeroshot-data /tmp/synth/zero-shot 2>&1 | grep -v "steps \[" | tail -3
echo "train: $(( $(date +%s) - start )) s"
cp /tmp/cuda-run/metrics.jsonl "$OUTDIR/cuda_train_metrics.jsonl" 2>/dev/null || touch /tmp/cuda-run/metrics.jsonl
python3 - /tmp/cuda-run/metrics.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
if len(rows) < 10:
    sys.exit(f"only {len(rows)} training steps finished: cannot tell whether the loss falls")
a = sum(r["loss"] for r in rows[:5]) / 5; b = sum(r["loss"] for r in rows[-5:]) / 5
print(f"loss first 5 steps {a:.3f} -> last 5 {b:.3f}: {'FALLS' if b < a - 0.3 else 'DOES NOT FALL'}")
PY

