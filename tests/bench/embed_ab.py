"""Times `clip-burn --device cpu embed` of ViT-B-32 under several setups (a build and environment
variables each), alternating whole processes, and prints a Markdown table: per input kind, the
median time for N inputs and for 1, and the time of the N - 1 beyond the first (model load and
first-call costs cancel out), with each setup's speed-up over the first setup. glibc's MALLOC_*
variables and GLIBC_TUNABLES are taken out of every run's environment (clip-burn's allocator
settings depend on them, native-trainer/src/allocator.rs) and set only where a setup says.
Used by tests/bench/builds.sh (two builds) and tests/bench/allocator.sh (two environments).

  python3 embed_ab.py --weights W [--images DIR] [--kinds texts,images] [--n 32] [--rounds 5]
                      --setup NAME BIN [VAR=VALUE ...] --setup NAME BIN [VAR=VALUE ...]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="ViT-B-32 open_clip safetensors")
    p.add_argument("--images", help="a folder of PNG images (required for --kinds images)")
    p.add_argument("--kinds", default="texts,images", help="texts, images or both, comma-separated")
    p.add_argument("--n", type=int, default=32, help="inputs per timed run (and 1 in the other)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported")
    p.add_argument("--setup", nargs="+", action="append", required=True, metavar="NAME BIN [VAR=VALUE]",
                   help="a setup: its name, the clip-burn binary, environment variables")
    a = p.parse_args(argv)
    if a.n < 2:
        p.error(f"--n {a.n}: at least 2 (the time beyond the first input is what is compared)")
    if a.rounds < 1:
        p.error(f"--rounds {a.rounds}: at least 1")
    if len(a.setup) < 2:
        p.error("give at least two --setup")
    setups = []
    for s in a.setup:
        if len(s) < 2:
            p.error(f"--setup {' '.join(s)}: needs NAME and BIN")
        env = dict(kv.split("=", 1) for kv in s[2:] if "=" in kv)
        if len(env) != len(s) - 2:
            p.error(f"--setup {' '.join(s)}: environment variables must be VAR=VALUE")
        if not os.access(s[1], os.X_OK):
            p.error(f"--setup {s[0]}: {s[1]} is not an executable")
        setups.append((s[0], s[1], env))
    kinds = a.kinds.split(",")
    if not set(kinds) <= {"texts", "images"}:
        p.error(f"--kinds {a.kinds}: texts and/or images")
    return a, setups, kinds


def inputs(kind, n, images_dir):
    if kind == "texts":
        return [x for i in range(n) for x in ("--text", f"a photo of a number {i + 1}, a diagram of a cat")]
    files = sorted(Path(images_dir or ".").glob("*.png"))
    if not files:
        sys.exit(f"no PNG images in {images_dir} (--images)")
    return [x for i in range(n) for x in ("--image", str(files[i % len(files)]))]


def main(argv):
    a, setups, kinds = parse(argv)
    base_env = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "GLIBC_TUNABLES")}

    def run(bin_, env, args):
        t = time.perf_counter()
        subprocess.run([bin_, "--device", "cpu", "embed", "--model", "ViT-B-32", "--weights", a.weights, *args],
                       env={**base_env, **env}, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    args = {kind: (inputs(kind, a.n, a.images), inputs(kind, 1, a.images)) for kind in kinds}
    times = {(name, kind, n): [] for name, _, _ in setups for kind in kinds for n in (a.n, 1)}
    for _ in range(a.rounds):
        for kind, (many, one) in args.items():
            for name, bin_, env in setups:
                times[(name, kind, a.n)].append(run(bin_, env, many))
                times[(name, kind, 1)].append(run(bin_, env, one))
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"| setup | input | {a.n}, whole process | 1 | the {a.n - 1} beyond the first | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    first = setups[0][0]
    for kind in kinds:
        beyond = {name: med[(name, kind, a.n)] - med[(name, kind, 1)] for name, _, _ in setups}
        for name, _, _ in setups:
            print(f"| {name} | {kind} | {med[(name, kind, a.n)]:.2f} s | {med[(name, kind, 1)]:.2f} s | "
                  f"{beyond[name]:.2f} s | {beyond[first] / beyond[name]:.2f}x |")
    print(f"\n(speed-up: the first setup's time beyond the first input over each setup's; medians of "
          f"{a.rounds} alternating rounds; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main(sys.argv[1:])
