#!/usr/bin/env bash
# glibc's allocator settings for inference (native-trainer/src/allocator.rs) against glibc's
# defaults, in the same run (not in CI). `clip-burn --device cpu embed` of ViT-B-32 (random-init
# open_clip weights, made by tests/fullsize/check.py when missing) on 32 texts and on 1, whole
# processes, alternating, medians of ROUNDS (default 5). Setting any MALLOC_* variable makes
# clip-burn leave glibc's defaults alone: the "defaults" runs set MALLOC_ARENA_TEST=8, which is
# glibc's own default on 64-bit. Prints a Markdown table.
#   bash tests/bench/allocator.sh            CLIP_BURN=path/to/clip-burn names a build (default: release)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-5}"
BIN=$(bash tests/bench/release_bin.sh)
W=target/fullsize/ViT-B-32.safetensors
[ -e "$W" ] || tests/.venv/bin/python tests/fullsize/check.py target/fullsize --models ViT-B-32
texts=()
for i in $(seq 32); do texts+=(--text "a photo of a number $i, a diagram of a cat"); done

python3 - "$BIN" "$W" "$ROUNDS" "${texts[@]}" <<'PY'
import os, statistics, subprocess, sys, time
bin_, weights, rounds, texts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def run(env_extra, args):
    env = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}
    env.update(env_extra)
    t = time.perf_counter()
    subprocess.run([bin_, "--device", "cpu", "embed", "--model", "ViT-B-32", "--weights", weights, *args],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
setups = {"clip-burn's settings": {}, "glibc's defaults": {"MALLOC_ARENA_TEST": "8"}}
times = {(s, n): [] for s in setups for n in (32, 1)}
for _ in range(rounds):
    for name, env in setups.items():
        times[(name, 32)].append(run(env, texts))
        times[(name, 1)].append(run(env, texts[:2]))
med = {k: statistics.median(v) for k, v in times.items()}
print("| allocator | 32 texts, whole process | 1 text | the 31 texts beyond the first |")
print("| --- | --- | --- | --- |")
for name in setups:
    print(f"| {name} | {med[(name, 32)]:.2f} s | {med[(name, 1)]:.2f} s | {med[(name, 32)] - med[(name, 1)]:.2f} s |")
a, b = (med[(n, 32)] - med[(n, 1)] for n in setups)
print(f"\nspeed-up of the 31 texts: {b / a:.2f}x (medians of {rounds} rounds; {os.cpu_count()} CPUs)")
PY
