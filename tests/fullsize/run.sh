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
#    only in the number of images/texts (1+1, 8+1, 1+8), so model loading cancels out (medians of
#    REPEAT rounds, default 3).
# 4. compare.py prints max |diff| and both throughputs; exits non-zero past the tolerance.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/fullsize}" && cd "${1:-$ROOT/target/fullsize}" && pwd)"
MODELS="${MODELS:-ViT-B-32,RN50}"
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

  # timing runs (binary directly, no cargo overhead); batch 8 = the 4 photos twice / 5 prompts + 3
  one_img=(--image "${IMAGES[0]}"); one_txt=(--text "${TEXTS[0]}")
  eight_img=(); for k in 0 1; do for i in "${IMAGES[@]}"; do eight_img+=(--image "$i"); done; done
  eight_txt=(); for k in 0 1 2 3 4 5 6 7; do eight_txt+=(--text "${TEXTS[$((k % ${#TEXTS[@]}))]}"); done
  "$BIN" "${embed[@]}" "${one_img[@]}" "${one_txt[@]}" > /dev/null  # warm the page cache
  # REPEAT rounds of the three runs (default 3), medians: one process's start and model load vary
  # by seconds on a shared machine, as much as the differences measured.
  times=()
  for _ in $(seq "${REPEAT:-3}"); do
    t0=$(now); "$BIN" "${embed[@]}" "${one_img[@]}" "${one_txt[@]}" > /dev/null; t1=$(now)
    "$BIN" "${embed[@]}" "${eight_img[@]}" "${one_txt[@]}" > "$OUT/$M.rust_img8.json"; t2=$(now)
    "$BIN" "${embed[@]}" "${one_img[@]}" "${eight_txt[@]}" > "$OUT/$M.rust_txt8.json"; t3=$(now)
    times+=("$t0,$t1,$t2,$t3")
  done
  "$PY" - "${times[@]}" > "$OUT/$M.rust_time.json" <<'PYEOF'
import json, statistics, sys
rounds = [list(map(float, r.split(","))) for r in sys.argv[1:]]
base, img8, txt8 = (statistics.median(r[k + 1] - r[k] for r in rounds) for k in range(3))
json.dump({"rounds": len(rounds), "wall_s_1img_1txt": base, "wall_s_8img_1txt": img8, "wall_s_1img_8txt": txt8,
           "images_per_s": 7 / (img8 - base) if img8 > base else None,
           "texts_per_s": 7 / (txt8 - base) if txt8 > base else None}, sys.stdout, indent=1)
PYEOF
done

"$PY" "$ROOT/tests/fullsize/compare.py" "$OUT" --models "$MODELS" --markdown "$ROOT/BENCHMARKS.md"
