#!/usr/bin/env bash
# Every CUDA training check and the race with open_clip, in one run on a GPU machine (device tool;
# not CI), inside one time budget (BUDGET seconds, default 520: the device tool allows 600 per call
# and 15 minutes per session, machine start included). Sections run most-informative first; each
# gets what is left of the budget (capped), and a section that cannot fit is skipped and says so:
#   0. the matmul routines named in RACE (default "shipped cublas"; RACE= skips it) raced with
#      race-matmul.sh: each one's layouts checked against the CPU and its TFLOP/s (`bench
#      matmul`), its cold first step and warm samples/s in the training step; the fastest whose
#      layouts all agree and whose bench ran is CUBEK_MATMUL for every section after (its kernel
#      cache too, so section 1 measures a warm first step then);
#   1. clip-burn ViT-B-32 batch 256 amp_bf16 with an empty kernel cache: the first step's cost
#      (every kernel compiled, and tuned in a build with the `autotune` feature, logged with
#      timestamps: 95 s on an H200 without autotune, 56 s of it matmul kernels) and, once warm, the race figure;
#   1b. the same run profiled (cubecl's per-kernel times at the "full" level, summed by kernel and
#       by compilation key in summary.txt, every launch with its grid in profile-launches.csv);
#   1c. `bench allreduce`: data parallel's gradient all-reduce (ViT-B-32's 151M f32) in a one-rank
#       NCCL job, on the device and staged through the host, both checked exactly, then timed;
#   2. open_clip's baselines (tests/bench/train_open_clip.py, open-clip-torch from the wheels in
#      tests/gpu/wheels: no network): batch 256 amp_bf16 / fp32, batch 512 amp_bf16 + checkpointing;
#      the first with torch.profiler's kernel times after its timed steps (open_clip_profile.tsv);
#   2b. RN50 batch 256 amp_bf16, clip-burn (cold: the first step compiles the convolutions) and
#       open_clip (the issue's RN50 line: 1338 samples/s on an H100);
#   3. peak memory with --grad-checkpointing (batch 256 amp_bf16);
#   4. the loss falls over 50 CUDA steps on real data (synth shards through the data pipeline),
#      fp32 and amp_bf16 + --grad-checkpointing;
#   5. batch 256 fp32 (its first loss is compared with amp_bf16's: same seed, same batch);
#   6. the first clip-burn run again in a new process: the first step with a warm kernel cache
#      (compiled kernels and autotune results read back), and the race figure again;
#   7. batch 512 amp_bf16 + checkpointing;
#   8. data parallel on CUDA: `clip-burn launch` with 2 processes on the one GPU over TCP (NCCL
#      needs one GPU per rank) gives the 1-process whole-batch curve.
# Every `bench` run reports the loss of each step (one fixed batch: it must fall).
# Results: JSON and timestamped logs in /tmp/gpu-out, packed at the end into $OUT/gpu-out.tgz with
# $OUT/summary.txt beside it (the device tool returns at most 8 files).
# Usage: tests/gpu/train.sh PATH/TO/clip-burn(cuda release build)
# With the device tool: `bash tests/gpu/prepare.sh` here first (the CUDA release build of HEAD,
# stripped and xz-compressed to gpu-bin/clip-burn.xz, and the open_clip wheels in tests/gpu/wheels:
# both gitignored; xz's 16 MB and the checkout fit the tool's 64 MiB, gzip's 28 MB do not), then
# one call with carry ["gpu-bin/clip-burn.xz", "tests/gpu/wheels"] and timeout_s 590 (a start
# costs ~30 s of the 900 s):
#   python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('gpu-bin/clip-burn.xz'), open('/tmp/cb', 'wb'))" &&
#   chmod +x /tmp/cb && bash tests/gpu/check.sh /tmp/cb; BUDGET=480 bash tests/gpu/train.sh /tmp/cb
set -uo pipefail
BIN=$(realpath "${1:?path to a clip-burn built with --features cuda}")
cd "$(dirname "$0")/../.."
OUTDIR=/tmp/gpu-out
mkdir -p "$OUTDIR"
DEADLINE=$((SECONDS + ${BUDGET:-520}))
pack() {
  python3 tests/gpu/summary.py "$OUTDIR" > "$OUTDIR/summary.txt" 2>&1
  cat "$OUTDIR/summary.txt"
  if [ -n "${OUT:-}" ]; then
    cp "$OUTDIR/summary.txt" "$OUT/" && tar czf "$OUT/gpu-out.tgz" -C /tmp gpu-out
  fi
  echo "== done in $SECONDS s; results in $OUTDIR${OUT:+ and $OUT/gpu-out.tgz}"
}
trap pack EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt" || true
source tests/gpu/cuda-libs.sh
export CLIP_BURN_CACHE=/tmp/clip-burn-cache
# clip-burn runs in /tmp/cbrun, whose cubecl.toml logs each kernel compilation and each autotune
# result to stderr (timestamped below) and every autotune decision as JSON.
mkdir -p /tmp/cbrun
cat > /tmp/cbrun/cubecl.toml <<TOML
[compilation.logger]
level = "basic"
stderr = true
[autotune.logger]
level = "minimal"
stderr = true
[autotune.decisions]
file = "$OUTDIR/autotune-decisions.jsonl"
TOML
cat > /tmp/tiny_vit.json <<'JSON'
{"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
 "text_cfg": {"context_length": 32, "width": 64, "heads": 2, "layers": 2}}
