#!/usr/bin/env bash
# Every CUDA training check and the race with open_clip, in one run on a GPU machine (device tool;
# not CI). Each section has its own time limit and writes JSON lines to $OUT (or /tmp/gpu-out):
#   1. first-step cost: a tiny ViT `bench train` twice with the same kernel cache (cold, then warm);
#   2. the loss falls over 50 CUDA steps (fp32 and amp_bf16 + --grad-checkpointing) and AMP's first
#      loss matches fp32's;
#   3. peak memory of ViT-B-32 batch 256 amp_bf16 with and without --grad-checkpointing;
#   4. the race: ViT-B-32 batch 256 fp32 / amp_bf16 and batch 512 amp_bf16 + grad checkpointing,
#      clip-burn vs open_clip (tests/bench/train_open_clip.py, open-clip-torch from the wheels in
#      tests/gpu/wheels: no network), same settings, same run;
#   5. data parallel on CUDA: `clip-burn launch` with 2 processes on the one GPU over TCP (NCCL
#      needs one GPU per rank) gives the 1-process whole-batch curve.
# Usage: tests/gpu/train.sh PATH/TO/clip-burn(cuda release build)
# With the device tool: build here first (`CARGO_TARGET_DIR=~/.cache/clip-burn/target/cuda-release
# cargo build --release --locked -p clip-trainer --features cuda`, ~17 min on 2 cores), strip and
# gzip it to gpu-bin/clip-burn.gz (gitignored; gpu-bin/COMMIT says which commit), then run with
# carry ["gpu-bin", "tests/gpu/wheels"]:
#   gunzip -c gpu-bin/clip-burn.gz > /tmp/cb && chmod +x /tmp/cb && bash tests/gpu/train.sh /tmp/cb
set -uo pipefail
BIN=${1:?path to a clip-burn built with --features cuda}
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-/tmp/gpu-out}
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt" || true
nvrtc_dirs=$(find / -xdev \( -name 'libnvrtc.so*' -o -name 'libnvrtc-builtins.so*' -o -name 'libnccl.so*' \) -printf '%h\n' 2>/dev/null | grep -v /stubs | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$nvrtc_dirs"
export CLIP_BURN_CACHE=/tmp/clip-burn-cache
cat > /tmp/tiny_vit.json <<'JSON'
{"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
 "text_cfg": {"context_length": 32, "width": 64, "heads": 2, "layers": 2}}
JSON
bench() { # name timeout args...
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$BIN" --device cuda bench train --synthetic --json "$@" > "$OUTDIR/$name.json" 2> "$OUTDIR/$name.log"
  echo "rc $? $(cat "$OUTDIR/$name.json")"
}

echo "== 1. first step, cold then warm kernel cache"
bench tiny_cold 240 --model /tmp/tiny_vit.json --batch 64 --steps 3 --warmup-steps 1
bench tiny_warm 120 --model /tmp/tiny_vit.json --batch 64 --steps 3 --warmup-steps 1
du -sh "$CLIP_BURN_CACHE" 2>/dev/null

echo "== 2. the loss falls on CUDA; AMP's first loss matches fp32's"
"$BIN" synth --out /tmp/synth --train-samples 4000 --val-samples 0 --eval-per-class 2 --formats wds > /dev/null 2>&1
for run in "fp32" "amp_bf16 --grad-checkpointing"; do
  name=train_$(echo "$run" | tr ' -' '__')
  set -- $run
  timeout 150 "$BIN" --device cuda train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar \
    --train-num-samples 4000 --batch-size 64 --steps 50 --warmup 10 --lr 1e-3 --wd 0.1 --logs "/tmp/$name" \
    --save-frequency 1000 --precision "$@" > "$OUTDIR/$name.log" 2>&1
  echo "$name rc $?"
  cp "/tmp/$name/metrics.jsonl" "$OUTDIR/$name.metrics.jsonl" 2>/dev/null
done
python3 - "$OUTDIR" <<'PY'
import json, sys, os
out = sys.argv[1]
curves = {}
for name in ["train_fp32", "train_amp_bf16___grad_checkpointing"]:
    path = os.path.join(out, name + ".metrics.jsonl")
    rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
    curves[name] = [r["loss"] for r in rows if "loss" in r]
    c = curves[name]
    if len(c) < 10:
        print(f"{name}: only {len(c)} steps finished"); continue
    a, b = sum(c[:5]) / 5, sum(c[-5:]) / 5
    print(f"{name}: loss {a:.3f} -> {b:.3f} over {len(c)} steps: {'FALLS' if b < a - 0.3 else 'DOES NOT FALL'}")
f, m = curves["train_fp32"], curves["train_amp_bf16___grad_checkpointing"]
if f and m:
    print(f"first loss fp32 {f[0]:.4f}, amp_bf16 {m[0]:.4f}: relative difference {abs(f[0]-m[0])/f[0]:.2e} ({'OK' if abs(f[0]-m[0]) < 0.02*f[0] else 'TOO FAR'})")
PY

echo "== 3. peak memory with and without --grad-checkpointing (ViT-B-32 batch 256 amp_bf16)"
bench b32_256_amp_bf16 240 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision amp_bf16
bench b32_256_amp_bf16_ckpt 120 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision amp_bf16 --grad-checkpointing

echo "== 4. the race: clip-burn and open_clip, same settings"
bench b32_256_fp32 120 --model ViT-B-32 --batch 256 --steps 10 --warmup-steps 2 --precision fp32
bench b32_512_amp_bf16_ckpt 120 --model ViT-B-32 --batch 512 --steps 10 --warmup-steps 2 --precision amp_bf16 --grad-checkpointing
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 -m pip install -q --no-index --find-links tests/gpu/wheels --no-deps --target /tmp/ocpkgs \
    open_clip_torch ftfy wcwidth regex tqdm 2>&1 | tail -2
  oc() { # name args...
    local name=$1; shift
    PYTHONPATH="/tmp/ocpkgs:${PYTHONPATH:-}" timeout 120 python3 tests/bench/train_open_clip.py --model ViT-B-32 --device cuda \
      --steps 20 --warmup-steps 3 "$@" 2>/dev/null > "$OUTDIR/open_clip_$name.json"
    echo "open_clip $name: $(cat "$OUTDIR/open_clip_$name.json")"
  }
  oc b32_256_fp32 --batch-size 256 --precision fp32
  oc b32_256_amp_bf16 --batch-size 256 --precision amp_bf16
  oc b32_512_amp_bf16_ckpt --batch-size 512 --precision amp_bf16 --grad-checkpointing
else
  echo "no PyTorch with CUDA here: open_clip not measured"
fi

echo "== 5. two processes on CUDA (TCP) vs one with the whole batch"
for n in 1 2; do
  args=(--device cuda:0 train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar --train-num-samples 4000
        --batch-size $((64 / n)) --steps 10 --warmup 2 --lr 1e-3 --logs "/tmp/dp$n" --save-frequency 1000 --dist-backend tcp)
  if [ "$n" = 1 ]; then timeout 120 "$BIN" "${args[@]}" > "$OUTDIR/dp$n.log" 2>&1
  else timeout 120 "$BIN" launch --nproc-per-node 2 -- "${args[@]}" > "$OUTDIR/dp$n.log" 2>&1; fi
  echo "dp$n rc $?"
  cp "/tmp/dp$n/metrics.jsonl" "$OUTDIR/dp$n.metrics.jsonl" 2>/dev/null
done
python3 - "$OUTDIR" <<'PY'
import json, sys, os
load = lambda n: [json.loads(l)["loss"] for l in open(os.path.join(sys.argv[1], f"dp{n}.metrics.jsonl")) if '"loss"' in l] if os.path.exists(os.path.join(sys.argv[1], f"dp{n}.metrics.jsonl")) else []
a, b = load(1), load(2)
if a and b:
    print("data parallel: max relative loss difference over", min(len(a), len(b)), "steps:", max(abs(x - y) / x for x, y in zip(a, b)))
PY
echo "== done; results in $OUTDIR"
