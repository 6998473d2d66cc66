#!/usr/bin/env bash
# Loading ViT-B-32's weights (not in CI): time and memory, clip-burn against the reference in the
# same run, on the browser benchmark's files (605 MB f32 safetensors of a random-init open_clip
# ViT-B-32; its image tower as a 351 MB ONNX file for onnxruntime). Prints a Markdown table.
#   node:   the npm package's ClipModel.load (CPU backend) against onnxruntime-web's
#           InferenceSession.create (wasm), each in a fresh node process (tests/bench/load.mjs);
#   native: `clip-burn embed --weights W --text T` against open_clip's create_model + encode_text
#           (tests/bench/load_open_clip.py), whole processes under /usr/bin/time.
# Medians of RUNS (default 3). CLIP_BURN=path/to/clip-burn names a build; the default is the test
# build of scripts/test.sh (the CPU kernels, burn-flex and gemm, and our crates at opt-level 3).
#   bash tests/bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clip-burn/target}"
bash tests/browser/bench/inputs.sh
BIN="${CLIP_BURN:-}"
if [ -z "$BIN" ]; then
  cargo build --locked --features clip-model/wgpu,clip-trainer/wgpu,clip-trainer/cuda --bin clip-burn
  BIN="$CARGO_TARGET_DIR/debug/clip-burn"
fi
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
W=target/browser-bench/vitb32.safetensors
ONNX=target/browser-bench/vitb32_visual.onnx
TEXT="a photo of a cat"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

for i in $(seq "$RUNS"); do
  node tests/bench/load.mjs clip-burn "$W" >>"$OUT/node.jsonl"
  node tests/bench/load.mjs ort "$ONNX" >>"$OUT/node.jsonl"
  # %e wall seconds, %M peak resident KiB; the features go to files to be compared below.
  /usr/bin/time -f '{"engine": "clip-burn", "s": %e, "rssKB": %M}' -a -o "$OUT/native.jsonl" \
    "$BIN" --device cpu embed --model ViT-B-32 --weights "$W" --text "$TEXT" >"$OUT/burn.json"
  /usr/bin/time -f '{"engine": "open_clip", "s": %e, "rssKB": %M}' -a -o "$OUT/native.jsonl" \
    tests/.venv/bin/python tests/bench/load_open_clip.py "$W" "$TEXT" >"$OUT/torch.json"
done

tests/.venv/bin/python - "$OUT" "$W" "$ONNX" <<'PY'
import json, os, platform, statistics, sys
out, w, onnx = sys.argv[1:]
rows = lambda f: [json.loads(l) for l in open(os.path.join(out, f)) if l.startswith("{")]
node, native = rows("node.jsonl"), rows("native.jsonl")
med = lambda rs, e, k: statistics.median(r[k] for r in rs if r["engine"] == e)
# Both sides embedded the same text with the same weights: their features must agree.
a = json.load(open(os.path.join(out, "burn.json")))["text_features"][0]
b = json.load(open(os.path.join(out, "torch.json")))["text_features"][0]
diff = max(abs(x - y) for x, y in zip(a, b))
if len(a) != len(b) or diff > 1e-3:
    sys.exit(f"clip-burn's and open_clip's text features differ (max abs diff {diff:.2e})")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mb = lambda p: os.path.getsize(p) / 1e6
n = len(node) // 2
print(f"{os.cpu_count()} x {cpu}, medians of {n} runs; {mb(w):.0f} MB safetensors, {mb(onnx):.0f} MB ONNX (image tower only)\n")
print("| load ViT-B-32 | clip-burn | reference | ratio (reference / clip-burn) | peak memory (clip-burn / reference) |")
print("| --- | --- | --- | --- | --- |")
b, r = med(node, "clip-burn", "ms") / 1e3, med(node, "ort", "ms") / 1e3
print(f"| node: `ClipModel.load` (cpu) vs onnxruntime-web `InferenceSession.create` (wasm) | {b:.1f} s | {r:.1f} s | **{r / b:.2f}x** "
      f"| {med(node, 'clip-burn', 'rssMB'):.0f} MB RSS ({med(node, 'clip-burn', 'heapMB'):.0f} MB wasm heap) / {med(node, 'ort', 'rssMB'):.0f} MB RSS |")
b, r = med(native, "clip-burn", "s"), med(native, "open_clip", "s")
print(f"| native: `clip-burn embed --weights W --text T` vs open_clip `create_model` + `encode_text` (whole process) | {b:.1f} s | {r:.1f} s | **{r / b:.2f}x** "
      f"| {med(native, 'clip-burn', 'rssKB') / 1024:.0f} MB / {med(native, 'open_clip', 'rssKB') / 1024:.0f} MB RSS |")
print(f"\ntext features of clip-burn and open_clip: max abs diff {diff:.1e}")
PY
