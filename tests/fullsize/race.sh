#!/usr/bin/env bash
# The CPU race (not part of CI): clip-burn against ONNX Runtime's CPU engine and open_clip on
# PyTorch, the same random-init full-size weights (check.py), every engine with the same number of
# threads, in one run. Usage:
#     bash tests/fullsize/race.sh [OUT_DIR]                (default: target/fullsize)
#     MODELS=ViT-B-32 ROUNDS=5 BATCHES=1,8 THREADS=2 bash tests/fullsize/race.sh
#
# 1. check.py's weights, photos and open_clip reference (made when missing); engines.py export:
#    both towers as ONNX (batch axis dynamic), ONNX Runtime's parity, FLOPs per input.
# 2. clip-burn's parity: `clip-burn embed` of the reference inputs against open_clip (compare.py);
#    the int8 burnpack (`convert --dtype int8`) too: race.py requires every feature's cosine to
#    open_clip's f32 ones to be at least 0.999 (issue 30).
# 3. ROUNDS rounds (default 3); each round runs every (model, tower, batch) on each engine in
#    turn, the engines' order rotating from round to round: one process per run, the model's load
#    timed apart, one untimed forward pass, then ITERS timed ones (20 at batch 1, 5 at 8, 2 at 32).
#    Lines go to OUT_DIR/race.jsonl.
# 4. race.py: medians over the rounds, ratios clip-burn / ONNX Runtime and clip-burn / PyTorch,
#    clip-burn's GFLOP/s against the cores' peak; written into BENCHMARKS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/fullsize}" && cd "${1:-$ROOT/target/fullsize}" && pwd)"
MODELS="${MODELS:-ViT-B-32,RN50}"
ROUNDS="${ROUNDS:-3}"
BATCHES="${BATCHES:-1,8,32}"
THREADS="${THREADS:-$(nproc)}"
PY="$ROOT/tests/.venv/bin/python"
[ -x "$PY" ] || { echo "missing $PY: run tests/fixtures/generate.sh first" >&2; exit 2; }
"$PY" -c "import onnxruntime, onnx" 2>/dev/null || "$ROOT/tests/.venv/bin/pip" install -q onnx==1.23.2 onnxruntime==1.32.0
cd "$ROOT"
IFS=',' read -ra MODEL_LIST <<< "$MODELS"
IFS=',' read -ra BATCH_LIST <<< "$BATCHES"

have_reference() {
  [ -f "$OUT/reference.json" ] || return 1
  for M in "${MODEL_LIST[@]}"; do
    "$PY" -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1]))["models"] else 1)' "$OUT/reference.json" "$M" || return 1
  done
}
have_reference || "$PY" tests/fullsize/check.py "$OUT" --models "$MODELS" --iters 1
for M in "${MODEL_LIST[@]}"; do
  [ -f "$OUT/$M.text-cut.onnx" ] && [ -f "$OUT/$M.flops.json" ] || "$PY" tests/fullsize/engines.py export "$OUT" "$M"
done

BIN=$(bash tests/bench/release_bin.sh)
mapfile -t IMAGES < <("$PY" -c 'import json,sys; [print(p) for p in json.load(open(sys.argv[1]))["images"]]' "$OUT/reference.json")
mapfile -t TEXTS < <("$PY" -c 'import json,sys; [print(t) for t in json.load(open(sys.argv[1]))["texts"]]' "$OUT/reference.json")
image_args=(); for i in "${IMAGES[@]}"; do image_args+=(--image "$i"); done
text_args=(); for t in "${TEXTS[@]}"; do text_args+=(--text "$t"); done

for M in "${MODEL_LIST[@]}"; do
  "$BIN" --device cpu embed --model "$M" --weights "$OUT/$M.safetensors" "${image_args[@]}" "${text_args[@]}" > "$OUT/$M.rust.json"
  "$BIN" --device cpu convert --model "$M" --weights "$OUT/$M.safetensors" --dtype int8 --out "$OUT/$M.int8.bpk"
  "$BIN" --device cpu embed --weights "$OUT/$M.int8.bpk" "${image_args[@]}" "${text_args[@]}" > "$OUT/$M.int8.json"
done
"$PY" tests/fullsize/compare.py "$OUT" --models "$MODELS"

export RAYON_NUM_THREADS="$THREADS"
iters() { case "$1" in 1) echo 20 ;; 8) echo 5 ;; *) echo 2 ;; esac; }
run() { # engine model tower batch
  local engine=$1 m=$2 tower=$3 batch=$4 n
  n=$(iters "$batch")
  if [ "$engine" = clip-burn ]; then
    local inputs=("${image_args[@]}"); [ "$tower" = text ] && inputs=("${text_args[@]}")
    "$BIN" --device cpu bench embed --model "$m" --weights "$OUT/$m.safetensors" --tower "$tower" --batch "$batch" \
      --iters "$n" --warmup 1 --json "${inputs[@]}" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); d["engine"]="clip-burn"; print(json.dumps(d))'
  else
    "$PY" tests/fullsize/engines.py time "$OUT" "$m" --engine "$engine" --tower "$tower" --batch "$batch" --iters "$n" --warmup 1 --threads "$THREADS"
  fi
}
ENGINES=(clip-burn onnxruntime torch)
: > "$OUT/race.jsonl"
for r in $(seq "$ROUNDS"); do
  for M in "${MODEL_LIST[@]}"; do
    for tower in image text; do
      for batch in "${BATCH_LIST[@]}"; do
        for k in 0 1 2; do
          engine=${ENGINES[$(( (k + r) % 3 ))]}
          line=$(run "$engine" "$M" "$tower" "$batch")
          echo "$line" >> "$OUT/race.jsonl"
          echo "[race.sh] round $r $M $tower batch $batch $engine: $("$PY" -c 'import json,sys; print("%.1f ms" % json.loads(sys.argv[1])["median_ms"])' "$line")"
        done
      done
    done
  done
done

"$PY" tests/fullsize/race.py "$OUT" --models "$MODELS" --threads "$THREADS" --markdown "$ROOT/BENCHMARKS.md"
