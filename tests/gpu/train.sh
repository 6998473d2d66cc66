#!/usr/bin/env bash
# Every CUDA training check and the race with open_clip, in one run on a GPU machine (device tool;
# not CI), inside one time budget (BUDGET seconds, default 500: the device tool allows 600 per call
# and 15 minutes per session). Sections run most-informative first; each gets what is left of the
# budget (capped), and a section that cannot fit is skipped and says so:
#   1. open_clip's baselines (tests/bench/train_open_clip.py, open-clip-torch from the wheels in
#      tests/gpu/wheels: no network): ViT-B-32 batch 256 amp_bf16 / fp32, batch 512 amp_bf16 +
#      grad checkpointing;
#   2. the first step's cost: a tiny ViT `bench train` twice with one kernel cache (cold, then
#      warm), the cold run with cubecl's compilation/autotune log (cubecl-cold.log.gz);
#   3. the race and peak memory: ViT-B-32 batch 256 amp_bf16 without and with
#      --grad-checkpointing;
#   4. the loss falls over 50 CUDA steps (fp32 and amp_bf16 + --grad-checkpointing) and AMP's
#      first loss matches fp32's;
#   5. the rest of the race: batch 256 fp32, batch 512 amp_bf16 + --grad-checkpointing;
#   6. data parallel on CUDA: `clip-burn launch` with 2 processes on the one GPU over TCP (NCCL
#      needs one GPU per rank) gives the 1-process whole-batch curve.
# Results: JSON and logs in $OUT (or /tmp/gpu-out), and a summary table at the end (summary.txt).
# Usage: tests/gpu/train.sh PATH/TO/clip-burn(cuda release build)
# With the device tool: build here first (`CARGO_TARGET_DIR=~/.cache/clip-burn/target/cuda-release
# cargo build --release --locked -p clip-trainer --features cuda`, ~17 min on 2 cores), strip and
# gzip it to gpu-bin/clip-burn.gz (gitignored; gpu-bin/COMMIT says which commit), then run with
# carry ["gpu-bin", "tests/gpu/wheels"] and timeout_s 580:
#   gunzip -c gpu-bin/clip-burn.gz > /tmp/cb && chmod +x /tmp/cb && bash tests/gpu/train.sh /tmp/cb
set -uo pipefail
BIN=${1:?path to a clip-burn built with --features cuda}
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-/tmp/gpu-out}
mkdir -p "$OUTDIR"
DEADLINE=$((SECONDS + ${BUDGET:-500}))
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt" || true
nvrtc_dirs=$(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libnvrtc-builtins.so*' -o -name 'libnccl.so*' \) -printf '%h\n' 2>/dev/null | grep -v /stubs | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$nvrtc_dirs"
export CLIP_BURN_CACHE=/tmp/clip-burn-cache
cat > /tmp/tiny_vit.json <<'JSON'
{"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
 "text_cfg": {"context_length": 32, "width": 64, "heads": 2, "layers": 2}}
JSON

# `slot CAP`: seconds for the next command (CAP, or what is left less a 15 s reserve); fails
# (and the caller skips) below 30 s.
slot() {
  local left=$((DEADLINE - SECONDS - 15))
  [ "$left" -lt 30 ] && return 1
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
skipped() { echo "SKIPPED $1: out of time budget" | tee -a "$OUTDIR/skipped.txt"; }
bench() { # name cap args...
  local name=$1 limit; limit=$(slot "$2") || { skipped "$name"; return; }; shift 2
  echo "== clip-burn $name (limit ${limit} s)"
  timeout "$limit" "$BIN" --device cuda bench train --synthetic --json "$@" > "$OUTDIR/$name.json" 2> "$OUTDIR/$name.log"
  echo "rc $? $(cat "$OUTDIR/$name.json")"
}

echo "== 1. open_clip baselines"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 -m pip install -q --no-index --find-links tests/gpu/wheels --no-deps --target /tmp/ocpkgs \
    open_clip_torch ftfy wcwidth regex tqdm 2>&1 | tail -2
  python3 -c "import torch; print('torch', torch.__version__)" | tee "$OUTDIR/torch.txt"
  oc() { # name args...
    local name=$1 limit; limit=$(slot 60) || { skipped "open_clip_$name"; return; }; shift
    PYTHONPATH="/tmp/ocpkgs:${PYTHONPATH:-}" timeout "$limit" python3 tests/bench/train_open_clip.py --model ViT-B-32 --device cuda \
      --steps 20 --warmup-steps 3 "$@" 2> "$OUTDIR/open_clip_$name.log" > "$OUTDIR/open_clip_$name.json"
    echo "open_clip $name: $(cat "$OUTDIR/open_clip_$name.json")"
  }
  oc b32_256_amp_bf16 --batch-size 256 --precision amp_bf16
  oc b32_256_fp32 --batch-size 256 --precision fp32
  oc b32_512_amp_bf16_ckpt --batch-size 512 --precision amp_bf16 --grad-checkpointing
else
  echo "no PyTorch with CUDA here: open_clip not measured" | tee "$OUTDIR/torch.txt"
fi

echo "== 2. first step, cold then warm kernel cache"
CUBECL_DEBUG_LOG=/tmp/cubecl-cold.log bench tiny_cold 200 --model /tmp/tiny_vit.json --batch 64 --steps 3 --warmup-steps 1
[ -f /tmp/cubecl-cold.log ] && head -c 50000000 /tmp/cubecl-cold.log | gzip -c > "$OUTDIR/cubecl-cold.log.gz"
bench tiny_warm 60 --model /tmp/tiny_vit.json --batch 64 --steps 3 --warmup-steps 1
du -sh "$CLIP_BURN_CACHE" 2>/dev/null | tee "$OUTDIR/kernel-cache-size.txt"

echo "== 3. the race and peak memory: ViT-B-32 batch 256 amp_bf16, without and with --grad-checkpointing"
bench b32_256_amp_bf16 150 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision amp_bf16
bench b32_256_amp_bf16_ckpt 90 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision amp_bf16 --grad-checkpointing

echo "== 4. the loss falls on CUDA; AMP's first loss matches fp32's"
"$BIN" synth --out /tmp/synth --train-samples 4000 --val-samples 0 --eval-per-class 2 --formats wds > /dev/null 2>&1
for run in "fp32" "amp_bf16 --grad-checkpointing"; do
  name=train_$(echo "$run" | tr ' -' '__')
  limit=$(slot 60) || { skipped "$name"; continue; }
  set -- $run
  timeout "$limit" "$BIN" --device cuda train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar \
    --train-num-samples 4000 --batch-size 64 --steps 50 --warmup 10 --lr 1e-3 --wd 0.1 --logs "/tmp/$name" \
    --save-frequency 1000 --precision "$@" > "$OUTDIR/$name.log" 2>&1
  echo "$name rc $?"
  cp "/tmp/$name/metrics.jsonl" "$OUTDIR/$name.metrics.jsonl" 2>/dev/null
done

echo "== 5. the rest of the race"
bench b32_256_fp32 90 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision fp32
bench b32_512_amp_bf16_ckpt 90 --model ViT-B-32 --batch 512 --steps 10 --warmup-steps 2 --precision amp_bf16 --grad-checkpointing

echo "== 6. two processes on CUDA (TCP) vs one with the whole batch"
for n in 1 2; do
  limit=$(slot 60) || { skipped "dp$n"; continue; }
  args=(--device cuda:0 train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar --train-num-samples 4000
        --batch-size $((64 / n)) --steps 10 --warmup 2 --lr 1e-3 --logs "/tmp/dp$n" --save-frequency 1000 --dist-backend tcp)
  if [ "$n" = 1 ]; then timeout "$limit" "$BIN" "${args[@]}" > "$OUTDIR/dp$n.log" 2>&1
  else timeout "$limit" "$BIN" launch --nproc-per-node 2 -- "${args[@]}" > "$OUTDIR/dp$n.log" 2>&1; fi
  echo "dp$n rc $?"
  cp "/tmp/dp$n/metrics.jsonl" "$OUTDIR/dp$n.metrics.jsonl" 2>/dev/null
done

python3 tests/gpu/summary.py "$OUTDIR" | tee "$OUTDIR/summary.txt"
echo "== done in $SECONDS s; results in $OUTDIR"
