"""The table tests/gpu/train.sh ends with: every figure its sections wrote to OUTDIR, the race as
ratios clip-burn / open_clip measured in the same run, and what was skipped or failed.

Usage: python3 tests/gpu/summary.py OUTDIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernels  # noqa: E402 (tests/gpu/kernels.py)

out = sys.argv[1]


def load(name):
    """The JSON object of OUTDIR/name.json, or None (missing, empty, or a failed run)."""
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def losses(name):
    try:
        with open(os.path.join(out, name + ".metrics.jsonl")) as f:
            return [json.loads(l)["loss"] for l in f if '"loss"' in l]
    except OSError:
        return []


def gib(b):
    return f"{b / 2**30:.2f} GiB" if b else "-"


def text(name):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read().strip()
    except OSError:
        return "-"


def compiled(name):
    """Kernels a run compiled (cubecl's compilation log lines in OUTDIR/name.log)."""
    try:
        with open(os.path.join(out, name + ".log")) as f:
            return sum("Compiling kernel" in l for l in f)
    except OSError:
        return None


def profile():
    """cubecl's per-kernel log of OUTDIR/profile.log: its launches (kernels.py), None without it."""
    return kernels.launches(os.path.join(out, "profile.log"))


print(f"GPU: {text('gpu.txt')}; {text('torch.txt')}")

print("\nThe race (synthetic data; samples/s, higher is better):")
# Memory: what each allocator held (PyTorch's max reserved; burn's pool reserved after the run).
print(f"{'setting':34} {'open_clip':>10} {'clip-burn':>10} {'ratio':>7} {'open_clip mem':>14} {'clip-burn mem':>14}")
for name, label in [
    ("b32_256_amp_bf16", "ViT-B-32 batch 256 amp_bf16"),
    ("b32_256_fp32", "ViT-B-32 batch 256 fp32 (TF32)"),
    ("b32_512_amp_bf16_ckpt", "ViT-B-32 b512 amp_bf16 + ckpt"),
    ("rn50_256_amp_bf16", "RN50 batch 256 amp_bf16"),
]:
    # The warm run of batch 256 amp_bf16, else the cold one's timed steps (after its warm-up).
    oc, cb = load("open_clip_" + name), load(name) or load(name + "_cold")
    ocs, cbs = (oc or {}).get("samples_per_s"), (cb or {}).get("samples_per_s")
    ratio = f"{cbs / ocs:.2f}x" if ocs and cbs else "-"
    print(f"{label:34} {ocs or 0:10.1f} {cbs or 0:10.1f} {ratio:>7} {gib((oc or {}).get('peak_reserved_bytes')):>14} "
          f"{gib((cb or {}).get('peak_memory_bytes')):>14}")

plain, ckpt = load("b32_256_amp_bf16") or load("b32_256_amp_bf16_cold"), load("b32_256_amp_bf16_ckpt")
if plain and ckpt and plain.get("peak_memory_bytes") and ckpt.get("peak_memory_bytes"):
    p, c = plain["peak_memory_bytes"], ckpt["peak_memory_bytes"]
    print(f"\nPeak memory, batch 256 amp_bf16: {gib(p)} plain, {gib(c)} with --grad-checkpointing ({c / p:.2f}x)")

print("\nFirst step (ViT-B-32 batch 256 amp_bf16), seconds:")
for name, label in [("b32_256_amp_bf16_cold", "empty kernel cache"), ("b32_256_amp_bf16", "warm kernel cache")]:
    print(f"  {label}: {(load(name) or {}).get('first_step_s', 'did not finish')}; kernels compiled: {compiled(name)}")
print(f"  kernel cache: {text('kernel-cache-size.txt')}")

runs = profile()
if runs:
    totals, counts = kernels.summed(runs)
    run = load("profile") or {}
    steps = run.get("steps", 2)
    total = sum(totals.values())
    print(f"\nKernel time in the profiled run's {steps} timed steps (batch 256 amp_bf16): {total:.3f} s in "
          f"{sum(counts.values())} launches; its step time {run.get('step_ms', '-')} ms (with the profiler on). Top kernels:")
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {t:8.3f} s {100 * t / total:5.1f}% {counts[name]:6d}x  {name[:110]}")
    keys = kernels.detail(runs)
    if any(key for _, key in keys):
        print("By compilation key (dtypes, vector widths w, routine or tiles; a grid of one launch):")
        for (name, key), (t, n, grid) in sorted(keys.items(), key=lambda kv: -kv[1][0])[:40]:
            print(f"  {t:8.3f} s {100 * t / total:5.1f}% {n:6d}x  {name[:32]:32s} {key[:120]}  [{grid}]")

try:
    with open(os.path.join(out, "open_clip_profile.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
except OSError:
    rows = []
if rows:
    total = sum(float(r[0]) for r in rows)
    print(f"\nopen_clip's kernel time in 2 profiled steps (batch 256 amp_bf16, torch.profiler): {total:.3f} s "
          f"in {sum(int(r[1]) for r in rows)} launches. Top kernels:")
    for seconds, launches, name in rows[:25]:
        print(f"  {float(seconds):8.3f} s {100 * float(seconds) / total:5.1f}% {int(launches):6d}x  {name[:110]}")

print("\nLoss per bench run (one fixed batch: it must fall):")
runs = ["b32_256_amp_bf16_cold", "b32_256_amp_bf16", "b32_256_amp_bf16_ckpt", "b32_256_fp32", "b32_512_amp_bf16_ckpt"]
for name in runs:
    l = (load(name) or {}).get("losses") or []
    if len(l) >= 2:
        print(f"  {name}: {l[0]:.4f} -> {l[-1]:.4f} over {len(l)} steps: {'FALLS' if l[-1] < l[0] else 'DOES NOT FALL'}")
# Same seed, same batch: amp_bf16's losses against fp32's, the first one and the whole curve.
curve = {n: (load(n) or {}).get("losses") or [] for n in ["b32_256_fp32", "b32_256_amp_bf16_cold", "b32_256_amp_bf16_ckpt"]}
for name, label in [("b32_256_amp_bf16_cold", "amp_bf16"), ("b32_256_amp_bf16_ckpt", "amp_bf16 + checkpointing")]:
    pairs = list(zip(curve["b32_256_fp32"], curve[name]))
    if pairs:
        (f, other), d = pairs[0], abs(pairs[0][0] - pairs[0][1]) / pairs[0][0]
        worst = max(abs(x - y) / x for x, y in pairs)
        print(f"  first loss fp32 {f:.5f}, {label} {other:.5f}: relative difference {d:.2e} ({'OK' if d < 0.02 else 'TOO FAR'}); "
              f"max over {len(pairs)} steps {worst:.2e}")

curves = {n: losses(n) for n in ["train_fp32", "train_amp_bf16___grad_checkpointing"]}
for name, c in curves.items():
    if len(c) < 10:
        print(f"{name}: only {len(c)} steps finished")
        continue
    a, b = sum(c[:5]) / 5, sum(c[-5:]) / 5
    print(f"{name}: loss {a:.3f} -> {b:.3f} over {len(c)} steps: {'FALLS' if b < a - 0.3 else 'DOES NOT FALL'}")
f, m = curves["train_fp32"], curves["train_amp_bf16___grad_checkpointing"]
if f and m:
    d = abs(f[0] - m[0]) / f[0]
    print(f"first loss fp32 {f[0]:.4f}, amp_bf16 {m[0]:.4f}: relative difference {d:.2e} ({'OK' if d < 0.02 else 'TOO FAR'})")

r = load("allreduce")
if r:
    print(f"gradient all-reduce, one rank, {r['values']} f32 ({r['transport']}): {r['transport_ms']:.2f} ms on the device, "
          f"{r['through_host_ms']:.2f} ms staged through the host; both exact")
else:
    print(f"gradient all-reduce (bench allreduce): FAILED or not run: {text('allreduce.log')[-300:]}")
a, b = losses("dp1"), losses("dp2")
if a and b:
    n = min(len(a), len(b))
    print(f"data parallel (2 processes, TCP): max relative loss difference over {n} steps: "
          f"{max(abs(x - y) / x for x, y in zip(a, b)):.2e}")
skipped = text("skipped.txt")
if skipped != "-":
    print("\n" + skipped)
