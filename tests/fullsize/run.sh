#!/usr/bin/env bash
# Full-size comparison of clip-burn against open_clip (not part of CI; needs ~2 GB disk and a
# release build, or CLIP_BURN naming a build). Usage:
#     bash tests/fullsize/run.sh [OUT_DIR]          (default: target/fullsize)
#     MODELS=ViT-B-32 bash tests/fullsize/run.sh
#     CLIP_BURN=path/to/clip-burn bash tests/fullsize/run.sh
#
# 1. check.py (in tests/.venv, created by tests/fixtures/generate.sh) writes random-init
#    full-size weights, PNG inputs and PyTorch reference features + CPU throughput.
# 2. `clip-burn embed` is run on the same files; its JSON goes to OUT_DIR/<model>.rust.json.
#    Assumed CLI: repeated --image/--text flags, JSON on stdout:
#       {"image_features": [[..]], "text_features": [[..]], "logit_scale": f}
#    (features in input order; un-normalised or normalised both work: compare.py reports both.)
# 3. Throughput of clip-burn is estimated from wall-clock times of three extra runs that differ
#    only in the number of images/texts (1+1, N+1, 1+N; N = COUNT, default 32; batches of 8), so
#    model loading cancels out (medians of REPEAT rounds, default 3).
# 4. compare.py prints max |diff| and both throughputs; exits non-zero past the tolerance.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/fullsize}" && cd "${1:-$ROOT/target/fullsize}" && pwd)"
MODELS="${MODELS:-ViT-B-32,RN50}"
[[ "${COUNT:-32}" =~ ^[0-9]+$ ]] && [ "${COUNT:-32}" -ge 2 ] || { echo "COUNT=$COUNT: a whole number, at least 2" >&2; exit 2; }
PY="$ROOT/tests/.venv/bin/python"
[ -x "$PY" ] || { echo "missing $PY: run tests/fixtures/generate.sh first" >&2; exit 2; }

"$PY" "$ROOT/tests/fullsize/check.py" "$OUT" --models "$MODELS"

cd "$ROOT"
# CLIP_BURN=path/to/clip-burn uses an existing build (any profile with optimised dependencies:
# the tests' debug build has the CPU kernels (burn-flex, gemm) and our crates at opt-level 3).
BIN=$(bash tests/bench/release_bin.sh)

IMAGES=("$OUT"/images/astronaut.png "$OUT"/images/chelsea.png "$OUT"/images/coffee.png "$OUT"/images/rocket.png)
mapfile -t TEXTS < <("$PY" -c 'import json,sys; [print(t) for t in json.load(open(sys.argv[1]))["texts"]]' "$OUT/reference.json")

now() { date +%s.%N; }

IFS=',' read -ra MODEL_LIST <<< "$MODELS"
for M in "${MODEL_LIST[@]}"; do
  W="$OUT/$M.safetensors"
  # --device cpu: with wgpu compiled in, `best` would pick it (lavapipe on a machine without a GPU).
  embed=(--device cpu embed --model "$M" --weights "$W")
  args=("${embed[@]}")
  for i in "${IMAGES[@]}"; do args+=(--image "$i"); done
  for t in "${TEXTS[@]}"; do args+=(--text "$t"); done
  echo "[run.sh] $M: clip-burn ${args[*]}"
  "$BIN" "${args[@]}" > "$OUT/$M.rust.json"

  # timing runs (binary directly, no cargo overhead), in batches of 8 as PyTorch's: COUNT (default
  # 32) images (the 4 photos in turn) or prompts (in turn) against one of each. With 8 the work
  # measured (~0.5 s) was smaller than the load's jitter on a shared machine (~0.2 s per process).
  N="${COUNT:-32}"
  timing=("${embed[@]}" --batch 8)
  one_img=(--image "${IMAGES[0]}"); one_txt=(--text "${TEXTS[0]}")
  n_img=(); for k in $(seq 0 $((N - 1))); do n_img+=(--image "${IMAGES[$((k % ${#IMAGES[@]}))]}"); done
  n_txt=(); for k in $(seq 0 $((N - 1))); do n_txt+=(--text "${TEXTS[$((k % ${#TEXTS[@]}))]}"); done
  "$BIN" "${timing[@]}" "${one_img[@]}" "${one_txt[@]}" > /dev/null  # warm the page cache
  # REPEAT rounds of the three runs (default 3), medians: one process's start and model load vary
  # on a shared machine.
  times=()
  for _ in $(seq "${REPEAT:-3}"); do
    t0=$(now); "$BIN" "${timing[@]}" "${one_img[@]}" "${one_txt[@]}" > /dev/null; t1=$(now)
    "$BIN" "${timing[@]}" "${n_img[@]}" "${one_txt[@]}" > /dev/null; t2=$(now)
    "$BIN" "${timing[@]}" "${one_img[@]}" "${n_txt[@]}" > /dev/null; t3=$(now)
    times+=("$t0,$t1,$t2,$t3")
  done
  "$PY" - "$N" "${times[@]}" > "$OUT/$M.rust_time.json" <<'PYEOF'
import json, statistics, sys
n = int(sys.argv[1])
rounds = [list(map(float, r.split(","))) for r in sys.argv[2:]]
base, img, txt = (statistics.median(r[k + 1] - r[k] for r in rounds) for k in range(3))
json.dump({"rounds": len(rounds), "count": n, "wall_s_1img_1txt": base, "wall_s_nimg_1txt": img, "wall_s_1img_ntxt": txt,
           "images_per_s": (n - 1) / (img - base) if img > base else None,
           "texts_per_s": (n - 1) / (txt - base) if txt > base else None}, sys.stdout, indent=1)
PYEOF
done

"$PY" "$ROOT/tests/fullsize/compare.py" "$OUT" --models "$MODELS" --markdown "$ROOT/BENCHMARKS.md"