JSON
# Prefixes each line with the seconds since the script started.
stamp() { python3 -u -c '
import sys, time
t0 = time.time() - float(sys.argv[1])
for line in sys.stdin:
    sys.stdout.write(f"{time.time() - t0:8.2f} {line}")
    sys.stdout.flush()' "$SECONDS"; }

# `slot CAP`: seconds for the next command (CAP, or what is left less a 10 s reserve); fails
# (and the caller skips) below 30 s.
slot() {
  local left=$((DEADLINE - SECONDS - 10))
  [ "$left" -lt 30 ] && return 1
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
skipped() { echo "SKIPPED $1: out of time budget" | tee -a "$OUTDIR/skipped.txt"; }
bench() { # name cap args... (in $RUNDIR, default /tmp/cbrun: its cubecl.toml)
  local name=$1 limit; limit=$(slot "$2") || { skipped "$name"; return; }; shift 2
  echo "== clip-burn $name (limit ${limit} s)"
  (cd "${RUNDIR:-/tmp/cbrun}" && timeout "$limit" "$BIN" --device cuda bench train --synthetic --json "$@" \
    > "$OUTDIR/$name.json" 2> >(stamp > "$OUTDIR/$name.log"))
  local rc=$?
  sleep 0.5
  echo "rc $rc after $SECONDS s: $(cat "$OUTDIR/$name.json")"
  echo "   kernels compiled: $(grep -c 'Compiling kernel' "$OUTDIR/$name.log"); last log lines:"
  grep -v 'Compiling kernel' "$OUTDIR/$name.log" | tail -4 | cut -c1-300
}
# lr 1e-4: at 5e-4 without warm-up the loss of ViT-B-32 on the fixed batch spikes (H200, both precisions).
B32=(--model ViT-B-32 --steps 10 --warmup-steps 2 --lr 1e-4)

RACE=${RACE-shipped cublas}
if [ -n "$RACE" ]; then
  echo "== 0. matmul routines: $RACE"
  if limit=$(slot 240); then
    # shellcheck disable=SC2086
    COLD_LIMIT=$((limit / 2)) MATMUL_LIMIT=60 STEPS=10 OUT= timeout "$limit" bash tests/gpu/race-matmul.sh "$BIN" $RACE 2>&1 | tee "$OUTDIR/race.txt"
    cp -r /tmp/mm-out "$OUTDIR/" 2>/dev/null
    winner=$(python3 - /tmp/mm-out $RACE <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
best = None
for c in names:
    try:
        warm = json.load(open(f"{out}/{c}.warm.json"))
        checks = json.load(open(f"{out}/{c}.matmul.json"))["checks"]
    except Exception:
        continue
    if all(k["ok"] for k in checks) and (best is None or warm["samples_per_s"] > best[1]):
        best = (c, warm["samples_per_s"])
print(best[0] if best else "")
PY
)
    if [ -n "$winner" ]; then
      echo "== matmul routine for the sections below: $winner" | tee "$OUTDIR/routine.txt"
      export CUBEK_MATMUL=$winner CLIP_BURN_CACHE=/tmp/mm-cache-$winner
    fi
  else
    skipped race
  fi
fi

echo "== 1. clip-burn, empty kernel cache (warm when section 0 chose a routine)"
bench b32_256_amp_bf16_cold 200 "${B32[@]}" --batch 256 --precision amp_bf16

echo "== 1b. where a step's time goes: 2 steps with cubecl's per-kernel profiling log"
mkdir -p /tmp/cbprof
# "full": each launch with its compilation key (dtypes, vector widths, routine) and grid, condensed
# by kernels.py into summary.txt and profile-launches.csv.
printf '[profiling.logger]\nlevel = "full"\nstderr = true\n' > /tmp/cbprof/cubecl.toml
RUNDIR=/tmp/cbprof bench profile 60 "${B32[@]:0:2}" --steps 2 --warmup-steps 1 --batch 256 --precision amp_bf16
python3 tests/gpu/kernels.py "$OUTDIR/profile.log" --csv "$OUTDIR/profile-launches.csv" > /dev/null

echo "== 1c. data parallel's gradient all-reduce: NCCL on the device against the host-staged path (one rank)"
if limit=$(slot 45); then
  (cd /tmp/cbrun && timeout "$limit" "$BIN" --device cuda bench allreduce --dist-backend nccl --json > "$OUTDIR/allreduce.json" 2> >(stamp > "$OUTDIR/allreduce.log"))
  echo "allreduce rc $? after $SECONDS s: $(cat "$OUTDIR/allreduce.json")"; tail -3 "$OUTDIR/allreduce.log"
else skipped allreduce; fi

echo "== 2. open_clip baselines"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 -m pip install -q --no-index --find-links tests/gpu/wheels --no-deps --target /tmp/ocpkgs \
    open_clip_torch ftfy wcwidth regex 2>&1 | tail -2
  python3 -c "import torch; print('torch', torch.__version__)" | tee "$OUTDIR/torch.txt"
  oc() { # name args...
    local name=$1 limit; limit=$(slot 60) || { skipped "open_clip_$name"; return; }; shift
    PYTHONPATH="/tmp/ocpkgs:${PYTHONPATH:-}" timeout "$limit" python3 tests/bench/train_open_clip.py --model ViT-B-32 --device cuda \
      --steps 20 --warmup-steps 3 "$@" 2> "$OUTDIR/open_clip_$name.log" > "$OUTDIR/open_clip_$name.json"
    echo "open_clip $name after $SECONDS s: $(cat "$OUTDIR/open_clip_$name.json")"
  }
  oc b32_256_amp_bf16 --batch-size 256 --precision amp_bf16 --profile "$OUTDIR/open_clip_profile.tsv"
  oc b32_256_fp32 --batch-size 256 --precision fp32
  oc b32_512_amp_bf16_ckpt --batch-size 512 --precision amp_bf16 --grad-checkpointing
else
  echo "no PyTorch with CUDA here: open_clip not measured" | tee "$OUTDIR/torch.txt"
fi
echo "== 2b. RN50 batch 256 amp_bf16: clip-burn (its convolution kernels compiled on the first step) and open_clip"
bench rn50_256_amp_bf16 150 --model RN50 --steps 10 --warmup-steps 2 --lr 1e-4 --batch 256 --precision amp_bf16
if [ -d /tmp/ocpkgs ] && limit=$(slot 60); then
  PYTHONPATH="/tmp/ocpkgs:${PYTHONPATH:-}" timeout "$limit" python3 tests/bench/train_open_clip.py --model RN50 --device cuda \
    --steps 20 --warmup-steps 3 --batch-size 256 --precision amp_bf16 2> "$OUTDIR/open_clip_rn50_256_amp_bf16.log" \
    > "$OUTDIR/open_clip_rn50_256_amp_bf16.json"
  echo "open_clip rn50 after $SECONDS s: $(cat "$OUTDIR/open_clip_rn50_256_amp_bf16.json")"
else skipped open_clip_rn50; fi

echo "== 3. peak memory with checkpointing"
bench b32_256_amp_bf16_ckpt 90 "${B32[@]}" --batch 256 --precision amp_bf16 --grad-checkpointing

echo "== 4. the loss falls on CUDA with real data"
"$BIN" synth --out /tmp/synth --train-samples 4000 --val-samples 0 --eval-per-class 2 --formats wds > /dev/null 2>&1
for run in "fp32" "amp_bf16 --grad-checkpointing"; do
  name=train_$(echo "$run" | tr ' -' '__')
  limit=$(slot 60) || { skipped "$name"; continue; }
  set -- $run
  (cd /tmp/cbrun && timeout "$limit" "$BIN" --device cuda train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar \
    --train-num-samples 4000 --batch-size 64 --steps 50 --warmup 10 --lr 1e-3 --wd 0.1 --logs "/tmp/$name" \
    --save-frequency 1000 --precision "$@" 2>&1 | stamp > "$OUTDIR/$name.log")
  echo "$name rc $? after $SECONDS s"
  cp "/tmp/$name/metrics.jsonl" "$OUTDIR/$name.metrics.jsonl" 2>/dev/null
done

echo "== 5. fp32 (first loss against amp_bf16's)"
bench b32_256_fp32 150 "${B32[@]}" --batch 256 --precision fp32

echo "== 6. clip-burn again, warm kernel cache"
bench b32_256_amp_bf16 120 "${B32[@]}" --batch 256 --precision amp_bf16

echo "== 7. batch 512 with checkpointing"
bench b32_512_amp_bf16_ckpt 120 "${B32[@]}" --batch 512 --precision amp_bf16 --grad-checkpointing

echo "== 8. two processes on CUDA (TCP) vs one with the whole batch"
for n in 1 2; do
  limit=$(slot 60) || { skipped "dp$n"; continue; }
  args=(--device cuda:0 train --model /tmp/tiny_vit.json --train-data /tmp/synth/wds/train-0000.tar --train-num-samples 4000
        --batch-size $((64 / n)) --steps 10 --warmup 2 --lr 1e-3 --logs "/tmp/dp$n" --save-frequency 1000 --dist-backend tcp)
  if [ "$n" = 1 ]; then (cd /tmp/cbrun && timeout "$limit" "$BIN" "${args[@]}" 2>&1 | stamp > "$OUTDIR/dp$n.log")
  else (cd /tmp/cbrun && timeout "$limit" "$BIN" launch --nproc-per-node 2 -- "${args[@]}" 2>&1 | stamp > "$OUTDIR/dp$n.log"); fi
  echo "dp$n rc $? after $SECONDS s"
  cp "/tmp/dp$n/metrics.jsonl" "$OUTDIR/dp$n.metrics.jsonl" 2>/dev/null
done
du -sh "$CLIP_BURN_CACHE" 2>/dev/null | tee "$OUTDIR/kernel-cache-size.txt"
