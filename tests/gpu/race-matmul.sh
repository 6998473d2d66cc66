#!/usr/bin/env bash
# Races cubek's matmul routines inside clip-burn's ViT-B-32 training step on a GPU, without
# autotune: clip-burn's vendored cubek-matmul reads CUBEK_MATMUL (the routine tried first:
# default = cubek's own SimpleCyclicCmma, tma_mma, ordered_mma, simple_mma, double_mma,
# double_mma_specialized, specialized_mma, specialized_tma_mma; `cublas`: cuBLAS through
# vendor/burn-cubecl, the shipped chain for what it does not take; any other name, e.g. `shipped`,
# warns and keeps the shipped chain, TMA then ordered), and this script runs the same bench once
# per name given. The losses printed check a routine against the others (same seed, same data).
# Phase 1 compiles every candidate's kernels at once (one process and kernel cache each; NVRTC is
# single-threaded per process), phase 2 times each one warm, one after the other. A routine that
# refuses a shape (TMA: unaligned strides) leaves it to cubek's default, silently.
# H200, 2026-11-27, 7 candidates: 190 s (BENCHMARKS.md). Env: BATCH, PRECISION, STEPS.
# Usage: tests/gpu/race-matmul.sh BIN candidate...
set -uo pipefail
BIN=$(realpath "${1:?clip-burn cuda build}"); shift
OUTDIR=/tmp/mm-out
mkdir -p "$OUTDIR"
source "$(dirname "$0")/cuda-libs.sh"
B32=(--model ViT-B-32 --batch "${BATCH:-256}" --precision "${PRECISION:-amp_bf16}" --lr 1e-4)
# Processes compiling at once: one bench at batch 256 amp_bf16 holds ~15 GiB; 19 GiB each.
mem_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
wave=$(( mem_mib / 1024 / 19 )); [ "$wave" -lt 1 ] && wave=1
run() { # candidate label timeout args...
  local c=$1 label=$2 limit=$3; shift 3
  mkdir -p "/tmp/mm-$c"
  (cd "/tmp/mm-$c" && CUBEK_MATMUL=$c CLIP_BURN_CACHE="/tmp/mm-cache-$c" timeout "$limit" "$BIN" --device cuda \
    bench train --synthetic --json "${B32[@]}" "$@" > "$OUTDIR/$c.$label.json" 2> "$OUTDIR/$c.$label.log")
}
# `bench matmul` per candidate (after its cold run, in the same background job): each layout of
# the step checked against the CPU, then TFLOP/s of the 4096 cube and ViT-B-32's GEMMs.
matmul() { # candidate
  (cd "/tmp/mm-$1" && CUBEK_MATMUL=$1 CLIP_BURN_CACHE="/tmp/mm-cache-$1" timeout "${MATMUL_LIMIT:-120}" "$BIN" --device cuda \
    bench matmul --dtype "${MATMUL_DTYPE:-bf16}" --json > "$OUTDIR/$1.matmul.json" 2> "$OUTDIR/$1.matmul.log")
}
echo "== compile (waves of $wave) at $SECONDS s"
i=0
for c in "$@"; do
  { run "$c" cold "${COLD_LIMIT:-200}" --steps 1 --warmup-steps 1; matmul "$c"; } &
  i=$((i + 1)); [ $((i % wave)) = 0 ] && wait
done
wait
echo "== compiled at $SECONDS s"
for c in "$@"; do
  run "$c" warm 60 --steps "${STEPS:-10}" --warmup-steps 2
  python3 - "$OUTDIR" "$c" <<'PY'
import json, sys
out, c = sys.argv[1:]
def load(label):
    try: return json.load(open(f"{out}/{c}.{label}.json"))
    except Exception: return None
cold, warm = load("cold"), load("warm")
if warm:
    print(f"{c:22s} {warm['samples_per_s']:8.1f} samples/s  step {warm['step_ms']:7.1f} ms  "
          f"cold first step {cold['first_step_s'] if cold else float('nan'):5.1f} s  "
          f"losses {warm['losses'][0]:.4f} -> {warm['losses'][-1]:.4f}  peak {warm['peak_memory_bytes']/2**30:.2f} GiB")
else:
    print(f"{c:22s} FAILED: " + " | ".join(open(f"{out}/{c}.warm.log").read().strip().splitlines()[-3:])[:400])
PY
done
for c in "$@"; do
  python3 - "$OUTDIR" "$c" <<'PY'
import json, sys
out, c = sys.argv[1:]
try:
    r = json.load(open(f"{out}/{c}.matmul.json"))
except Exception:
    print(f"{c:22s} bench matmul FAILED: " + " | ".join(open(f"{out}/{c}.matmul.log").read().strip().splitlines()[-3:])[:400])
    sys.exit()
wrong = [k["layout"] for k in r["checks"] if not k["ok"]]
times = "  ".join("x".join(map(str, t["shape"])) + f" {t['tflops']:.0f}" for t in r["timings"])
print(f"{c:22s} layouts {'all ok' if not wrong else 'WRONG: ' + ', '.join(wrong)}  TFLOP/s {times}")
PY
done
[ -n "${OUT:-}" ] && tar czf "$OUT/mm-out.tgz" -C /tmp mm-out
echo "== done in $SECONDS s"
